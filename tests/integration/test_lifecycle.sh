#!/usr/bin/env bash
# Lifecycle of a sandbox against the real engine (dockerd, or Podman with
# JITBOX_TEST_ENGINE=podman): up with every hardening and resource option, what the engine and
# `status` report, extend within and beyond max_ttl, name clashes, down, down after the
# container vanished, state permissions and the audit log.
# shellcheck disable=SC2016 # Go templates and jq filters use $ literally.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


owner=$(id -un)
mkdir "$TEST_DIR/share"
echo "from the host" >"$TEST_DIR/share/hello.txt"

cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.web]
image = "busybox:1.36"
command = ["sleep", "infinity"]
user = "65534:65534"
network = "isolated"
ports = ["8080"]
cpus = 0.5
memory = "64MiB"
pids_limit = 32
read_only = true
cap_add = ["NET_BIND_SERVICE"]
mounts = [{ source = "$TEST_DIR/share", target = "/share", writable = false }]
$(toml_labels test.jitbox.team=qa)
ttl = "10m"
max_ttl = "1h"
EOF

# --- up -------------------------------------------------------------------------------------------

expect_exit 0 jb up web --name t1 --ttl 10m
if printf 't1\n' | cmp -s - "$TEST_DIR/last.out"; then
    pass "up prints exactly the name on stdout"
else
    fail "up prints exactly the name on stdout" "stdout: '$OUT'"
fi

expect_exit 0 jb status t1 --json
status_json=$OUT
id=$(json "$status_json" '.[0].id')
expect_match "status: id is set" "$id" '^[0-9a-z]+$'
if [[ -z $id || $id == null ]]; then
    die "status --json shows no sandbox t1, and every later check needs it"
fi
container="jitbox-t1-${id:0:8}"
network=$container

check "container $container exists" container_exists "$container"
check "network $network exists" network_exists "$network"
expect_eq "container is running" "$(container_field "$container" '{{.State.Running}}')" true
expect_eq "one container carries the run label" "$(run_containers | wc -l)" 1

# --- labels ---------------------------------------------------------------------------------------

expires_at=$(json "$status_json" '.[0].expires_at')
container_label() {
    container_field "$container" "{{index .Config.Labels \"$1\"}}"
}
network_label() {
    network_field "$network" "{{index .Labels \"$1\"}}"
}
for kind in container network; do
    label=${kind}_label
    expect_eq "$kind: label io.jitbox.sandbox" "$($label io.jitbox.sandbox)" "$id"
    expect_eq "$kind: label io.jitbox.owner" "$($label io.jitbox.owner)" "$owner"
    expect_eq "$kind: label io.jitbox.template" "$($label io.jitbox.template)" web
    expect_eq "$kind: label io.jitbox.name" "$($label io.jitbox.name)" t1
    label_expiry=$($label io.jitbox.expires-at)
    expect_match "$kind: label io.jitbox.expires-at is RFC 3339 UTC" "$label_expiry" \
        "$RFC3339_UTC"
    expect_eq "$kind: label io.jitbox.expires-at equals status expires_at" \
        "$(epoch_of "$label_expiry")" "$(epoch_of "$expires_at")"
    expect_eq "$kind: template label test.jitbox.team" "$($label test.jitbox.team)" qa
    expect_eq "$kind: run label" "$($label "$RUN_LABEL_KEY")" "$RUN_ID"
done

# --- hardening and limits -------------------------------------------------------------------------

field() {
    container_field "$container" "$1"
}
# The capability sets of the sandbox's process, from /proc rather than from inspect, because
# Podman reports CapDrop and CapAdd relative to its own default set while Docker reports the
# request. CAP_NET_BIND_SERVICE is bit 10. Docker keeps it out of the effective set of uid
# 65534, and Podman 4.3 makes it effective (and ambient) for a non-root user too.
process_status_field() {
    dk exec "$container" grep "^$1:" /proc/1/status 2>&1 | awk '{ print $2 }'
}
expect_eq "bounding set is NET_BIND_SERVICE only" "$(process_status_field CapBnd)" \
    0000000000000400
expect_match "effective set is within the bounding set" "$(process_status_field CapEff)" \
    '^0000000000000[04]00$'
expect_eq "no_new_privs is set" "$(process_status_field NoNewPrivs)" 1
expect_match "SecurityOpt has no-new-privileges" "$(field '{{json .HostConfig.SecurityOpt}}')" \
    '"no-new-privileges(:true|=true)?"'
