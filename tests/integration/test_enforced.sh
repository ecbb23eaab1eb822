#!/usr/bin/env bash
# Enforced mode against the real dockerd: `setup enforced` installs a set-id copy of the binary
# into a prefix in the test's folder, and two users who are not in the docker group use it.
# The checks:
# - they reach the engine only through jitbox and only as the system policy allows;
# - the environment and an unsigned project file change nothing;
# - a project file signed by a trusted key adds templates that the guardrails still bound, and
#   an edit after signing makes it ignored;
# - an aws-sts sandbox gets session credentials from the base key in /etc/jitbox/aws-credentials
#   and the fake AWS on 127.0.0.1, and the user sees neither that key nor the file;
# - the state, the audit log and the background child are out of their reach;
# - the loader ignores LD_PRELOAD;
# - one user cannot see or remove the other's sandbox without a role, and root with one can;
# - the guardrails deny privileged, host-network, /etc-mounting and other-image templates;
# - root's `reap --all-users` removes an expired sandbox whose child is gone.
# `setup enforced --undo --purge` then restores the machine.
#
# It needs root, a docker group that owns the engine socket, and a machine without an earlier
# installation: it skips when /etc/jitbox, /var/lib/jitbox, /var/log/jitbox or a `jitbox`
# account exist, and leaves none of them behind.
# shellcheck disable=SC2016 # jq filters use $ literally.

for tool in useradd userdel runuser; do
    if ((EUID != 0)) || ! command -v "$tool" >/dev/null 2>&1; then
        printf 'ok - test_enforced # SKIP needs root and useradd, userdel and runuser\n'
        exit 0
    fi
done

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ -e /etc/jitbox || -e /var/lib/jitbox || -e /var/log/jitbox ]] || id jitbox >/dev/null 2>&1; then
    skip_test "an installation of jitbox exists (/etc/jitbox, /var/lib/jitbox, /var/log/jitbox or the jitbox account)"
fi
if ! getent group docker >/dev/null || [[ $(stat -c %G /var/run/docker.sock 2>/dev/null) != docker ]]; then
    skip_test "/var/run/docker.sock does not belong to a docker group"
fi
for user in jbxalice jbxbob; do
    if id "$user" >/dev/null 2>&1; then
        skip_test "user $user exists already"
    fi
done

# The users must reach the installed binary and the work folder inside TEST_DIR.
chmod 0755 "$TEST_DIR"
PREFIX=$TEST_DIR/prefix
BIN=$PREFIX/bin/jitbox
WORK=$TEST_DIR/work
mkdir -m 0755 "$WORK"
CREATED_USERS=()
RUNTIME_DIRS=()
INSTALLED=0

# as_user USER CMD...: runs CMD as USER in WORK with a small environment, bounded in time.
# Variables to add go before CMD as NAME=VALUE words.
as_user() {
    local user=$1
    shift
    (cd "$WORK" && timeout -k 5 "$JITBOX_TIMEOUT" runuser -u "$user" -- \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/nonexistent NO_COLOR=1 "$@")
}

cleanup_enforced() {
    local user
    if [[ -x $BIN ]]; then
        for user in "${CREATED_USERS[@]}"; do
            as_user "$user" "$BIN" down --all --ignore-missing >/dev/null 2>&1
        done
    fi
    local pids
    for user in "${CREATED_USERS[@]}"; do
        pids=$(pgrep -u "$user")
        # shellcheck disable=SC2086 # one pid per word
        [[ -z $pids ]] || kill -KILL $pids 2>/dev/null
        userdel "$user" 2>/dev/null
    done
    rm -rf "${RUNTIME_DIRS[@]}"

    if ((INSTALLED)); then
        rm -f /etc/jitbox/jitbox.toml
        jb_raw setup enforced --undo --purge >/dev/null 2>&1
        # A failed undo must not leave the machine changed for the next run or other tests.
        rm -rf /etc/jitbox /var/lib/jitbox /var/log/jitbox
        userdel jitbox 2>/dev/null
    fi
}
on_cleanup cleanup_enforced

