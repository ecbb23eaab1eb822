#!/usr/bin/env bash
# `jitbox gc` and `jitbox reap` against the real dockerd: records whose resources are gone are
# forgotten, expired resources that no record lists are removed, someone else's live sandbox
# is left alone, and reap removes expired sandboxes whose background child is gone.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.tiny]
image = "busybox:1.36"
command = ["sleep", "infinity"]
network = "isolated"
memory = "32MiB"
pids_limit = 16
$(toml_labels)
ttl = "1h"
max_ttl = "2h"
EOF

# A second state folder plays the part of another terminal's or another user's state.
OTHER_STATE=$TEST_DIR/other-state
mkdir -m 0700 "$OTHER_STATE"
jb_other() {
    XDG_STATE_HOME=$OTHER_STATE jb "$@"
}

# Kills a sandbox's background child, as a reboot or `kill -9` would.
kill_child() {
    local pid
    for pid in $(reap_pids "$1"); do
        kill -KILL "$pid"
    done
    wait_until 5 no_reap_process "$1"
}

# --- a record whose resources are gone is forgotten ---
expect_exit 0 jb up tiny --name gone
gone_id=$(jb status gone --json | jq -r '.[0].id')
mapfile -t gone_items < <(jb status gone --json | jq -r '.[0].resources.items[] | .id')
dk rm -f "${gone_items[1]}" >/dev/null
dk network rm "${gone_items[0]}" >/dev/null
run jb gc --dry-run --json
expect_eq "gc --dry-run exits 0" "$RC" 0
expect_eq "gc --dry-run would forget the record" \
    "$(jq -r --arg id "$gone_id" '.[] | select(.sandbox_id == $id) | .result' <<<"$OUT")" \
    "would forget"
check "gc --dry-run keeps the record" test -f "$(record_path gone)"
expect_exit 0 jb gc
check "gc forgets the record" test ! -e "$(record_path gone)"
check "gc stops its background child" wait_until 5 no_reap_process gone

# --- expired resources that no state records any more are removed ---
expect_exit 0 jb_other up tiny --name stray --ttl 2s
stray_container=$(jb_other status stray --json |
    jq -r '.[0].resources.items[] | select(.kind == "container") | .id')
kill_child stray
rm "$OTHER_STATE/jitbox/sandboxes/stray.json" # a lost state folder: only the labels remain
sleep 3
expect_exit 0 jb_other up tiny --name neighbour --ttl 1h
neighbour_container=$(jb_other status neighbour --json |
    jq -r '.[0].resources.items[] | select(.kind == "container") | .id')
run jb gc --json
expect_eq "gc exits 0" "$RC" 0
check "gc removes the expired stray container" wait_until 5 container_gone "$stray_container"
check "gc leaves another state's live sandbox alone" container_exists "$neighbour_container"
expect_eq "gc reports what it removed" \
    "$(jq -r '.[] | select(.name == "stray") | .result' <<<"$OUT")" removed

# --- reap removes expired sandboxes whose child is gone ---
expect_exit 0 jb up tiny --name late --ttl 2s
late_container=$(jb status late --json |
    jq -r '.[0].resources.items[] | select(.kind == "container") | .id')
kill_child late
sleep 3
run jb reap
expect_eq "reap exits 0" "$RC" 0
expect_eq "reap prints the sandbox it removed" "$OUT" late
check "reap removes the container" container_gone "$late_container"
check "reap removes the record" test ! -e "$(record_path late)"
expect_eq "reap audits the expiry" "$(audit_count expire late ok)" 1

expect_exit 0 jb_other down --all --ignore-missing
