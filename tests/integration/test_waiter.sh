#!/usr/bin/env bash
# The background child waits in jitbox-waiter: the same pid holds the child lock before and
# after `extend`, it is small and quiet while it waits, and it still removes the sandbox at the
# deadline and exits on `down`.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

{
    echo '[templates.tiny]'
    tiny_template_body
} >"$TEST_DIR/jitbox.toml"

WAITER_BIN=$(dirname "$JITBOX_BIN")/jitbox-waiter
if [[ ! -x $WAITER_BIN ]]; then
    die "jitbox-waiter is not built next to $JITBOX_BIN"
fi

comm_of() {
    cat "/proc/$1/comm" 2>/dev/null
}

# waits_in_waiter PID: true when PID runs jitbox-waiter, as its first argument shows.
waits_in_waiter() {
    [[ $(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | head -n 1) == "$WAITER_BIN" ]]
}

# context_switches PID: voluntary plus involuntary, each one a wake-up of the process.
context_switches() {
    awk '/ctxt_switches/ { n += $2 } END { print n }' "/proc/$1/status"
}

expect_exit 0 jb up tiny --name long --ttl 10m
child=$(json "$(jb status long --json)" '.[0].child_pid')
check "long: the child waits in jitbox-waiter" wait_until 10 waits_in_waiter "$child"
expect_eq "long: the waiting child is named jitbox-waiter" "$(comm_of "$child")" jitbox-waiter
check "long: the waiting child is a __reap process" is_reap_process "$child"
rss_kib=$(awk '/VmRSS/ { print $2 }' "/proc/$child/status")
check "long: the waiter's RSS ($rss_kib KiB) is under 4 MiB" test "${rss_kib:-99999}" -lt 4096
# A static executable has no program interpreter (readelf is in binutils, which g++ needs).
if readelf -l "$WAITER_BIN" | grep -q INTERP; then
    fail "jitbox-waiter is statically linked" "$(readelf -d "$WAITER_BIN" | grep NEEDED)"
else
    pass "jitbox-waiter is statically linked"
fi

before=$(context_switches "$child")
sleep 3
expect_eq "long: no wake-up in 3 s of waiting" "$(context_switches "$child")" "$before"

deadline_before=$(json "$(jb status long --json)" '.[0].expires_at')
expect_exit 0 jb extend long --by 5m
deadline_after=$(json "$(jb status long --json)" '.[0].expires_at')
check "extend: the deadline moved" test "$(epoch_of "$deadline_after")" -gt \
    "$(epoch_of "$deadline_before")"
check "extend: the same child waits again in jitbox-waiter" wait_until 10 waits_in_waiter "$child"
expect_eq "extend: the child's pid is unchanged" \
    "$(json "$(jb status long --json)" '.[0].child_pid')" "$child"
expect_eq "extend: the waiter names the new deadline" \
    "$(tr '\0' '\n' <"/proc/$child/cmdline" | sed -n 2p)" "$(epoch_of "$deadline_after")"

expect_exit 0 jb down long
check "down: the waiter exits" wait_until 5 pid_gone "$child"

# At the deadline the waiter runs the full binary, which removes the sandbox.
expect_exit 0 jb up tiny --name short --ttl 3s
short_child=$(json "$(jb status short --json)" '.[0].child_pid')
check "short: the child waits in jitbox-waiter" wait_until 5 waits_in_waiter "$short_child"
no_short_record() {
    [[ ! -e $(record_path short) ]]
}
check "short: the record is removed at the deadline" wait_until 15 no_short_record
check "short: the child exits" wait_until 5 pid_gone "$short_child"
expect_eq "short: the container is gone" "$(run_containers)" ""
