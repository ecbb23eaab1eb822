#!/usr/bin/env bash
# `jitbox audit stats`, `jitbox metrics` and `jitbox --version` against the real dockerd. Real
# up, extend and down commands, an extension above max_ttl and a deny rule fill the audit log,
# and the counters of both commands must match them. The metrics output must pass a strict parser
# of the Prometheus text format (promtext_check.py), also with label values that need escapes.
# shellcheck disable=SC2016 # jq filters use $ literally.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROM_CHECK=$REPO_ROOT/tests/integration/promtext_check.py
ME=$(id -un)

# Prints the body of a template; box and prod differ only in their names.
cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.box]
$(tiny_template_body)

[templates.prod]
$(tiny_template_body)

[[deny]]
name = "no-prod"
templates = ["prod"]
reason = "production sandboxes are off limits in this test"
EOF

# --- records from real commands -------------------------------------------------------------------

expect_exit 0 jb up box --name stats-a
expect_exit 0 jb up box --name stats-b
expect_exit 0 jb extend stats-a --by 5m
expect_exit 6 jb extend stats-a --by 2h
expect_exit 6 jb up prod --name stats-prod
sleep 2 # so that stats-a lives a measurable time
expect_exit 0 jb down stats-a

# usage FIELD: prints FIELD of the stats --json usage row of this user and template box.
usage() {
    jq -r --arg user "$ME" --arg field "$1" \
        '.usage[] | select(.user == $user and .template == "box") | .[$field]' <<<"$OUT"
}

expect_exit 0 jb audit stats --json
expect_eq "stats: opened" "$(usage opened)" 2
expect_eq "stats: extensions" "$(usage extensions)" 1
expect_eq "stats: denials of box" "$(usage denials)" 1
expect_eq "stats: the ttl denial is no attempted violation" "$(usage attempted_violations)" 0
expect_eq "stats: the deny rule is an attempted violation" \
    "$(json "$OUT" '.usage[] | select(.template == "prod") | .attempted_violations')" 1
expect_eq "stats: totals of denials" "$(json "$OUT" '.totals.denials')" 2
expect_eq "stats: break-glass" "$(usage break_glass)" 0
expect_match "stats: sandbox seconds cover stats-a" "$(usage sandbox_seconds)" '^([2-9]|[1-9][0-9]+)$'
expect_eq "stats: since is null" "$(json "$OUT" '.since')" null
expect_match "stats: until is RFC 3339" "$(json "$OUT" '.until')" "$RFC3339_UTC"
expect_eq "stats: two sandboxes lived" "$(json "$OUT" '.longest | length')" 2
expect_eq "stats: stats-a was closed by down" \
    "$(json "$OUT" '.longest[] | select(.sandbox == "stats-a") | .closed_by')" down
expect_eq "stats: stats-b is open" \
    "$(json "$OUT" '.longest[] | select(.sandbox == "stats-b") | .closed_at')" null
expect_eq "stats: the longest comes first" \
    "$(json "$OUT" '[.longest[].seconds] | . == (sort | reverse)')" true

expect_exit 0 jb audit stats --json --top 1
expect_eq "stats --top 1: one sandbox" "$(json "$OUT" '.longest | length')" 1

future=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
expect_exit 0 jb audit stats --json --since "$future"
expect_eq "stats --since the future: nothing opened" "$(json "$OUT" '.totals.opened')" 0
expect_eq "stats --since the future: no sandbox" "$(json "$OUT" '.longest | length')" 0

expect_exit 0 jb audit stats
expect_match "stats table: the header" "$(head -n 1 <<<"$OUT")" \
    '^USER +TEMPLATE +OPENED +HOURS +EXTENSIONS +DENIALS +VIOLATIONS +BREAK-GLASS$'
expect_contains "stats table: the longest-lived list" "$OUT" "LONGEST-LIVED"
expect_exit 2 jb audit stats --since yesterday
expect_contains "stats: a bad --since names the value" "$ERR" '"yesterday"'
expect_exit 2 jb audit --sandbox stats-a stats

# --- metrics --------------------------------------------------------------------------------------

# metric NAME TEMPLATE: prints the value of metric NAME for this user and TEMPLATE from the
# parser's JSON in PARSED.
metric() {
    jq -r --arg name "$1" --arg user "$ME" --arg template "$2" \
        '.[$name].samples[] | select(.labels.user == $user and .labels.template == $template)
         | .value' <<<"$PARSED"
}

