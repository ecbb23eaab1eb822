#!/usr/bin/env bash
# Prepares a Debian 12 machine to build and test jitbox, in four steps:
#   1. installs the missing Debian packages (apt-get update runs only when one is missing),
#   2. configures and builds into build/, with warnings as errors when CI is set,
#   3. starts /usr/sbin/dockerd unless a Docker engine already responds,
#   4. creates the image busybox:1.36 from Debian's static busybox unless the engine has it.
# Run it as root, directly or with `source`. It prints one line per action it takes, so it is
# silent when everything is in place already.
set -euo pipefail

setup_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=busybox_image.sh
source "$setup_root/scripts/busybox_image.sh"

setup_packages=(
    # Build
    cmake pkg-config g++ make
    libcli11-dev libtomlplusplus-dev doctest-dev nlohmann-json3-dev libfmt-dev
    libsecret-1-dev libcurl4-openssl-dev libssl-dev
    # The kernel keyring backend of the secret store
    libkeyutils-dev
    # XML responses of the AWS Query API (STS, EC2)
    libpugixml-dev
    # The Docker engine's container and network lists, the longest replies jitbox parses
    libsimdjson-dev
    # Time zones of policy windows: the date library and the tz database it reads
    libhowardhinnant-date-dev tzdata
    # The fuzz targets of fuzz/ (scripts/fuzz.sh): clang 14 and its libFuzzer and sanitizer
    # runtimes
    clang-14 libclang-rt-14-dev
    # Docker engine, and cgroupfs-mount for machines whose init system mounts no cgroups
    docker.io cgroupfs-mount
    # Podman, the second engine of the *_podman integration tests, which start a private
    # `podman system service` of their own
    podman
    # Content of the locally built busybox:1.36 image
    busybox-static
    # Used by tests/integration: JSON queries, a test socket server, ps, script, and the
    # certificates of the TLS engine proxy of test_exec_docker.sh
    jq python3 procps bsdutils openssl
    # Used by the fake AWS test: the AWS CLI as an independent client, curl for the fake's
    # control interface and for requests that curl signs itself
    awscli curl
    # Used by the keyring test: a private session bus (dbus-run-session, dbus-send), the Secret
    # Service of gnome-keyring, and keyctl
    dbus-daemon dbus-bin gnome-keyring keyutils
    # Used by the completion test (the three shells) and the manual page test (two renderers)
    bash-completion zsh fish groff-base mandoc
    # Used by the registry test: a private image registry that the test starts on 127.0.0.1, and
    # htpasswd for its password file
    docker-registry apache2-utils
    # Used by bench/run and its bench_smoke test: hyperfine times commands side by side, GNU
    # time and strace count resources
    hyperfine time strace
)

# The image that the embedded default template names. It is built locally when the engine does
# not have it, so neither the quick start nor the tests need an image registry.
setup_image=$busybox_image_name
setup_dockerd_log=/var/log/jitbox-dockerd.log
setup_dockerd_wait_seconds=60

setup_say() {
    printf 'setup: %s\n' "$*"
}

setup_die() {
    printf 'setup: error: %s\n' "$*" >&2
    exit 1
}

setup_require_root() {
    if ((EUID != 0)); then
        setup_die "$1 needs root. Run the script again with sudo"
    fi
}

setup_install_packages() {
    local missing=() package status
    for package in "${setup_packages[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
        if [[ $status != installed ]]; then
            missing+=("$package")
        fi
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi

    setup_require_root "installing ${missing[*]}"
    setup_say "installing ${missing[*]}"
    local log
    log=$(mktemp /tmp/jitbox-setup-apt.XXXXXX)
    if ! {
        apt-get update &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
                "${missing[@]}"
    } </dev/null >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        setup_die "apt-get failed. Its full output is in $log"
    fi
    rm -f "$log"
}

# Prints the modification time of a file, or 0 when it does not exist.
setup_mtime() {
    stat -c %Y "$1" 2>/dev/null || echo 0
}