# --- setup ----------------------------------------------------------------------------------------

INSTALLED=1
expect_exit 0 jb_raw setup enforced --group docker --prefix "$PREFIX"
expect_contains "setup creates the account" "$OUT" "created system account jitbox"
expect_eq "binary owner, group and mode" "$(stat -c '%U:%G %a' "$BIN")" "jitbox:docker 6755"
expect_eq "state folder owner and mode" "$(stat -c '%U %a' /var/lib/jitbox)" "jitbox 700"
expect_eq "audit folder owner and mode" "$(stat -c '%U %a' /var/log/jitbox)" "jitbox 700"
expect_eq "starter policy owner and mode" "$(stat -c '%U:%G %a' /etc/jitbox/jitbox.toml)" \
    "root:root 644"
check "manifest lists the binary" grep -qxF "file $BIN" /etc/jitbox/setup-enforced.manifest
expect_exit 0 jb_raw setup enforced --group docker --prefix "$PREFIX"
expect_eq "second setup changes nothing" "$OUT" "unchanged"

for user in jbxalice jbxbob; do
    useradd -M -N -g users -s /usr/sbin/nologin "$user" || die "useradd $user failed"
    CREATED_USERS+=("$user")
done

# A file system mounted nosuid ignores the set-id bits, and the binary then runs in user mode.
run as_user jbxalice "$BIN" --version
if [[ $OUT == *"mode: user"* ]]; then
    skip_test "$PREFIX is on a file system that ignores set-id bits (nosuid); set TMPDIR elsewhere"
fi

# Enforced mode denies what guardrails leave unset, so these allow exactly the test image and
# set the ceilings that become the sandboxes' limits. The etcmount template's mount is valid
# only where the policy allows sensitive mounts, so that the guardrail is what denies it.
GUARDRAILS='[policy]
allow_sensitive_mounts = true

[guardrails]
images = ["busybox:1.36"]
max_memory = "64MiB"
max_cpus = 1
max_pids = 64
max_ttl = "2h"'

# A system file without roles allows nothing.
cat >/etc/jitbox/jitbox.toml <<TOML
$GUARDRAILS

[templates.tiny]
$(tiny_template_body)
TOML
expect_exit 6 as_user jbxalice "$BIN" up tiny
expect_contains "no roles: the denial says why" "$ERR" "defines no [[roles]]"
# The fake AWS on 127.0.0.1 for the aws-sts template. fake_aws_start also exports the base key
# as AWS_* variables in this shell, but as_user passes none of them on.
# shellcheck disable=SC2119 # the fake runs with its default options.
fake_aws_start
cat >/etc/jitbox/jitbox.toml <<TOML
$GUARDRAILS

[templates.tiny]
$(tiny_template_body)

[templates.privbox]
$(tiny_template_body)
privileged = true

[templates.hostnet]
$(tiny_template_body | sed '/^network = /d')
network = "host"

[templates.etcmount]
$(tiny_template_body)
mounts = [{ source = "/etc", target = "/x", allow_sensitive = true }]

[templates.otherimage]
$(tiny_template_body | sed 's/^image = .*/image = "alpine:3.19"/')

[templates.secretbox]
$(tiny_template_body)

[templates.secretbox.secrets]
TOKEN = {}

[templates.awsbox]
provider = "aws-sts"
role_arn = "$FAKE_AWS_ROLE_ARN"
endpoint_url = "$FAKE_AWS_URL"
region = "$AWS_REGION"
ttl = "30m"
max_ttl = "1h"
$(toml_labels)

[[roles]]
name = "test-users"
members = ["user:jbxalice", "user:jbxbob"]
templates = ["tiny", "secretbox", "privbox", "hostnet", "etcmount", "otherimage", "awsbox"]

