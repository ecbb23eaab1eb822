#!/usr/bin/env bash
# Readiness and deadlines against the real dockerd. `up --wait` meets a template health check
# that passes, one that fails, an exited container and a timeout. Then `status --check` and its
# exit statuses, `status --prompt` from the state records alone, the expiry warning, and the
# progress of `down` on a pseudo-terminal.
# shellcheck disable=SC2016 # jq filters use $ literally.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! command -v script >/dev/null 2>&1; then
    skip_test "needs script (bsdutils) for the pseudo-terminal"
fi

cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.box]
image = "busybox:1.36"
command = ["sleep", "infinity"]
user = "65534:65534"
$(toml_labels)
ttl = "10m"
max_ttl = "1h"

# Healthy about two seconds after it starts.
[templates.ready]
image = "busybox:1.36"
command = ["sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 3600"]
user = "65534:65534"
healthcheck = { test = "test -f /tmp/ready", interval = "1s", retries = 30 }
$(toml_labels)

[templates.sick]
image = "busybox:1.36"
command = ["sleep", "infinity"]
user = "65534:65534"
healthcheck = { test = ["CMD", "false"], interval = "1s", retries = 1 }
$(toml_labels)

# Exits while its first health check is still 30 s away. Without a health check, a container
# that runs at the first look counts as ready, so the exit could come too late to be seen.
[templates.crash]
image = "busybox:1.36"
command = ["sh", "-c", "sleep 1; exit 3"]
user = "65534:65534"
healthcheck = { test = ["CMD", "true"], interval = "30s" }
$(toml_labels)

[templates.slow]
image = "busybox:1.36"
command = ["sleep", "infinity"]
user = "65534:65534"
healthcheck = { test = ["CMD", "test", "-f", "/never"], interval = "1s", retries = 100 }
$(toml_labels)

[templates.brief]
image = "busybox:1.36"
command = ["sleep", "infinity"]
user = "65534:65534"
$(toml_labels)
ttl = "4m"
max_ttl = "1h"
EOF

# on_pty OUTPUT CMD...: runs CMD on a pseudo-terminal; its output, with terminal control
# sequences, goes to OUTPUT, and RC is its exit status.
on_pty() {
    local output=$1 command
    shift
    printf -v command '%q ' "$@"
    timeout -k 5 "$JITBOX_TIMEOUT" script -qfec "$command" "$output" </dev/null >/dev/null 2>&1
    RC=$?
}

container_of() {
    dk ps -aq --filter "label=io.jitbox.name=$1" --filter "label=$RUN_LABEL_KEY=$RUN_ID"
}

# --- up --wait ------------------------------------------------------------------------------------

expect_exit 0 jb up ready --name healthy --wait --wait-timeout 60s
expect_eq "up --wait returns a healthy container" \
    "$(container_field "$(container_of healthy)" '{{.State.Health.Status}}')" healthy
expect_eq "the template's health check replaced the image's" \
    "$(container_field "$(container_of healthy)" '{{json .Config.Healthcheck.Test}}')" \
    '["CMD-SHELL","test -f /tmp/ready"]'

expect_exit 11 jb up sick --name sick --wait
expect_contains "an unhealthy sandbox is named" "$ERR" "is unhealthy"
expect_eq "the unhealthy sandbox was removed" "$(container_of sick)" ""
check "no record of the unhealthy sandbox" test ! -e "$(record_path sick)"
expect_eq "the failed up is audited as an error" "$(audit_count up sick error)" 1
expect_eq "and rolled back" "$(audit_count rollback sick ok)" 1

expect_exit 11 jb up crash --name crash --wait
expect_contains "an exited sandbox names its status" "$ERR" "exited with status 3"
expect_eq "the exited sandbox was removed" "$(container_of crash)" ""

expect_exit 11 jb up slow --name slow --wait-timeout 3s
expect_contains "--wait-timeout alone waits and names the limit" "$ERR" \
    "was not ready within 3s (--wait-timeout)"
expect_eq "the slow sandbox was removed" "$(container_of slow)" ""

expect_exit 2 jb up box --name never --wait-timeout 0s
expect_contains "a zero --wait-timeout is rejected" "$ERR" "--wait-timeout must be longer than 0s"

on_pty "$TEST_DIR/wait.typescript" "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" \
    up ready --name spinner --wait
expect_eq "up --wait on a pseudo-terminal exits 0" "$RC" 0
check "the pseudo-terminal shows the wait with its seconds" \
    grep -qE 'waiting for spinner to be ready \([0-9]+s\)' \
    <(strip_terminal "$TEST_DIR/wait.typescript")

# --- status --check -------------------------------------------------------------------------------

expect_exit 0 jb status healthy --check
expect_eq "--check prints nothing for a running sandbox" "$OUT$ERR" ""
expect_exit 4 jb status absent --check
expect_eq "--check prints nothing for an absent sandbox" "$OUT$ERR" ""
expect_exit 2 jb status --check
expect_contains "--check without a name is a usage error" "$ERR" "--check needs the name"

