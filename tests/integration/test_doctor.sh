#!/usr/bin/env bash
# `jitbox doctor` against the real dockerd: a healthy setup exits 0, and an unreachable engine,
# an invalid configuration and a live sandbox whose background child was killed each exit 8
# with an error finding and its fix. A state folder of mode 0755 is a warning that doctor
# reports and leaves as it is. The --json shape is checked with jq, and the table on a
# terminal through script(1).
# shellcheck disable=SC2016 # jq filters use $ literally.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

{
    echo "[templates.tiny]"
    tiny_template_body
} >"$TEST_DIR/jitbox.toml"

# findings CHECK STATUS: prints the messages of the --json findings of CHECK with STATUS from
# the last `run`, one a line.
findings() {
    jq -r --arg check "$1" --arg status "$2" \
        '.findings[] | select(.check == $check and .status == $status) | .message' <<<"$OUT"
}

# --- healthy --------------------------------------------------------------------------------------

expect_exit 0 jb doctor --json
expect_eq "healthy: no errors" "$(json "$OUT" '.errors')" 0
expect_match "healthy: warnings is a count" "$(json "$OUT" '.warnings')" '^[0-9]+$'
expect_eq "healthy: every finding has the documented keys" \
    "$(json "$OUT" '[.findings[] | keys == ["check","details","fix","message","status"]] | all')" \
    true
expect_eq "healthy: every status is ok, warning or error" \
    "$(json "$OUT" '[.findings[].status | IN("ok","warning","error")] | all')" true
expect_eq "healthy: ok findings have a null fix" \
    "$(json "$OUT" '[.findings[] | select(.status == "ok") | .fix == null] | all')" true
expect_eq "healthy: other findings have a fix" \
    "$(json "$OUT" '[.findings[] | select(.status != "ok") | (.fix | type) == "string"] | all')" \
    true
expect_eq "healthy: the checks that ran" \
    "$(json "$OUT" '[.findings[].check] | unique | join(" ")')" \
    "audit clock config engine install keyring mode sandbox state"
expect_match "healthy: the negotiated API version" \
    "$(json "$OUT" '.findings[] | select(.check == "engine") | .details.negotiated_api_version')" \
    '^1\.4[01]$'
expect_match "healthy: the engine version" \
    "$(json "$OUT" '.findings[] | select(.check == "engine") | .details.engine_version')" \
    '^[0-9]+\.[0-9]+'
expect_match "healthy: the clock skew is a number" \
    "$(json "$OUT" '.findings[] | select(.check == "clock") | .details.skew_seconds')" \
    '^-?[0-9]+$'
expect_eq "healthy: the clock is ok" "$(findings clock warning)" ""
expect_eq "healthy: five install findings" \
    "$(json "$OUT" '[.findings[] | select(.check == "install")] | length')" 5
check "healthy: doctor did not create the state folder" test ! -e "$STATE_DIR"

expect_exit 0 jb doctor
expect_match "pipe: plain lines" "$(head -n 1 <<<"$OUT")" '^(ok|warning|error) [a-z]+: '
expect_eq "pipe: no escape sequences" "$(grep -c $'\x1b' <<<"$OUT")" 0
expect_eq "pipe: nothing on stderr" "$ERR" ""

# The table on a terminal: script(1) gives doctor a pty. NO_COLOR from lib.sh removes colour.
run timeout -k 5 60 script -qec "$JITBOX_BIN --config $TEST_DIR/jitbox.toml doctor" /dev/null
expect_eq "terminal: exits 0" "$RC" 0
expect_contains "terminal: the mark of an ok finding" "$OUT" "✓ engine"
expect_match "terminal: the count line" "$OUT" "0 errors, [0-9]+ warnings?"
expect_eq "terminal: NO_COLOR leaves out colour" "$(grep -c $'\x1b\\[3' <<<"$OUT")" 0
run env -u NO_COLOR timeout -k 5 60 script -qec \
    "$JITBOX_BIN --config $TEST_DIR/jitbox.toml doctor" /dev/null
expect_contains "terminal: colour without NO_COLOR" "$OUT" $'\x1b[32m✓'

# --- unreachable engine ---------------------------------------------------------------------------

