#!/usr/bin/env bash
# The shape of every command's --json output, as man/jitbox.1 documents it under JSON OUTPUT:
# each output is valid JSON, has the documented type, and has exactly the documented field
# names, so that a renamed or added field fails here until the page documents it too.
# shellcheck disable=SC2016 # jq filters use $ literally.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export XDG_RUNTIME_DIR=$TEST_DIR/runtime
export JITBOX_KEYRING=file
mkdir -m 0700 "$XDG_RUNTIME_DIR"

cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.box]
image = "busybox:1.36"
command = ["sleep", "infinity"]
user = "65534:65534"
network = "isolated"
ports = ["8080"]
$(toml_labels)
ttl = "10m"
max_ttl = "1h"

[templates.box.secrets]
TOKEN = {}
EOF

SANDBOX_FIELDS="child_pid created_at detail expires_at id max_expires_at name owner provider"
SANDBOX_FIELDS+=" region resources state template"

# expect_keys NAME JSON FILTER KEYS: the sorted keys of the object FILTER selects are KEYS.
expect_keys() {
    expect_eq "$1" "$(json "$2" "$3 | keys_unsorted | sort | join(\" \")")" "$4"
}

# expect_type NAME JSON FILTER TYPE
expect_type() {
    expect_eq "$1" "$(json "$2" "$3 | type")" "$4"
}

# --- up, status, extend ---------------------------------------------------------------------------

expect_exit 0 jb up box --name shape --json
expect_type "up --json is an object" "$OUT" '.' object
expect_keys "up --json fields" "$OUT" '.' "$SANDBOX_FIELDS"
expect_keys "up --json resources fields" "$OUT" '.resources' "items ports"
expect_keys "up --json resource item fields" "$OUT" '.resources.items[0]' "id kind name"
expect_keys "up --json port fields" "$OUT" '.resources.ports[0]' \
    "container_port host_ip host_port"
expect_type "up --json host_port is a number" "$OUT" '.resources.ports[0].host_port' number

expect_exit 0 jb status --json
expect_type "status --json is an array" "$OUT" '.' array
expect_keys "status --json fields" "$OUT" '.[0]' "$SANDBOX_FIELDS"
expect_type "status --json child_pid is a number" "$OUT" '.[0].child_pid' number
expect_eq "status --json state" "$(json "$OUT" '.[0].state')" running

expect_exit 0 jb extend shape --by 5m --json
expect_keys "extend --json fields" "$OUT" '.' "$SANDBOX_FIELDS"

expect_exit 0 jb status --prompt --json
expect_keys "status --prompt --json fields" "$OUT" '.' "expires_at name others time_left"

# --- templates, gc, reap --------------------------------------------------------------------------

expect_exit 0 jb templates --json
expect_keys "templates --json fields" "$OUT" '.[0]' \
    "default image max_ttl name network provider source ttl"

expect_exit 0 jb gc --dry-run --json
expect_type "gc --json is an array" "$OUT" '.' array
expect_exit 0 jb reap --json
expect_eq "reap --json is an array of names" "$(json "$OUT" 'type')" array

# gc and reap with something to report: a sandbox whose record shows that it has expired and
# whose background child is gone, as after a reboot.
expect_exit 0 jb up box --name stale --json
stale_record=$(record_path stale)
stale_child=$(jq -r '.child_pid' "$stale_record")
kill -TERM "$stale_child" 2>/dev/null
wait_until 10 pid_gone "$stale_child" || fail "the background child of stale stops on SIGTERM"
jq '.expires_at = "2000-01-01T00:00:00Z"' "$stale_record" >"$stale_record.new" &&
    mv "$stale_record.new" "$stale_record" && chmod 0600 "$stale_record"
expect_exit 0 jb gc --dry-run --json
expect_keys "gc --json fields" "$OUT" '.[0]' "name owner result sandbox_id what"
expect_exit 0 jb reap --json
expect_eq "reap --json names the removed sandbox" "$(json "$OUT" '.[0]')" stale

# --- creds, env -----------------------------------------------------------------------------------

expect_exit 0 jb creds list --json
expect_keys "creds list --json fields" "$OUT" '.[0]' "backend expires_at key sandbox sandbox_id"
expect_exit 0 jb creds show shape --json
expect_keys "creds show --json is an object of values" "$OUT" '.' "TOKEN"
expect_exit 0 jb env shape --json
expect_keys "env --json is an object of variables" "$OUT" '.' "JITBOX_SANDBOX TOKEN"

# --- audit ----------------------------------------------------------------------------------------

expect_exit 0 jb audit --json --sandbox shape
expect_type "audit --json is an array" "$OUT" '.' array
expect_keys "audit --json fields of an up record" "$OUT" \
    '[.[] | select(.action == "up")][0]' \
    "action error policy_digest prev result sandbox sandbox_id seq template time user"
expect_exit 0 jb audit verify --json
expect_keys "audit verify --json fields" "$OUT" '.' "intact path records"

# --- policy ---------------------------------------------------------------------------------------

expect_exit 0 jb policy check --json
expect_keys "policy check --json fields" "$OUT" '.' \
    "default_template deny_rules guardrails layers policy_digest roles templates warnings"
expect_keys "policy check --json layer fields" "$OUT" '.layers[0]' "deny_rules kind roles source"
expect_exit 0 jb policy explain box --json
expect_keys "policy explain --json fields" "$OUT" '.' \
    "action active_sandboxes at break_glass decision explanation max_ttl message policy_digest rule template ttl user"

expect_exit 0 jb down shape
