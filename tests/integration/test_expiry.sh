#!/usr/bin/env bash
# Expiry by the background child alone: after `up --ttl 3s` no other jitbox command runs, so
# nothing but the child can remove the container, its network and its record.
# shellcheck disable=SC2119 # toml_labels without extra labels takes no arguments.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.tiny]
image = "busybox:1.36"
command = ["sleep", "infinity"]
network = "isolated"
memory = "32MiB"
pids_limit = 16
read_only = true
$(toml_labels)
ttl = "1m"
max_ttl = "5m"
EOF

expect_exit 0 jb up tiny --name short --ttl 3s

mapfile -t containers < <(run_containers)
mapfile -t networks < <(run_networks)
mapfile -t children < <(reap_pids short)
expect_eq "up created one container" "${#containers[@]}" 1
expect_eq "up created one network" "${#networks[@]}" 1
expect_eq "up started one __reap process" "${#children[@]}" 1
check "the record exists after up" test -f "$(record_path short)"
if ((${#containers[@]} == 0)); then
    die "up created no container, so there is no expiry to watch"
fi

no_run_container() {
    [[ -z $(run_containers) ]]
}
no_run_network() {
    [[ -z $(run_networks) ]]
}
no_record() {
    [[ ! -e $(record_path short) ]]
}
expire_logged() {
    (($(audit_count expire short ok) >= 1))
}

# The ttl is 3 s and the teardown follows, so 15 s leaves room for a slow engine.
check "the container is removed within 15 s" wait_until 15 no_run_container
check "the network is removed" wait_until 5 no_run_network
check "the record is removed" wait_until 5 no_record
check "the __reap process exits" wait_until 5 no_reap_process short
check "audit.log has an expire line for short" wait_until 5 expire_logged

expect_eq "expire audit line names the template" \
    "$(jq -r 'select(.action == "expire" and .sandbox == "short") | .template' "$AUDIT_LOG" \
        2>&1 | head -n 1)" tiny
expect_eq "no record is left" "$(record_names)" ""
