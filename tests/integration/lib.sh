# shellcheck shell=bash
# shellcheck disable=SC2016 # jq filters and Go templates use $ literally.
# shellcheck disable=SC2034 # RC, OUT, ERR, RFC3339_UTC and others are read by the test scripts.
# Shared setup and checks for the integration tests. Each test_*.sh sources this file first.
#
# Sourcing it:
#   - makes a temp dir TEST_DIR, the working dir of the test, with XDG_STATE_HOME=TEST_DIR/state,
#   - picks a run id RUN_ID. Every template a test writes carries the label
#     test.jitbox.run=RUN_ID (see toml_labels), so cleanup can find what the test made,
#   - installs an EXIT trap that removes the test's sandboxes, containers, networks, background
#     children and helper processes, prints "N passed, N failed" and sets the exit status.
# The temp dir is removed when every check passed. Otherwise it is kept and its path printed.
#
# JITBOX_BIN names the binary under test and defaults to build/jitbox of this checkout. Set
# JITBOX_TEST_SUITE (scripts/test.sh does) to add the label test.jitbox.suite=VALUE as well.
#
# JITBOX_TEST_ENGINE chooses the engine: `docker` (the default) uses the engine that
# DOCKER_HOST or /var/run/docker.sock names, and `podman` starts a private Podman service for
# the test (podman_engine.sh) and points DOCKER_HOST and the `docker` client at it.
#
# A test that does not use Docker sets TEST_NEEDS_DOCKER=0 before sourcing, and one that does
# not run jitbox sets TEST_NEEDS_JITBOX=0. Sourcing then neither requires that part nor cleans
# it up. fake_aws.sh, sourced below, starts a fake AWS that the cleanup stops.

set -uo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
JITBOX_BIN=${JITBOX_BIN:-$REPO_ROOT/build/jitbox}
JITBOX_TEST_ENGINE=${JITBOX_TEST_ENGINE:-docker}
TEST_NAME=$(basename "$0" .sh)
if [[ $JITBOX_TEST_ENGINE != docker ]]; then
    TEST_NAME+=_$JITBOX_TEST_ENGINE
fi
TEST_NEEDS_DOCKER=${TEST_NEEDS_DOCKER:-1}
TEST_NEEDS_JITBOX=${TEST_NEEDS_JITBOX:-1}

# Upper bound for one jitbox command, so that a hang fails the check instead of the test run.
JITBOX_TIMEOUT=${JITBOX_TIMEOUT:-60}

RUN_LABEL_KEY=test.jitbox.run
RUN_ID=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
SUITE_LABEL_KEY=test.jitbox.suite

TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/jitbox-$TEST_NAME.XXXXXX")
export XDG_STATE_HOME=$TEST_DIR/state
mkdir -m 0700 "$XDG_STATE_HOME"
STATE_DIR=$XDG_STATE_HOME/jitbox
AUDIT_LOG=$STATE_DIR/audit.log
cd "$TEST_DIR" || exit 1

# The tests choose their configuration explicitly and want plain output.
unset JITBOX_CONFIG
export NO_COLOR=1

# The test's own stdout and stderr. A signal can end the test inside `run`, while its
# redirections to last.out and last.err are in effect, so finish restores these to report.
exec {TEST_STDOUT_FD}>&1 {TEST_STDERR_FD}>&2

PASSED=0
FAILED=0
SKIPPED=0
HELPER_PIDS=()
# Further values of XDG_STATE_HOME that a test uses. The cleanup runs `down --all` in each.
EXTRA_STATE_HOMES=()
CLEANUP_HOOKS=()
TEST_SKIPPED=0

# Output of the last `run`: exit status, stdout and stderr (trailing newlines removed).
RC=0
OUT=""
ERR=""

# --- reporting ------------------------------------------------------------------------------------

pass() {
    PASSED=$((PASSED + 1))
    printf 'ok - %s\n' "$1"
}

# fail NAME [DETAIL...]: records a failed check and prints each DETAIL as a comment line.
fail() {
    FAILED=$((FAILED + 1))
    printf 'not ok - %s\n' "$1"
    shift
    local line
    for line in "$@"; do
        printf '#   %s\n' "$line"
    done
    return 1
}

skip() {
    SKIPPED=$((SKIPPED + 1))
    printf 'ok - %s # SKIP %s\n' "$1" "$2"
}

# Prints the captured stdout and stderr of the last `run` as comment lines, 20 lines each.
show_output() {
    local line
    while IFS= read -r line; do
        printf '#   stdout: %s\n' "$line"
    done < <(head -n 20 "$TEST_DIR/last.out" 2>/dev/null)
    while IFS= read -r line; do
        printf '#   stderr: %s\n' "$line"
    done < <(head -n 20 "$TEST_DIR/last.err" 2>/dev/null)
}

