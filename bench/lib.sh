# shellcheck shell=bash
# shellcheck disable=SC2034 # figures are set here and read by report.sh.
# shellcheck disable=SC2154 # bench_root is set by bench/run.
# The steps of bench/run: setup, one function per measured item, and cleanup. Sourcing this file
# only defines them. Figures go into the associative array `figure`, keyed ITEM.NAME, and each
# item's load average into `load`, for bench/report.sh.

# shellcheck source-path=SCRIPTDIR source=report.sh
source "$bench_root/bench/report.sh"

bench_smoke=0
bench_output=$bench_root/BENCHMARKS.md
bench_label_key=bench.jitbox.run
bench_socket=/var/run/docker.sock
bench_events_pid=
declare -A figure=()
declare -A load=()
declare -A command_line=()

bench_say() {
    printf 'bench: %s\n' "$*" >&2
}

bench_die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 1
}

bench_parse_arguments() {
    local output_given=0
    while (($# > 0)); do
        case $1 in
        --smoke) bench_smoke=1 ;;
        --output)
            [[ $# -ge 2 ]] || bench_die "--output needs a file name"
            bench_output=$2
            output_given=1
            shift
            ;;
        *) bench_die "unknown argument '$1'. Use --smoke or --output FILE" ;;
        esac
        shift
    done
    # A smoke run's figures mean nothing, so they never replace the recorded ones.
    if ((bench_smoke && !output_given)); then
        bench_output=
    fi
}

# The counts of each item: the full run, or a smoke run that only proves each step still runs.
bench_set_counts() {
    if ((bench_smoke)); then
        bench_status_sizes=(0 2)
        bench_status_runs=3
        bench_lifecycle_runs=2
        bench_child_seconds=3
        bench_teardown_count=2
        bench_spread_seconds=4
        bench_parallel_count=3
    else
        bench_status_sizes=(0 100 300)
        bench_status_runs=30
        bench_lifecycle_runs=15
        bench_child_seconds=60
        bench_teardown_count=20
        bench_spread_seconds=60
        bench_parallel_count=50
    fi
}

# hyperfine and GNU time are Debian 12 packages; scripts/setup.sh installs them too.
bench_install_tools() {
    local missing=() tool
    for tool in hyperfine:hyperfine /usr/bin/time:time curl:curl jq:jq python3:python3; do
        if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
            missing+=("${tool#*:}")
        fi
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    ((EUID == 0)) || bench_die "${missing[*]} missing. Install them with apt-get, as root"
    bench_say "installing ${missing[*]}"
    if ! {
        apt-get update &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
                "${missing[@]}"
    } >/dev/null </dev/null; then
        bench_die "apt-get install ${missing[*]} failed"
    fi
}

# Builds a Release jitbox in build-bench/ unless JITBOX_BIN names one.
bench_build() {
    if [[ -n ${JITBOX_BIN:-} ]]; then
        bench_jitbox=$JITBOX_BIN
        return 0
    fi
    local build_dir=$bench_root/build-bench log=$bench_root/build-bench/run-build.log
    mkdir -p "$build_dir"
    bench_say "building a Release jitbox in build-bench/ (log: $log)"
    if ! {
        cmake -S "$bench_root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
            -DJITBOX_BUILD_BENCH=ON -DJITBOX_BUILD_TESTS=OFF &&
            cmake --build "$build_dir" -j2 --target jitbox jitbox-waiter jitbox_secret_service jitbox_policy_bench
    } >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        bench_die "the build failed. Its output is in $log"
    fi
    bench_jitbox=$build_dir/jitbox
    export JITBOX_POLICY_BENCH=${JITBOX_POLICY_BENCH:-$build_dir/bench/jitbox_policy_bench}
}

# The template of every jitbox sandbox here; the docker and curl peers copy its settings.
bench_write_config() {
    cat >"$JITBOX_CONFIG" <<EOF
default_template = "bench"

[templates.bench]
image = "busybox:1.36"
command = ["sleep", "infinity"]
user = "65534:65534"
workdir = "/tmp"
network = "none"
read_only = false
cpus = 0.5
memory = "128MiB"
pids_limit = 64
labels = { "$bench_label_key" = "$bench_run_id" }
ttl = "30m"
max_ttl = "2h"
EOF
}

bench_prepare() {
    bench_set_counts
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
        bench_die "no Docker engine responds on $bench_socket. Run scripts/setup.sh as root"
    docker image inspect busybox:1.36 >/dev/null 2>&1 ||
        bench_die "the image busybox:1.36 is missing. Run scripts/setup.sh as root"
    bench_build
    [[ -x $bench_jitbox ]] || bench_die "$bench_jitbox is not an executable jitbox"

    bench_dir=$(mktemp -d /tmp/jitbox-bench.XXXXXX)
    bench_run_id=$(basename "$bench_dir" | tr '[:upper:]' '[:lower:]')
    export XDG_STATE_HOME=$bench_dir/state XDG_CONFIG_HOME=$bench_dir/config
    export JITBOX_CONFIG=$bench_dir/jitbox.toml
    mkdir -p "$XDG_STATE_HOME" "$XDG_CONFIG_HOME"
    bench_write_config
    bench_api=$(docker version --format '{{.Server.APIVersion}}')
    bench_write_peers
    bench_say "state, configuration and scripts in $bench_dir, label $bench_label_key=$bench_run_id"
}

jb() {
    "$bench_jitbox" "$@"
}

# Writes the three lifecycle scripts that hyperfine runs: jitbox, the docker CLI and curl. Each
# creates and removes one container with the same image, command, user, limits, network mode
# and labels.
bench_write_peers() {
    local labels_json sandbox_label
    sandbox_label=$(printf 'io.jitbox.sandbox=%s' "$bench_run_id")
    labels_json=$(jq -cn --arg key "$bench_label_key" --arg run "$bench_run_id" \
        '{($key): $run, "io.jitbox.sandbox": $run}')

    printf '#!/bin/sh\n%q up bench --name lifecycle --ttl 10m >/dev/null && %q down lifecycle\n' \
        "$bench_jitbox" "$bench_jitbox" >"$bench_dir/pair_jitbox.sh"

    cat >"$bench_dir/pair_docker.sh" <<EOF
#!/bin/sh
docker run -d --name bench-docker-$bench_run_id --label $bench_label_key=$bench_run_id \\
    --label $sandbox_label --cap-drop ALL --security-opt no-new-privileges --network none \\
    --memory 128m --memory-swap 128m --cpus 0.5 --pids-limit 64 --user 65534:65534 \\
    --workdir /tmp --restart no busybox:1.36 sleep infinity >/dev/null &&
    docker rm -f bench-docker-$bench_run_id >/dev/null
EOF

    jq -n --argjson labels "$labels_json" '{
        Image: "busybox:1.36", Cmd: ["sleep", "infinity"], User: "65534:65534",
        WorkingDir: "/tmp", Env: [], Labels: $labels,
        HostConfig: {CapDrop: ["ALL"], CapAdd: [], SecurityOpt: ["no-new-privileges"],
            ReadonlyRootfs: false, NetworkMode: "none", PortBindings: {}, Mounts: [],
            Init: false, RestartPolicy: {Name: "no"}, PidsLimit: 64,
            Memory: 134217728, MemorySwap: 134217728, NanoCpus: 500000000}}' \
        >"$bench_dir/create.json"
    local api=http://localhost/v$bench_api name=bench-curl-$bench_run_id
    cat >"$bench_dir/pair_curl.sh" <<EOF
#!/bin/sh
set -e
curl -sf --unix-socket $bench_socket -H 'Content-Type: application/json' \\
    --data-binary @$bench_dir/create.json "$api/containers/create?name=$name" >/dev/null
curl -sf --unix-socket $bench_socket -X POST "$api/containers/$name/start" >/dev/null
curl -sf --unix-socket $bench_socket -X DELETE "$api/containers/$name?force=true&v=true" >/dev/null
EOF
    chmod +x "$bench_dir"/pair_*.sh

    # The list request that `jitbox status` makes: every container with the sandbox label.
    bench_list_url="$api/containers/json?all=1&filters=%7B%22label%22%3A%5B%22io.jitbox.sandbox%22%5D%7D"
}

