#!/usr/bin/env bash
# The secret store backends, driven through jitbox_secret_probe (tests/secret_probe.cpp):
#   - secret-service against a gnome-keyring-daemon of the test's own: store, look up, replace,
#     expire and clear, then a locked collection with stdin not a terminal,
#   - the fall-back of `auto` without D-Bus and with a bus socket that accepts but never
#     replies, each within 2 s, and no bus started by GIO's autolaunch,
#   - the kernel user keyring (skipped when the kernel refuses keyctl),
#   - the file store's folder and file modes,
#   - no secret value in the probe's stderr or argv.
#
# The script runs itself again under dbus-run-session with a bus configuration that has no
# service activation, so nothing starts on that bus but what the test starts, and the daemons
# use HOME and XDG_RUNTIME_DIR inside the test dir. Items belong to the sandbox id RUN_ID plus
# four hex digits, so kernel keys are named jitbox:SANDBOX_ID:KEY, and the EXIT trap removes
# them and stops the daemons.
# shellcheck source-path=SCRIPTDIR source=lib.sh

source "$(dirname "${BASH_SOURCE[0]}")/keyring_lib.sh"
run_on_private_bus "$@"

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROBE=${JITBOX_SECRET_PROBE:-$(dirname "$JITBOX_BIN")/jitbox_secret_probe}
if [[ ! -x $PROBE ]]; then
    die "JITBOX_SECRET_PROBE=$PROBE is not an executable file. Build the tests first"
fi

# Upper bound for every fall-back and locked lookup, in milliseconds.
FALLBACK_LIMIT_MS=2000
# 16 hex digits, like the ids jitbox gives its sandboxes.
SANDBOX_ID=${RUN_ID}5eed
PROBE_STDERR_LOG=$TEST_DIR/probe-stderr.log
KEYRING_DAEMON_PID=""
ELAPSED_MS=0

VALUE_FIRST="s3cr3t-$RUN_ID-first"
VALUE_SECOND="s3cr3t-$RUN_ID-second"
VALUE_SHORT="s3cr3t-$RUN_ID-short"
VALUE_LOCKED="s3cr3t-$RUN_ID-locked"
VALUE_KERNEL="s3cr3t-$RUN_ID-kernel"
VALUE_FILE="s3cr3t-$RUN_ID-file"
VALUE_ARGV="s3cr3t-$RUN_ID-argv"
ALL_VALUES=("$VALUE_FIRST" "$VALUE_SECOND" "$VALUE_SHORT" "$VALUE_LOCKED" "$VALUE_KERNEL"
    "$VALUE_FILE" "$VALUE_ARGV")

export HOME=$TEST_DIR/home
export XDG_DATA_HOME=$HOME/.local/share XDG_CONFIG_HOME=$HOME/.config XDG_CACHE_HOME=$HOME/.cache
export XDG_RUNTIME_DIR=$TEST_DIR/runtime
mkdir -m 0700 "$HOME" "$XDG_RUNTIME_DIR"
unset JITBOX_KEYRING GNOME_KEYRING_CONTROL

# GIO's autolaunch runs dbus-launch from PATH when DISPLAY is set. This one leaves a mark, so
# the checks below can tell that no bus was started.
mkdir -p "$TEST_DIR/bin"
cat >"$TEST_DIR/bin/dbus-launch" <<EOF
#!/bin/sh
touch "$TEST_DIR/autolaunch-ran"
exit 1
EOF
chmod +x "$TEST_DIR/bin/dbus-launch"

# --- cleanup --------------------------------------------------------------------------------------

# Prints the ids of the kernel keys of this run, which live in the user keyring.
run_kernel_keys() {
    local id
    for id in $(keyctl rlist @u 2>/dev/null); do
        if keyctl rdescribe "$id" 2>/dev/null | grep -q ";jitbox:$SANDBOX_ID:"; then
            echo "$id"
        fi
    done
}

