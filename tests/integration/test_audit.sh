#!/usr/bin/env bash
# The audit log's hash chain against the real dockerd. Real up, extend and down commands write
# records that `jitbox audit verify` accepts. Copies of the log with a record changed, removed,
# inserted, reordered, cut from the end or garbled fail with exit 8 and name the first bad line.
# Also `jitbox audit` with --json, --sandbox and --since.
# shellcheck disable=SC2016 # jq filters use $ literally.
# shellcheck disable=SC2119 # toml_labels without extra labels takes no arguments.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HEAD_FILE=$STATE_DIR/audit.head
ZERO_HASH=0000000000000000000000000000000000000000000000000000000000000000

cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.box]
image = "busybox:1.36"
command = ["sleep", "infinity"]
$(toml_labels)
ttl = "10m"
max_ttl = "1h"
EOF

# --- records from real commands -------------------------------------------------------------------

expect_exit 0 jb up box --name audit-a
expect_exit 0 jb up box --name audit-b
expect_exit 0 jb extend audit-a --by 5m
expect_exit 6 jb extend audit-a --by 2h
expect_exit 0 jb down audit-a
expect_exit 0 jb down audit-b

mapfile -t lines <"$AUDIT_LOG"
count=${#lines[@]}
# The tampering below needs lines 1 to 5 and two lines to cut from the end.
if ((count < 6)); then
    die "the commands above wrote $count audit records, fewer than the 6 expected"
fi

expect_exit 0 jb audit verify
expect_eq "audit verify counts every record" "$OUT" "$count records, chain intact"

expect_exit 0 jb audit verify --json
expect_eq "audit verify --json: intact" "$(json "$OUT" '.intact')" true
expect_eq "audit verify --json: records" "$(json "$OUT" '.records')" "$count"

# The chain checked without jitbox: seq counts from 1 and prev is the SHA-256 of the line before.
line_hash() {
    printf '%s' "$1" | sha256sum | cut -d ' ' -f 1
}
chain_errors=()
prev=$ZERO_HASH
for ((i = 0; i < count; i++)); do
    seq=$(json "${lines[i]}" '.seq')
    if [[ $seq != "$((i + 1))" ]]; then
        chain_errors+=("line $((i + 1)): seq $seq")
    fi
    if [[ $(json "${lines[i]}" '.prev') != "$prev" ]]; then
        chain_errors+=("line $((i + 1)): prev does not match the line before")
    fi
    prev=$(line_hash "${lines[i]}")
done
expect_eq "sha256sum confirms every seq and prev" "${chain_errors[*]}" ""
expect_eq "audit.head stores the last seq and hash" "$(<"$HEAD_FILE")" "$count $prev"
expect_eq "audit.head is mode 0600" "$(stat -c %a "$HEAD_FILE")" 600

# --- tampered copies ------------------------------------------------------------------------------

# copy_log CASE: copies the log and its head file into TEST_DIR/CASE.
copy_log() {
    mkdir "$TEST_DIR/$1"
    cp "$AUDIT_LOG" "$HEAD_FILE" "$TEST_DIR/$1/"
}

# expect_broken CASE LINE REASON: `audit verify` of the copy in TEST_DIR/CASE exits 8 with one
# line on stderr that names LINE and contains REASON, and prints nothing on stdout.
expect_broken() {
    local log=$TEST_DIR/$1/audit.log
    expect_exit 8 jb audit verify "$log"
    expect_eq "$1: one line on stderr" "$(wc -l <"$TEST_DIR/last.err")" 1
    expect_contains "$1: names line $2" "$ERR" "jitbox: error: $log:$2: $3"
    expect_eq "$1: nothing on stdout" "$OUT" ""
}

copy_log edit
sed -i '2s/"user":"[^"]*"/"user":"mallory"/' "$TEST_DIR/edit/audit.log"
expect_broken edit 2 "changed after it was written: its SHA-256 does not match \"prev\" of line 3"

copy_log delete
sed -i '3d' "$TEST_DIR/delete/audit.log"
expect_broken delete 3 "seq 4 after seq 2, so 1 record before this line was removed or moved"

copy_log insert
{ head -n 4 "$AUDIT_LOG" && sed -n 2p "$AUDIT_LOG" && tail -n +5 "$AUDIT_LOG"; } \
    >"$TEST_DIR/insert/audit.log"
expect_broken insert 5 "seq 2 after seq 4, so this record was moved or inserted"

copy_log reorder
{ sed -n 1p "$AUDIT_LOG" && sed -n 3p "$AUDIT_LOG" && sed -n 2p "$AUDIT_LOG" &&
    tail -n +4 "$AUDIT_LOG"; } >"$TEST_DIR/reorder/audit.log"
expect_broken reorder 2 "seq 3 after seq 1, so 1 record before this line was removed or moved"

copy_log truncate
head -n -2 "$AUDIT_LOG" >"$TEST_DIR/truncate/audit.log"
expect_broken truncate "$((count - 1))" \
    "2 records cut from the end: audit.head names seq $count but the log ends at seq $((count - 2))"

copy_log malformed
sed -i '3s/.*/{"seq":3,/' "$TEST_DIR/malformed/audit.log"
expect_broken malformed 3 "not a JSON object"

expect_exit 8 jb --json audit verify "$TEST_DIR/delete/audit.log"
expect_eq "audit verify --json of a broken log: intact" "$(json "$OUT" '.intact')" false
expect_eq "audit verify --json of a broken log: line" "$(json "$OUT" '.line')" 3

expect_exit 2 jb audit verify "$TEST_DIR/no-such/audit.log"
expect_exit 0 jb audit verify
expect_eq "the tampering touched only the copies" "$OUT" "$count records, chain intact"

# --- jitbox audit ---------------------------------------------------------------------------------

expect_exit 0 jb audit --json --sandbox audit-a
listed=$OUT
expect_eq "--sandbox audit-a: only records of audit-a" \
    "$(json "$listed" '[.[] | select(.sandbox != "audit-a")] | length')" 0
expect_eq "--sandbox audit-a: as many records as the log has" "$(json "$listed" 'length')" \
    "$(jq -c 'select(.sandbox == "audit-a")' "$AUDIT_LOG" | wc -l)"
expect_eq "--sandbox audit-a: actions in order" "$(json "$listed" '[.[].action] | join(",")')" \
    "up,extend,extend,down"
expect_eq "--sandbox audit-a: results in order" "$(json "$listed" '[.[].result] | join(",")')" \
    "ok,ok,denied,ok"
expect_eq "--sandbox audit-a: records keep seq and prev" \
    "$(json "$listed" '[.[] | select((.seq | type) != "number" or (.prev | length) != 64)] |
        length')" 0

expect_exit 0 jb audit --json --sandbox no-such-sandbox
expect_eq "--sandbox with no records prints an empty array" "$(json "$OUT" 'length')" 0

expect_exit 0 jb audit
expect_match "table header" "$(head -n 1 <<<"$OUT")" \
    '^TIME +ACTION +SANDBOX +TEMPLATE +RESULT +ERROR$'
expect_eq "table has a row per record" "$(wc -l <<<"$OUT")" "$((count + 1))"
expect_match "table row of the denied extend shows its error" \
    "$(grep -E ' extend +audit-a +box +denied ' <<<"$OUT")" \
    '^[0-9T:Z-]+ +extend +audit-a +box +denied +[[:alpha:]]'

expect_exit 0 jb audit --since 1h --sandbox audit-b
expect_eq "--since 1h --sandbox audit-b: up and down" "$(wc -l <<<"$OUT")" 3
expect_exit 0 jb audit --json --since 2999-01-01T00:00:00Z
expect_eq "--since a future time matches nothing" "$(json "$OUT" 'length')" 0
expect_exit 2 jb audit --since yesterday
expect_contains "--since yesterday names the value" "$ERR" '"yesterday"'
expect_exit 2 jb audit verify --since 1h

# --- a fresh state folder and the real log --------------------------------------------------------

mkdir -m 0700 "$TEST_DIR/fresh-state"
jb_fresh() {
    XDG_STATE_HOME=$TEST_DIR/fresh-state jb "$@"
}
expect_exit 0 jb_fresh audit verify
expect_eq "a state folder without a log verifies" "$OUT" "0 records, chain intact"
expect_exit 0 jb_fresh audit --json
expect_eq "a state folder without a log lists nothing" "$(json "$OUT" 'length')" 0

sed -i '1s/"action":"up"/"action":"down"/' "$AUDIT_LOG"
expect_exit 8 jb audit verify
expect_contains "a changed first record names line 1 of the state folder's log" "$ERR" \
    "jitbox: error: $AUDIT_LOG:1: changed after it was written"