# Records the load average before an item, so every figure comes with how busy the machine was.
bench_begin() {
    load[$1]=$(cut -d' ' -f1-3 /proc/loadavg)
    bench_say "measuring $1 (load average ${load[$1]})"
}

# bench_hyperfine ITEM RUNS NAME COMMAND [NAME COMMAND...]: runs hyperfine without a shell and
# stores each command's median in seconds as figure[ITEM.NAME].
bench_hyperfine() {
    local item=$1 runs=$2 json=$bench_dir/$1.json
    shift 2
    local arguments=() name
    while (($# > 0)); do
        arguments+=(-n "$1" "$2")
        command_line[$item.$1]=$2
        shift 2
    done
    hyperfine -N --style none --warmup 2 --runs "$runs" --export-json "$json" \
        "${arguments[@]}" >/dev/null
    while IFS=$'\t' read -r name median; do
        figure[$item.$name]=$median
    done < <(jq -r '.results[] | [.command, .median] | @tsv' "$json")
}

# Creates sandboxes bench-N until COUNT of them exist, two `up`s at a time.
bench_grow_to() {
    local count=$1 existing
    existing=$(jb status --json | jq 'length')
    if ((existing >= count)); then
        return 0
    fi
    seq "$((existing + 1))" "$count" |
        xargs -P 2 -I{} "$bench_jitbox" up bench --name bench-{} --ttl 1h \
            >/dev/null 2>>"$bench_dir/grow_errors.txt" ||
        bench_die "creating $count sandboxes failed: $(grep -v '^sandbox ' \
            "$bench_dir/grow_errors.txt" | tail -n 5)"
}

bench_measure_status() {
    local size item
    for size in "${bench_status_sizes[@]}"; do
        item=status_$size
        bench_grow_to "$size"
        bench_begin "$item"
        figure[$item.listed]=$(curl -sf --unix-socket "$bench_socket" "$bench_list_url" |
            jq 'length')
        bench_hyperfine "$item" "$bench_status_runs" \
            jitbox "$bench_jitbox status" \
            "docker ps" "docker ps -a --filter label=io.jitbox.sandbox" \
            curl "curl -sf --unix-socket $bench_socket $bench_list_url"
    done
    jb down --all >/dev/null
}

bench_measure_lifecycle() {
    bench_begin lifecycle
    bench_hyperfine lifecycle "$bench_lifecycle_runs" \
        jitbox "sh $bench_dir/pair_jitbox.sh" \
        docker "sh $bench_dir/pair_docker.sh" \
        curl "sh $bench_dir/pair_curl.sh"
    # The fsync and fdatasync calls of one up + down, the background child included.
    if command -v strace >/dev/null 2>&1; then
        strace -f -c -e trace=fsync,fdatasync -o "$bench_dir/fsync.txt" \
            sh "$bench_dir/pair_jitbox.sh"
        figure[lifecycle.fsyncs]=$(awk '$NF == "fsync" || $NF == "fdatasync" { n += $4 }
            END { print n + 0 }' "$bench_dir/fsync.txt")
    fi
}

# Stores the figures that bench/sample_process.py wrote for the child NAME.
bench_read_child() {
    local name=$1 key value
    while IFS=$'\t' read -r key value; do
        figure[child_$name.$key]=$value
    done <"$bench_dir/child_$name.tsv"
}

bench_measure_child() {
    bench_begin child
    # A copy of the binary with no jitbox-waiter beside it waits in the full binary, as jitbox
    # did before the waiter existed.
    mkdir -p "$bench_dir/no-waiter"
    cp "$bench_jitbox" "$bench_dir/no-waiter/jitbox"
    jb up bench --name child-waiter --ttl 30m >/dev/null
    "$bench_dir/no-waiter/jitbox" up bench --name child-full --ttl 30m >/dev/null

    local name pid samplers=()
    for name in waiter full; do
        pid=$(jb status "child-$name" --json | jq -r '.[0].child_pid')
        figure[child_$name.program]=$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n 1)
        python3 "$bench_root/bench/sample_process.py" "$pid" "$bench_child_seconds" \
            >"$bench_dir/child_$name.tsv" &
        samplers+=($!)
    done
    for pid in "${samplers[@]}"; do
        wait "$pid" || bench_die "sampling a background child failed"
    done
    bench_read_child waiter
    bench_read_child full
    jb down child-waiter child-full >/dev/null
}

bench_measure_teardown() {
    bench_begin teardown
    docker events --filter "label=$bench_label_key=$bench_run_id" --filter type=container \
        --filter event=destroy \
        --format '{{.TimeNano}} {{.Actor.Attributes.name}} {{index .Actor.Attributes "io.jitbox.expires-at"}}' \
        >"$bench_dir/destroy_events.txt" &
    bench_events_pid=$!

    # The same deadline: every `up` at once, each with a 5 s ttl.
    local i pids=()
    for ((i = 1; i <= bench_teardown_count; i++)); do
        jb up bench --name same-$i --ttl 5s >/dev/null 2>>"$bench_dir/teardown_errors.txt" &
        pids+=($!)
    done
    local pid
    for pid in "${pids[@]}"; do
        wait "$pid" || bench_die "an up of the same-deadline group failed: $(cat "$bench_dir/teardown_errors.txt")"
    done

    # Spread deadlines: one `up` after another, each ttl chosen so that the deadlines fall
    # evenly over bench_spread_seconds, starting once every `up` should be done.
    local start=$(($(date +%s) + 10 + bench_teardown_count)) target ttl
    for ((i = 0; i < bench_teardown_count; i++)); do
        target=$((start + i * bench_spread_seconds / bench_teardown_count))
        ttl=$((target - $(date +%s)))
        ((ttl >= 5)) || ttl=5
        jb up bench --name spread-$i --ttl "${ttl}s" >/dev/null
    done

    # Every deadline has passed by then, unless an `up` took longer than planned.
    local give_up=$((start + bench_spread_seconds + 60))
    while (($(date +%s) < give_up)) &&
        [[ -n $(docker ps -aq --filter "label=$bench_label_key=$bench_run_id") ]]; do
        sleep 1
    done
    kill "$bench_events_pid" 2>/dev/null || true
    wait "$bench_events_pid" 2>/dev/null || true
    bench_events_pid=

    local group key value
    for group in same spread; do
        while IFS=$'\t' read -r key value; do
            figure[teardown_$group.$key]=$value
        done < <(python3 "$bench_root/bench/lateness.py" "$group" "$bench_dir/destroy_events.txt")
    done
}

bench_seconds_since() {
    awk -v start="$1" -v now="$(date +%s.%N)" 'BEGIN { printf "%.3f", now - start }'
}

bench_measure_parallel() {
    bench_begin parallel
    local count=$bench_parallel_count i start
    start=$(date +%s.%N)
    for ((i = 1; i <= count; i++)); do
        jb up bench --name row-$i >/dev/null 2>>"$bench_dir/parallel_errors.txt" ||
            bench_die "up row-$i failed: $(tail -n 1 "$bench_dir/parallel_errors.txt")"
    done
    figure[parallel.in_a_row]=$(bench_seconds_since "$start")
    jb down --all >/dev/null

    local pids=() failed=0 pid
    start=$(date +%s.%N)
    for ((i = 1; i <= count; i++)); do
        jb up bench --name at-once-$i >/dev/null 2>>"$bench_dir/parallel_errors.txt" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || failed=$((failed + 1))
    done
    figure[parallel.at_once]=$(bench_seconds_since "$start")
    figure[parallel.count]=$count
    figure[parallel.failed]=$failed
    figure[parallel.running]=$(jb status --json | jq '[.[] | select(.state == "running")] | length')
    jb down --all >/dev/null
}

bench_measure_policy() {
    bench_begin policy
    local arguments=()
    if ((bench_smoke)); then
        arguments+=(--smoke)
    fi
    "$bench_root/bench/run_policy.sh" "${arguments[@]}" >"$bench_dir/policy.txt" 2>&1 ||
        bench_die "bench/run_policy.sh failed: $(tail -n 20 "$bench_dir/policy.txt")"
}

# Removes every sandbox, container and background child of this run, and the temp folder.
bench_cleanup() {
    local status=$?
    trap - EXIT
    if [[ -n ${bench_events_pid:-} ]]; then
        kill "$bench_events_pid" 2>/dev/null || true
    fi
    if [[ -n ${bench_dir:-} && -d $bench_dir ]]; then
        jb down --all --ignore-missing >/dev/null 2>&1 || true
        local ids
        ids=$(docker ps -aq --filter "label=$bench_label_key=$bench_run_id")
        if [[ -n $ids ]]; then
            # shellcheck disable=SC2086 # one id per word
            docker rm -f $ids >/dev/null 2>&1 || true
        fi
        # Background children whose command line names this run's state folder.
        local proc
        for proc in /proc/[0-9]*; do
            if tr '\0' ' ' 2>/dev/null <"$proc/cmdline" | grep -qF "$bench_dir/"; then
                kill "${proc#/proc/}" 2>/dev/null || true
            fi
        done
        rm -rf "$bench_dir"
    fi
    exit "$status"
}
