#!/usr/bin/env bash
# Crash safety. jitbox-faults (tests/fault_main.cpp) is the CLI that kills itself with SIGKILL
# at the fault point named in JITBOX_FAULT. For each point of `up`, `down` and the background
# child, the next ordinary jitbox command must leave no container, network, state record or
# background process of the sandbox behind.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FAULTS_BIN=${JITBOX_FAULTS_BIN:-$(dirname "$JITBOX_BIN")/tests/jitbox-faults}
if [[ ! -x $FAULTS_BIN ]]; then
    die "JITBOX_FAULTS_BIN=$FAULTS_BIN is not an executable file; build the tests first"
fi

# `pulled` names an image that is not on the engine, so `up` reaches the pull. Its registry is
# a closed port on loopback, so the pull fails at once and nothing leaves the machine.
cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.tiny]
image = "busybox:1.36"
command = ["sleep", "infinity"]
network = "isolated"
stop_timeout = "1s"
$(toml_labels)
ttl = "10m"
max_ttl = "1h"

[templates.pulled]
image = "127.0.0.1:9/jitbox-fault-missing:$RUN_ID"
command = ["sleep", "infinity"]
network = "none"
$(toml_labels)
ttl = "10m"
max_ttl = "1h"
EOF

# A process killed by SIGKILL exits with 128 + 9.
killed=137

# jb_fault POINT ARGS...: runs jitbox-faults ARGS..., killed at POINT (see `run`).
jb_fault() {
    local point=$1
    shift
    run env JITBOX_FAULT="$point" timeout -k 5 "$JITBOX_TIMEOUT" "$FAULTS_BIN" \
        --config "$TEST_DIR/jitbox.toml" "$@"
}

sandbox_containers() {
    dk ps -aq --filter "label=io.jitbox.name=$1" --filter "label=$RUN_LABEL_KEY=$RUN_ID"
}

sandbox_networks() {
    dk network ls -q --filter "label=io.jitbox.name=$1" --filter "label=$RUN_LABEL_KEY=$RUN_ID"
}

record_state() {
    jq -r .state "$(record_path "$1")" 2>/dev/null
}

# expect_nothing_left NAME: no record, container, network or background child of NAME.
expect_nothing_left() {
    local name=$1
    check "$name: no state record" test ! -e "$(record_path "$name")"
    expect_eq "$name: no container" "$(sandbox_containers "$name")" ""
    expect_eq "$name: no network" "$(sandbox_networks "$name")" ""
    check "$name: no background child" wait_until 10 no_reap_process "$name"
}

# expect_killed POINT: checks that the last `jb_fault` died at POINT.
expect_killed() {
    if ((RC == killed)); then
        pass "jitbox-faults is killed at $1"
        return 0
    fi
    fail "jitbox-faults is killed at $1" "exit status: $RC"
    show_output
    return 1
}

# --- up killed at each step, then one ordinary command rolls it back ------------------------------

up_points=(
    lifecycle.creating.after
    docker.network.create.before
    docker.network.create.after
    docker.container.create.before
    docker.container.create.after
    docker.container.start.before
    docker.container.start.after
    lifecycle.running.before
)
index=0
for point in "${up_points[@]}"; do
    index=$((index + 1))
    name=up-$index
    jb_fault "$point" up tiny --name "$name"
    expect_killed "$point" || continue
    expect_eq "$name: up killed at $point leaves a creating record" "$(record_state "$name")" \
        creating
    # Every other point goes through gc, which must roll back as status does.
    if ((index % 2 == 0)); then
        expect_exit 0 jb gc
    else
        expect_exit 0 jb status
    fi
    expect_nothing_left "$name"
    expect_eq "$name: the rollback is audited" "$(audit_count rollback "$name" ok)" 1
done

for point in docker.image.pull.before docker.image.pull.after; do
    name=pull-${point##*.}
    jb_fault "$point" up pulled --name "$name"
    expect_killed "$point" || continue
    expect_exit 0 jb status
    expect_nothing_left "$name"
done

# --- down killed at each teardown step, then one ordinary command finishes it ---------------------

down_points=(
    lifecycle.removing.after
    docker.container.stop.before
    docker.container.stop.after
    docker.container.remove.before
    docker.container.remove.after
    docker.network.remove.before
    docker.network.remove.after
    lifecycle.record.remove.before
)
index=0
for point in "${down_points[@]}"; do
    index=$((index + 1))
    name=down-$index
    expect_exit 0 jb up tiny --name "$name" || continue
    jb_fault "$point" down "$name"
    expect_killed "$point" || continue
    expect_eq "$name: down killed at $point leaves a removing record" "$(record_state "$name")" \
        removing
    expect_exit 0 jb status
    expect_nothing_left "$name"
    expect_eq "$name: the removal is audited once" "$(audit_count down "$name" ok)" 1
done

# --- the background child killed, then any command after the deadline removes the sandbox ---------

expect_exit 0 jb up tiny --name orphan --ttl 3s
for pid in $(reap_pids orphan); do
    kill -KILL "$pid"
done
check "orphan: its background child is gone" wait_until 10 no_reap_process orphan
sleep 4 # past the 3 s deadline
expect_exit 0 jb status
expect_nothing_left orphan
expect_eq "orphan: the expiry is audited" "$(audit_count expire orphan ok)" 1