# A role may name only templates of its own file, so templates that a signed project file adds
# are reached through "*", and the guardrails bound them.
[[roles]]
name = "project-users"
members = ["user:jbxalice"]
templates = ["*"]

[[roles]]
name = "operators"
members = ["user:root"]
templates = ["*"]
actions = ["status-all", "down-others"]
TOML
chmod 0644 /etc/jitbox/jitbox.toml

# --- the engine only through jitbox ---------------------------------------------------------------

expect_exit 0 as_user jbxalice "$BIN" --version
expect_contains "--version names enforced mode" "$OUT" "mode: enforced"
run as_user jbxalice docker ps
check "docker ps fails for a user outside the docker group" test "$RC" -ne 0
expect_contains "docker ps is refused on the socket" "$ERR" "permission denied"

expect_exit 0 as_user jbxalice "$BIN" up tiny --name alice-one
expect_eq "up prints the name" "$OUT" "alice-one"
expect_eq "the container carries the owner" \
    "$(dk ps -q --filter label=io.jitbox.owner=jbxalice --filter "label=$RUN_LABEL_KEY=$RUN_ID" | wc -l)" "1"
run jq -r 'select(.action == "up" and .sandbox == "alice-one") | .user' /var/log/jitbox/audit.log
expect_eq "the audit log records alice's up" "$OUT" "jbxalice"

run as_user jbxalice "$BIN" doctor --json
expect_eq "doctor names enforced mode" \
    "$(json "$OUT" '.findings[] | select(.check == "mode") | .details.mode')" "enforced"
expect_contains "doctor says why the Secret Service is skipped" \
    "$(json "$OUT" '.findings[] | select(.check == "keyring") | .message')" \
    "skips the Secret Service"

# --- the keyring, reached with the user's ids alone -----------------------------------------------

# A login session would have made /run/user/UID, where the file backend keeps its items when the
# kernel keyring is not usable.
install -d -m 0700 -o jbxalice -g users "/run/user/$(id -u jbxalice)"
RUNTIME_DIRS+=("/run/user/$(id -u jbxalice)")
expect_exit 0 as_user jbxalice "$BIN" up secretbox --name alice-secret
expect_exit 0 as_user jbxalice "$BIN" creds show alice-secret TOKEN --format json
expect_match "alice reads her generated secret" "$(json "$OUT" '.TOKEN')" '^[A-Za-z0-9]{32}$'
expect_exit 0 as_user jbxalice "$BIN" creds list --json
backend=$(json "$OUT" '.[] | select(.sandbox == "alice-secret") | .backend')
expect_match "the item is in the kernel keyring or the runtime file" "$backend" '^(kernel|file)$'
expect_eq "the record names the backend" \
    "$(jq -r .secret_backend /var/lib/jitbox/users/jbxalice/sandboxes/alice-secret.json)" "$backend"
expect_exit 0 as_user jbxalice "$BIN" env alice-secret
expect_contains "env prints the secret after dropping the set-id ids" "$OUT" "TOKEN="
run as_user jbxbob "$BIN" creds show alice-secret TOKEN --format json
check "bob cannot read alice's secret" test "$RC" -ne 0
expect_eq "bob gets no value" "$OUT" ""
expect_exit 0 as_user jbxalice "$BIN" down alice-secret
expect_exit 0 as_user jbxalice "$BIN" creds list --json
expect_eq "down removes alice's keyring items" \
    "$(json "$OUT" '[.[] | select(.sandbox == "alice-secret")] | length')" "0"

# --- the environment and the project file change nothing ------------------------------------------

mkdir -m 0755 "$TEST_DIR/elsewhere"
printf '[templates.tiny]\nimage = "busybox:1.36"\nprivileged = true\n' >"$TEST_DIR/elsewhere/jitbox.toml"
run as_user jbxalice JITBOX_CONFIG="$TEST_DIR/elsewhere/jitbox.toml" \
    DOCKER_HOST=unix:///nonexistent/docker.sock XDG_STATE_HOME="$TEST_DIR/elsewhere" \
    "$BIN" status --quiet
