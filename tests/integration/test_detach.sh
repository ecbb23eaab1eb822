#!/usr/bin/env bash
# Detachment of the background child. `up` returns at once even when its stdout is a pipe. The
# child runs in its own session with no terminal and no inherited descriptors, and it survives
# SIGHUP, so closing the terminal that ran `up` leaves the sandbox's timer armed.
# shellcheck disable=SC2119 # toml_labels without extra labels takes no arguments.
# shellcheck disable=SC2016 # bash -c scripts expand their own $1 and $2.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.scratch]
image = "busybox:1.36"
command = ["sleep", "infinity"]
network = "none"
read_only = true
user = "65534:65534"
$(toml_labels)
ttl = "10m"
max_ttl = "1h"
EOF

# A bound for `up` that would otherwise wait for a child holding its stdout open.
up_bound=20

# child_of NAME: prints the child_pid that `status --json` reports for NAME.
child_of() {
    jb status "$1" --json 2>/dev/null | jq -r '.[0].child_pid // empty' 2>/dev/null
}

# check_detached NAME: checks session, terminal, descriptors and SIGHUP of NAME's child.
check_detached() {
    local name=$1 pid
    pid=$(child_of "$name")
    if ! [[ $pid =~ ^[0-9]+$ ]] || ! pid_alive "$pid"; then
        fail "$name: child is alive after up" "status --json child_pid: '$pid'"
        return
    fi
    pass "$name: child is alive after up"
    expect_eq "$name: child runs jitbox __reap" "$(reap_pids "$name")" "$pid"
    # A child that forks twice is not the leader of its session, so the check is that the child
    # is the only process left in a session other than the test's.
    local session
    session=$(ps -o sid= -p "$pid" | tr -d ' ')
    check "$name: child is in a new session" test "$session" != "$(ps -o sid= -p $$ | tr -d ' ')"
    expect_eq "$name: child is alone in its session" "$(ps -o pid= -s "$session" | tr -d ' ')" \
        "$pid"
    expect_eq "$name: child has no controlling terminal" \
        "$(ps -o tty= -p "$pid" | tr -d ' ')" "?"

    local fd target unexpected=()
    for fd in 0 1 2; do
        expect_eq "$name: child fd $fd is /dev/null" "$(readlink "/proc/$pid/fd/$fd")" /dev/null
    done
    # Beyond 0-2 the child may keep its lock files in the state dir and anonymous inodes such
    # as a timerfd or signalfd. A pipe, socket, terminal or any other file came from its parent.
    for fd in /proc/"$pid"/fd/*; do
        target=$(readlink "$fd") || continue
        case ${fd##*/}:$target in
            [012]:/dev/null) ;;
            *:"$STATE_DIR"/*) ;;
            *:anon_inode:*) ;;
            *) unexpected+=("fd ${fd##*/} -> $target") ;;
        esac
    done
    if ((${#unexpected[@]} == 0)); then
        pass "$name: child holds no inherited descriptor"
    else
        fail "$name: child holds no inherited descriptor" "${unexpected[@]}"
    fi

    kill -HUP "$pid"
    sleep 1
    check "$name: child survives SIGHUP" pid_alive "$pid"
}

# --- up with stdout on a pipe ---------------------------------------------------------------------

started=$SECONDS
timeout -k 5 "$up_bound" bash -c '"$1" --config "$2" up scratch --name piped | cat' \
    _ "$JITBOX_BIN" "$TEST_DIR/jitbox.toml" >"$TEST_DIR/piped.out" 2>"$TEST_DIR/piped.err"
rc=$?
check "jitbox up | cat returns within ${up_bound}s" test "$rc" -ne 124
expect_eq "jitbox up | cat exits 0" "$rc" 0
expect_eq "jitbox up | cat prints the name" "$(<"$TEST_DIR/piped.out")" piped
printf '# up | cat took %ds\n' "$((SECONDS - started))"
check_detached piped

# --- up inside a command substitution -------------------------------------------------------------

timeout -k 5 "$up_bound" bash -c 'name=$("$1" --config "$2" up scratch --name substituted) &&
    printf "%s\n" "$name"' _ "$JITBOX_BIN" "$TEST_DIR/jitbox.toml" \
    >"$TEST_DIR/substituted.out" 2>"$TEST_DIR/substituted.err"
rc=$?
check "name=\$(jitbox up) returns within ${up_bound}s" test "$rc" -ne 124
expect_eq "name=\$(jitbox up) captures the name" "$(<"$TEST_DIR/substituted.out")" substituted
check_detached substituted

# --- up with an extra open descriptor -------------------------------------------------------------

# fd 9 is open without close-on-exec, so jitbox inherits it, and its child must close it.
expect_exit 0 jb up scratch --name marked 9>"$TEST_DIR/inherited-fd-marker"
check_detached marked

# --- up on a terminal that then closes ------------------------------------------------------------

if command -v script >/dev/null 2>&1; then
    printf -v up_command '%q --config %q up scratch --name tty' \
        "$JITBOX_BIN" "$TEST_DIR/jitbox.toml"
    # script runs the command in a new session on a pseudo-terminal and closes the terminal
    # when the command exits, which sends SIGHUP to what is left in that session.
    timeout -k 5 "$up_bound" setsid script -qec "$up_command" "$TEST_DIR/typescript" \
        </dev/null >/dev/null 2>&1
    rc=$?
    check "jitbox up on a terminal returns within ${up_bound}s" test "$rc" -ne 124
    # The typescript also contains script's header, which quotes the command line, and any
    # progress output with its terminal control sequences.
    check "jitbox up on a terminal prints the name on a line of its own" \
        grep -qx tty <(tr -d '\r' <"$TEST_DIR/typescript" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g')
    sleep 1
    check_detached tty
    tty_container=$(dk ps -q --filter "label=io.jitbox.name=tty" \
        --filter "label=$RUN_LABEL_KEY=$RUN_ID")
    check "the tty sandbox's container runs after the terminal closed" test -n "$tty_container"
else
    skip "jitbox up on a terminal" "script (bsdutils) is not installed"
fi

# --- every sandbox is still there -----------------------------------------------------------------

expect_exit 0 jb status -q
for name in piped substituted marked; do
    expect_contains "status lists $name" "$OUT" "$name"
done
