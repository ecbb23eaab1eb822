# shellcheck shell=bash
# Shared by the tests that need a Secret Service: a private D-Bus session bus and a
# gnome-keyring-daemon of the test's own.
#
# A test sources this file twice. First, before lib.sh, it calls run_on_private_bus "$@", which
# runs the script again under dbus-run-session with a bus configuration that has no service
# activation, so nothing starts on that bus but what the test starts. In that second run,
# run_on_private_bus returns and sets bus_dir, which the test removes at its end. After lib.sh,
# the daemon helpers below use TEST_DIR for their log.

keyring_tools=(dbus-run-session dbus-send gnome-keyring-daemon keyctl python3)

# run_on_private_bus ARGS...: ARGS are the script's own arguments.
run_on_private_bus() {
    if [[ ${1:-} == --on-private-bus ]]; then
        bus_dir=$2
        return 0
    fi
    for tool in "${keyring_tools[@]}"; do
        if ! command -v "$tool" >/dev/null; then
            printf 'not ok - %s is installed\n' "$tool"
            printf '#   install the test tools with: bash scripts/setup.sh\n'
            exit 1
        fi
    done
    bus_dir=$(mktemp -d "${TMPDIR:-/tmp}/jitbox-keyring-bus.XXXXXX")
    cat >"$bus_dir/session.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=$bus_dir</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
    exec dbus-run-session --config-file="$bus_dir/session.conf" -- \
        bash "$0" --on-private-bus "$bus_dir"
}

default_collection() {
    dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
        org.freedesktop.Secret.Service.ReadAlias string:default 2>/dev/null |
        grep -o 'object path "[^"]*"' | cut -d'"' -f2
}

default_collection_exists() {
    [[ $(default_collection) == /org/freedesktop/secrets/collection/* ]]
}

# start_keyring_daemon [--unlock]: starts gnome-keyring-daemon with only its Secret Service
# component. With --unlock it reads an empty password from stdin and unlocks (or creates) the
# login collection, which becomes the default one. Without it, that collection stays locked.
start_keyring_daemon() {
    if [[ ${1:-} == --unlock ]]; then
        printf '\n' | gnome-keyring-daemon --foreground --unlock --components=secrets \
            >>"$TEST_DIR/keyring-daemon.log" 2>&1 &
    else
        gnome-keyring-daemon --foreground --components=secrets </dev/null \
            >>"$TEST_DIR/keyring-daemon.log" 2>&1 &
    fi
    KEYRING_DAEMON_PID=$!
    track_pid "$KEYRING_DAEMON_PID"
    wait_until 10 default_collection_exists
}

stop_keyring_daemon() {
    if [[ -n $KEYRING_DAEMON_PID ]] && pid_alive "$KEYRING_DAEMON_PID"; then
        kill -TERM "$KEYRING_DAEMON_PID" 2>/dev/null
        wait_until 5 pid_gone "$KEYRING_DAEMON_PID"
    fi
    KEYRING_DAEMON_PID=""
}