expect_eq "status ignores JITBOX_CONFIG, DOCKER_HOST and XDG_STATE_HOME" "$OUT" "alice-one"
expect_contains "the ignored variables are named" "$ERR" "DOCKER_HOST"
expect_contains "JITBOX_CONFIG is named" "$ERR" "JITBOX_CONFIG"
run as_user jbxalice "$BIN" --config "$TEST_DIR/elsewhere/jitbox.toml" status --quiet
expect_contains "--config is ignored" "$ERR" "ignores --config"

cat >"$WORK/jitbox.toml" <<TOML
[templates.extra]
$(tiny_template_body)
TOML
chmod 0644 "$WORK/jitbox.toml"
run as_user jbxalice "$BIN" up extra
check "an unsigned project template is not found" test "$RC" -ne 0
expect_contains "the unsigned project file is ignored" "$ERR" "ignores the project file"
rm -f "$WORK/jitbox.toml"

# --- a signed project file ------------------------------------------------------------------------

# root makes the key pair in a folder that only root can enter, and only the public key is trusted.
KEYS=$TEST_DIR/keys
install -d -m 0700 "$KEYS"
expect_exit 0 jb_raw policy keygen --out "$KEYS/project"
expect_eq "the private key belongs to root alone" "$(stat -c '%U %a' "$KEYS/project.key")" \
    "root 600"
run as_user jbxalice cat "$KEYS/project.key"
check "alice cannot read the private key" test "$RC" -ne 0
install -d -m 0755 /etc/jitbox/trusted-keys
install -m 0644 "$KEYS/project.pub" /etc/jitbox/trusted-keys/project.pub

# sign_project TOML: writes TOML as alice's project file in WORK and signs it as root.
sign_project() {
    printf '%s\n' "$1" >"$WORK/jitbox.toml"
    chown jbxalice:users "$WORK/jitbox.toml"
    chmod 0644 "$WORK/jitbox.toml"
    run jb_raw policy sign --key "$KEYS/project.key" "$WORK/jitbox.toml"
    [[ $RC -eq 0 ]] || die "policy sign of the project file failed: $ERR"
}

# alice_containers: counts the containers of this run that belong to alice.
alice_containers() {
    dk ps -aq --filter label=io.jitbox.owner=jbxalice --filter "label=$RUN_LABEL_KEY=$RUN_ID" | wc -l
}

sign_project "[templates.projbox]
$(tiny_template_body)"
expect_exit 0 as_user jbxalice "$BIN" up projbox --name alice-project
check "the signed project file draws no warning" test "${ERR/ignores the project file/}" == "$ERR"
run jq -r 'select(.action == "up" and .sandbox == "alice-project") | .template' \
    /var/log/jitbox/audit.log
expect_eq "the audit log records the project template" "$OUT" "projbox"
expect_exit 0 as_user jbxalice "$BIN" down alice-project

# A signature makes the file count, but the system policy still bounds what it may ask for.
containers_before=$(alice_containers)
sign_project "[templates.projlong]
$(tiny_template_body | sed 's/^max_ttl = .*/max_ttl = "48h"/')"
run as_user jbxalice "$BIN" up projlong --ttl 30h
expect_eq "a project max_ttl above the guardrail is denied" "$RC" "6"
expect_contains "the denial names the max_ttl guardrail" "$ERR" "guardrails.max_ttl"

sign_project "[templates.projimage]
$(tiny_template_body | sed 's/^image = .*/image = "alpine:3.19"/')"
run as_user jbxalice "$BIN" up projimage
expect_eq "a project image outside the guardrail is denied" "$RC" "6"
expect_contains "the denial names the images guardrail" "$ERR" "guardrails.images"

