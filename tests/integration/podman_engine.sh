# shellcheck shell=bash
# The Podman engine of the integration tests. lib.sh sources this file and calls
# podman_engine_start when JITBOX_TEST_ENGINE=podman. It starts a private `podman system
# service` for the test, so that the test runs jitbox and the `docker` client against Podman's
# Docker-compatible API instead of dockerd:
#   - every piece of Podman state is under PODMAN_DIR (TEST_DIR/pm): image and container
#     storage, temp files, events and network definitions, and the run state is under
#     PODMAN_RUN_DIR. CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and CONTAINERS_REGISTRIES_CONF
#     name files in PODMAN_DIR, so the machine's own Podman configuration and store are neither
#     read nor changed,
#   - busybox:1.36 is imported from Debian's busybox-static, so no registry and no dockerd is
#     needed,
#   - DOCKER_HOST is exported as unix://PODMAN_DIR/podman.sock.
# The cleanup hook stops the service, removes every container, network and image of the
# private store, unmounts what is left under PODMAN_DIR and PODMAN_RUN_DIR and removes
# PODMAN_RUN_DIR.
#
# NOTE: CNI keeps IP allocations under /var/lib/cni and creates bridges named cni-podmanN on
# the host for the duration of a test. Two private services that run at the same time may pick
# the same bridge and subnet for their networks, so these tests are not run in parallel.

# Short, so the socket paths under the run state stay within the 108 bytes of sun_path.
PODMAN_DIR=$TEST_DIR/pm
PODMAN_SOCKET=$PODMAN_DIR/podman.sock
PODMAN_LOG=$PODMAN_DIR/service.log
PODMAN_SERVICE_PID=""
PODMAN_START_SECONDS=30
# The run state (runroot) is in a folder of its own under /tmp. The `podman container cleanup`
# that conmon runs when a container exits rejects a runroot longer than 50 characters (Podman
# 4.3.1), and TEST_DIR alone is longer under scripts/test.sh's TMPDIR. Without the cleanup,
# Podman reports an exited container as "stopped" and never ends a followed log.
PODMAN_RUN_DIR=""

# pm ARGS...: runs the podman command on the private store, bounded in time.
pm() {
    timeout -k 5 60 podman "$@"
}

