#!/usr/bin/env bash
# Generated secrets end to end, against the real dockerd, for each keyring backend: a real
# gnome-keyring-daemon on a private bus, JITBOX_KEYRING=kernel, JITBOX_KEYRING=file, and no
# D-Bus at all. For each: `up` of a template with a generated POSTGRES_PASSWORD, the value in
# the container's environment equals `creds show`, `creds list` shows no value, and `down`
# removes the items. Then `creds clear --all`, a named backend that does not work (nothing is
# created), and a locked collection (exit 7 within 2 s, and `down` still works).
#
# Every value is written to VALUES_FILE, and the last checks search for each in the output of
# every other command, the audit log, the state folder and the command lines of all processes,
# which a watcher samples during the run. No check puts a value in an argv: grep reads them
# with -f from the file.
# shellcheck disable=SC2016 # jq filters use $ literally.
# shellcheck source-path=SCRIPTDIR source=lib.sh

source "$(dirname "${BASH_SOURCE[0]}")/keyring_lib.sh"
run_on_private_bus "$@"

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Upper bound for a command against a locked collection, in milliseconds.
LOCKED_LIMIT_MS=2000
KEYRING_DAEMON_PID=""
SECRET_VALUE=""

export HOME=$TEST_DIR/home
export XDG_DATA_HOME=$HOME/.local/share XDG_CONFIG_HOME=$HOME/.config XDG_CACHE_HOME=$HOME/.cache
export XDG_RUNTIME_DIR=$TEST_DIR/runtime
mkdir -m 0700 "$HOME" "$XDG_RUNTIME_DIR"
unset JITBOX_KEYRING GNOME_KEYRING_CONTROL

# Called by the cleanup once the sandboxes are gone, so that the keyring daemon outlives their
# removal. It removes kernel keys that are left over, found by the sandbox ids of the audit log.
remove_creds_leftovers() {
    local keys=()
    mapfile -t keys < <(kernel_keys_of_sandboxes)
    remove_kernel_keys "${keys[@]}"
    stop_keyring_daemon
    rm -rf "$bus_dir"
}
on_cleanup remove_creds_leftovers

# --- helpers --------------------------------------------------------------------------------------

# timed CMD...: runs CMD like `run` and stores its wall-clock time in ELAPSED_MS.
timed() {
    local start end
    start=$(date +%s%N)
    run "$@"
    end=$(date +%s%N)
    ELAPSED_MS=$(((end - start) / 1000000))
}

# container_env NAME VARIABLE: the variable's value in the running container of sandbox NAME.
container_env() {
    local id line
    id=$(dk ps -q --filter "label=io.jitbox.name=$1" --filter "label=$RUN_LABEL_KEY=$RUN_ID")
    while IFS= read -r line; do
        if [[ $line == "$2="* ]]; then
            printf '%s' "${line#*=}"
        fi
    done < <(dk exec "$id" env)
}

# without_bus CMD...: runs CMD with no session bus address. No subshell, so the checks in CMD
# count.
without_bus() {
    local saved=$DBUS_SESSION_BUS_ADDRESS status=0
    unset DBUS_SESSION_BUS_ADDRESS
    "$@" || status=$?
    export DBUS_SESSION_BUS_ADDRESS=$saved
    return "$status"
}

cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.db]
image = "busybox:1.36"
command = ["sleep", "infinity"]
env = { POSTGRES_USER = "app" }
$(toml_labels)
ttl = "10m"
max_ttl = "1h"

[templates.db.secrets]
POSTGRES_PASSWORD = {}

[templates.plain]
image = "busybox:1.36"
command = ["sleep", "infinity"]
$(toml_labels)
EOF