# check_unreachable NAME DOCKER_HOST: doctor fails within 5 s with an engine error and its fix.
check_unreachable() {
    local started elapsed
    started=$(date +%s%N)
    DOCKER_HOST=$2 expect_exit 8 jb doctor --json
    elapsed=$((($(date +%s%N) - started) / 1000000))
    if ((elapsed < 5000)); then
        pass "$1: doctor returns within 5 s"
    else
        fail "$1: doctor returns within 5 s" "it took $elapsed ms"
    fi
    expect_eq "$1: one error" "$(json "$OUT" '.errors')" 1
    expect_contains "$1: the engine error names the endpoint" "$(findings engine error)" \
        "${2#*://}"
    expect_contains "$1: the fix names DOCKER_HOST" \
        "$(json "$OUT" '.findings[] | select(.check == "engine") | .fix')" DOCKER_HOST
    expect_eq "$1: no clock finding" "$(json "$OUT" '[.findings[] | select(.check == "clock")] | length')" 0
    expect_eq "$1: stderr names the count" "$ERR" \
        "jitbox: error: doctor found 1 error; each line above names its fix"
}
check_unreachable "missing socket" unix:///nonexistent.sock
check_unreachable "refused port" tcp://127.0.0.1:1

# --- invalid configuration ------------------------------------------------------------------------

cat >"$TEST_DIR/bad.toml" <<EOF
[templates.tiny]
image = "busybox:1.36"
ttl = "soon"
EOF
expect_exit 8 jb_raw --config "$TEST_DIR/bad.toml" doctor --json
expect_contains "bad config: the error names the position" "$(findings config error)" \
    "$TEST_DIR/bad.toml:3:"
expect_contains "bad config: the fix names policy check" \
    "$(json "$OUT" '.findings[] | select(.check == "config") | .fix')" "jitbox policy check"
expect_eq "bad config: the engine is still checked" "$(findings engine ok | wc -l)" 1

# --- state folder of mode 0755 --------------------------------------------------------------------

mkdir -p "$STATE_DIR/sandboxes" "$STATE_DIR/locks"
chmod 0700 "$STATE_DIR/sandboxes" "$STATE_DIR/locks"
chmod 0755 "$STATE_DIR"
expect_exit 0 jb doctor --json
expect_contains "mode 0755: a warning names the mode" "$(findings state warning)" "mode 0755"
expect_eq "mode 0755: the fix" \
    "$(json "$OUT" '.findings[] | select(.check == "state" and .status == "warning") | .fix')" \
    "chmod 0700 $STATE_DIR"
expect_eq "mode 0755: doctor leaves the mode" "$(stat -c %a "$STATE_DIR")" 755
chmod 0700 "$STATE_DIR"

# --- a live sandbox and its background child ------------------------------------------------------

expect_exit 0 jb up tiny --name doc-live --ttl 10m
expect_exit 0 jb doctor --json
expect_contains "live: the sandbox is ok" "$(findings sandbox ok)" '"doc-live" runs until'
expect_eq "live: on the engine" \
    "$(json "$OUT" '.findings[] | select(.check == "sandbox") | .details.on_engine')" true
child_pid=$(json "$OUT" '.findings[] | select(.check == "sandbox") | .details.child_pid')
expect_eq "live: the child pid is the recorded one" "$child_pid" \
    "$(jq -r .child_pid "$(record_path doc-live)")"
expect_eq "live: the audit log is intact" "$(findings audit error)$(findings audit warning)" ""

if pid_alive "$child_pid"; then
    kill -KILL "$child_pid"
    wait_until 5 pid_gone "$child_pid"
    expect_exit 8 jb doctor --json
    expect_contains "killed child: an error for the sandbox" "$(findings sandbox error)" \
        '"doc-live" has no background child'
    expect_contains "killed child: the fix is gc" \
        "$(json "$OUT" '.findings[] | select(.check == "sandbox") | .fix')" "jitbox gc"
    check "killed child: doctor did not start a child" no_reap_process doc-live

    expect_exit 0 jb gc
    expect_exit 0 jb doctor --json
    expect_contains "after gc: the sandbox is ok again" "$(findings sandbox ok)" '"doc-live"'
    new_pid=$(json "$OUT" '.findings[] | select(.check == "sandbox") | .details.child_pid')
    check "after gc: a new child runs" pid_alive "$new_pid"
else
    fail "live: the recorded child $child_pid runs"
fi

expect_exit 0 jb down doc-live
expect_exit 0 jb doctor --json
expect_eq "after down: no sandboxes" "$(findings sandbox ok)" "no sandboxes"