podman_responds() {
    [[ $(curl -s --max-time 2 --unix-socket "$PODMAN_SOCKET" http://podman/_ping 2>/dev/null) == OK ]]
}

# Writes the three configuration files of the private Podman and exports their variables.
podman_write_configuration() {
    cat >"$PODMAN_DIR/containers.conf" <<EOF
[containers]
# As root, Podman raises each container's open-files limit to 1048576 by default. Where the
# service may not raise its own hard limit (in a container, for instance), runc then fails with
# "error setting rlimit type 7", so containers inherit the service's limits instead.
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PODMAN_DIR/events.log"
tmp_dir = "$PODMAN_DIR/tmp"

[network]
network_config_dir = "$PODMAN_DIR/networks"
EOF
    cat >"$PODMAN_DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$PODMAN_DIR/root"
runroot = "$PODMAN_RUN_DIR"
EOF
    # No search registries, so that nothing resolves a short name against the machine's list.
    echo 'unqualified-search-registries = []' >"$PODMAN_DIR/registries.conf"

    export CONTAINERS_CONF=$PODMAN_DIR/containers.conf
    export CONTAINERS_STORAGE_CONF=$PODMAN_DIR/storage.conf
    export CONTAINERS_REGISTRIES_CONF=$PODMAN_DIR/registries.conf
}

# Imports busybox:1.36, which Podman names localhost/busybox:1.36 as it does every local image.
# Templates request the short name busybox:1.36, which Podman resolves to it.
podman_import_busybox() {
    local rootfs=$PODMAN_DIR/busybox-rootfs
    busybox_write_rootfs "$rootfs"
    busybox_rootfs_tar "$rootfs" |
        pm import --quiet "${busybox_image_changes[@]}" - "$busybox_image_name" \
            >/dev/null
    local status=$?
    rm -rf "$rootfs"
    return "$status"
}

# Prints the pids of the processes whose command line names PODMAN_DIR: the service, conmon, and
# the `podman container cleanup` that conmon starts when a container exits.
podman_processes() {
    local proc
    for proc in /proc/[0-9]*; do
        if tr '\0' ' ' 2>/dev/null <"$proc/cmdline" | grep -qF -- "$PODMAN_DIR/"; then
            echo "${proc#/proc/}"
        fi
    done
}

no_podman_process() {
    [[ -z $(podman_processes) ]]
}

# Unmounts what is mounted under PODMAN_DIR and PODMAN_RUN_DIR, deepest first, so that a mount
# inside another is unmounted before it.
podman_unmount_all() {
    local mount_point dir
    for dir in "$PODMAN_DIR" ${PODMAN_RUN_DIR:+"$PODMAN_RUN_DIR"}; do
        while read -r mount_point; do
            umount -l "$mount_point" 2>/dev/null
        done < <(awk -v dir="$dir/" 'index($2 "/", dir) == 1 { print $2 }' /proc/mounts | sort -r)
    done
}

# Stops the private service and empties its store. It is the cleanup hook.
podman_engine_stop() {
    if [[ -n $PODMAN_SERVICE_PID ]]; then
        kill -TERM "$PODMAN_SERVICE_PID" 2>/dev/null
        if ! wait_until 10 pid_gone "$PODMAN_SERVICE_PID"; then
            kill -KILL "$PODMAN_SERVICE_PID" 2>/dev/null
        fi
        wait "$PODMAN_SERVICE_PID" 2>/dev/null
        PODMAN_SERVICE_PID=""
    fi
    # Stops and removes what a failed test left, removes its networks with their bridges, and
    # unmounts the store's layers.
    pm system reset --force >>"$PODMAN_LOG" 2>&1
    # The `podman container cleanup` that conmon starts when a container exits may open the
    # store after the reset and so mount it again, which is why the unmount comes after it.
    # conmon of a `docker exec` session waits up to 300 s (its --exit-delay) before it exits,
    # so what is left after 10 s gets SIGTERM.
    if ! wait_until 10 no_podman_process; then
        local pid
        for pid in $(podman_processes); do
            kill -TERM "$pid" 2>/dev/null
        done
        wait_until 5 no_podman_process
    fi
    podman_unmount_all
    if [[ -n $PODMAN_RUN_DIR ]]; then
        rm -rf "$PODMAN_RUN_DIR"
        PODMAN_RUN_DIR=""
    fi
}

podman_engine_start() {
    if ! command -v podman >/dev/null; then
        skip_test "podman is not installed; bash scripts/setup.sh installs it"
    fi
    # shellcheck source-path=SCRIPTDIR source=../../scripts/busybox_image.sh
    source "$REPO_ROOT/scripts/busybox_image.sh"

    mkdir -m 0700 "$PODMAN_DIR" "$PODMAN_DIR/tmp" "$PODMAN_DIR/networks"
    PODMAN_RUN_DIR=$(mktemp -d /tmp/jitbox-pm.XXXXXX) || die "mktemp of the Podman run folder failed"
    # The hook's `podman system reset` must see the private configuration, so it is registered
    # only once that is written.
    podman_write_configuration
    on_cleanup podman_engine_stop
    if ! podman_import_busybox; then
        die "podman import of $busybox_image_name into $PODMAN_DIR failed"
    fi

    setsid podman system service --time=0 "unix://$PODMAN_SOCKET" </dev/null \
        >>"$PODMAN_LOG" 2>&1 &
    PODMAN_SERVICE_PID=$!
    if ! wait_until "$PODMAN_START_SECONDS" podman_responds; then
        printf '#   podman service log: %s\n' "$(tail -n 5 "$PODMAN_LOG" 2>/dev/null)"
        die "podman system service did not respond on $PODMAN_SOCKET within ${PODMAN_START_SECONDS}s"
    fi
    export DOCKER_HOST=unix://$PODMAN_SOCKET
}