expect_eq "PidsLimit is 32" "$(field '{{.HostConfig.PidsLimit}}')" 32
expect_eq "Memory is 64 MiB" "$(field '{{.HostConfig.Memory}}')" $((64 * 1024 * 1024))
expect_eq "NanoCpus is 0.5 CPU" "$(field '{{.HostConfig.NanoCpus}}')" 500000000
expect_eq "ReadonlyRootfs is true" "$(field '{{.HostConfig.ReadonlyRootfs}}')" true
expect_eq "user is 65534:65534" "$(field '{{.Config.User}}')" 65534:65534
expect_eq "mount source is the host folder" \
    "$(field '{{range .Mounts}}{{if eq .Destination "/share"}}{{.Source}}{{end}}{{end}}')" \
    "$TEST_DIR/share"
expect_eq "mount is read-only" \
    "$(field '{{range .Mounts}}{{if eq .Destination "/share"}}{{.RW}}{{end}}{{end}}')" false
expect_eq "mounted file is readable in the sandbox" \
    "$(dk exec "$container" cat /share/hello.txt 2>&1)" "from the host"
expect_eq "port 8080 is published on 127.0.0.1" \
    "$(field '{{range (index .HostConfig.PortBindings "8080/tcp")}}{{.HostIp}}{{end}}')" \
    127.0.0.1
expect_contains "container is attached to its network" \
    "$(field '{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}')" "$network"

# --- status ---------------------------------------------------------------------------------------

expect_eq "status --json lists one sandbox" "$(json "$status_json" 'length')" 1
expect_eq "status: name" "$(json "$status_json" '.[0].name')" t1
expect_eq "status: template" "$(json "$status_json" '.[0].template')" web
expect_eq "status: provider" "$(json "$status_json" '.[0].provider')" docker
expect_eq "status: state" "$(json "$status_json" '.[0].state')" running
expect_eq "status: owner" "$(json "$status_json" '.[0].owner')" "$owner"
created_at=$(json "$status_json" '.[0].created_at')
expect_match "status: created_at is RFC 3339 UTC" "$created_at" "$RFC3339_UTC"
expect_match "status: expires_at is RFC 3339 UTC" "$expires_at" "$RFC3339_UTC"
created_epoch=$(epoch_of "$created_at")
expires_epoch=$(epoch_of "$expires_at")
expect_eq "status: expires_at - created_at is the ttl of 600 s" \
    "$((${expires_epoch:-0} - ${created_epoch:-0}))" 600
clock_skew=$(($(date +%s) - ${created_epoch:-0}))
check "status: created_at is within a minute of now" test "${clock_skew#-}" -le 60

child_pid=$(json "$status_json" '.[0].child_pid')
expect_match "status: child_pid is a number" "$child_pid" '^[0-9]+$'
check "status: child_pid is alive" pid_alive "$child_pid"
check "status: child_pid runs jitbox __reap" is_reap_process "$child_pid"
expect_eq "__reap processes for t1" "$(reap_pids t1)" "$child_pid"

expect_eq "status: resource names" \
    "$(json "$status_json" '[.[0].resources.items[].name] | sort | unique | join(" ")')" \
    "$container"
expect_eq "status: resource kinds" \
    "$(json "$status_json" '[.[0].resources.items[].kind] | sort | join(" ")')" \
    "container network"
container_id=$(container_field "$container" '{{.Id}}')
expect_eq "status: container resource id is the engine's id" \
    "$(json "$status_json" '.[0].resources.items[] | select(.kind == "container") | .id')" \
    "$container_id"
expect_match "status: port container_port" \
    "$(json "$status_json" '.[0].resources.ports[0].container_port | tostring')" '^8080(/tcp)?$'
expect_eq "status: port host_ip" \
    "$(json "$status_json" '.[0].resources.ports[0].host_ip')" 127.0.0.1
expect_match "status: port host_port is a number" \
    "$(json "$status_json" '.[0].resources.ports[0].host_port')" '^[0-9]+$'

expect_exit 0 jb status -q
expect_eq "status -q prints only t1" "$OUT" t1
expect_exit 0 jb status
expect_match "status table has its header" "$OUT" \
    'NAME +TEMPLATE +PROVIDER +STATE +EXPIRES IN +OWNER'
expect_contains "status table lists t1" "$OUT" t1
expect_exit 0 jb_raw status -q --config "$TEST_DIR/jitbox.toml"
expect_eq "--config after the subcommand is accepted" "$OUT" t1
expect_exit 4 jb status nosuch

if [[ $JITBOX_TEST_ENGINE == podman ]]; then
    engine_product=Podman
else
    engine_product=Docker
fi
expect_exit 0 jb -v status -q
expect_match "status -v names the engine that answered" "$ERR" \
    "engine at unix://[^ ]+: $engine_product [0-9]"
expect_exit 0 jb templates --json
expect_contains "templates --json lists web" "$OUT" '"web"'

# --- extend ---------------------------------------------------------------------------------------

expires_of_t1() {
    jb status t1 --json 2>/dev/null | jq -r '.[0].expires_at' 2>/dev/null
}

