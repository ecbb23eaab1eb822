#!/usr/bin/env bash
# Builds the policy benchmark in Release mode into build-bench/ and runs it.
#   bench/run_policy.sh           measures and prints the decision and loading tables
#   bench/run_policy.sh --smoke   3 samples per case and a small file, a quick check for CI
# Every other argument is passed to the benchmark, which rejects unknown ones.
# JITBOX_POLICY_BENCH names a built benchmark to run instead, and then nothing is built.
set -euo pipefail

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_build_dir="$bench_root/build-bench"
bench_log="$bench_build_dir/run-policy-build.log"
bench_program=${JITBOX_POLICY_BENCH:-$bench_build_dir/bench/jitbox_policy_bench}

if [[ -n ${JITBOX_POLICY_BENCH:-} ]]; then
    [[ -x $bench_program ]] || {
        printf 'run_policy: error: JITBOX_POLICY_BENCH=%s is not an executable\n' \
            "$bench_program" >&2
        exit 1
    }
elif ! mkdir -p "$bench_build_dir" || ! {
    cmake -S "$bench_root" -B "$bench_build_dir" -DCMAKE_BUILD_TYPE=Release \
        -DJITBOX_BUILD_BENCH=ON &&
        cmake --build "$bench_build_dir" --target jitbox_policy_bench -j2
} >"$bench_log" 2>&1; then
    cat "$bench_log" >&2
    printf 'run_policy: error: the build failed. Its output is above and in %s\n' \
        "$bench_log" >&2
    exit 1
fi

# The machine and how busy it is, because other processes' load shows in wall-clock figures.
bench_cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' || true)
printf 'run_policy: %s, %s cores, load average %s, %s\n\n' "${bench_cpu:-$(uname -m)}" \
    "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date -u +%Y-%m-%dT%H:%MZ)"
exec "$bench_program" "$@"