expect_exit 0 jb metrics
printf '%s\n' "$OUT" >"$TEST_DIR/metrics.prom"
run python3 "$PROM_CHECK" <"$TEST_DIR/metrics.prom"
expect_eq "metrics: the strict parser accepts the output" "$RC $ERR" "0 "
PARSED=$OUT
expect_eq "metrics: opened" "$(metric jitbox_sandboxes_opened_total box)" 2
expect_eq "metrics: extensions" "$(metric jitbox_extensions_total box)" 1
expect_eq "metrics: attempted violations of prod" \
    "$(metric jitbox_attempted_violations_total prod)" 1
expect_eq "metrics: live sandboxes" "$(metric jitbox_sandboxes_live box)" 1
expect_eq "metrics: the live gauge's type" "$(json "$PARSED" '.jitbox_sandboxes_live.type')" gauge
expect_eq "metrics: every other family is a counter" \
    "$(json "$PARSED" '[to_entries[] | select(.key != "jitbox_sandboxes_live") | .value.type
                       == "counter"] | all')" true
expect_eq "metrics: every family has help" "$(json "$PARSED" '[.[].help | length > 0] | all')" true
expect_exit 2 jb metrics --json

# The strict parser rejects what it must, so that its acceptance above means something.
reject() {
    run python3 "$PROM_CHECK" <<<"$2"
    expect_eq "parser rejects $1" "$RC" 1
}
reject "a bad escape" 'm{a="\x"} 1'
reject "a repeated series" $'m 1\nm 2'
reject "split groups" $'a 1\nb 1\na{x="1"} 1'
reject "a type after samples" $'a 1\n# TYPE a counter'
reject "a negative counter" $'# TYPE a counter\na -1'

# Label values with a backslash, a quote and a line feed, from a copy of the state folder whose
# audit log gains a record with such a user. metrics does not check the hash chain.
ODD_STATE=$TEST_DIR/odd-state
mkdir -m 0700 "$ODD_STATE"
cp -a "$STATE_DIR" "$ODD_STATE/jitbox"
odd_user=$'we\\ird "user"\nname'
jq -cn --arg user "$odd_user" --arg time "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    '{seq: 0, prev: "", time: $time, user: $user, action: "up", sandbox: "odd", sandbox_id: "odd1",
      template: "box", result: "ok", error: null}' >>"$ODD_STATE/jitbox/audit.log"
XDG_STATE_HOME=$ODD_STATE expect_exit 0 jb metrics
expect_contains "odd user: the escaped label value" "$OUT" \
    'user="we\\ird \"user\"\nname"'
printf '%s\n' "$OUT" >"$TEST_DIR/odd.prom"
run python3 "$PROM_CHECK" <"$TEST_DIR/odd.prom"
expect_eq "odd user: the strict parser accepts it" "$RC $ERR" "0 "
expect_eq "odd user: the label unescapes to the user name" \
    "$(jq -r --arg user "$odd_user" \
        '.jitbox_sandboxes_opened_total.samples[] | select(.labels.user == $user) | .value' \
        <<<"$OUT")" 1

# --- version --------------------------------------------------------------------------------------

expect_exit 0 jb_raw --version
expect_match "version: the first line" "$(head -n 1 <<<"$OUT")" '^jitbox [0-9]+\.[0-9]+\.[0-9]+$'
expect_contains "version: the providers" "$OUT" "providers: docker, aws-sts, aws-ec2"
expect_contains "version: the keyring backends" "$OUT" \
    "keyring backends: secret-service, kernel, file"
expect_match "version: libcurl" "$OUT" $'(^|\n)libcurl: [0-9]+\.[0-9]+'
expect_exit 0 jb_raw --version --json
expect_match "version --json: version" "$(json "$OUT" '.version')" '^[0-9]+\.[0-9]+\.[0-9]+$'
expect_eq "version --json: providers" "$(json "$OUT" '.providers | join(",")')" \
    "docker,aws-sts,aws-ec2"
expect_match "version --json: libcurl" "$(json "$OUT" '.libraries.libcurl')" '^[0-9]+\.'
expect_exit 0 jb_raw --json --version
expect_eq "version: --json before --version" "$(json "$OUT" '.docker_api.max')" 1.41