# exercise_backend LABEL BACKEND_REGEX: the whole round trip of one sandbox, named
# LABEL-RUN_ID, whose items must land in a backend that matches BACKEND_REGEX.
exercise_backend() {
    local name=$1-$RUN_ID backend_regex=$2 backend value eval_value
    logged 0 jb up db --name "$name" || return 1

    expect_exit 0 jb creds show "$name" POSTGRES_PASSWORD --format json
    value=$(json "$OUT" '.POSTGRES_PASSWORD')
    printf '%s\n' "$value" >>"$VALUES_FILE"
    expect_match "$1: the value is 32 letters and digits" "$value" '^[A-Za-z0-9]{32}$'
    check "$1: the container has the value in its environment" \
        test "$(container_env "$name" POSTGRES_PASSWORD)" == "$value"
    expect_eq "$1: the template's own env is kept" "$(container_env "$name" POSTGRES_USER)" app

    expect_exit 0 jb creds show "$name"
    eval_value=$(eval "$OUT" && printf '%s' "${POSTGRES_PASSWORD:-}")
    check "$1: creds show in env format evaluates to the value" test "$eval_value" == "$value"

    logged 0 jb creds list --json
    backend=$(json "$OUT" ".[] | select(.sandbox == \"$name\") | .backend")
    expect_match "$1: creds list names the backend" "$backend" "$backend_regex"
    expect_eq "$1: creds list shows the key" \
        "$(json "$OUT" ".[] | select(.sandbox == \"$name\") | .key")" POSTGRES_PASSWORD
    expect_eq "$1: the record names the backend" \
        "$(jq -r .secret_backend "$(record_path "$name")")" "$backend"
    logged 0 jb creds list
    logged 0 jb status
    logged 0 jb status --json
    logged 0 jb -v extend "$name" --by 5m
    expect_exit 0 jb creds list --json
    expect_match "$1: extend renews the item's expiry" \
        "$(json "$OUT" ".[] | select(.sandbox == \"$name\") | .expires_at")" \
        "^$(jq -r .expires_at "$(record_path "$name")" | cut -c1-16)"

    logged 0 jb -v down "$name"
    expect_exit 4 jb creds show "$name"
    logged 0 jb creds list --json
    expect_eq "$1: down removed the items" \
        "$(json "$OUT" "[.[] | select(.sandbox == \"$name\")] | length")" 0
}

start_secret_watch

# --- a template without secrets needs no keyring --------------------------------------------------

JITBOX_KEYRING=secret-service without_bus logged 0 jb up plain --name "plain-$RUN_ID"
expect_eq "a sandbox without secrets records no backend" \
    "$(jq -r .secret_backend "$(record_path "plain-$RUN_ID")")" ""
expect_exit 4 jb creds show "plain-$RUN_ID"
expect_contains "creds show says the template generates no secrets" "$ERR" "generates no secrets"
logged 0 jb down "plain-$RUN_ID"

# --- a named backend that does not work -----------------------------------------------------------

JITBOX_KEYRING=secret-service without_bus run jb up db --name "broken-$RUN_ID"
expect_eq "up with a broken named backend exits 2" "$RC" 2
expect_contains "the error says nothing was created" "$ERR" "nothing was created"
expect_contains "the error names the backend" "$ERR" 'secret store "secret-service"'
check "no record is left" test ! -e "$(record_path "broken-$RUN_ID")"
expect_eq "no container is left" "$(run_containers)" ""

# --- secret-service -------------------------------------------------------------------------------

if ! start_keyring_daemon --unlock; then
    die "gnome-keyring-daemon provided no default collection within 10 s (see keyring-daemon.log)"
fi
exercise_backend ss '^secret-service$'

# --- kernel, file, and no D-Bus at all ------------------------------------------------------------

if ! keyctl rdescribe @u >/dev/null 2>&1; then
    skip "kernel backend" "the kernel refuses keyctl here"
else
    JITBOX_KEYRING=kernel exercise_backend kernel '^kernel$'
fi
JITBOX_KEYRING=file exercise_backend file '^file$'
without_bus exercise_backend nobus '^(kernel|file)$'

# --- creds clear ----------------------------------------------------------------------------------

export JITBOX_KEYRING=file
logged 0 jb up db --name "clear-$RUN_ID"
expect_exit 0 jb creds show "clear-$RUN_ID" --format json
json "$OUT" '.POSTGRES_PASSWORD' >>"$VALUES_FILE"
logged 0 jb creds clear --all
expect_exit 4 jb creds show "clear-$RUN_ID"
expect_exit 4 jb creds clear "clear-$RUN_ID"
logged 0 jb down "clear-$RUN_ID"
unset JITBOX_KEYRING

# --- a locked collection --------------------------------------------------------------------------

logged 0 jb up db --name "locked-$RUN_ID"
expect_eq "the locked test's items are in secret-service" \
    "$(jq -r .secret_backend "$(record_path "locked-$RUN_ID")")" secret-service
expect_exit 0 jb creds show "locked-$RUN_ID" --format json
json "$OUT" '.POSTGRES_PASSWORD' >>"$VALUES_FILE"
stop_keyring_daemon
# A restart without --unlock leaves the login collection, and the item in it, locked.
if ! start_keyring_daemon; then
    die "gnome-keyring-daemon did not come back within 10 s (see keyring-daemon.log)"
fi
for command in "creds show locked-$RUN_ID" "creds list" "creds clear locked-$RUN_ID"; do
    # shellcheck disable=SC2086 # the command's words are split on purpose.
    timed jb $command </dev/null
    cat "$TEST_DIR/last.out" "$TEST_DIR/last.err" >>"$OUTPUT_LOG"
    printf '# %s took %d ms\n' "$command" "$ELAPSED_MS"
    expect_eq "$command in a locked collection exits 7" "$RC" 7
    expect_contains "the $command error says locked" "$ERR" "locked"
    expect_contains "the $command error says how to unlock" "$ERR" "nlock"
    check "$command answers within ${LOCKED_LIMIT_MS} ms" test "$ELAPSED_MS" -lt "$LOCKED_LIMIT_MS"
done
logged 0 jb down "locked-$RUN_ID"
expect_contains "down warns that the locked items stay" "$ERR" "warning: removing the credentials"
stop_keyring_daemon

# --- no value anywhere it must not be -------------------------------------------------------------

stop_secret_watch
expect_eq "every value was collected" "$(grep -c '^[A-Za-z0-9]\{32\}$' "$VALUES_FILE")" \
    "$(wc -l <"$VALUES_FILE")"
check "the command lines were sampled" test -s "$CMDLINE_LOG"
check "no value in the output of other commands" lacks_values "$OUTPUT_LOG"
check "no value in the audit log" lacks_values "$AUDIT_LOG"
check "no value in the state folder" lacks_values "$STATE_DIR"
check "no value in any process's command line" lacks_values "$CMDLINE_LOG"
