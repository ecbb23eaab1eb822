#!/usr/bin/env bash
# Access policy against the real dockerd, as two users that the test creates. It checks a role
# that allows a group, the role's max_ttl, a deny rule with an exempt group, a user in no role
# and the audit records of the denials. Then it runs `policy explain`, `policy test` and
# `policy check`, and checks signed project files with a key in /etc/jitbox/trusted-keys.
#
# It needs root, because it creates users and groups (all named jbt-*) and removes them again in
# its EXIT trap, with the users' sandboxes. The signature checks need the real /etc/jitbox,
# because the binary reads it with no override. They run only when /etc/jitbox does not exist
# yet, and the test then creates it and removes it again.
# shellcheck disable=SC2016 # jq filters use $ literally.
# shellcheck disable=SC2119 # toml_labels without extra labels takes no arguments.

for tool in useradd userdel groupadd groupdel runuser; do
    if ((EUID != 0)) || ! command -v "$tool" >/dev/null 2>&1; then
        printf 'ok - test_policy # SKIP needs root and useradd, userdel, groupadd, groupdel and '
        printf 'runuser to create test users\n'
        exit 0
    fi
done

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# A suffix from the run id keeps the accounts of two runs of this test apart.
SUFFIX=${RUN_ID:0:6}
ALICE=jbt-alice-$SUFFIX
BOB=jbt-bob-$SUFFIX
DEV_GROUP=jbt-dev-$SUFFIX
SRE_GROUP=jbt-sre-$SUFFIX
CREATED_USERS=()
CREATED_GROUPS=()
CREATED_ETC_JITBOX=0

# Others need to reach the binary, the project file and their own state folders in TEST_DIR.
chmod 0755 "$TEST_DIR"
mkdir -m 0755 "$TEST_DIR/bin" "$TEST_DIR/project" "$TEST_DIR/users"
install -m 0755 "$JITBOX_BIN" "$TEST_DIR/bin/jitbox"
BIN=$TEST_DIR/bin/jitbox
PROJECT=$TEST_DIR/project/jitbox.toml

# --- users and cleanup ------------------------------------------------------------------------

user_state_dir() {
    printf '%s/users/%s/state' "$TEST_DIR" "$1"
}

user_audit_log() {
    printf '%s/jitbox/audit.log' "$(user_state_dir "$1")"
}

user_record() {
    printf '%s/jitbox/sandboxes/%s.json' "$(user_state_dir "$1")" "$2"
}

# as_user USER ARGS...: runs the test's copy of jitbox as USER with the configuration file
# AS_CONFIG (default: the project file), a HOME and state folder of the user's own and a clean
# environment, bounded in time.
as_user() {
    local user=$1 home
    shift
    home=$TEST_DIR/users/$user
    local environment=(PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$home" NO_COLOR=1
        XDG_STATE_HOME="$(user_state_dir "$user")")
    if [[ -n ${DOCKER_HOST:-} ]]; then
        environment+=(DOCKER_HOST="$DOCKER_HOST")
    fi
    (cd "$home" && timeout -k 5 "$JITBOX_TIMEOUT" runuser -u "$user" -- \
        env -i "${environment[@]}" "$BIN" --config "${AS_CONFIG:-$PROJECT}" "$@")
}

# add_user NAME GROUPS: an account without a home folder, primary group `users`, plus GROUPS.
add_user() {
    useradd -M -N -g users -G "$2" -s /usr/sbin/nologin "$1" || die "useradd $1 failed"
    CREATED_USERS+=("$1")
    mkdir -m 0700 "$TEST_DIR/users/$1" "$(user_state_dir "$1")"
    chown -R "$1:users" "$TEST_DIR/users/$1"
}

add_group() {
    groupadd "$1" || die "groupadd $1 failed"
    CREATED_GROUPS+=("$1")
}

remove_etc_jitbox() {
    if ((CREATED_ETC_JITBOX == 1)); then
        rm -rf /etc/jitbox
        CREATED_ETC_JITBOX=0
    fi
}

# Prints the pids of the processes that run as USER.
user_pids() {
    local uid
    uid=$(id -u "$1" 2>/dev/null) || return 0
    local proc
    for proc in /proc/[0-9]*; do
        if [[ $(stat -c %u "$proc" 2>/dev/null) == "$uid" ]]; then
            echo "${proc#/proc/}"
        fi
    done
}

no_user_process() {
    [[ -z $(user_pids "$1") ]]
}

