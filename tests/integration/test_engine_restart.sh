#!/usr/bin/env bash
# Teardown across an engine restart. The test starts a private dockerd with its own data root,
# exec root, pid file and socket under TEST_DIR, creates a sandbox on it, stops that dockerd
# before the deadline and starts it again after. The background child must retry until the
# engine is back, remove the sandbox, and audit that the removal waited for the engine.
# The shared dockerd is only read from, by `docker save` of the test image.
# shellcheck disable=SC2119 # toml_labels without extra labels takes no arguments.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SHARED_HOST=${DOCKER_HOST:-unix:///var/run/docker.sock}
# Short names keep the socket paths under exec-root within the 108 bytes of sun_path.
PRIVATE_DIR=$TEST_DIR/d
PRIVATE_SOCKET=$PRIVATE_DIR/docker.sock
PRIVATE_PIDFILE=$PRIVATE_DIR/dockerd.pid
PRIVATE_LOG=$PRIVATE_DIR/dockerd.log
PRIVATE_PID=""
mkdir -m 0700 "$PRIVATE_DIR" "$PRIVATE_DIR/data" "$PRIVATE_DIR/exec"
# An empty configuration file, so that /etc/docker/daemon.json of the shared daemon is not read.
echo '{}' >"$PRIVATE_DIR/daemon.json"

private_dockerd_args=(
    --data-root "$PRIVATE_DIR/data"
    --exec-root "$PRIVATE_DIR/exec"
    --pidfile "$PRIVATE_PIDFILE"
    --config-file "$PRIVATE_DIR/daemon.json"
    -H "unix://$PRIVATE_SOCKET"
    --containerd-namespace "jitbox-test-$RUN_ID"
    --containerd-plugins-namespace "jitbox-test-$RUN_ID-plugins"
    --bridge=none --iptables=false --ip6tables=false
    --shutdown-timeout 2
)

private_docker() {
    timeout -k 5 60 docker -H "unix://$PRIVATE_SOCKET" "$@"
}

private_responds() {
    private_docker version >/dev/null 2>&1
}

# Starts the private dockerd and waits up to 60 s for its API. Returns 1 when it does not come
# up.
start_private_dockerd() {
    /usr/sbin/dockerd "${private_dockerd_args[@]}" >>"$PRIVATE_LOG" 2>&1 &
    PRIVATE_PID=$!
    wait_until 60 private_responds
}

# Stops the private dockerd with SIGTERM, then SIGKILL after 30 s, and waits for its exit.
stop_private_dockerd() {
    [[ -n $PRIVATE_PID ]] || return 0
    kill -TERM "$PRIVATE_PID" 2>/dev/null
    if ! wait_until 30 pid_gone "$PRIVATE_PID"; then
        kill -KILL "$PRIVATE_PID" 2>/dev/null
    fi
    wait "$PRIVATE_PID" 2>/dev/null
    PRIVATE_PID=""
}

# The cleanup hook: stops the private dockerd and its containerd, unmounts what they left
# mounted under PRIVATE_DIR and removes the folder.
remove_private_dockerd() {
    stop_private_dockerd
    local containerd_pid mount_point
    containerd_pid=$(cat "$PRIVATE_DIR/exec/containerd/containerd.pid" 2>/dev/null)
    if pid_alive "$containerd_pid"; then
        kill -TERM "$containerd_pid" 2>/dev/null
        wait_until 10 pid_gone "$containerd_pid" || kill -KILL "$containerd_pid" 2>/dev/null
    fi
    # Deepest first, so that a mount inside another is unmounted before it.
    while read -r mount_point; do
        umount -l "$mount_point" 2>/dev/null
    done < <(awk -v dir="$PRIVATE_DIR" 'index($2, dir) == 1 { print $2 }' /proc/mounts |
        sort -r)
    rm -rf "$PRIVATE_DIR"
}
on_cleanup remove_private_dockerd

if [[ ! -x /usr/sbin/dockerd ]]; then
    skip_test "/usr/sbin/dockerd is not installed, so no second engine can start"
fi
if ! start_private_dockerd; then
    printf '#   dockerd log: %s\n' "$(tail -n 5 "$PRIVATE_LOG" 2>/dev/null)"
    skip_test "a second dockerd did not respond within 60 s on this machine (log above)"
fi
pass "a private dockerd starts on $PRIVATE_SOCKET"

check "the private dockerd's data root is not the shared one's" \
    test "$(private_docker info --format '{{.DockerRootDir}}')" = "$PRIVATE_DIR/data"
if ! docker -H "$SHARED_HOST" save busybox:1.36 | private_docker load >/dev/null; then
    die "busybox:1.36 could not be copied from the shared engine into the private one"
fi
pass "busybox:1.36 is loaded into the private dockerd"

# From here on jitbox and the lib.sh helpers, cleanup included, talk to the private engine.
export DOCKER_HOST=unix://$PRIVATE_SOCKET

cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.tiny]
image = "busybox:1.36"
command = ["sleep", "infinity"]
network = "none"
memory = "32MiB"
pids_limit = 16
$(toml_labels)
ttl = "1m"
max_ttl = "5m"
EOF

TTL_SECONDS=20
expect_exit 0 jb up tiny --name restart --ttl "${TTL_SECONDS}s" ||
    die "up failed on the private engine"
up_done=$SECONDS
mapfile -t containers < <(run_containers)
expect_eq "up created one container on the private engine" "${#containers[@]}" 1
expect_eq "the shared engine has no container of this run" \
    "$(docker -H "$SHARED_HOST" ps -aq --filter "label=$RUN_LABEL_KEY=$RUN_ID")" ""

stop_private_dockerd
private_silent() {
    ! private_responds
}
check "the private engine no longer responds" private_silent

expire_failed() {
    (($(audit_count expire restart error) >= 1))
}
# The deadline passes while the engine is down. The first failed attempt is audited once.
check "the child audits the failed expiry within the ttl plus 30 s" \
    wait_until $((TTL_SECONDS + 30)) expire_failed
check "the record stays while the engine is down" test -f "$(record_path restart)"
expect_eq "the record is marked removing" \
    "$(jq -r .state "$(record_path restart)" 2>/dev/null)" removing
check "the __reap process keeps retrying" test -n "$(reap_pids restart)"
# A few more retries, so that the audit log would show one line per retry if it had them.
sleep 4
expect_eq "repeated failures are audited once" "$(audit_count expire restart error)" 1

start_private_dockerd || die "the private dockerd did not start again with the same roots"
pass "the private dockerd starts again with the same roots"
engine_back=$SECONDS

no_record() {
    [[ ! -e $(record_path restart) ]]
}
expire_done() {
    (($(audit_count expire restart ok) >= 1))
}
# The child backs off to at most 60 s between attempts, so 90 s covers the next one.
check "the child removes the record once the engine is back" wait_until 90 no_record
check "the child audits the expiry as ok" wait_until 10 expire_done
check "the __reap process exits" wait_until 10 no_reap_process restart
expect_eq "no container of this run is left on the private engine" "$(run_containers)" ""
printf '# the engine was down for about %d s; removal followed %d s after it came back\n' \
    $((engine_back - up_done)) $((SECONDS - engine_back))

detail=$(jq -r 'select(.action == "expire" and .sandbox == "restart" and .result == "ok")
    | .detail' "$AUDIT_LOG" 2>/dev/null | head -n 1)
expect_match "the expiry record says the removal waited for the engine" "$detail" \
    '^removed after waiting [0-9hms]+ for the engine$'
expect_exit 0 jb audit verify