sign_project '[guardrails]
images = ["alpine:3.19"]

'"[templates.projimage]
$(tiny_template_body | sed 's/^image = .*/image = "alpine:3.19"/')"
run as_user jbxalice "$BIN" up projimage
expect_eq "a project file with guardrails is rejected" "$RC" "2"
expect_contains "the rejection says where guardrails belong" "$ERR" \
    "[guardrails] is read only from the system policy"
expect_eq "no container was created for a project template beyond the policy" \
    "$(alice_containers)" "$containers_before"

# An edit after signing makes the whole file count as unsigned.
sign_project "[templates.projbox]
$(tiny_template_body)"
printf '\n[templates.projlong]\n%s\n' "$(tiny_template_body)" >>"$WORK/jitbox.toml"
run as_user jbxalice "$BIN" up projbox --name alice-edited
check "a template of an edited project file is not used" test "$RC" -ne 0
expect_eq "the edited project file draws one warning" \
    "$(grep -c 'ignores the project file' <<<"$ERR")" "1"
expect_contains "the warning says the file changed" "$ERR" "changed since it was signed"
expect_eq "no container was created from the edited file" "$(alice_containers)" \
    "$containers_before"
rm -f "$WORK/jitbox.toml" "$WORK/jitbox.toml.sig"

# --- state, audit log and the background child ----------------------------------------------------

run as_user jbxalice ls /var/lib/jitbox
check "alice cannot list the state folder" test "$RC" -ne 0
run as_user jbxalice touch /var/lib/jitbox/users/jbxalice/sandboxes/forged.json
check "alice cannot write a state record" test "$RC" -ne 0
run as_user jbxalice rm -f /var/lib/jitbox/users/jbxalice/sandboxes/alice-one.json
check "alice cannot delete her state record" test -f /var/lib/jitbox/users/jbxalice/sandboxes/alice-one.json
run as_user jbxalice rm -f /var/log/jitbox/audit.log
check "alice cannot delete the audit log" test -f /var/log/jitbox/audit.log
run as_user jbxalice sh -c 'echo forged >>/var/log/jitbox/audit.log'
check "alice cannot append to the audit log" test "$RC" -ne 0
expect_exit 0 jb_raw audit verify /var/log/jitbox/audit.log

child=$(pgrep -u jitbox -f -- '__reap' | head -n 1)
check "the background child runs as the jitbox account" test -n "$child"
if [[ -n $child ]]; then
    expect_eq "the child's real uid is the account's" \
        "$(awk '/^Uid:/ {print $2}' "/proc/$child/status")" "$(id -u jitbox)"
    run as_user jbxalice kill -TERM "$child"
    check "alice cannot signal the background child" test "$RC" -ne 0
    check "the background child is still alive" kill -0 "$child"
fi

# --- the loader's secure mode ---------------------------------------------------------------------

if command -v cc >/dev/null 2>&1; then
    printf '#include <unistd.h>\n__attribute__((constructor)) static void loaded(void) {\n    write(2, "PRELOADED\\n", 10);\n}\n' \
        >"$WORK/preload.c"
    cc -shared -fPIC -o "$WORK/preload.so" "$WORK/preload.c" || die "cc preload.so failed"
    chmod 0755 "$WORK/preload.so"
    run as_user jbxalice LD_PRELOAD="$WORK/preload.so" /bin/true
    expect_contains "the preload library runs in an ordinary program" "$ERR" "PRELOADED"
    run as_user jbxalice LD_PRELOAD="$WORK/preload.so" "$BIN" --version
    check "LD_PRELOAD has no effect on the set-id binary" test "${ERR/PRELOADED/}" == "$ERR"
else
    skip "LD_PRELOAD has no effect" "no C compiler"
fi

# --- one user and another -------------------------------------------------------------------------