# Removes the users' sandboxes, then the users and groups. It runs before lib.sh's own cleanup,
# which then finds any labelled container these steps left behind.
cleanup_policy() {
    local user pid
    # A trusted key would make the users' down reject the unsigned project file.
    remove_etc_jitbox
    for user in "${CREATED_USERS[@]}"; do
        run as_user "$user" down --all --ignore-missing
        if ((RC != 0)); then
            fail "cleanup: down --all as $user exits 0" "exit status: $RC"
            show_output
        fi
        # Each background child runs as its user, and userdel refuses a user with processes.
        if ! wait_until 10 no_user_process "$user"; then
            fail "cleanup: no process of $user is left" "pids: $(user_pids "$user" | xargs)"
            for pid in $(user_pids "$user"); do
                kill -KILL "$pid" 2>/dev/null
            done
        fi
        userdel "$user" || fail "cleanup: userdel $user"
    done
    for user in "${CREATED_GROUPS[@]}"; do
        groupdel "$user" || fail "cleanup: groupdel $user"
    done
}

policy_finish() {
    cleanup_policy
    finish
}
trap policy_finish EXIT

add_group "$DEV_GROUP"
add_group "$SRE_GROUP"
add_user "$ALICE" "$DEV_GROUP,docker"
add_user "$BOB" docker

# --- the project file -------------------------------------------------------------------------

template_body() {
    cat <<EOF
image = "busybox:1.36"
command = ["sleep", "infinity"]
network = "none"
$(toml_labels)
ttl = "30m"
max_ttl = "4h"
EOF
}

cat >"$PROJECT" <<EOF
[templates.db-main]
$(template_body)

[templates.prod-db]
$(template_body)

[[roles]]
name = "dev"
members = ["group:$DEV_GROUP"]
templates = ["db-*"]
max_ttl = "2h"

[[deny]]
name = "prod-only-sre"
templates = ["prod-*"]
unless_members = ["group:$SRE_GROUP"]
reason = "production sandboxes are for SRE only"
EOF
chmod 0644 "$PROJECT"

expect_exit 0 jb_raw --config "$PROJECT" --json policy check --strict
DIGEST=$(json "$OUT" '.policy_digest')
expect_match "policy check: the digest is 64 hex digits" "$DIGEST" '^[0-9a-f]{64}$'
expect_eq "policy check: one project layer" "$(json "$OUT" '[.layers[].kind] | join(" ")')" \
    project
expect_eq "policy check: templates" "$(json "$OUT" '.templates | join(" ")')" "db-main prod-db"
expect_eq "policy check: roles" "$(json "$OUT" '.roles')" 1
expect_eq "policy check: deny rules" "$(json "$OUT" '.deny_rules')" 1
expect_eq "policy check: no warnings" "$(json "$OUT" '.warnings | length')" 0

# --- allowed and denied up --------------------------------------------------------------------

# Prints the ids of this run's containers with the sandbox name NAME.
named_containers() {
    dk ps -aq --filter "label=$RUN_LABEL_KEY=$RUN_ID" --filter "label=io.jitbox.name=$1"
}

expect_exit 0 as_user "$ALICE" up db-main --ttl 1h --name alice-db
expect_eq "alice: up prints the name" "$OUT" alice-db
container=$(named_containers alice-db)
check "alice: the container of alice-db exists" test -n "$container"
expect_eq "alice: the container's owner label" \
    "$(container_field "$container" '{{index .Config.Labels "io.jitbox.owner"}}')" "$ALICE"
expect_eq "alice: the container is running" \
    "$(container_field "$container" '{{.State.Running}}')" true

# check_denied USER NAME NEEDLE...: checks that the last `run` printed one line that contains
# every NEEDLE, and that sandbox NAME of USER left no container and no record.
check_denied() {
    local user=$1 name=$2 needle
    shift 2
    expect_eq "$user $name: stderr is one line" "$(wc -l <"$TEST_DIR/last.err")" 1
    for needle in "$@"; do
        expect_contains "$user $name: the message names $needle" "$ERR" "$needle"
    done
    expect_eq "$user $name: no container" "$(named_containers "$name")" ""
    check "$user $name: no record" test ! -e "$(user_record "$user" "$name")"
}

