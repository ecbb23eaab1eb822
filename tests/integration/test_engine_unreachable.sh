#!/usr/bin/env bash
# `up` against an engine that cannot be reached: a socket path that does not exist, and a
# socket that accepts connections but never replies. Each must fail with exit code 3 and one
# error line within the documented limits (5 s to connect, 10 s for the first ping), and leave
# no record, no background child and no "ok" line in the audit log.
# shellcheck disable=SC2119 # toml_labels without extra labels takes no arguments.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.tiny]
image = "busybox:1.36"
command = ["sleep", "infinity"]
network = "none"
$(toml_labels)
ttl = "1m"
max_ttl = "5m"
EOF

# check_unreachable NAME MAX_SECONDS DOCKER_HOST: runs `up --name NAME` against DOCKER_HOST and
# checks the exit code, the message, the time it took and what it left behind.
check_unreachable() {
    local name=$1 max_seconds=$2 host=$3 started elapsed
    started=$(date +%s%N)
    DOCKER_HOST=$host expect_exit 3 jb up tiny --name "$name" --ttl 1m
    elapsed=$((($(date +%s%N) - started) / 1000000))
    printf '# up against %s took %d ms\n' "$host" "$elapsed"

    expect_eq "$name: stderr is one line" "$(wc -l <"$TEST_DIR/last.err")" 1
    expect_match "$name: the line is a jitbox error naming the engine" "$ERR" \
        "^jitbox: error: .*Docker engine at "
    expect_eq "$name: stdout is empty" "$OUT" ""
    if ((elapsed <= max_seconds * 1000)); then
        pass "$name: up fails within $max_seconds s"
    else
        fail "$name: up fails within $max_seconds s" "it took $elapsed ms"
    fi
    check "$name: no record is left" test ! -e "$(record_path "$name")"
    check "$name: no __reap process is left" no_reap_process "$name"
    expect_eq "$name: the audit log has no ok line" "$(audit_count up "$name" ok)" 0
    LAST_ELAPSED_MS=$elapsed
}

# A missing socket fails at connect(2) at once; 5 s is the connect limit.
check_unreachable missing 5 unix:///nonexistent.sock
expect_contains "missing: the error names the cause" "$ERR" "No such file or directory"

SILENT_SOCKET=$TEST_DIR/silent.sock
# Accepts every connection, keeps it open and never sends a byte.
python3 -c '
import socket, sys
server = socket.socket(socket.AF_UNIX)
server.bind(sys.argv[1])
server.listen(16)
held = []
while True:
    held.append(server.accept()[0])
' "$SILENT_SOCKET" &
track_pid $!
socket_ready() {
    [[ -S $SILENT_SOCKET ]]
}
wait_until 10 socket_ready || die "the silent listener did not create $SILENT_SOCKET"

# The ping limit is 10 s; the rest of the 20 s covers process start-up on a loaded machine.
check_unreachable silent 20 "unix://$SILENT_SOCKET"
if ((LAST_ELAPSED_MS >= 9000)); then
    pass "silent: up waited for the ping limit rather than failing early"
else
    fail "silent: up waited for the ping limit rather than failing early" \
        "it took $LAST_ELAPSED_MS ms"
fi
expect_contains "silent: the error says the engine timed out" "$ERR" "imed out"

expect_eq "no record of either attempt is left" "$(record_names)" ""
expect_eq "no container of this run exists" "$(run_containers)" ""
expect_exit 0 jb audit verify
