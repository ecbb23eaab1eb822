#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang 14 into build-fuzz/ and runs each for a
# bounded time. Every run starts from the seed corpus fuzz/corpus/TARGET and the regression
# inputs fuzz/regressions/TARGET, which are read and never written. New inputs go to
# build-fuzz/corpus/TARGET, so the next run continues from them.
#
# Usage: scripts/fuzz.sh [--seconds N] [TARGET...]
#   --seconds N   fuzzing time per target (default 25, or JITBOX_FUZZ_SECONDS, where 0 skips
#                 the build and the runs)
#   TARGET        config, values, docker_reply, docker_pull, aws_xml, audit_verify (default all)
#
# It prints one line per target with the executions, the rate and the result. A crash, leak,
# sanitizer report or timeout makes it exit 1; the input is kept as
# build-fuzz/artifacts/TARGET/crash-* (or leak-*, timeout-*), and the log beside it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=$root/build-fuzz
seconds=${JITBOX_FUZZ_SECONDS:-25}
all_targets=(config values docker_reply docker_pull aws_xml audit_verify)
# Limits of one input: a slow input counts as a timeout, and memory above the limit as a crash.
input_timeout_seconds=10
rss_limit_mb=2048

fuzz_die() {
    printf 'fuzz: error: %s\n' "$*" >&2
    exit 2
}

targets=()
while (($# > 0)); do
    case $1 in
    --seconds)
        [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || fuzz_die "--seconds needs a whole number of seconds above 0"
        seconds=$2
        shift 2
        ;;
    -h | --help)
        sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        [[ " ${all_targets[*]} " == *" $1 "* ]] ||
            fuzz_die "unknown target \"$1\" (known: ${all_targets[*]})"
        targets+=("$1")
        shift
        ;;
    esac
done
if ((${#targets[@]} == 0)); then
    targets=("${all_targets[@]}")
fi

[[ $seconds =~ ^[0-9]+$ ]] ||
    fuzz_die "JITBOX_FUZZ_SECONDS=\"$seconds\" is not a whole number of seconds; use 0 to skip fuzzing"
# libFuzzer reads -max_total_time=0 as no limit, so 0 skips fuzzing instead of never ending.
if ((seconds == 0)); then
    echo "fuzz: skipped, because JITBOX_FUZZ_SECONDS is 0"
    exit 0
fi

command -v clang++-14 >/dev/null ||
    fuzz_die "clang++-14 is missing; install clang-14 and libclang-rt-14-dev (scripts/setup.sh does)"

build_log=$build_dir/fuzz-build.log
mkdir -p "$build_dir"
if ! {
    CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build_dir" -DJITBOX_FUZZ=ON \
        -DJITBOX_WERROR=ON &&
        cmake --build "$build_dir" -j2
} >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    fuzz_die "the fuzz build failed. Its output is in $build_log"
fi

# Reads "stat::NAME: VALUE" from libFuzzer's -print_final_stats output.
final_stat() {
    sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

failed=0
for target in "${targets[@]}"; do
    corpus=$build_dir/corpus/$target
    artifacts=$build_dir/artifacts/$target
    log=$artifacts/fuzz.log
    mkdir -p "$corpus" "$artifacts"
    inputs=("$corpus" "$root/fuzz/corpus/$target")
    if [[ -d $root/fuzz/regressions/$target ]]; then
        inputs+=("$root/fuzz/regressions/$target")
    fi
    options=(-max_total_time="$seconds" -timeout="$input_timeout_seconds"
        -rss_limit_mb="$rss_limit_mb" -print_final_stats=1 -artifact_prefix="$artifacts/")
    if [[ -f $root/fuzz/dictionaries/$target.dict ]]; then
        options+=(-dict="$root/fuzz/dictionaries/$target.dict")
    fi

    status=0
    "$build_dir/fuzz/jitbox_fuzz_$target" "${options[@]}" "${inputs[@]}" >"$log" 2>&1 || status=$?
    runs=$(final_stat number_of_executed_units "$log")
    rate=$(final_stat average_exec_per_sec "$log")
    coverage=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
    if ((status == 0)); then
        result=ok
    else
        failed=1
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        result="FAILED (exit $status): input ${artifact:-not written}, log $log"
    fi
    printf 'fuzz: %-13s %9s runs %7s/s  cov %5s  %s\n' "$target" "${runs:-?}" "${rate:-?}" \
        "${coverage:-?}" "$result"
done
exit "$failed"