# check_denied_audit USER NAME RULE: checks the `denied` audit line of NAME. RULE is a part of
# its `rule` field, or empty when no rule decided.
check_denied_audit() {
    local user=$1 name=$2 rule=$3 line
    line=$(jq -c --arg name "$name" 'select(.action == "up" and .sandbox == $name)' \
        "$(user_audit_log "$user")" 2>/dev/null)
    expect_eq "$user $name: one audit line" "$(grep -c . <<<"$line")" 1
    expect_eq "$user $name: audit result" "$(json "$line" '.result')" denied
    expect_eq "$user $name: audit user" "$(json "$line" '.user')" "$user"
    expect_eq "$user $name: audit policy_digest" "$(json "$line" '.policy_digest')" "$DIGEST"
    if [[ -n $rule ]]; then
        expect_contains "$user $name: audit rule" "$(json "$line" '.rule')" "$rule"
    else
        expect_eq "$user $name: no audit rule" "$(json "$line" '.rule // ""')" ""
    fi
}

expect_exit 6 as_user "$ALICE" up db-main --ttl 3h --name alice-long
check_denied "$ALICE" alice-long 2h "role dev"
check_denied_audit "$ALICE" alice-long "role dev"

expect_exit 6 as_user "$ALICE" up prod-db --name alice-prod
check_denied "$ALICE" alice-prod prod-only-sre "$SRE_GROUP"
check_denied_audit "$ALICE" alice-prod "deny rule prod-only-sre"

# No role names bob, so no rule decides, and the message names the roles that would allow it.
expect_exit 6 as_user "$BOB" up db-main --name bob-db
check_denied "$BOB" bob-db "no role" allows "$BOB" "role dev"
check_denied_audit "$BOB" bob-db ""

# alice-db was created with ttl 1h under a role max_ttl of 2h.
expect_exit 6 as_user "$ALICE" extend alice-db --by 2h
expect_contains "alice: the denied extend names the bound" "$ERR" 2h
expect_exit 0 as_user "$ALICE" extend alice-db --by 30m

# --- policy explain ---------------------------------------------------------------------------

explain() {
    jb_raw --config "$PROJECT" policy explain "$@"
}

expect_exit 0 explain db-main --as "$BOB"
expect_match "explain: bob is denied" "$OUT" '^decision +DENY'
expect_contains "explain: bob's message" "$OUT" "no role"
expect_exit 6 explain db-main --as "$BOB" --check
expect_exit 0 explain db-main --as "$ALICE" --ttl 1h --check
expect_match "explain: alice is allowed" "$OUT" '^decision +ALLOW'
expect_exit 0 jb_raw --config "$PROJECT" --json policy explain db-main --as "$ALICE" --ttl 3h
expect_eq "explain --json: decision" "$(json "$OUT" '.decision')" deny
expect_eq "explain --json: max_ttl" "$(json "$OUT" '.max_ttl')" 2h
expect_contains "explain --json: rule" "$(json "$OUT" '.rule')" "role dev"
expect_eq "explain --json: digest" "$(json "$OUT" '.policy_digest')" "$DIGEST"
check "explain --json: explanation lines" test "$(json "$OUT" '.explanation | length')" -ge 2
expect_exit 2 explain db-main --as "jbt-nosuch-$SUFFIX"

# --- policy test ------------------------------------------------------------------------------

cat >"$TEST_DIR/cases.toml" <<EOF
config = "project/jitbox.toml"

[[cases]]
name = "alice, a real account, may start db-main"
user = "$ALICE"
template = "db-main"
ttl = "1h"
expect = "allow"
expect_ttl = "1h"
expect_rule = "role dev"

[[cases]]
name = "dev without an account gets the default ttl"
user = "carol"
groups = ["$DEV_GROUP"]
template = "db-main"
expect = "allow"
expect_ttl = "30m"

[[cases]]
name = "sre is exempt from the deny rule but in no role"
user = "dave"
groups = ["$SRE_GROUP"]
template = "prod-db"
expect = "deny"

[[cases]]
name = "dev may not start prod-db"
user = "carol"
groups = ["$DEV_GROUP"]
template = "prod-db"
expect = "deny"
expect_rule = "prod-only-sre"
EOF

expect_exit 0 jb_raw policy test "$TEST_DIR/cases.toml"
expect_eq "policy test: summary line" "$(tail -n 1 "$TEST_DIR/last.out")" "4 passed, 0 failed"
expect_eq "policy test: one ok line per case" "$(grep -c '^ok - ' "$TEST_DIR/last.out")" 4

sed 's/expect_ttl = "30m"/expect_ttl = "45m"/' "$TEST_DIR/cases.toml" >"$TEST_DIR/wrong.toml"
expect_exit 8 jb_raw policy test "$TEST_DIR/wrong.toml"
expect_contains "policy test: the mismatch is reported" "$OUT" \
    "not ok - dev without an account gets the default ttl: expected allow with ttl 45m, got allow with ttl 30m"
