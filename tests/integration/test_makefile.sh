#!/usr/bin/env bash
# examples/Makefile against the real dockerd: `make integration-test` brings a sandbox up with
# `up --wait`, runs TEST with the sandbox's address, and removes the sandbox whether TEST
# passes, fails or make is interrupted. A busybox template takes the place of the database.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! command -v make >/dev/null 2>&1; then
    skip_test "needs GNU make"
fi

# jitbox as the Makefile calls it: on PATH, with this test's state folder.
mkdir "$TEST_DIR/bin"
ln -s "$JITBOX_BIN" "$TEST_DIR/bin/jitbox"
export PATH=$TEST_DIR/bin:$PATH

cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.web]
image = "busybox:1.36"
command = ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 3600"]
user = "65534:65534"
network = "isolated"
ports = ["8080"]
healthcheck = { test = "test -f /tmp/ready", interval = "1s", retries = 30 }
$(toml_labels)
ttl = "10m"
EOF

# make_test TEST: runs the example's integration-test target against the web template.
make_test() {
    run timeout -k 5 120 make -s -f "$REPO_ROOT/examples/Makefile" integration-test \
        CONFIG="$TEST_DIR/jitbox.toml" TEMPLATE=web DB_CONTAINER_PORT=8080/tcp \
        READY_TIMEOUT=60s TEST="$1"
}

no_sandbox_left() {
    [[ -z $(record_names) && -z $(run_containers) ]]
}

# TEST gets the sandbox's name and port, and the sandbox is healthy by then.
cat >"$TEST_DIR/passing-test" <<'EOF'
#!/bin/sh
set -eu
echo "sandbox=$SANDBOX host=$DB_HOST port=$DB_PORT"
jitbox status "$SANDBOX" --check
EOF
chmod 0755 "$TEST_DIR/passing-test"

make_test "$TEST_DIR/passing-test"
expect_eq "a passing test makes make exit 0" "$RC" 0
expect_match "TEST gets the sandbox's address" "$OUT" \
    '^sandbox=web-[0-9a-f]{6} host=127\.0\.0\.1 port=[0-9]+$'
check "no sandbox is left after a passing test" no_sandbox_left

make_test false
expect_eq "a failing test makes make fail" "$RC" 2
check "no sandbox is left after a failing test" no_sandbox_left
check "the removal is in the audit log" grep -q '"action":"down"' "$AUDIT_LOG"

# make stopped while TEST runs: TEST writes its pid and sleeps.
cat >"$TEST_DIR/slow-test" <<EOF
#!/bin/sh
echo \$\$ >"$TEST_DIR/slow-test.pid"
exec sleep 60
EOF
chmod 0755 "$TEST_DIR/slow-test"
make -s -f "$REPO_ROOT/examples/Makefile" integration-test CONFIG="$TEST_DIR/jitbox.toml" \
    TEMPLATE=web DB_CONTAINER_PORT=8080/tcp READY_TIMEOUT=60s TEST="$TEST_DIR/slow-test" \
    >"$TEST_DIR/interrupted.out" 2>&1 &
make_pid=$!
track_pid "$make_pid"
if wait_until 60 test -s "$TEST_DIR/slow-test.pid"; then
    # SIGTERM to make, the recipe's shell and the test program, as a CI runner's timeout sends
    # it to the whole job. SIGINT would not do here: a shell without job control starts
    # background jobs with SIGINT ignored, and a non-interactive shell cannot trap a signal
    # that was ignored when it started.
    recipe_shells=$(ps -o pid= --ppid "$make_pid")
    # shellcheck disable=SC2086 # one pid per word
    kill -TERM "$make_pid" $recipe_shells "$(cat "$TEST_DIR/slow-test.pid")" 2>/dev/null
    wait "$make_pid"
    interrupted_rc=$?
    check "a stopped make fails" test "$interrupted_rc" -ne 0
    check "no sandbox is left after SIGTERM" wait_until 30 no_sandbox_left
else
    fail "the slow test started" "$(cat "$TEST_DIR/interrupted.out")"
fi
