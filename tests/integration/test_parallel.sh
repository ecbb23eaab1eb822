#!/usr/bin/env bash
# Concurrent commands on one state folder. Fifty `up`s run at once through `make -j50`, and
# then twenty processes mix up, extend, down and status on the same five names. Afterwards the
# state records, the engine's labelled containers and the background children must agree, and
# every failed command must be a documented conflict: exit 4 (not found) or 5 (name in use).
# shellcheck disable=SC2016 # the Makefile uses make variables such as $@ literally.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# network = "none": fifty isolated networks would exhaust Docker's default address pools.
cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.tiny]
image = "busybox:1.36"
command = ["sleep", "infinity"]
network = "none"
$(toml_labels)
ttl = "30m"
max_ttl = "2h"
EOF

# One command may wait for many others on a loaded machine, so the bound is generous.
JITBOX_TIMEOUT=300
results=$TEST_DIR/results
mkdir "$results"

# Prints the sandbox names that carry this run's label on the engine, sorted, one a line,
# repeated when several containers carry the same name.
engine_names() {
    dk ps -a --filter "label=$RUN_LABEL_KEY=$RUN_ID" --format '{{.Label "io.jitbox.name"}}' |
        sort
}

# Prints the sandbox names of this test's background children, sorted, one a line.
child_names() {
    local pid args=()
    for pid in $(reap_pids); do
        mapfile -d '' -t args 2>/dev/null <"/proc/$pid/cmdline" || continue
        echo "${args[-1]}"
    done | sort
}

# expect_state_matches_engine WHAT: records, containers and children name the same sandboxes,
# each once, and every record is running.
expect_state_matches_engine() {
    local records
    records=$(record_names | sort)
    expect_eq "$1: the engine has one container per record" "$(engine_names)" "$records"
    expect_eq "$1: each record has one background child" "$(child_names)" "$records"
    local name bad=()
    for name in $records; do
        if [[ $(jq -r .state "$(record_path "$name")") != running ]]; then
            bad+=("$name")
        fi
    done
    expect_eq "$1: every record is running" "${bad[*]}" ""
}

# --- fifty ups at once -----------------------------------------------------------------------------

count=50
{
    printf 'names :=%s\n' "$(printf ' jb-%d' $(seq "$count"))"
    printf 'all: $(names)\n'
    printf '$(names):\n'
    printf '\t-timeout -k 5 %s %q --config %q up tiny --name $@ >%q/$@.out 2>%q/$@.err; ' \
        "$JITBOX_TIMEOUT" "$JITBOX_BIN" "$TEST_DIR/jitbox.toml" "$results" "$results"
    printf 'echo $$? >%q/$@.rc\n' "$results"
    printf '.PHONY: all $(names)\n'
} >"$TEST_DIR/Makefile"
started=$SECONDS
run make -s -C "$TEST_DIR" -j"$count" all
printf '# %d ups took %ds\n' "$count" "$((SECONDS - started))"
expect_eq "make -j$count exits 0" "$RC" 0

failed=()
for i in $(seq "$count"); do
    rc=$(<"$results/jb-$i.rc")
    if [[ $rc != 0 ]]; then
        failed+=("jb-$i exit $rc: $(head -c 300 "$results/jb-$i.err")")
    fi
done
if ((${#failed[@]} == 0)); then
    pass "all $count ups exit 0"
else
    fail "all $count ups exit 0" "${failed[@]}"
fi
expect_eq "state has $count records" "$(record_names | wc -l)" "$count"
expect_eq "each name is recorded once" "$(record_names | sort -u | wc -l)" "$count"
expect_eq "the engine has $count containers" "$(engine_names | wc -l)" "$count"
expect_state_matches_engine "after $count ups"

expect_exit 0 jb down --all
expect_eq "down --all leaves no record" "$(record_names)" ""
expect_eq "down --all leaves no container" "$(engine_names)" ""
check "down --all leaves no background child" wait_until 30 no_reap_process

# --- up, extend, down and status mixed on five names -----------------------------------------------

operations=(up extend down status)
workers=20
rounds=4
# worker I ROUND: the Ith process's ROUNDth command, on one of five names.
worker() {
    local id=$1 round name op rc
    for round in $(seq "$rounds"); do
        name=p-$(((id * 3 + round) % 5))
        op=${operations[$(((id + round) % ${#operations[@]}))]}
        case $op in
            up) jb up tiny --name "$name" ;;
            extend) jb extend "$name" --by 1m ;;
            down) jb down "$name" ;;
            status) jb status "$name" ;;
        esac >"$results/mix-$id-$round.out" 2>"$results/mix-$id-$round.err"
        rc=$?
        printf '%s %s %s\n' "$op" "$name" "$rc" >"$results/mix-$id-$round.rc"
    done
}

pids=()
for id in $(seq "$workers"); do
    worker "$id" &
    pids+=($!)
done
for pid in "${pids[@]}"; do
    wait "$pid"
done

unexpected=()
for file in "$results"/mix-*.rc; do
    read -r op name rc <"$file"
    case $op:$rc in
        *:0 | up:5 | extend:4 | down:4 | status:4) ;;
        *) unexpected+=("$op $name exit $rc: $(head -c 300 "${file%.rc}.err")") ;;
    esac
done
expect_eq "each of the mixed commands ran" "$(find "$results" -name 'mix-*.rc' | wc -l)" \
    "$((workers * rounds))"
if ((${#unexpected[@]} == 0)); then
    pass "mixed commands fail only with exit 4 or 5"
else
    fail "mixed commands fail only with exit 4 or 5" "${unexpected[@]}"
fi
expect_state_matches_engine "after the mix"
expect_exit 0 jb audit verify