expect_eq "policy test: summary after a mismatch" "$(grep -E '^[0-9]+ passed' <<<"$OUT")" \
    "3 passed, 1 failed"

printf '[[cases]]\nname = "x"\nuser = "carol"\nexpct = "allow"\n' >"$TEST_DIR/typo.toml"
expect_exit 2 jb_raw policy test "$TEST_DIR/typo.toml"
expect_contains "policy test: an unknown key names its position" "$ERR" \
    "typo.toml:4:1: cases[0].expct: unknown key"

# --- policy check warnings --------------------------------------------------------------------

sed "s/group:$DEV_GROUP/group:jbt-nosuch-$SUFFIX/" "$PROJECT" >"$TEST_DIR/unknown-group.toml"
expect_exit 0 jb_raw policy check "$TEST_DIR/unknown-group.toml"
expect_match "policy check: a missing group is a warning with its position" "$ERR" \
    "jitbox: warning: $TEST_DIR/unknown-group.toml:[0-9]+:1: role dev: members: group \"jbt-nosuch-$SUFFIX\" does not exist"
expect_exit 8 jb_raw policy check --strict "$TEST_DIR/unknown-group.toml"

# --- signed project files ---------------------------------------------------------------------

# check_nothing_new USER NAME: no container and no record for a refused up of NAME.
check_nothing_new() {
    expect_eq "$1 $2: no container" "$(named_containers "$2")" ""
    check "$1 $2: no record" test ! -e "$(user_record "$1" "$2")"
}

signature_checks() {
    mkdir -m 0755 "$TEST_DIR/keys"
    expect_exit 0 jb_raw --json policy keygen --out "$TEST_DIR/keys/team"
    local fingerprint
    fingerprint=$(json "$OUT" '.fingerprint')
    expect_match "keygen: fingerprint is 16 hex digits" "$fingerprint" '^[0-9a-f]{16}$'
    expect_eq "keygen: the private key is 0600" "$(stat -c %a "$TEST_DIR/keys/team.key")" 600

    expect_exit 0 jb_raw policy sign --key "$TEST_DIR/keys/team.key" "$PROJECT"
    expect_eq "sign: prints the signature path" "$OUT" "$PROJECT.sig"
    cp "$PROJECT" "$TEST_DIR/project/tampered.toml"
    cp "$PROJECT.sig" "$TEST_DIR/project/tampered.toml.sig"
    sed -i 's/ttl = "30m"/ttl = "31m"/' "$TEST_DIR/project/tampered.toml"
    cp "$PROJECT" "$TEST_DIR/project/unsigned.toml"
    chmod 0644 "$TEST_DIR"/project/*

    expect_exit 0 jb_raw policy verify "$PROJECT" --keys "$TEST_DIR/keys"
    expect_eq "verify: prints the fingerprint" "$OUT" "$fingerprint"
    expect_exit 6 jb_raw policy verify "$TEST_DIR/project/tampered.toml" --keys "$TEST_DIR/keys"

    # From here until remove_etc_jitbox, every jitbox on this machine needs signed project files.
    install -d -m 0755 /etc/jitbox/trusted-keys
    install -m 0644 "$TEST_DIR/keys/team.pub" /etc/jitbox/trusted-keys/team.pub

    expect_exit 0 as_user "$ALICE" up db-main --ttl 10m --name alice-signed
    expect_exit 0 as_user "$ALICE" down alice-signed
    expect_exit 0 jb_raw policy verify "$PROJECT"
    expect_exit 6 jb_raw policy verify "$TEST_DIR/project/tampered.toml"

    local file
    for file in tampered unsigned; do
        AS_CONFIG=$TEST_DIR/project/$file.toml expect_exit 6 as_user "$ALICE" up db-main \
            --name "alice-$file"
        expect_eq "$file: stderr is one line" "$(wc -l <"$TEST_DIR/last.err")" 1
        expect_contains "$file: the message names the file" "$ERR" "$TEST_DIR/project/$file.toml"
        expect_contains "$file: the message names the signature" "$ERR" signature
        check_nothing_new "$ALICE" "alice-$file"
    done
    remove_etc_jitbox
}

if mkdir -m 0755 /etc/jitbox 2>/dev/null; then
    CREATED_ETC_JITBOX=1
    signature_checks
else
    skip "signed project files" "/etc/jitbox exists, and the test changes it only when it made it"
fi

# --- the end: every sandbox of the users is removed -------------------------------------------

expect_exit 0 as_user "$ALICE" down --all
check "alice: down --all removes alice-db" test -z "$(named_containers alice-db)"
check "alice: no background child is left" wait_until 10 no_user_process "$ALICE"