expect_exit 0 jb extend t1 --by 5m
after_extend=$(epoch_of "$(expires_of_t1)")
expect_eq "extend --by 5m moves expires_at by 300 s" \
    "$((${after_extend:-0} - ${expires_epoch:-0}))" 300

# expires_at is created_at + 15m now. With max_ttl at 1h, 46m more would pass it and 45m reaches
# it exactly.
expect_exit 6 jb extend t1 --by 46m
expect_eq "denied extend leaves expires_at unchanged" "$(epoch_of "$(expires_of_t1)")" \
    "$after_extend"
expect_exit 0 jb extend t1 --by 45m
expect_eq "extend may reach created_at + max_ttl exactly" \
    "$(($(epoch_of "$(expires_of_t1)") - ${created_epoch:-0}))" 3600
expect_exit 6 jb extend t1 --by 1s
expect_exit 4 jb extend nosuch --by 5m
check "child is still alive after extend" pid_alive "$child_pid"

# --- name clashes and a sandbox named like a subcommand -------------------------------------------

expect_exit 5 jb up web --name t1
expect_eq "a clashing up creates no second container" "$(run_containers | wc -l)" 1

expect_exit 0 jb --json up web --name status
expect_eq "up --json prints one object with the name" "$(json "$OUT" '.name')" status
expect_exit 0 jb status status --json
expect_eq "status status shows the sandbox named status" "$(json "$OUT" '.[0].name')" status
status_id=$(json "$OUT" '.[0].id')
expect_exit 0 jb down status
check "down status removes its container" container_gone "jitbox-status-${status_id:0:8}"
check "down status removes its record" test ! -e "$(record_path status)"

# --- state permissions ----------------------------------------------------------------------------

expect_eq "state dir is 0700" "$(stat -c %a "$STATE_DIR" 2>&1)" 700
expect_eq "sandboxes dir is 0700" "$(stat -c %a "$STATE_DIR/sandboxes" 2>&1)" 700
expect_eq "record t1.json is 0600" "$(stat -c %a "$(record_path t1)" 2>&1)" 600
expect_eq "record t1.json is valid JSON naming t1" \
    "$(jq -r .name "$(record_path t1)" 2>&1)" t1

# --- down -----------------------------------------------------------------------------------------

expect_exit 0 jb down t1
check "down removes the container" container_gone "$container"
check "down removes the network" network_gone "$network"
check "down removes the record" test ! -e "$(record_path t1)"
check "down stops the child within 10 s" wait_until 10 pid_gone "$child_pid"
check "no __reap process for t1 remains" no_reap_process t1
expect_exit 4 jb down t1
expect_contains "down of an unknown name says what is missing" "$ERR" t1
expect_exit 0 jb down --ignore-missing t1
expect_exit 0 jb status -q
expect_eq "status -q is empty after down" "$OUT" ""

# --- down after the engine lost the container -----------------------------------------------------

expect_exit 0 jb up web --name t2
t2_id=$(jb status t2 --json 2>/dev/null | jq -r '.[0].id' 2>/dev/null)
t2_child=$(jb status t2 --json 2>/dev/null | jq -r '.[0].child_pid' 2>/dev/null)
force_remove() {
    dk rm -f "$1" >/dev/null
}
check "docker rm -f removes the t2 container" force_remove "jitbox-t2-${t2_id:0:8}"
expect_exit 0 jb down t2
check "down after docker rm -f removes the record" test ! -e "$(record_path t2)"
check "down after docker rm -f removes the network" network_gone "jitbox-t2-${t2_id:0:8}"
check "down after docker rm -f stops the child" wait_until 10 pid_gone "$t2_child"
expect_eq "no record is left" "$(record_names)" ""

# --- audit log ------------------------------------------------------------------------------------

check "audit.log exists" test -f "$AUDIT_LOG"
expect_eq "every audit line is a JSON object with the documented keys" \
    "$(jq -c 'select((has("time") and has("user") and has("action") and has("sandbox")
                      and has("template") and has("result") and has("error")) | not)' \
        "$AUDIT_LOG" 2>&1 | head -n 3)" ""
check "audit: up t1 ok" test "$(audit_count up t1 ok)" -ge 1
check "audit: extend t1 ok" test "$(audit_count extend t1 ok)" -ge 2
check "audit: extend t1 denied" test "$(audit_count extend t1 denied)" -ge 2
check "audit: down t1 ok" test "$(audit_count down t1 ok)" -ge 1
check "audit: down t2 ok" test "$(audit_count down t2 ok)" -ge 1
expect_eq "audit: user of up t1" \
    "$(jq -r 'select(.action == "up" and .sandbox == "t1") | .user' "$AUDIT_LOG" 2>&1 |
        head -n 1)" "$owner"
expect_match "audit: time is RFC 3339 UTC" "$(jq -r '.time' "$AUDIT_LOG" 2>&1 | head -n 1)" \
    "$RFC3339_UTC"