setup_build() {
    local build_dir="$setup_root/build"
    local log="$build_dir/setup-build.log"
    local configure=(cmake -S "$setup_root" -B "$build_dir")
    if [[ -n ${CI:-} ]]; then
        configure+=(-DJITBOX_WERROR=ON)
    fi

    if [[ ! -f $build_dir/CMakeCache.txt ]]; then
        setup_say "configuring build/"
    fi
    mkdir -p "$build_dir"
    local before
    before=$(setup_mtime "$build_dir/jitbox")
    if ! { "${configure[@]}" && cmake --build "$build_dir" -j2; } >"$log" 2>&1; then
        cat "$log" >&2
        setup_die "the build failed. Its output is above and in build/setup-build.log"
    fi

    if [[ $(setup_mtime "$build_dir/jitbox") != "$before" ]]; then
        setup_say "built build/jitbox"
    fi
    local warnings
    warnings=$(grep -c 'warning:' "$log" || true)
    if ((warnings > 0)); then
        setup_say "the build printed $warnings compiler warnings; see build/setup-build.log"
    fi
}

setup_docker_responds() {
    timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# True when some cgroup file system (v1 or v2) is mounted, which dockerd needs.
setup_cgroups_mounted() {
    grep -qE ' - cgroup2? ' /proc/self/mountinfo
}

# True when the pid in dockerd's pid file is a live dockerd. A pid file left by a dockerd that
# was killed may name a pid that another program has since been given.
setup_dockerd_running() {
    local pid
    pid=$(cat /var/run/docker.pid 2>/dev/null || true)
    [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]]
}

setup_start_docker() {
    if setup_docker_responds; then
        return 0
    fi
    if [[ -n ${DOCKER_HOST:-} && $DOCKER_HOST != unix:///var/run/docker.sock ]]; then
        setup_die "no Docker engine responds at DOCKER_HOST=$DOCKER_HOST. Start it there," \
            "or unset DOCKER_HOST to use a local dockerd"
    fi
    setup_require_root "starting dockerd"

    if ! setup_cgroups_mounted; then
        setup_say "mounting the cgroup file systems (cgroupfs-mount)"
        cgroupfs-mount
    fi

    # An existing log is kept, so only the lines that this start adds are searched for a fatal
    # error.
    local log_offset
    log_offset=$(($(stat -c %s "$setup_dockerd_log" 2>/dev/null || echo 0) + 1))
    if setup_dockerd_running; then
        setup_say "dockerd is running but does not respond yet, waiting for it"
    else
        setup_say "starting dockerd (log: $setup_dockerd_log)"
        setsid /usr/sbin/dockerd </dev/null >>"$setup_dockerd_log" 2>&1 &
    fi

    local waited
    for ((waited = 0; waited < setup_dockerd_wait_seconds; waited++)); do
        if setup_docker_responds; then
            return 0
        fi
        if tail -c +"$log_offset" "$setup_dockerd_log" 2>/dev/null |
            grep -qE 'level=fatal|failed to start daemon'; then
            tail -c +"$log_offset" "$setup_dockerd_log" | tail -n 20 >&2
            setup_die "dockerd failed to start. Its log is $setup_dockerd_log"
        fi
        sleep 1
    done
    tail -c +"$log_offset" "$setup_dockerd_log" 2>/dev/null | tail -n 20 >&2
    setup_die "dockerd did not respond within ${setup_dockerd_wait_seconds}s." \
        "Its log is $setup_dockerd_log"
}

setup_build_image() {
    if timeout 30 docker image inspect "$setup_image" >/dev/null 2>&1; then
        return 0
    fi
    setup_require_root "building $setup_image"
    setup_say "building image $setup_image from Debian's busybox-static"

    local rootfs
    rootfs=$(mktemp -d /tmp/jitbox-busybox-rootfs.XXXXXX)
    busybox_write_rootfs "$rootfs"
    if ! busybox_rootfs_tar "$rootfs" |
        docker import "${busybox_image_changes[@]}" \
            -m "Debian busybox-static, imported by jitbox scripts/setup.sh" \
            - "$setup_image" >/dev/null; then
        rm -rf "$rootfs"
        setup_die "docker import of $setup_image failed"
    fi
    rm -rf "$rootfs"
}

setup_main() {
    setup_install_packages
    setup_build
    setup_start_docker
    setup_build_image
}

setup_main