dk stop -t 0 "$(container_of spinner)" >/dev/null
expect_exit 10 jb status spinner --check
expect_eq "--check prints nothing for a stopped sandbox" "$OUT$ERR" ""
expect_exit 10 jb -v status spinner --check
expect_contains "-v names the state" "$ERR" "sandbox spinner is exited"
expect_exit 0 jb down spinner

# The Makefile idiom: up only when the sandbox does not run.
run bash -c "$(printf '%q ' "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml") status healthy --check ||
    $(printf '%q ' "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml") up box --name healthy"
expect_eq "status --check || up leaves the running sandbox alone" "$RC" 0
expect_eq "and starts no second sandbox" "$(container_of healthy | wc -l)" 1

# --- status --prompt ------------------------------------------------------------------------------

# healthy has the default ttl of 30m, so it is the soonest.
expect_exit 0 jb up box --name later --ttl 50m
expect_exit 0 jb_raw status --prompt
expect_match "--prompt names the soonest sandbox and counts the others" "$OUT" \
    '^healthy (2[89]|30)m,\+1$'
expect_eq "--prompt prints nothing on stderr" "$ERR" ""
expect_exit 0 jb_raw status --prompt --json
expect_eq "--prompt --json: name" "$(json "$OUT" '.name')" healthy
expect_eq "--prompt --json: others" "$(json "$OUT" '.others')" 1
expect_match "--prompt --json: time_left" "$(json "$OUT" '.time_left')" '^(2[89]|30)m$'
expect_match "--prompt --json: expires_at" "$(json "$OUT" '.expires_at')" "$RFC3339_UTC"

# Records alone: no engine, no configuration.
DOCKER_HOST=unix://$TEST_DIR/no-engine.sock JITBOX_CONFIG=$TEST_DIR/missing.toml \
    expect_exit 0 jb_raw status --prompt
expect_match "--prompt needs neither the engine nor the configuration" "$OUT" '^healthy '

expect_exit 0 jb down healthy later
expect_exit 0 jb_raw status --prompt
expect_eq "--prompt prints nothing without sandboxes" "$OUT" ""
expect_exit 0 jb_raw status --prompt --json
expect_eq "--prompt --json prints null without sandboxes" "$OUT" null

# --- expiry warnings ------------------------------------------------------------------------------

expect_exit 0 jb up brief --name brief
expect_exit 0 jb templates
if [[ $ERR == *"expires in"* ]]; then
    fail "no expiry warning in a pipe" "stderr: $ERR"
else
    pass "no expiry warning in a pipe"
fi

on_pty "$TEST_DIR/warn.typescript" "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" templates
expect_eq "templates on a pseudo-terminal exits 0" "$RC" 0
warnings=$(strip_terminal "$TEST_DIR/warn.typescript" | grep -c 'expires in')
expect_eq "one expiry warning per command" "$warnings" 1
check "the warning names the sandbox, the time left and the extend command" \
    grep -qE 'jitbox: warning: sandbox brief expires in [34]m[0-9]*s?; run `jitbox extend brief --by 30m` to keep it' \
    <(strip_terminal "$TEST_DIR/warn.typescript")

for quiet_command in "-q templates" "status --prompt" "--help" "--version" "templates --help"; do
    # shellcheck disable=SC2086 # the words of the command
    on_pty "$TEST_DIR/quiet.typescript" "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" \
        $quiet_command
    if strip_terminal "$TEST_DIR/quiet.typescript" | grep -q 'expires in'; then
        fail "no expiry warning for jitbox $quiet_command"
    else
        pass "no expiry warning for jitbox $quiet_command"
    fi
done

NO_COLOR='' on_pty "$TEST_DIR/colour.typescript" "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" \
    templates
check "the warning is coloured on a terminal without NO_COLOR" \
    grep -q $'\x1b\\[33mwarning:' "$TEST_DIR/colour.typescript"
on_pty "$TEST_DIR/nocolour.typescript" "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" templates
if grep -q $'\x1b\\[33m' "$TEST_DIR/nocolour.typescript"; then
    fail "NO_COLOR turns the colour off"
else
    pass "NO_COLOR turns the colour off"
fi

# --- down of several sandboxes on a terminal ------------------------------------------------------

expect_exit 0 jb up box --name first
expect_exit 0 jb up box --name second
on_pty "$TEST_DIR/down.typescript" "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" \
    down first second brief
expect_eq "down on a pseudo-terminal exits 0" "$RC" 0
for name in first second brief; do
    check "down shows removed $name" grep -qx "removed $name" \
        <(strip_terminal "$TEST_DIR/down.typescript")
done
check "down shows its progress while it removes" \
    grep -q 'removing second (2 of 3)' <(strip_terminal "$TEST_DIR/down.typescript")