run as_user jbxbob "$BIN" status --quiet
expect_eq "bob does not see alice's sandbox" "$OUT" ""
expect_exit 0 as_user jbxbob "$BIN" audit --json
expect_eq "bob's audit shows none of alice's records" \
    "$(json "$OUT" '[.[] | select(.user == "jbxalice")] | length')" "0"
expect_exit 0 as_user root "$BIN" audit --json
check "root's audit shows alice's records" \
    test "$(json "$OUT" '[.[] | select(.user == "jbxalice")] | length')" -gt 0
expect_exit 4 as_user jbxbob "$BIN" down alice-one
expect_exit 6 as_user jbxbob "$BIN" down --user jbxalice alice-one
expect_exit 6 as_user jbxbob "$BIN" status --all-users
check "alice's container survives bob's down" container_exists \
    "$(dk ps -aq --filter label=io.jitbox.owner=jbxalice --filter "label=$RUN_LABEL_KEY=$RUN_ID")"
expect_exit 0 as_user jbxbob "$BIN" up tiny --name alice-one
expect_exit 0 as_user jbxbob "$BIN" status --quiet
expect_eq "bob sees only his own sandbox of the same name" "$OUT" "alice-one"
expect_exit 0 as_user jbxbob "$BIN" down alice-one
check "bob's down leaves alice's sandbox of the same name" container_exists \
    "$(dk ps -aq --filter label=io.jitbox.owner=jbxalice --filter "label=$RUN_LABEL_KEY=$RUN_ID")"

# A role with status-all and down-others reaches other users' sandboxes.
expect_exit 0 as_user jbxalice "$BIN" up tiny --name alice-two
expect_exit 0 as_user root "$BIN" status --all-users --json
expect_eq "status --all-users with the role shows alice's sandboxes" \
    "$(json "$OUT" '[.[] | select(.owner == "jbxalice")] | length')" "2"
expect_exit 0 as_user root "$BIN" down --user jbxalice alice-two
expect_exit 0 as_user root "$BIN" audit --json
expect_eq "the removal for another user is audited" \
    "$(json "$OUT" '[.[] | select(.action == "down-others" and .sandbox == "alice-two")] | length')" "1"
expect_eq "down --user removed only alice-two" \
    "$(dk ps -aq --filter label=io.jitbox.owner=jbxalice --filter "label=$RUN_LABEL_KEY=$RUN_ID" | wc -l)" "1"

# --- guardrails -----------------------------------------------------------------------------------

for template in privbox hostnet etcmount otherimage; do
    expect_exit 6 as_user jbxalice "$BIN" up "$template"
    expect_contains "$template is denied by a guardrail" "$ERR" "guardrails."
done
expect_eq "no container was created for a denied template" \
    "$(dk ps -aq --filter label=io.jitbox.owner=jbxalice --filter "label=$RUN_LABEL_KEY=$RUN_ID" | wc -l)" "1"
expect_exit 0 as_user root "$BIN" audit stats --json
check "audit stats counts the four attempted violations" \
    test "$(json "$OUT" '[.usage[] | select(.user == "jbxalice") | .attempted_violations] | add')" -ge 4

expect_exit 0 as_user jbxalice "$BIN" down alice-one
expect_eq "down removes alice's container" \
    "$(dk ps -aq --filter "label=$RUN_LABEL_KEY=$RUN_ID" | wc -l)" "0"
wait_until 10 bash -c '! pgrep -u jitbox -f -- __reap >/dev/null'
check "no background child is left" test -z "$(pgrep -u jitbox -f -- __reap)"

# --- aws-sts with the installation's base credentials ---------------------------------------------

# Only the jitbox account may read the base key that assumes the role.
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
    "$FAKE_AWS_ACCESS_KEY_ID" "$FAKE_AWS_SECRET_ACCESS_KEY" >/etc/jitbox/aws-credentials