# die MESSAGE: records a failure after which the test cannot go on, and exits. The EXIT trap
# still cleans up.
die() {
    fail "$TEST_NAME cannot continue: $1"
    exit 1
}

# skip_test REASON: ends a test that cannot run on this machine with exit status 77, which
# ctest reports as a skip for tests registered with SKIP_RETURN_CODE 77. The EXIT trap still
# cleans up.
skip_test() {
    printf '# SKIP %s\n' "$1"
    TEST_SKIPPED=1
    exit 77
}

# --- running commands -----------------------------------------------------------------------------

# jb ARGS...: runs jitbox with TEST_DIR/jitbox.toml when that file exists, bounded in time.
jb() {
    if [[ -f $TEST_DIR/jitbox.toml ]]; then
        timeout -k 5 "$JITBOX_TIMEOUT" "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" "$@"
    else
        timeout -k 5 "$JITBOX_TIMEOUT" "$JITBOX_BIN" "$@"
    fi
}

# jb_raw ARGS...: runs jitbox with no --config added, bounded in time.
jb_raw() {
    timeout -k 5 "$JITBOX_TIMEOUT" "$JITBOX_BIN" "$@"
}

# dk ARGS...: runs the docker client, bounded in time.
dk() {
    timeout -k 5 60 docker "$@"
}

# run CMD...: runs a command and stores its exit status in RC, its stdout in OUT and its stderr
# in ERR. The raw streams stay in TEST_DIR/last.out and TEST_DIR/last.err.
run() {
    "$@" >"$TEST_DIR/last.out" 2>"$TEST_DIR/last.err"
    RC=$?
    OUT=$(<"$TEST_DIR/last.out")
    ERR=$(<"$TEST_DIR/last.err")
}

# Prints a command for a check name: "jitbox" for the binary, $TEST_DIR for the temp dir.
describe() {
    local words=() arg text
    for arg in "$@"; do
        case $arg in
            jb | jb_raw | "$JITBOX_BIN") words+=(jitbox) ;;
            *) words+=("$arg") ;;
        esac
    done
    text=${words[*]}
    printf '%s' "${text//"$TEST_DIR"/\$TEST_DIR}"
}

# expect_exit CODE CMD...: runs CMD (see `run`) and checks its exit status.
expect_exit() {
    local expected=$1
    shift
    run "$@"
    local name
    name="$(describe "$@") exits $expected"
    if ((RC == expected)); then
        pass "$name"
        return 0
    fi
    if ((RC == 124)); then
        fail "$name" "timed out after ${JITBOX_TIMEOUT}s"
    else
        fail "$name" "exit status: $RC"
    fi
    show_output
    return 1
}

# --- checks ---------------------------------------------------------------------------------------

# expect_eq NAME ACTUAL EXPECTED
expect_eq() {
    if [[ $2 == "$3" ]]; then
        pass "$1"
        return 0
    fi
    fail "$1" "expected: '$3'" "actual:   '$2'"
}

# expect_contains NAME TEXT NEEDLE
expect_contains() {
    if [[ $2 == *"$3"* ]]; then
        pass "$1"
        return 0
    fi
    fail "$1" "expected to contain: '$3'" "actual: '$2'"
}

# expect_match NAME TEXT REGEX (bash extended regular expression)
expect_match() {
    if [[ $2 =~ $3 ]]; then
        pass "$1"
        return 0
    fi
    fail "$1" "expected to match: $3" "actual: '$2'"
}

# check NAME CMD...: passes when CMD exits 0.
check() {
    local name=$1
    shift
    if "$@"; then
        pass "$name"
        return 0
    fi
    fail "$name" "failed: $(describe "$@")"
}

# wait_until SECONDS CMD...: polls CMD every 0.2 s until it exits 0; fails after SECONDS.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    while ! "$@"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.2
    done
}

# --- JSON, time and processes ---------------------------------------------------------------------

# json TEXT FILTER: prints the jq FILTER applied to TEXT (raw strings); fails on invalid JSON.
json() {
    jq -r "$2" <<<"$1" 2>/dev/null
}

# epoch_of TIMESTAMP: seconds since the epoch of an RFC 3339 time; fails when it is not one.
epoch_of() {
    [[ -n $1 ]] && date -u -d "$1" +%s 2>/dev/null
}

RFC3339_UTC='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$'