keyring_cleanup() {
    local id
    for id in $(run_kernel_keys); do
        keyctl invalidate "$id" >/dev/null 2>&1 || keyctl unlink "$id" @u >/dev/null 2>&1
    done
    stop_keyring_daemon
    rm -rf "$bus_dir"
}

trap 'keyring_cleanup; finish' EXIT

# --- helpers --------------------------------------------------------------------------------------

# probe ARGS...: runs jitbox_secret_probe, bounded in time. Its stderr also goes to
# PROBE_STDERR_LOG, which the last checks search for secret values.
probe() {
    local status=0
    timeout -k 2 20 "$PROBE" "$@" 2>"$TEST_DIR/probe.err" || status=$?
    tee -a "$PROBE_STDERR_LOG" <"$TEST_DIR/probe.err" >&2
    return "$status"
}

# probe_put VARIABLE ARGS...: runs `probe put ARGS...` with the value of VARIABLE on stdin. The
# caller names the variable, so check names never show a value.
probe_put() {
    local value=${!1}
    shift
    printf '%s\n' "$value" | probe put "$@"
}

# without_bus CMD...: runs CMD with no DBUS_SESSION_BUS_ADDRESS, and with DISPLAY set and the
# marking dbus-launch first in PATH, so an autolaunch would leave its mark.
# shellcheck disable=SC2030 # the subshell keeps these changes from the rest of the test.
without_bus() {
    (
        unset DBUS_SESSION_BUS_ADDRESS
        export DISPLAY=:99 PATH=$TEST_DIR/bin:$PATH
        "$@"
    )
}

# on_bus ADDRESS CMD...: runs CMD with DBUS_SESSION_BUS_ADDRESS=ADDRESS, DISPLAY and the marking
# dbus-launch.
# shellcheck disable=SC2031 # PATH here is the test's own, which without_bus does not change.
on_bus() {
    DBUS_SESSION_BUS_ADDRESS=$1 DISPLAY=:99 PATH=$TEST_DIR/bin:$PATH "${@:2}"
}

# timed CMD...: runs CMD like `run` and stores its wall-clock time in ELAPSED_MS.
timed() {
    local start end
    start=$(date +%s%N)
    run "$@"
    end=$(date +%s%N)
    ELAPSED_MS=$(((end - start) / 1000000))
}

# expect_fast NAME: checks that the last `timed` command took less than FALLBACK_LIMIT_MS, and
# prints the time as a comment line.
expect_fast() {
    printf '# %s took %d ms\n' "$1" "$ELAPSED_MS"
    if ((ELAPSED_MS < FALLBACK_LIMIT_MS)); then
        pass "$1 within ${FALLBACK_LIMIT_MS} ms"
        return 0
    fi
    fail "$1 within ${FALLBACK_LIMIT_MS} ms" "took ${ELAPSED_MS} ms"
}

# Prints the object paths of the Secret Service items of this run with key KEY.
service_items() {
    dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
        org.freedesktop.Secret.Service.SearchItems \
        "dict:string:string:xdg:schema,io.jitbox.Secret,sandbox,$SANDBOX_ID,key,$1" 2>/dev/null |
        grep -o 'object path "[^"]*"' | cut -d'"' -f2
}

# file_lacks TEXT FILE: true when FILE does not contain TEXT.
file_lacks() {
    ! grep -qF -- "$1" "$2"
}

no_autolaunch() {
    [[ ! -e $TEST_DIR/autolaunch-ran ]]
}

# --- no D-Bus at all ------------------------------------------------------------------------------

timed without_bus probe choose
expect_eq "choose without D-Bus exits 0" "$RC" 0
expect_match "choose without D-Bus falls back to kernel or file" "${OUT%%$'\n'*}" '^(kernel|file)$'
expect_contains "the reason names the missing bus" "$OUT" "DBUS_SESSION_BUS_ADDRESS is unset"
expect_fast "fall-back without D-Bus"

