#!/usr/bin/env bash
# The engine socket search with DOCKER_HOST unset: /var/run/docker.sock, then
# $XDG_RUNTIME_DIR/docker.sock, then $XDG_RUNTIME_DIR/podman/podman.sock, then, as root,
# /run/podman/podman.sock. Each case runs jitbox in a private mount namespace whose /run (and so
# /var/run) is an empty tmpfs, with symbolic links to the test's private Podman socket at the
# places the case needs. The machine's own sockets are hidden there and never used.
# Run it with JITBOX_TEST_ENGINE=podman, whose socket lives in the test's folder.
# shellcheck disable=SC2016 # the bash -c script expands its own variables.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ $JITBOX_TEST_ENGINE != podman ]]; then
    skip_test "needs JITBOX_TEST_ENGINE=podman, whose socket is in the test's folder"
fi
if ! unshare --mount --propagation private -- mount -t tmpfs jitbox-test /run 2>/dev/null; then
    skip_test "unshare cannot make a mount namespace here (it needs root)"
fi
if [[ $(readlink -f /var/run) != /run ]]; then
    skip_test "/var/run is not /run on this machine, so an empty /run does not hide its sockets"
fi

{
    echo "[templates.tiny]"
    tiny_template_body
} >"$TEST_DIR/jitbox.toml"

ENGINE_SOCKET=${DOCKER_HOST#unix://}
RUNTIME_DIR=$TEST_DIR/runtime
mkdir -m 0700 "$RUNTIME_DIR"

# in_namespace RUN_LINKS RUNTIME_LINKS ARGS...: runs jitbox ARGS with DOCKER_HOST unset in a
# private mount namespace with an empty /run. RUN_LINKS and RUNTIME_LINKS are space-separated
# paths under /run and under RUNTIME_DIR that become links to the engine socket there, such as
# "podman/podman.sock".
in_namespace() {
    local run_links=$1 runtime_links=$2
    shift 2
    run env -u DOCKER_HOST XDG_RUNTIME_DIR="$RUNTIME_DIR" ENGINE_SOCKET="$ENGINE_SOCKET" \
        RUN_LINKS="$run_links" RUNTIME_LINKS="$runtime_links" \
        unshare --mount --propagation private -- bash -c '
            mount -t tmpfs jitbox-test /run || exit 99
            for path in $RUN_LINKS; do
                mkdir -p "$(dirname "/run/$path")" && ln -s "$ENGINE_SOCKET" "/run/$path"
            done
            for path in $RUNTIME_LINKS; do
                mkdir -p "$(dirname "$XDG_RUNTIME_DIR/$path")" &&
                    ln -sfn "$ENGINE_SOCKET" "$XDG_RUNTIME_DIR/$path"
            done
            exec timeout -k 5 "$0" "$@"
        ' "$JITBOX_TIMEOUT" "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" "$@"
}

# The links under RUNTIME_DIR are on the test's own file system, so they outlive the namespace,
# and a sandbox's record may name one. Each case removes them when it is done.
clear_runtime_dir() {
    rm -rf "${RUNTIME_DIR:?}"/*
}

# expect_engine_line NAME EXPECTED_LINE: checks the `-v` line that names the engine socket.
expect_engine_line() {
    local line
    line=$(grep '^jitbox: debug: engine: ' <<<"$ERR" | head -n 1)
    expect_eq "$1" "$line" "jitbox: debug: engine: $2"
}

# --- the rootless Podman socket, when the Docker sockets are missing ------------------------------

# The -v line names the socket, and what was missing before it.
unset_and_missing="because DOCKER_HOST is unset and no socket exists at /var/run/docker.sock"

in_namespace "" "podman/podman.sock" -v up tiny --name found
expect_eq "up with only the rootless Podman socket exits 0" "$RC" 0 || show_output
expect_engine_line "-v names the rootless Podman socket" \
    "unix://$RUNTIME_DIR/podman/podman.sock, $unset_and_missing, $RUNTIME_DIR/docker.sock"
expect_eq "the record keeps the socket it found" \
    "$(jq -r .endpoint "$(record_path found)" 2>&1)" "unix://$RUNTIME_DIR/podman/podman.sock"
expect_eq "the sandbox runs on the engine" "$(run_containers | wc -l)" 1
expect_exit 0 jb down found
expect_eq "down removes it through the recorded endpoint" "$(run_containers | wc -l)" 0
clear_runtime_dir

# --- the order of the places --------------------------------------------------------------------

in_namespace "docker.sock podman/podman.sock" "docker.sock podman/podman.sock" -v gc --dry-run
expect_eq "gc --dry-run exits 0 with every socket present" "$RC" 0
expect_engine_line "/var/run/docker.sock comes first" \
    "unix:///var/run/docker.sock, the default socket, because DOCKER_HOST is unset"
clear_runtime_dir

in_namespace "podman/podman.sock" "docker.sock podman/podman.sock" -v gc --dry-run
expect_engine_line "rootless Docker's socket comes second" \
    "unix://$RUNTIME_DIR/docker.sock, $unset_and_missing"
clear_runtime_dir

in_namespace "podman/podman.sock" "" -v gc --dry-run
expect_eq "gc --dry-run exits 0 with the rootful Podman socket alone" "$RC" 0
expect_engine_line "rootful Podman's socket comes last, for root" \
    "unix:///run/podman/podman.sock, $unset_and_missing, $RUNTIME_DIR/docker.sock, $(
    )$RUNTIME_DIR/podman/podman.sock"

# --- DOCKER_HOST wins -----------------------------------------------------------------------------

run env XDG_RUNTIME_DIR="$RUNTIME_DIR" timeout -k 5 "$JITBOX_TIMEOUT" "$JITBOX_BIN" \
    --config "$TEST_DIR/jitbox.toml" -v gc --dry-run
expect_eq "gc --dry-run exits 0 with DOCKER_HOST set" "$RC" 0
expect_engine_line "a set DOCKER_HOST is used as it is" "$DOCKER_HOST, from DOCKER_HOST"

# --- nowhere --------------------------------------------------------------------------------------

in_namespace "" "" up tiny --name lost
expect_eq "up without any engine socket exits 3" "$RC" 3
expect_eq "the error is one line" "$(wc -l <"$TEST_DIR/last.err")" 1
places="/var/run/docker.sock, $RUNTIME_DIR/docker.sock, $RUNTIME_DIR/podman/podman.sock, $(
    )/run/podman/podman.sock"
expect_contains "the error lists every place" "$ERR" \
    "jitbox: error: no engine socket found: DOCKER_HOST is unset and none of $places exists; "
expect_contains "the error names the fix" "$ERR" \
    "or the Podman service (for example \`systemctl --user start podman.socket\`), or set DOCKER_HOST"
check "no record is left" test ! -e "$(record_path lost)"
expect_eq "the audit log has no up line for it" "$(audit_count up lost)" 0
