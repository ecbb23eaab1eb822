#!/usr/bin/env bash
# Builds jitbox (scripts/setup.sh), runs every ctest test, unit and integration, runs each fuzz
# target for a short time (scripts/fuzz.sh), and then checks that the run left no jitbox
# container, network or `jitbox __reap` process behind. Resources and processes that existed
# before the run, such as a quickstart sandbox, are not counted. Exits non-zero when a test or
# a fuzz target failed or something was left over. JITBOX_FUZZ_SECONDS sets the fuzzing time
# per target, and 0 skips fuzzing. Run it as root.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh

# Every template the integration tests write carries test.jitbox.suite=$suite_id, and their temp
# dirs are made under $suite_dir, so cleanup can find what this run made and nothing else.
suite_id=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
suite_dir=$(mktemp -d "${TMPDIR:-/tmp}/jitbox-suite.XXXXXX")
# Traversable but not listable, because the policy test runs jitbox as other users from a
# folder inside it.
chmod 0711 "$suite_dir"
export JITBOX_TEST_SUITE=$suite_id
export TMPDIR=$suite_dir
suite_label="test.jitbox.suite=$suite_id"

jitbox_containers() {
    timeout 60 docker ps -aq --no-trunc --filter label=io.jitbox.sandbox | sort
}

jitbox_networks() {
    timeout 60 docker network ls -q --no-trunc --filter label=io.jitbox.sandbox | sort
}

# Prints the pids of processes with the argument __reap. Given DIR, it prints only those whose
# command line or environment contains DIR.
reap_pids() {
    local under=${1:-} proc args=()
    for proc in /proc/[0-9]*; do
        mapfile -d '' -t args 2>/dev/null <"$proc/cmdline" || continue
        [[ " ${args[*]} " == *" __reap "* ]] || continue
        if [[ -n $under && ${args[*]} != *"$under"* ]] &&
            ! tr '\0' '\n' 2>/dev/null <"$proc/environ" | grep -qF "$under"; then
            continue
        fi
        echo "${proc#/proc/}"
    done | sort
}

# Removes what carries this run's suite label and stops the background children of its tests.
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local status=$?
    local containers networks pids
    containers=$(timeout 60 docker ps -aq --filter "label=$suite_label" 2>/dev/null || true)
    if [[ -n $containers ]]; then
        echo "test.sh: removing containers labelled $suite_label"
        # shellcheck disable=SC2086 # one id per word
        timeout 60 docker rm -f $containers >/dev/null || true
    fi
    networks=$(timeout 60 docker network ls -q --filter "label=$suite_label" 2>/dev/null || true)
    if [[ -n $networks ]]; then
        echo "test.sh: removing networks labelled $suite_label"
        # shellcheck disable=SC2086 # one id per word
        timeout 60 docker network rm $networks >/dev/null || true
    fi
    pids=$(reap_pids "$suite_dir")
    if [[ -n $pids ]]; then
        echo "test.sh: stopping __reap processes of this run: $pids"
        # shellcheck disable=SC2086 # one pid per word
        kill -TERM $pids 2>/dev/null || true
    fi

    if ((status == 0)); then
        rm -rf "$suite_dir"
    else
        echo "test.sh: kept $suite_dir (temp dirs of failed tests)"
    fi
    exit "$status"
}

containers_before=$(jitbox_containers)
networks_before=$(jitbox_networks)
reapers_before=$(reap_pids)
if [[ -n $containers_before$networks_before ]]; then
    echo "test.sh: note: jitbox containers or networks exist already, and the leftover check" \
        "ignores them"
fi
trap cleanup EXIT

failed=0
ctest --test-dir build --output-on-failure || failed=1
# Every fuzz target once, briefly: a clang build into build-fuzz/ and 20 s per target.
# fuzz.sh skips the step for JITBOX_FUZZ_SECONDS=0.
JITBOX_FUZZ_SECONDS=${JITBOX_FUZZ_SECONDS:-20} bash scripts/fuzz.sh || failed=1

# Lines that are in the second list and not in the first.
added() {
    comm -13 <(printf '%s\n' "$1" | sed '/^$/d') <(printf '%s\n' "$2" | sed '/^$/d')
}

left_containers=$(added "$containers_before" "$(jitbox_containers)")
left_networks=$(added "$networks_before" "$(jitbox_networks)")
left_reapers=$(added "$reapers_before" "$(reap_pids)")
if [[ -n $left_containers ]]; then
    echo "test.sh: the run left jitbox containers behind:"
    # shellcheck disable=SC2046,SC2086 # one id per word
    docker ps -a --no-trunc --format '  {{.Names}} {{.ID}} {{.Status}}' \
        $(printf -- '--filter id=%s ' $left_containers)
    failed=1
fi
if [[ -n $left_networks ]]; then
    echo "test.sh: the run left jitbox networks behind: ${left_networks//$'\n'/ }"
    failed=1
fi
if [[ -n $left_reapers ]]; then
    echo "test.sh: the run left __reap processes behind:"
    # shellcheck disable=SC2086 # one pid per word
    ps -o pid=,args= -p "$(echo $left_reapers | tr ' ' ',')"
    failed=1
fi
exit "$failed"