JITBOX_KEYRING=secret-service timed without_bus probe choose
expect_eq "secret-service named without D-Bus exits 2" "$RC" 2
expect_contains "the error names the missing bus" "$ERR" "DBUS_SESSION_BUS_ADDRESS is unset"
expect_contains "the error says no fall-back happened" "$ERR" 'secret store "secret-service"'
expect_fast "error for secret-service without D-Bus"
check "no bus was autolaunched" no_autolaunch

# --- a bus socket that accepts but never replies --------------------------------------------------

silent_socket=$TEST_DIR/silent.sock
python3 -c '
import socket, sys
listener = socket.socket(socket.AF_UNIX)
listener.bind(sys.argv[1])
listener.listen(16)
connections = []
while True:
    connection, _ = listener.accept()
    connections.append(connection)  # kept open, never replied to
' "$silent_socket" &
track_pid $!
check "the silent listener is up" wait_until 5 test -S "$silent_socket"

timed on_bus "unix:path=$silent_socket" probe choose
expect_eq "choose with a silent bus exits 0" "$RC" 0
expect_match "choose with a silent bus falls back" "${OUT%%$'\n'*}" '^(kernel|file)$'
expect_contains "the reason says the bus timed out" "$OUT" "timed out"
expect_fast "fall-back from a silent bus"

JITBOX_KEYRING=secret-service timed on_bus "unix:path=$silent_socket" probe get "$SANDBOX_ID" KEY
expect_eq "secret-service named with a silent bus exits 2" "$RC" 2
expect_contains "the error says the bus timed out" "$ERR" "timed out"
expect_fast "error for secret-service on a silent bus"
check "no bus was autolaunched for the silent bus" no_autolaunch

# --- secret-service, unlocked ---------------------------------------------------------------------

if ! start_keyring_daemon --unlock; then
    die "gnome-keyring-daemon provided no default collection within 10 s (see keyring-daemon.log)"
fi
login_collection=$(default_collection)

expect_exit 0 probe choose
expect_eq "auto chooses secret-service when it works" "${OUT%%$'\n'*}" secret-service

expect_exit 0 probe_put VALUE_FIRST "$SANDBOX_ID" PASSWORD 1h
expect_exit 0 probe get "$SANDBOX_ID" PASSWORD
expect_eq "get finds the stored value" "$OUT" "found"$'\n'"$VALUE_FIRST"

mapfile -t items < <(service_items PASSWORD)
expect_eq "one item of schema io.jitbox.Secret exists" "${#items[@]}" 1
expect_match "the item is in the default collection" "${items[0]:-}" "^$login_collection/"

expect_exit 0 probe_put VALUE_SECOND "$SANDBOX_ID" PASSWORD 2h
expect_exit 0 probe get "$SANDBOX_ID" PASSWORD
expect_eq "get finds the replaced value" "$OUT" "found"$'\n'"$VALUE_SECOND"
mapfile -t items < <(service_items PASSWORD)
expect_eq "put replaced the item instead of adding one" "${#items[@]}" 1

expect_exit 0 probe_put VALUE_SHORT "$SANDBOX_ID" SHORT 2s
expect_exit 0 probe list
expect_contains "list shows PASSWORD" "$OUT" "$SANDBOX_ID PASSWORD "
expect_contains "list shows SHORT" "$OUT" "$SANDBOX_ID SHORT "
expect_match "list shows RFC 3339 expiry times" "${OUT%%$'\n'*}" " [0-9T:-]+Z$"
sleep 3
expect_exit 0 probe get "$SANDBOX_ID" SHORT
expect_eq "get does not return an expired value" "$OUT" "not_found"
expect_exit 0 probe list
check "list hides the expired item" test "${OUT/"$SANDBOX_ID SHORT "/}" == "$OUT"
expect_exit 0 probe purge
expect_eq "purge removes the expired item" "$OUT" 1
mapfile -t items < <(service_items SHORT)
expect_eq "no SHORT item is left in the keyring" "${#items[@]}" 0

