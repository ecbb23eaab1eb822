#!/usr/bin/env bash
# A state folder that cannot be written: first on a full tmpfs, then through a read-only bind
# mount. `up`, `extend` and `down` must fail with exit code 1 and one error line, the record
# written before must stay as it was, every labelled container must have a record, and
# `audit verify` must still pass. Needs root for mount(8).
# shellcheck disable=SC2119 # toml_labels without extra labels takes no arguments.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RO_VIEW=$TEST_DIR/state-ro
FILL_FILE=$XDG_STATE_HOME/fill

unmount_state() {
    if mountpoint -q "$RO_VIEW"; then
        umount "$RO_VIEW" || umount -l "$RO_VIEW"
    fi
    if mountpoint -q "$XDG_STATE_HOME"; then
        umount "$XDG_STATE_HOME" || umount -l "$XDG_STATE_HOME"
    fi
}
on_cleanup unmount_state

# 1 MiB holds the records and the audit log of this test many times over.
if ! mount -t tmpfs -o size=1m,mode=0700 jitbox-test "$XDG_STATE_HOME" 2>"$TEST_DIR/mount.err"
then
    skip_test "mount -t tmpfs failed, so this test needs root: $(<"$TEST_DIR/mount.err")"
fi

cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.tiny]
image = "busybox:1.36"
command = ["sleep", "infinity"]
network = "none"
$(toml_labels)
ttl = "1m"
max_ttl = "10m"
EOF

# Every container of this run carries the id of a record in the state folder.
every_container_has_record() {
    local container id
    for container in $(run_containers); do
        id=$(container_field "$container" '{{index .Config.Labels "io.jitbox.sandbox"}}')
        if ! jq -e --arg id "$id" 'select(.id == $id)' "$STATE_DIR"/sandboxes/*.json \
            >/dev/null 2>&1; then
            printf '#   container %s (sandbox id %s) has no record\n' "$container" "$id"
            return 1
        fi
    done
}

# expect_state_failure NAME CMD...: CMD exits 1 with one jitbox error line on stderr.
expect_state_failure() {
    local name=$1
    shift
    expect_exit 1 "$@"
    expect_eq "$name: stderr is one line" "$(wc -l <"$TEST_DIR/last.err")" 1
    expect_match "$name: the line is a jitbox error about the state" "$ERR" \
        "^jitbox: error: state .*$STATE_DIR"
}

keep_record_readable() {
    jq -e .id "$(record_path keep)" >/dev/null 2>&1
}

# check_state_intact WHEN: the record of `keep` is unchanged, readable and backed by a running
# container; no container lacks a record; the audit chain verifies.
check_state_intact() {
    expect_eq "$1: the record of keep is unchanged" "$(cat "$(record_path keep)")" "$KEEP_RECORD"
    check "$1: the record of keep is valid JSON" keep_record_readable
    expect_eq "$1: the container of keep runs" \
        "$(container_field "$KEEP_CONTAINER" '{{.State.Status}}')" running
    check "$1: every labelled container has a record" every_container_has_record
    expect_exit 0 jb audit verify
}

expect_exit 0 jb up tiny --name keep --ttl 5m || die "up failed on a writable state folder"
KEEP_RECORD=$(cat "$(record_path keep)")
KEEP_CONTAINER=$(run_containers)

# --- full -----------------------------------------------------------------------------------

# dd stops at ENOSPC; as root, tmpfs keeps no reserve, so nothing is left.
dd if=/dev/zero of="$FILL_FILE" bs=4k status=none 2>/dev/null
check "the state tmpfs is full" test "$(df --output=avail "$XDG_STATE_HOME" | tail -n 1 |
    tr -d ' ')" -eq 0

expect_state_failure "full: up" jb up tiny --name new --ttl 5m
expect_eq "full: up leaves no record" "$(record_names)" keep
expect_state_failure "full: extend" jb extend keep --by 1m
expect_state_failure "full: down" jb down keep
# A denied extension writes only an audit line, and that append must fail as a whole.
expect_exit 6 jb extend keep --by 1h
check_state_intact "full"
check "full: keep still has a __reap process" test -n "$(reap_pids keep)"

rm -f "$FILL_FILE"
expect_exit 0 jb audit verify

# --- read-only ------------------------------------------------------------------------------

# A read-only bind mount of the same folder: the __reap process of keep keeps its lock file
# open for writing, which would make `mount -o remount,ro` of the tmpfs itself fail with EBUSY.
mkdir -m 0700 "$RO_VIEW"
mount --bind "$XDG_STATE_HOME" "$RO_VIEW" && mount -o remount,bind,ro "$RO_VIEW" ||
    die "a read-only bind mount of the state folder could not be made"
WRITABLE_STATE_HOME=$XDG_STATE_HOME
export XDG_STATE_HOME=$RO_VIEW
STATE_DIR=$RO_VIEW/jitbox

expect_state_failure "read-only: up" jb up tiny --name new --ttl 5m
expect_state_failure "read-only: extend" jb extend keep --by 1m
expect_state_failure "read-only: down" jb down keep
check_state_intact "read-only"

umount "$RO_VIEW"
export XDG_STATE_HOME=$WRITABLE_STATE_HOME
STATE_DIR=$XDG_STATE_HOME/jitbox

# --- writable again -------------------------------------------------------------------------

expect_exit 0 jb extend keep --by 1m
expect_exit 0 jb down keep
expect_eq "down removes the record once the folder is writable" "$(record_names)" ""
expect_eq "down removes the container" "$(run_containers)" ""
expect_exit 0 jb audit verify
