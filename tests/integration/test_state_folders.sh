#!/usr/bin/env bash
# Two state folders of one user, A and B, that each have a docker sandbox with a generated
# secret and an aws-sts sandbox against the fake AWS, under the same two names. The keyrings
# are per user, so the items of both folders sit side by side, keyed by sandbox id. For the
# kernel and the file backend: each folder reads its own values, `creds list` shows only the
# folder's own items, `extend`, `creds clear --all` and `down` in one folder leave the other's
# items as they were.
# shellcheck disable=SC2016 # jq filters use $ literally.
# shellcheck disable=SC2119 # fake_aws_start and toml_labels take no arguments here.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Headless, so that the backend is the one each round names.
unset DBUS_SESSION_BUS_ADDRESS JITBOX_KEYRING GNOME_KEYRING_CONTROL
export XDG_RUNTIME_DIR=$TEST_DIR/runtime
mkdir -m 0700 "$XDG_RUNTIME_DIR"

fake_aws_start

STATE_A=$XDG_STATE_HOME
STATE_B=$TEST_DIR/state-b
mkdir -m 0700 "$STATE_B"
EXTRA_STATE_HOMES+=("$STATE_B")
DB=db-$RUN_ID
DEPLOY=deploy-$RUN_ID

# Called by the cleanup after `down --all` in both folders, which must have removed every key.
remove_kernel_keys_left() {
    local keys=()
    mapfile -t keys < <(kernel_keys_of_sandboxes "$STATE_A/jitbox/audit.log" \
        "$STATE_B/jitbox/audit.log")
    if ((${#keys[@]} > 0)); then
        fail "cleanup: no kernel key left after down --all" "${keys[@]}"
    fi
    remove_kernel_keys "${keys[@]}"
}
on_cleanup remove_kernel_keys_left

cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.db]
image = "busybox:1.36"
command = ["sleep", "infinity"]
$(toml_labels)
ttl = "30m"
max_ttl = "2h"

[templates.db.secrets]
PASSWORD = {}

[templates.deploy]
provider = "aws-sts"
role_arn = "$FAKE_AWS_ROLE_ARN"
endpoint_url = "$FAKE_AWS_URL"
region = "$AWS_REGION"
ttl = "45m"
max_ttl = "90m"
$(toml_labels)
EOF

# --- helpers --------------------------------------------------------------------------------------

# in_a CMD... and in_b CMD...: run CMD with the state folder A or B.
in_a() {
    local -x XDG_STATE_HOME=$STATE_A
    "$@"
}

in_b() {
    local -x XDG_STATE_HOME=$STATE_B
    "$@"
}

# record_id NAME: the id in the record of sandbox NAME of the current state folder.
record_id() {
    jq -r .id "$XDG_STATE_HOME/jitbox/sandboxes/$1.json" 2>/dev/null
}

# password_of NAME: the generated PASSWORD of sandbox NAME, read through `creds show`.
password_of() {
    jb creds show "$1" PASSWORD --format json 2>/dev/null | jq -r .PASSWORD
}

# access_key_of NAME: the AccessKeyId of the AWS session of sandbox NAME.
access_key_of() {
    jb creds show "$1" --format credential-process 2>/dev/null | jq -r .AccessKeyId
}

# listed_ids: the sandbox ids in the `creds list --json` of the current state folder.
listed_ids() {
    jb creds list --json 2>/dev/null | jq -r '.[].sandbox_id' | sort -u | tr '\n' ' '
}

# item_expiry SANDBOX_ID: the expiry of the PASSWORD item of that id in the file store.
item_expiry() {
    jq -r --arg id "$1" '.items[] | select(.sandbox == $id and .key == "PASSWORD")
        | .expires_at' "$XDG_RUNTIME_DIR/jitbox/secrets.json" 2>/dev/null
}

# --- one round per backend ------------------------------------------------------------------------

# exercise BACKEND: both folders with JITBOX_KEYRING=BACKEND, from `up` to `down`.
exercise() {
    local backend=$1 a_db b_db a_deploy b_deploy a_password b_password a_key b_key
    export JITBOX_KEYRING=$backend

    in_a expect_exit 0 jb up db --name "$DB" || return 1
    in_b expect_exit 0 jb up db --name "$DB" || return 1
    in_a expect_exit 0 jb up deploy --name "$DEPLOY" || return 1
    in_b expect_exit 0 jb up deploy --name "$DEPLOY" || return 1
    a_db=$(in_a record_id "$DB")
    b_db=$(in_b record_id "$DB")
    a_deploy=$(in_a record_id "$DEPLOY")
    b_deploy=$(in_b record_id "$DEPLOY")
    check "$backend: the two db sandboxes have different ids" test "$a_db" != "$b_db"
    expect_eq "$backend: A's record names the backend" \
        "$(jq -r .secret_backend "$STATE_A/jitbox/sandboxes/$DB.json")" "$backend"

    a_password=$(in_a password_of "$DB")
    b_password=$(in_b password_of "$DB")
    expect_match "$backend: A reads its password" "$a_password" '^[A-Za-z0-9]{32}$'
    expect_match "$backend: B reads its password" "$b_password" '^[A-Za-z0-9]{32}$'
    check "$backend: the two passwords differ" test "$a_password" != "$b_password"
    a_key=$(in_a access_key_of "$DEPLOY")
    b_key=$(in_b access_key_of "$DEPLOY")
    expect_match "$backend: A reads its AWS session" "$a_key" '^ASIA'
    expect_match "$backend: B reads its AWS session" "$b_key" '^ASIA'
    check "$backend: the two AWS sessions differ" test "$a_key" != "$b_key"
    expect_eq "$backend: A's exec gets A's session" \
        "$(in_a jb exec "$DEPLOY" -- sh -c 'printf %s "$AWS_ACCESS_KEY_ID"' 2>/dev/null)" \
        "$a_key"

    expect_eq "$backend: A's creds list has only A's sandboxes" "$(in_a listed_ids)" \
        "$(printf '%s\n' "$a_db" "$a_deploy" | sort | tr '\n' ' ')"
    expect_eq "$backend: B's creds list has only B's sandboxes" "$(in_b listed_ids)" \
        "$(printf '%s\n' "$b_db" "$b_deploy" | sort | tr '\n' ' ')"
    expect_eq "$backend: creds list shows the name" \
        "$(in_a jb creds list --json | jq -r --arg id "$a_db" '.[] | select(.sandbox_id == $id)
            | .sandbox')" "$DB"

    if [[ $backend == file ]]; then
        local b_expiry
        b_expiry=$(item_expiry "$b_db")
        in_a expect_exit 0 jb extend "$DB" --by 10m
        expect_eq "$backend: A's extend leaves B's expiry" "$(item_expiry "$b_db")" "$b_expiry"
        check "$backend: A's extend moves A's expiry" test "$(item_expiry "$a_db")" != "$b_expiry"
    fi

    in_b expect_exit 0 jb down "$DB" "$DEPLOY"
    expect_eq "$backend: B's down removed B's items" "$(in_b listed_ids)" ""
    if [[ $backend == kernel ]]; then
        expect_eq "$backend: no kernel key of B's sandboxes is left" \
            "$(kernel_keys_matching "^jitbox:$b_db:")$(kernel_keys_matching "^jitbox:$b_deploy:")" \
            ""
    fi
    expect_eq "$backend: B's down leaves A's password" "$(in_a password_of "$DB")" "$a_password"
    expect_eq "$backend: B's down leaves A's session" "$(in_a access_key_of "$DEPLOY")" "$a_key"

    in_b expect_exit 0 jb up db --name "$DB" || return 1
    in_b expect_exit 0 jb up deploy --name "$DEPLOY" || return 1
    b_password=$(in_b password_of "$DB")
    b_key=$(in_b access_key_of "$DEPLOY")
    in_a expect_exit 0 jb creds clear --all
    in_a expect_exit 4 jb creds show "$DB"
    expect_eq "$backend: A's clear --all leaves B's password" "$(in_b password_of "$DB")" \
        "$b_password"
    expect_eq "$backend: A's clear --all leaves B's session" "$(in_b access_key_of "$DEPLOY")" \
        "$b_key"

    in_a expect_exit 0 jb down "$DB" "$DEPLOY"
    in_b expect_exit 0 jb down "$DB" "$DEPLOY"
    unset JITBOX_KEYRING
}

if keyctl rdescribe @u >/dev/null 2>&1; then
    exercise kernel
else
    skip "kernel backend" "the kernel refuses keyctl here"
fi
exercise file