expect_exit 0 probe remove "$SANDBOX_ID" PASSWORD
expect_eq "remove reports removed" "$OUT" removed
expect_exit 0 probe get "$SANDBOX_ID" PASSWORD
expect_eq "get after remove finds nothing" "$OUT" "not_found"
expect_exit 0 probe remove "$SANDBOX_ID" PASSWORD
expect_eq "remove of a missing item reports absent" "$OUT" absent

expect_exit 0 probe_put VALUE_FIRST "$SANDBOX_ID" A 1h
expect_exit 0 probe_put VALUE_SECOND "$SANDBOX_ID" B 1h
expect_exit 0 probe remove-sandbox "$SANDBOX_ID"
expect_eq "remove-sandbox removes both items" "$OUT" 2

# --- secret-service, locked -----------------------------------------------------------------------

expect_exit 0 probe_put VALUE_LOCKED "$SANDBOX_ID" LOCKED 1h
stop_keyring_daemon
# A restart without --unlock leaves the login collection, and the item in it, locked.
if ! start_keyring_daemon; then
    die "gnome-keyring-daemon did not come back within 10 s (see keyring-daemon.log)"
fi

JITBOX_KEYRING=secret-service timed probe get "$SANDBOX_ID" LOCKED </dev/null
expect_eq "get in a locked collection exits 0" "$RC" 0
expect_eq "get of a locked item reports locked" "$OUT" locked
expect_fast "locked lookup"

JITBOX_KEYRING=secret-service timed probe get "$SANDBOX_ID" MISSING </dev/null
expect_eq "get of an unknown key in a locked collection reports locked" "$OUT" locked
expect_fast "locked lookup of an unknown key"

JITBOX_KEYRING=secret-service timed probe_put VALUE_FIRST "$SANDBOX_ID" NEW 1h
expect_eq "put into a locked collection exits 1" "$RC" 1
expect_contains "the put error says locked" "$ERR" "locked"
expect_fast "put into a locked collection"

for command in list "remove $SANDBOX_ID LOCKED" "remove-sandbox $SANDBOX_ID" purge; do
    # shellcheck disable=SC2086 # the command's words are split on purpose.
    JITBOX_KEYRING=secret-service timed probe $command </dev/null
    expect_eq "$command in a locked collection exits 1" "$RC" 1
    expect_contains "the $command error says locked" "$ERR" "collection is locked"
    expect_fast "$command in a locked collection"
done

timed probe choose </dev/null
expect_match "auto skips the locked collection" "${OUT%%$'\n'*}" '^(kernel|file)$'
expect_contains "the reason says locked" "$OUT" "locked"
expect_fast "fall-back from a locked collection"
stop_keyring_daemon

# --- kernel keyring -------------------------------------------------------------------------------

if ! keyctl rdescribe @u >/dev/null 2>&1; then
    skip "kernel keyring" "the kernel refuses keyctl here"
else
    export JITBOX_KEYRING=kernel
    expect_exit 0 probe_put VALUE_KERNEL "$SANDBOX_ID" TOKEN 10m
    expect_exit 0 probe get "$SANDBOX_ID" TOKEN
    expect_eq "kernel get finds the value" "$OUT" "found"$'\n'"$VALUE_KERNEL"
    key_id=$(keyctl search @u user "jitbox:$SANDBOX_ID:TOKEN" 2>/dev/null)
    expect_match "the key is named jitbox:SANDBOX_ID:KEY in the user keyring" "$key_id" '^[0-9]+$'
    expect_eq "the cleanup finds the key of this run" "$(run_kernel_keys)" "$key_id"
    expect_contains "the key is readable by its owner only" \
        "$(keyctl rdescribe "$key_id" 2>&1)" ";3f3f0000;"
    key_timeout=$(awk -v id="$(printf '%08x' "$key_id")" '$1 == id { print $4 }' /proc/keys)
    expect_match "the key has a kernel timeout" "$key_timeout" '^[0-9]+[smh]$'
    expect_exit 0 probe list
    expect_contains "kernel list shows the key" "$OUT" "$SANDBOX_ID TOKEN "
    expect_exit 0 probe remove "$SANDBOX_ID" TOKEN
    expect_eq "kernel remove reports removed" "$OUT" removed
    check "the kernel key is gone" test -z "$(run_kernel_keys)"
    unset JITBOX_KEYRING