# strip_terminal FILE: prints what a terminal recorded in FILE (such as script's typescript) as
# plain lines: carriage returns become line breaks and escape sequences are removed.
strip_terminal() {
    tr '\r' '\n' <"$1" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g'
}

pid_alive() {
    [[ $1 =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null
}

pid_gone() {
    ! pid_alive "$1"
}

# True when process PID runs `jitbox __reap` (its arguments include the word __reap).
is_reap_process() {
    local args=()
    mapfile -d '' -t args 2>/dev/null <"/proc/$1/cmdline" || return 1
    local arg
    for arg in "${args[@]}"; do
        if [[ $arg == __reap ]]; then
            return 0
        fi
    done
    return 1
}

# reap_pids [NAME]: prints the pids of `jitbox __reap` processes whose command line or
# environment contains TEST_DIR, only those for sandbox NAME (the last argument) when given.
reap_pids() {
    local name=${1:-} proc pid args=()
    for proc in /proc/[0-9]*; do
        pid=${proc#/proc/}
        is_reap_process "$pid" || continue
        mapfile -d '' -t args 2>/dev/null <"$proc/cmdline" || continue
        if [[ ${args[*]} != *"$TEST_DIR"* ]] &&
            ! tr '\0' '\n' 2>/dev/null <"$proc/environ" | grep -qF "$TEST_DIR"; then
            continue
        fi
        if [[ -z $name || ${args[-1]} == "$name" ]]; then
            echo "$pid"
        fi
    done
}

no_reap_process() {
    [[ -z $(reap_pids "${1:-}") ]]
}

# --- templates and engine facts -------------------------------------------------------------------

# toml_labels [KEY=VALUE...]: prints a TOML `labels = {...}` line with the run label (and the
# suite label when JITBOX_TEST_SUITE is set) plus the given pairs.
# shellcheck disable=SC2120 # the tests pass extra labels, lib.sh itself passes none.
toml_labels() {
    local pairs=("\"$RUN_LABEL_KEY\" = \"$RUN_ID\"") pair
    if [[ -n ${JITBOX_TEST_SUITE:-} ]]; then
        pairs+=("\"$SUITE_LABEL_KEY\" = \"$JITBOX_TEST_SUITE\"")
    fi
    for pair in "$@"; do
        pairs+=("\"${pair%%=*}\" = \"${pair#*=}\"")
    done
    local IFS=,
    printf 'labels = { %s }\n' "${pairs[*]}"
}

# Prints the keys of a small template: busybox sleeping without a network, with this run's
# labels, a 10m ttl and a 1h max_ttl. Tests put it under a [templates.NAME] header.
tiny_template_body() {
    # shellcheck disable=SC2119 # toml_labels without extra labels takes no arguments.
    cat <<EOF
image = "busybox:1.36"
command = ["sleep", "infinity"]
network = "none"
$(toml_labels)
ttl = "10m"
max_ttl = "1h"
EOF
}

# Prints the ids of containers (all states) that carry this run's label.
run_containers() {
    dk ps -aq --no-trunc --filter "label=$RUN_LABEL_KEY=$RUN_ID"
}

# Prints the ids of networks that carry this run's label.
run_networks() {
    dk network ls -q --no-trunc --filter "label=$RUN_LABEL_KEY=$RUN_ID"
}

container_exists() {
    dk container inspect "$1" >/dev/null 2>&1
}

container_gone() {
    ! container_exists "$1"
}

network_exists() {
    dk network inspect "$1" >/dev/null 2>&1
}

network_gone() {
    ! network_exists "$1"
}

# container_field CONTAINER GO_TEMPLATE: prints a field of `docker container inspect`, empty
# when the container does not exist. A network of a sandbox has the same name as its container,
# so every inspect names its type.
container_field() {
    dk container inspect --format "$2" "$1" 2>/dev/null
}

# network_field NETWORK GO_TEMPLATE: prints a field of `docker network inspect`.
network_field() {
    dk network inspect --format "$2" "$1" 2>/dev/null
}

record_path() {
    printf '%s/sandboxes/%s.json' "$STATE_DIR" "$1"
}

# Prints the names of the records in the state dir, one a line.
record_names() {
    local file
    for file in "$STATE_DIR"/sandboxes/*.json; do
        [[ -e $file ]] || continue
        file=${file##*/}
        echo "${file%.json}"
    done
}

# help_section COMMAND... HEADER: the first word of each line of HEADER's section in
# `jitbox COMMAND... --help`, such as each subcommand under "Subcommands:". The section ends
# at the next line that is not indented.
help_section() {
    local header=${*: -1}
    "$JITBOX_BIN" "${@:1:$#-1}" --help |
        awk -v header="$header" '$0 == header { inside = 1; next } /^[^ ]/ { inside = 0 }
            inside && /^  [^ ]/ { print $1 }'
}

# audit_count ACTION SANDBOX [RESULT]: prints how many audit lines match.
audit_count() {
    local filter='select(.action == $action and .sandbox == $sandbox'
    if [[ -n ${3:-} ]]; then
        filter+=' and .result == $result'
    fi
    filter+=')'
    if [[ ! -f $AUDIT_LOG ]]; then
        echo 0
        return
    fi
    jq -c --arg action "$1" --arg sandbox "$2" --arg result "${3:-}" "$filter" "$AUDIT_LOG" \
        2>/dev/null | wc -l
}

# track_pid PID: a helper process of the test, killed by the EXIT trap.
track_pid() {
    HELPER_PIDS+=("$1")
}

# --- secret values and kernel keys ----------------------------------------------------------------

# A test that checks where secret values appear calls start_secret_watch, writes each value it
# learns to VALUES_FILE, runs the commands whose output must not contain one through `logged`,
# and searches with lacks_values. The cleanup stops the sampling of command lines.
VALUES_FILE=$TEST_DIR/values.txt
OUTPUT_LOG=$TEST_DIR/outputs.log
CMDLINE_LOG=$TEST_DIR/cmdlines.log
WATCHER_PID=""

# Creates the three files and samples the command line of every process ten times a second
# into CMDLINE_LOG until stop_secret_watch.
start_secret_watch() {
    touch "$VALUES_FILE" "$OUTPUT_LOG" "$CMDLINE_LOG"
    chmod 0600 "$VALUES_FILE"
    while true; do
        cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' >>"$CMDLINE_LOG"
        sleep 0.1
    done &
    WATCHER_PID=$!
}

stop_secret_watch() {
    if [[ -z $WATCHER_PID ]]; then
        return 0
    fi
    kill -TERM "$WATCHER_PID" 2>/dev/null
    wait "$WATCHER_PID" 2>/dev/null
    WATCHER_PID=""
}

# logged CODE CMD...: expect_exit, and the output goes to OUTPUT_LOG for the final search.
logged() {
    expect_exit "$@"
    local status=$?
    cat "$TEST_DIR/last.out" "$TEST_DIR/last.err" >>"$OUTPUT_LOG"
    return "$status"
}

# Fails when any value of VALUES_FILE occurs in the files or folders given.
lacks_values() {
    ! grep -rqF -f "$VALUES_FILE" -- "$@"
}

# kernel_keys_matching REGEX: prints the ids of the keys in the user keyring whose description
# matches the grep REGEX, such as "^jitbox:0123456789abcdef:".
kernel_keys_matching() {
    local id
    for id in $(keyctl rlist @u 2>/dev/null); do
        # rdescribe prints type;uid;gid;perm;description.
        if keyctl rdescribe "$id" 2>/dev/null | cut -d';' -f5- | grep -q -- "$1"; then
            echo "$id"
        fi
    done
}

# audit_sandbox_ids [AUDIT_LOG...]: prints the sandbox ids that the audit logs name, default
# the test's own, one a line. An `up` that stores a keyring item also writes an audit record
# with the sandbox id, whatever its result, so these ids cover every item the test made.
audit_sandbox_ids() {
    local logs=("$@") log
    if ((${#logs[@]} == 0)); then
        logs=("$AUDIT_LOG")
    fi
    for log in "${logs[@]}"; do
        if [[ -f $log ]]; then
            jq -r '.sandbox_id // empty' "$log" 2>/dev/null
        fi
    done | sort -u
}

# kernel_keys_of_sandboxes [AUDIT_LOG...]: prints the ids of the keys in the user keyring that
# belong to the sandboxes the audit logs name (see audit_sandbox_ids). Keys are described
# jitbox:SANDBOX_ID:KEY.
kernel_keys_of_sandboxes() {
    local sandbox_id
    for sandbox_id in $(audit_sandbox_ids "$@"); do
        kernel_keys_matching "^jitbox:$sandbox_id:"
    done
}

# remove_kernel_keys ID...
remove_kernel_keys() {
    local id
    for id in "$@"; do
        keyctl invalidate "$id" >/dev/null 2>&1 || keyctl unlink "$id" @u >/dev/null 2>&1
    done
}

# shellcheck source-path=SCRIPTDIR source=fake_aws.sh
source "$REPO_ROOT/tests/integration/fake_aws.sh"

# on_cleanup FUNCTION: runs FUNCTION in the EXIT trap after the sandboxes, background children
# and helper processes are gone, to undo what the test set up itself, such as a private dockerd
# or a mount. Hooks run in reverse order of registration.
on_cleanup() {
    CLEANUP_HOOKS+=("$1")
}

# --- cleanup --------------------------------------------------------------------------------------

# Removes what the test made. Anything that `jitbox down --all` leaves behind is a failed check,
# because down must remove every sandbox that has a record.
cleanup_run() {
    if ((TEST_NEEDS_JITBOX)) && [[ -x $JITBOX_BIN ]]; then
        local state_home
        for state_home in "$XDG_STATE_HOME" "${EXTRA_STATE_HOMES[@]}"; do
            XDG_STATE_HOME=$state_home run jb down --all --ignore-missing
            if ((RC != 0)); then
                fail "cleanup: jitbox down --all --ignore-missing exits 0 in $state_home" \
                    "exit status: $RC"
                show_output
            fi
        done
    fi
    if ((TEST_NEEDS_DOCKER)); then
        cleanup_docker
    fi

    local reapers=() pid
    # down stops each child before it returns, and 5 s covers a child that is still exiting.
    wait_until 5 no_reap_process
    mapfile -t reapers < <(reap_pids)
    if ((${#reapers[@]} > 0)); then
        fail "cleanup: no __reap process left after down --all" "pids: ${reapers[*]}"
        for pid in "${reapers[@]}"; do
            kill -TERM "$pid" 2>/dev/null
        done
        sleep 1
        for pid in "${reapers[@]}"; do
            if is_reap_process "$pid"; then
                kill -KILL "$pid" 2>/dev/null
            fi
        done
    fi
    for pid in "${HELPER_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    stop_secret_watch
    # After the sandboxes, because `jitbox down` may still call the fake AWS.
    fake_aws_stop
    local index
    for ((index = ${#CLEANUP_HOOKS[@]} - 1; index >= 0; index--)); do
        "${CLEANUP_HOOKS[index]}"
    done
}

# Removes the containers and networks that carry the run label. Each one is a failed check,
# because `jitbox down --all` must have removed it.
cleanup_docker() {
    local containers=() networks=()
    mapfile -t containers < <(run_containers)
    if ((${#containers[@]} > 0)); then
        fail "cleanup: no labelled container left after down --all" "${containers[@]}"
        dk rm -f "${containers[@]}" >/dev/null 2>&1
    fi
    mapfile -t networks < <(run_networks)
    if ((${#networks[@]} > 0)); then
        fail "cleanup: no labelled network left after down --all" "${networks[@]}"
        dk network rm "${networks[@]}" >/dev/null 2>&1
    fi
}

finish() {
    local status=$? # nonzero when a signal trap below or `die` ended the test
    trap - EXIT INT TERM HUP
    exec 1>&"$TEST_STDOUT_FD" 2>&"$TEST_STDERR_FD"
    cd / || true
    cleanup_run
    if ((TEST_SKIPPED && FAILED == 0)); then
        rm -rf "$TEST_DIR"
        printf '%d passed, 0 failed, skipped\n' "$PASSED"
        exit 77
    fi
    if ((status != 0 && FAILED == 0)); then
        fail "the test ran to its end" "it stopped early with exit status $status"
    fi

    if ((FAILED == 0)); then
        rm -rf "$TEST_DIR"
    else
        printf '# kept %s for inspection\n' "$TEST_DIR"
    fi
    if ((SKIPPED > 0)); then
        printf '%d passed, %d failed, %d skipped\n' "$PASSED" "$FAILED" "$SKIPPED"
    else
        printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
    fi
    if ((FAILED > 0 || PASSED == 0)); then
        exit 1
    fi
    exit 0
}

trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if ((TEST_NEEDS_JITBOX)) && [[ ! -x $JITBOX_BIN ]]; then
    die "JITBOX_BIN=$JITBOX_BIN is not an executable file. Build first: bash scripts/setup.sh"
fi
if ((TEST_NEEDS_DOCKER)); then
    case $JITBOX_TEST_ENGINE in
        docker) ;;
        podman)
            # shellcheck source-path=SCRIPTDIR source=podman_engine.sh
            source "$REPO_ROOT/tests/integration/podman_engine.sh"
            podman_engine_start
            ;;
        *) die "JITBOX_TEST_ENGINE=$JITBOX_TEST_ENGINE is unknown; use docker or podman" ;;
    esac
fi
if ((TEST_NEEDS_DOCKER)) && ! dk version >/dev/null 2>&1; then
    die "no Docker engine responds. Run bash scripts/setup.sh, which starts one"
fi