chown jitbox /etc/jitbox/aws-credentials
chmod 0600 /etc/jitbox/aws-credentials
run as_user jbxalice cat /etc/jitbox/aws-credentials
check "alice cannot read the base credentials" test "$RC" -ne 0
expect_eq "alice gets none of the file" "$OUT" ""

# The user's AWS_* variables name a closed port and a made-up key, so up works only when
# enforced mode ignores them and takes the endpoint from the template and the key from
# /etc/jitbox/aws-credentials.
expect_exit 0 as_user jbxalice AWS_ENDPOINT_URL=http://127.0.0.1:9 \
    AWS_ACCESS_KEY_ID=AKIAJBXIGNOREDIGNORE AWS_SECRET_ACCESS_KEY=jbx-ignored-secret \
    AWS_SHARED_CREDENTIALS_FILE=/nonexistent "$BIN" up awsbox --name alice-aws
expect_eq "up of the sts template prints the name" "$OUT" "alice-aws"
expect_contains "the AWS variables are named as ignored" "$ERR" "AWS_ENDPOINT_URL"

expect_exit 0 as_user jbxalice "$BIN" exec alice-aws -- env
expect_match "exec passes a session token" "$OUT" $'(^|\n)AWS_SESSION_TOKEN=.'
expect_match "exec passes a session key id" "$OUT" $'(^|\n)AWS_ACCESS_KEY_ID=ASIA'
check "exec's env lacks the base key id" test "${OUT/"$FAKE_AWS_ACCESS_KEY_ID"/}" == "$OUT"
check "exec's env lacks the base secret" test "${OUT/"$FAKE_AWS_SECRET_ACCESS_KEY"/}" == "$OUT"
expect_exit 0 as_user jbxalice "$BIN" env alice-aws
expect_contains "env prints the session token" "$OUT" "AWS_SESSION_TOKEN"
check "env lacks the base secret" test "${OUT/"$FAKE_AWS_SECRET_ACCESS_KEY"/}" == "$OUT"
run grep -rlF -- "$FAKE_AWS_SECRET_ACCESS_KEY" /var/lib/jitbox /var/log/jitbox
expect_eq "the state and the audit log lack the base secret" "$OUT" ""
expect_exit 0 as_user jbxalice "$BIN" down alice-aws
fake_aws_stop

# --- undo -----------------------------------------------------------------------------------------

expect_exit 6 as_user jbxalice "$BIN" reap --all-users

# A sandbox whose background child is gone is removed by root's `reap --all-users`.
expect_exit 0 as_user jbxbob "$BIN" up tiny --name bob-short --ttl 3s
pkill -KILL -u jitbox -f -- '__reap.*bob-short' || true
sleep 4
expect_exit 0 as_user root "$BIN" reap --all-users
expect_contains "reap --all-users removes bob's expired sandbox" "$OUT" "bob-short"
expect_eq "bob's expired container is gone" \
    "$(dk ps -aq --filter label=io.jitbox.owner=jbxbob --filter "label=$RUN_LABEL_KEY=$RUN_ID" | wc -l)" "0"
# Undo removes only what setup made, so the test's own files go first.
rm -rf /etc/jitbox/jitbox.toml /etc/jitbox/trusted-keys /etc/jitbox/aws-credentials
expect_exit 0 jb_raw setup enforced --undo --purge
check "undo removes /etc/jitbox" test ! -e /etc/jitbox
check "undo removes the state folder" test ! -e /var/lib/jitbox
check "undo removes the audit folder" test ! -e /var/log/jitbox
check "undo removes the binary" test ! -e "$BIN"
run id jitbox
check "undo removes the account" test "$RC" -ne 0
# The cleanup removes what a failed undo left behind, so that the machine is as the test found it.
if [[ $RC -ne 0 && ! -e /etc/jitbox && ! -e /var/lib/jitbox && ! -e /var/log/jitbox ]]; then
    INSTALLED=0
fi