fi

# --- file store -----------------------------------------------------------------------------------

secrets_dir=$XDG_RUNTIME_DIR/jitbox
export JITBOX_KEYRING=file
expect_exit 0 probe_put VALUE_FILE "$SANDBOX_ID" TOKEN 10m
expect_eq "the file store folder is 0700" "$(stat -c %a "$secrets_dir")" 700
expect_eq "the file store file is 0600" "$(stat -c %a "$secrets_dir/secrets.json")" 600
expect_exit 0 probe get "$SANDBOX_ID" TOKEN
expect_eq "file get finds the value" "$OUT" "found"$'\n'"$VALUE_FILE"

chmod 0755 "$secrets_dir"
expect_exit 2 probe get "$SANDBOX_ID" TOKEN
expect_contains "a folder of mode 0755 is rejected" "$ERR" "has mode 0755"
expect_eq "the folder mode is not repaired" "$(stat -c %a "$secrets_dir")" 755
chmod 0700 "$secrets_dir"

chmod 0644 "$secrets_dir/secrets.json"
expect_exit 2 probe get "$SANDBOX_ID" TOKEN
expect_contains "a file of mode 0644 is rejected" "$ERR" "has mode 0644"
chmod 0600 "$secrets_dir/secrets.json"
expect_exit 0 probe remove-sandbox "$SANDBOX_ID"
expect_eq "file remove-sandbox removes the item" "$OUT" 1
unset JITBOX_KEYRING

# --- values stay out of stderr and argv -----------------------------------------------------------

# The probe opens the store before it reads stdin, so it is running with its final argv while
# the fifo has no data yet.
mkfifo "$TEST_DIR/value.fifo"
JITBOX_KEYRING='file' "$PROBE" put "$SANDBOX_ID" ARGV 10m <"$TEST_DIR/value.fifo" \
    2>>"$PROBE_STDERR_LOG" &
argv_pid=$!
exec {fifo_fd}>"$TEST_DIR/value.fifo"
probe_running() {
    tr '\0' ' ' <"/proc/$argv_pid/cmdline" 2>/dev/null | grep -q jitbox_secret_probe
}
check "the probe waits for its value" wait_until 5 probe_running
argv=$(tr '\0' ' ' <"/proc/$argv_pid/cmdline" 2>/dev/null)
# A subshell writes, so a probe that exited early kills only it with SIGPIPE.
(printf '%s\n' "$VALUE_ARGV" >&"$fifo_fd") 2>/dev/null
exec {fifo_fd}>&-
wait "$argv_pid"
expect_eq "put with the value from a fifo exits 0" "$?" 0
expect_contains "the probe's argv is its command" "$argv" "put $SANDBOX_ID ARGV 10m"
for value in "${ALL_VALUES[@]}"; do
    check "argv does not contain ${value##*-}" test "${argv/"$value"/}" == "$argv"
    check "stderr does not contain ${value##*-}" file_lacks "$value" "$PROBE_STDERR_LOG"
done
JITBOX_KEYRING='file' expect_exit 0 probe get "$SANDBOX_ID" ARGV
expect_eq "the value from the fifo was stored" "$OUT" "found"$'\n'"$VALUE_ARGV"
