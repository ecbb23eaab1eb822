# shellcheck shell=bash
# shellcheck disable=SC2154 # the figures and counts are set by lib.sh.
# Writes the report of bench/run from the arrays `figure`, `load` and `command_line` (see
# lib.sh): BENCHMARKS.md in a full run, standard output in a smoke run. Sourcing this file only
# defines functions.

# Prints seconds as milliseconds with one decimal.
bench_ms() {
    awk -v s="$1" 'BEGIN { printf "%.1f ms", s * 1000 }'
}

# bench_ratio A B: A / B with two decimals.
bench_ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'
}

# bench_verdict VALUE LIMIT: "met" when VALUE < LIMIT (or <= with a third argument "le").
bench_verdict() {
    awk -v v="$1" -v l="$2" -v op="${3:-lt}" 'BEGIN {
        ok = (op == "le") ? (v <= l) : (v < l)
        print ok ? "met" : "**missed**"
    }'
}

bench_report_machine() {
    local cpu
    cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' || true)
    cat <<EOF
## Machine and versions

| | |
|---|---|
| CPU | ${cpu:-$(uname -m)}, $(nproc) cores |
| memory | $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) |
| kernel | $(uname -r) |
| date | $(date -u +%Y-%m-%dT%H:%MZ) |
| jitbox | $(jb --version 2>&1 | head -n 1), \`$bench_jitbox\` |
| dockerd | $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})') |
| docker CLI | $(docker version --format '{{.Client.Version}}') |
| curl | $(curl --version | head -n 1 | cut -d' ' -f1-2) |
| hyperfine | $(hyperfine --version | cut -d' ' -f2) |

Each section names the load average (1, 5 and 15 minutes) when it started. Other programs
that ran meanwhile slow every command alike, but they widen the spread.
EOF
}

bench_report_status() {
    cat <<EOF

## 1. Start-up and listing: \`jitbox status\`

Budget: at most 0.8 × \`docker ps\` and at most 1.2 × the curl floor at every size. Medians of
$bench_status_runs runs each after 2 warm-up runs, from \`hyperfine -N\`. "Listed" is the
number of containers with the label io.jitbox.sandbox on the engine, which all three list.

| sandboxes | listed | load | jitbox | docker ps | curl | vs docker ps | vs curl |
|---:|---:|---|---:|---:|---:|---|---|
EOF
    local size item jitbox docker curl to_docker to_curl
    for size in "${bench_status_sizes[@]}"; do
        item=status_$size
        jitbox=${figure[$item.jitbox]}
        docker=${figure[$item.docker ps]}
        curl=${figure[$item.curl]}
        to_docker=$(bench_ratio "$jitbox" "$docker")
        to_curl=$(bench_ratio "$jitbox" "$curl")
        printf '| %s | %s | %s | %s | %s | %s | %s %s | %s %s |\n' "$size" \
            "${figure[$item.listed]}" "${load[$item]}" "$(bench_ms "$jitbox")" \
            "$(bench_ms "$docker")" "$(bench_ms "$curl")" \
            "$to_docker" "$(bench_verdict "$to_docker" 0.8 le)" \
            "$to_curl" "$(bench_verdict "$to_curl" 1.2 le)"
    done
    local last=status_${bench_status_sizes[-1]}
    cat <<EOF

Commands (the state folder holds the sandboxes; \`bench/run\` sets XDG_STATE_HOME):

    hyperfine -N '${command_line[$last.jitbox]}'
    hyperfine -N '${command_line[$last.docker ps]}'
    hyperfine -N '${command_line[$last.curl]}'
EOF
}

bench_report_lifecycle() {
    local jitbox=${figure[lifecycle.jitbox]} docker=${figure[lifecycle.docker]}
    local curl=${figure[lifecycle.curl]} to_docker to_curl
    to_docker=$(bench_ratio "$jitbox" "$docker")
    to_curl=$(bench_ratio "$jitbox" "$curl")
    cat <<EOF

## 2. Lifecycle: up + down

Budget: at most 0.95 × \`docker run -d\` + \`docker rm -f\` and at most 1.1 × the curl floor.
Medians of $bench_lifecycle_runs pairs each, load average ${load[lifecycle]}. All three create
busybox:1.36 running \`sleep infinity\` as 65534:65534 in /tmp, with no network, 0.5 CPU,
128 MiB of memory and no swap, 64 pids, all capabilities dropped and no-new-privileges. The
curl floor makes only the create, start and forced delete requests; jitbox also pings the
engine, inspects the image, writes its state record and audit log and starts its background
child.

| pair | median | jitbox / pair | budget |
|---|---:|---|---|
| jitbox up + down | $(bench_ms "$jitbox") | | |
| docker run -d + docker rm -f | $(bench_ms "$docker") | $to_docker | $(bench_verdict "$to_docker" 0.95 le) |
| curl create, start, delete | $(bench_ms "$curl") | $to_curl | $(bench_verdict "$to_curl" 1.1 le) |

fsync and fdatasync calls in one jitbox pair, background child included (\`strace -f -c\`):
${figure[lifecycle.fsyncs]:-not measured, strace is missing}.

The three scripts are written by \`bench/run\` into its temp folder; the jitbox one is

    ${command_line[lifecycle.jitbox]}: jitbox up bench --name lifecycle --ttl 10m && jitbox down lifecycle
EOF
}

bench_report_child() {
    local name rss
    cat <<EOF

## 3. The background child while it waits

Budget: under 4 MiB resident and no periodic wake-ups. Sampled from /proc once a second over
$bench_child_seconds s (\`bench/sample_process.py\`), load average ${load[child]}. "Full
binary" is the same jitbox copied into a folder with no jitbox-waiter beside it, so its child
waits in the full binary as before the waiter existed.

| child | program | max RSS | RSS | PSS | private | CPU | context switches | budget |
|---|---|---:|---:|---:|---:|---:|---:|---|
EOF
    local switches
    for name in waiter full; do
        rss=${figure[child_$name.rss_max_kib]}
        switches=${figure[child_$name.switches]}
        printf '| %s | %s | %s KiB | %s KiB | %s KiB | %s KiB | %s ms | %s | %s |\n' \
            "$name" "$(basename "${figure[child_$name.program]}")" "$rss" \
            "${figure[child_$name.rss_kib]}" "${figure[child_$name.pss_kib]}" \
            "${figure[child_$name.private_kib]}" "${figure[child_$name.cpu_ms]}" \
            "$switches" "$(bench_verdict "$rss" 4096) memory, $(bench_verdict "$switches" 1) wake-ups"
    done
}

bench_report_teardown() {
    local group
    cat <<EOF

## 4. Teardown lateness

Budget: 95th percentile under 1 s and maximum under 2 s. Lateness is the time from a sandbox's
deadline (whole seconds, from the container's label io.jitbox.expires-at) to the engine's
destroy event for the container (\`docker events\`). "Same" is $bench_teardown_count \`up --ttl 5s\` started at once;
"spread" is $bench_teardown_count sandboxes whose deadlines fall over $bench_spread_seconds s.
Load average ${load[teardown]}.

| group | sandboxes | removed | deadlines span | median | 95th percentile | max | budget |
|---|---:|---:|---:|---:|---:|---:|---|
EOF
    for group in same spread; do
        printf '| %s | %s | %s | %s s | %s s | %s s | %s s | p95 %s, max %s |\n' "$group" \
            "$bench_teardown_count" "${figure[teardown_$group.removed]}" \
            "${figure[teardown_$group.deadline_spread]:-0}" \
            "${figure[teardown_$group.median]:-n/a}" "${figure[teardown_$group.p95]:-n/a}" \
            "${figure[teardown_$group.max]:-n/a}" \
            "$(bench_verdict "${figure[teardown_$group.p95]:-99}" 1)" \
            "$(bench_verdict "${figure[teardown_$group.max]:-99}" 2)"
    done
}

bench_report_parallel() {
    local ok=missed failed=${figure[parallel.failed]} running=${figure[parallel.running]}
    if [[ $failed == 0 && $running == "${figure[parallel.count]}" ]]; then
        ok=met
    fi
    cat <<EOF

## 5. Parallel: ${figure[parallel.count]} \`jitbox up\` at once

Budget: every \`up\` succeeds. Load average ${load[parallel]}.

| run | wall time |
|---|---:|
| ${figure[parallel.count]} in a row | ${figure[parallel.in_a_row]} s |
| ${figure[parallel.count]} at once | ${figure[parallel.at_once]} s |

Failed: ${figure[parallel.failed]}; running afterwards: ${figure[parallel.running]} of
${figure[parallel.count]}. Budget $ok.
EOF
}

bench_report_policy() {
    cat <<EOF

## 6. Policy decisions

Output of \`bench/run_policy.sh$( ((bench_smoke)) && echo " --smoke")\`, load average
${load[policy]}; bench/README.md describes the cases.

\`\`\`
$(cat "$bench_dir/policy.txt")
\`\`\`
EOF
}

bench_report_body() {
    cat <<EOF
# Benchmarks

Written by \`bench/run\`$( ((bench_smoke)) && echo " --smoke (tiny counts: no figure here means anything)"),
which measures jitbox next to the docker CLI and next to curl on the engine's socket. Figures
are medians unless marked, measured on one machine; a run elsewhere gives other numbers.
EOF
    bench_report_machine
    bench_report_status
    bench_report_lifecycle
    bench_report_child
    bench_report_teardown
    bench_report_parallel
    bench_report_policy
    if [[ -f $bench_root/bench/findings.md ]]; then
        printf '\n'
        cat "$bench_root/bench/findings.md"
    fi
}

bench_write_report() {
    if [[ -z $bench_output ]]; then
        bench_report_body
        return 0
    fi
    bench_report_body >"$bench_output.tmp"
    mv "$bench_output.tmp" "$bench_output"
    bench_say "wrote $bench_output"
}
