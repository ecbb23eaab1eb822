#!/usr/bin/env bash
# The aws-sts and aws-ec2 providers end to end against the fake AWS on 127.0.0.1, with no D-Bus
# at all, so the kernel keyring stores the sessions.
#
# A role session: the AssumeRole parameters the fake logged after `up`, status and creds list,
# `exec` with its credentials, exit statuses, environment and nested calls, `env`, and a
# credential_process profile. Then renewal of a session close to its expiry, `down`, the ttl
# bounds, AccessDenied and clock-skew errors, and MFA from standard input and without a
# terminal. Renewal through `env` and a credential_process profile, none after the grant's
# deadline, and the renewal of an MFA session, which needs a code. Last, an EC2 instance from
# `up` through `status`, `extend` and `down`, and one that the background child terminates at
# its expiry.
#
# Every template names the fake as endpoint_url and AWS_ENDPOINT_URL points there too, so no
# command can reach a public AWS host. At the end, the test searches for the secret access keys
# and session tokens that the fake issued. They must not be in the output of any command but
# `env` and `creds show`, nor in the audit log, the state folder or the command lines of all
# processes, which a watcher samples during the run.
# shellcheck disable=SC2016 # jq filters and sh -c scripts use $ literally.
# shellcheck disable=SC2119 # toml_labels without extra labels takes no arguments.
TEST_NEEDS_DOCKER=0
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in "$FAKE_AWS_CLI" keyctl setsid; do
    if ! command -v "$tool" >/dev/null; then
        die "$tool is missing. Run bash scripts/setup.sh, which installs the test tools"
    fi
done
if ! keyctl rdescribe @u >/dev/null 2>&1; then
    die "the kernel refuses keyctl here, and this test needs the kernel keyring"
fi

# Headless: no session bus and no keyring choice, so `auto` must fall back to the kernel.
unset DBUS_SESSION_BUS_ADDRESS JITBOX_KEYRING GNOME_KEYRING_CONTROL
export XDG_RUNTIME_DIR=$TEST_DIR/runtime
mkdir -m 0700 "$XDG_RUNTIME_DIR"
export AWS_PAGER=""

fake_aws_start --pending-seconds 1 --shutting-down-seconds 1

OWNER=$(id -un)
RO=ro-$RUN_ID
RENEW=renew-$RUN_ID
ENV_RENEW=envrenew-$RUN_ID
CP_RENEW=cprenew-$RUN_ID
MFA=mfa-$RUN_ID
MFA_RENEW=mfarenew-$RUN_ID
EC2=ec2-$RUN_ID
EC2_SHORT=ec2short-$RUN_ID
SUBNET=subnet-0123456789abcdef0
GROUPS_TOML='["sg-0123456789abcdef0", "sg-0fedcba987654321f"]'
ASSUMED_ROLE_PREFIX=arn:aws:sts::$FAKE_AWS_ACCOUNT_ID:assumed-role/jitbox-sandbox
# exec's own exit status for a failure before the command runs.
EXEC_FAILED=125

# Called by the cleanup after `down --all`, which must have removed every key, so one left is a
# failed check. The audit log names the id of every sandbox the test made.
remove_kernel_keys_left() {
    local keys=()
    mapfile -t keys < <(kernel_keys_of_sandboxes)
    if ((${#keys[@]} > 0)); then
        fail "cleanup: no kernel key left after down --all" "${keys[@]}"
    fi
    remove_kernel_keys "${keys[@]}"
}
on_cleanup remove_kernel_keys_left

# --- helpers --------------------------------------------------------------------------------------

# logged_run CMD...: `run`, and the output goes to OUTPUT_LOG for the final search.
logged_run() {
    run "$@"
    cat "$TEST_DIR/last.out" "$TEST_DIR/last.err" >>"$OUTPUT_LOG"
}

# The request log of the fake, as JSON.
fake_requests() {
    fake_aws_control GET /__fake/requests
}

# assume_role_count [SESSION_NAME]: how many AssumeRole calls the fake logged, only those with
# that RoleSessionName when given.
assume_role_count() {
    fake_requests | jq --arg session "${1:-}" '[.requests[] | select(.action == "AssumeRole")
        | select($session == "" or .parameters.RoleSessionName == $session)] | length'
}

# last_assume_role SESSION_NAME: the parameters of the last AssumeRole with that session name.
last_assume_role() {
    fake_requests | jq --arg session "$1" '[.requests[] | select(.action == "AssumeRole"
        and .parameters.RoleSessionName == $session)] | last | .parameters'
}

# session_tags PARAMETERS_JSON: the session tags of an AssumeRole as one object.
session_tags() {
    jq -c '[to_entries[] | select(.key | test("^Tags\\.member\\.[0-9]+\\.Key$"))
        | {key: .value, index: (.key | split(".")[2])}] as $keys
        | . as $all | [$keys[] | {(.key): $all["Tags.member.\(.index).Value"]}] | add' <<<"$1"
}

# fake_instance_of NAME: the fake's JSON of the instance whose io.jitbox.name tag is NAME.
fake_instance_of() {
    fake_aws_control GET /__fake/instances |
        jq --arg name "$1" '[.instances[] | select(.tags["io.jitbox.name"] == $name)] | last'
}

instance_state_is() {
    [[ $(fake_aws_control GET /__fake/instances |
        jq -r --arg id "$1" '.instances[] | select(.instance_id == $id) | .state') == "$2" ]]
}

no_record() {
    [[ ! -e $(record_path "$1") ]]
}

# kernel_key_exists SANDBOX_ID KEY
kernel_key_exists() {
    keyctl search @u user "jitbox:$1:$2" >/dev/null 2>&1
}

no_kernel_key() {
    ! kernel_key_exists "$@"
}

# creds_item_count SANDBOX: how many items `creds list --json` shows for SANDBOX.
creds_item_count() {
    jb creds list --json 2>/dev/null |
        jq --arg name "$1" '[.[] | select(.sandbox == $name)] | length'
}

# record_field NAME FILTER: a jq filter applied to the record of sandbox NAME.
record_field() {
    jq -r "$2" "$(record_path "$1")" 2>/dev/null
}

# Prints the ARN in the get-caller-identity output of the last `run`.
caller_arn_of_output() {
    json "$OUT" .Arn
}

# jb_no_tty ARGS...: jitbox in a new session, so that it has no controlling terminal.
jb_no_tty() {
    setsid -w timeout -k 5 "$JITBOX_TIMEOUT" "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" "$@"
}

# add_credential_process_profile PROFILE NAME: adds a profile to AWS_CONFIG_FILE that takes its
# credentials from `jitbox creds show NAME --format credential-process`.
add_credential_process_profile() {
    cat >>"$AWS_CONFIG_FILE" <<EOF
[profile $1]
credential_process = $JITBOX_BIN --config $TEST_DIR/jitbox.toml creds show $2 \
    --format credential-process
region = $AWS_REGION
EOF
}

# caller_via_profile PROFILE: runs get-caller-identity through PROFILE (see `logged`), without
# the base key variables.
caller_via_profile() {
    logged 0 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
        timeout -k 5 60 "$FAKE_AWS_CLI" --profile "$1" --endpoint-url "$AWS_ENDPOINT_URL" \
        --output json sts get-caller-identity
}

# caller_via_env ENV_OUTPUT: evaluates the output of `jitbox env` and runs get-caller-identity
# (see `run`). The commands go in on stdin, so that no value is on a command line.
caller_via_env() {
    run timeout -k 5 60 bash -c 'eval "$(cat)" && exec "$@"' bash "${GET_CALLER_IDENTITY[@]}" \
        <<<"$1"
}

# The AWS CLI command that prints the caller's identity, for `jitbox exec` to run.
GET_CALLER_IDENTITY=("$FAKE_AWS_CLI" --endpoint-url "$AWS_ENDPOINT_URL" --output json
    sts get-caller-identity)

cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.aws-readonly]
provider = "aws-sts"
role_arn = "$FAKE_AWS_ROLE_ARN"
endpoint_url = "$FAKE_AWS_URL"
region = "$AWS_REGION"
ttl = "1h"
max_ttl = "2h"
$(toml_labels)

[templates.aws-mfa]
provider = "aws-sts"
role_arn = "$FAKE_AWS_ROLE_ARN"
mfa_serial = "$FAKE_AWS_MFA_SERIAL"
endpoint_url = "$FAKE_AWS_URL"
region = "$AWS_REGION"
ttl = "30m"
max_ttl = "1h"
$(toml_labels)

[templates.ec2-box]
provider = "aws-ec2"
image_id = "$FAKE_AWS_IMAGE_ID"
instance_type = "t3.micro"
subnet_id = "$SUBNET"
security_group_ids = $GROUPS_TOML
key_name = "jitbox-test"
root_volume_gib = 16
endpoint_url = "$FAKE_AWS_URL"
region = "$AWS_REGION"
ttl = "30m"
max_ttl = "1h"
$(toml_labels)
EOF

start_secret_watch

# --- up of a role session -------------------------------------------------------------------------

logged 0 jb up aws-readonly --name "$RO" || die "up of an aws-sts template failed"
expect_eq "up prints the sandbox name" "$OUT" "$RO"
expect_eq "up called AssumeRole once" "$(assume_role_count)" 1
parameters=$(last_assume_role "$OWNER@$RO")
expect_eq "AssumeRole: RoleArn" "$(json "$parameters" .RoleArn)" "$FAKE_AWS_ROLE_ARN"
expect_eq "AssumeRole: DurationSeconds of a 1h ttl" "$(json "$parameters" .DurationSeconds)" 3600
expect_eq "AssumeRole: SourceIdentity is the owner" "$(json "$parameters" .SourceIdentity)" \
    "$OWNER"
expect_eq "AssumeRole: no MFA without mfa_serial" "$(json "$parameters" .SerialNumber)" null
tags=$(session_tags "$parameters")
expect_eq "session tag io.jitbox.owner" "$(json "$tags" '."io.jitbox.owner"')" "$OWNER"
expect_eq "session tag io.jitbox.template" "$(json "$tags" '."io.jitbox.template"')" aws-readonly
expect_eq "session tag io.jitbox.sandbox is the sandbox id" \
    "$(json "$tags" '."io.jitbox.sandbox"')" "$(record_field "$RO" .id)"

logged 0 jb status "$RO" --json
expect_eq "status --json: provider" "$(json "$OUT" '.[0].provider')" aws-sts
expect_eq "status --json: state" "$(json "$OUT" '.[0].state')" running
logged 0 jb status
expect_match "status table shows the session running" "$OUT" "$RO +aws-readonly +aws-sts +running"

logged 0 jb creds list --json
expect_eq "creds list: the item is aws-session" \
    "$(json "$OUT" "[.[] | select(.sandbox == \"$RO\") | .key] | join(\",\")")" aws-session
expect_eq "creds list: headless, the kernel keyring holds it" \
    "$(json "$OUT" ".[] | select(.sandbox == \"$RO\") | .backend")" kernel
expect_eq "creds list shows no value" \
    "$(json "$OUT" "[.[] | select(.sandbox == \"$RO\") | has(\"value\")] | any")" false
logged 0 jb creds list
expect_contains "creds list table names the item" "$OUT" aws-session
RO_ID=$(record_field "$RO" .id)
check "the kernel keyring has the item under the sandbox id" kernel_key_exists "$RO_ID" aws-session
expect_eq "the record names the kernel backend" "$(record_field "$RO" .secret_backend)" kernel

# --- exec -----------------------------------------------------------------------------------------

logged 0 jb exec "$RO" -- "${GET_CALLER_IDENTITY[@]}"
expect_eq "exec: get-caller-identity returns the assumed role" "$(caller_arn_of_output)" \
    "$ASSUMED_ROLE_PREFIX/$OWNER@$RO"
# The template name stands for the user's only sandbox of that template.
logged 0 jb exec aws-readonly -- "${GET_CALLER_IDENTITY[@]}"
expect_eq "exec by template name: the only sandbox's role" "$(caller_arn_of_output)" \
    "$ASSUMED_ROLE_PREFIX/$OWNER@$RO"
logged 7 jb exec "$RO" -- sh -c 'exit 7'
logged 0 jb exec "$RO" -- sh -c 'printf "%s\n" "$AWS_SESSION_EXPIRATION" "$JITBOX_SANDBOX"'
session_expiration=$(sed -n 1p "$TEST_DIR/last.out")
issued_expiration=$(fake_aws_control GET /__fake/credentials | jq -r '.credentials[0].expiration')
expect_match "exec sets AWS_SESSION_EXPIRATION in RFC 3339" "$session_expiration" "$RFC3339_UTC"
expect_eq "AWS_SESSION_EXPIRATION is the session's expiry" \
    "$(epoch_of "$session_expiration")" "$(epoch_of "$issued_expiration")"
expect_contains "exec sets the marker JITBOX_SANDBOX" "$(sed -n 2p "$TEST_DIR/last.out")" "$RO"

nested=("$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" exec)
logged "$EXEC_FAILED" jb exec "$RO" -- "${nested[@]}" "$RO" -- true
expect_contains "the nested exec error names --allow-nested" "$ERR" --allow-nested
logged 0 jb exec "$RO" -- "${nested[@]}" --allow-nested "$RO" -- true
logged 127 jb exec "$RO" -- "$TEST_DIR/no-such-command"
printf '#!/bin/sh\n' >"$TEST_DIR/not-executable"
chmod 0600 "$TEST_DIR/not-executable"
logged 126 jb exec "$RO" -- "$TEST_DIR/not-executable"
logged 2 jb exec "$RO"
logged "$EXEC_FAILED" jb exec "missing-$RUN_ID" -- true
expect_contains "exec of a missing sandbox names it" "$ERR" "missing-$RUN_ID"

# --- env and credential_process -------------------------------------------------------------------

# No output of `env` or `creds show` goes to OUTPUT_LOG, because printing the values is their job.
expect_exit 0 jb env "$RO"
caller_via_env "$OUT"
expect_eq "eval of env: get-caller-identity returns the assumed role" "$(caller_arn_of_output)" \
    "$ASSUMED_ROLE_PREFIX/$OWNER@$RO"

expect_exit 0 jb creds show "$RO" --format credential-process
expect_eq "credential-process output: Version" "$(json "$OUT" .Version)" 1
expect_match "credential-process output: AccessKeyId" "$(json "$OUT" .AccessKeyId)" '^ASIA'
expect_match "credential-process output: Expiration" "$(json "$OUT" .Expiration)" "$RFC3339_UTC"
add_credential_process_profile jitbox-ro "$RO"
caller_via_profile jitbox-ro
expect_eq "credential_process profile: get-caller-identity returns the assumed role" \
    "$(caller_arn_of_output)" "$ASSUMED_ROLE_PREFIX/$OWNER@$RO"
expect_eq "exec, env and creds show called no further AssumeRole" "$(assume_role_count)" 1

# --- renewal of a session close to its expiry -----------------------------------------------------

# The fake issues the next session with two minutes left, inside jitbox's renewal margin, and
# then expires it, so only a renewed session can pass get-caller-identity.
fake_aws_control POST /__fake/expire '{"scope": "next", "count": 1, "lifetime_seconds": 120}' \
    >/dev/null
logged 0 jb up aws-readonly --name "$RENEW"
RENEW_ID=$(record_field "$RENEW" .id)
fake_aws_control POST /__fake/expire '{"scope": "issued"}' >/dev/null
before=$(assume_role_count "$OWNER@$RENEW")
logged 0 jb exec "$RENEW" -- "${GET_CALLER_IDENTITY[@]}"
expect_eq "exec renewed the session: get-caller-identity works" "$(caller_arn_of_output)" \
    "$ASSUMED_ROLE_PREFIX/$OWNER@$RENEW"
expect_eq "exec called AssumeRole once more" "$(assume_role_count "$OWNER@$RENEW")" \
    $((before + 1))
# The renewal requests the rest of the grant, so the new session ends with it.
renewed_expiration=$(fake_aws_control GET /__fake/credentials | jq -r '.credentials | last
    | .expiration')
grant_end=$(epoch_of "$(record_field "$RENEW" .expires_at)")
grant_left=$((grant_end - $(epoch_of "$renewed_expiration")))
check "the renewed session ends with the grant (${grant_left}s earlier)" \
    test "$grant_left" -ge 0 -a "$grant_left" -le 5
expect_eq "the renewal is in the audit log" "$(audit_count renew "$RENEW" ok)" 1
logged 0 jb exec "$RENEW" -- true
expect_eq "the next exec uses the renewed session" "$(assume_role_count "$OWNER@$RENEW")" \
    $((before + 1))
logged "$EXEC_FAILED" jb exec aws-readonly -- true
expect_contains "exec by template name with two sandboxes lists them" "$ERR" "$RENEW"

logged 0 jb down "$RENEW"
logged "$EXEC_FAILED" jb exec "$RENEW" -- true
expect_eq "down removed the aws-session item" "$(creds_item_count "$RENEW")" 0
check "down removed the kernel key" no_kernel_key "$RENEW_ID" aws-session
expect_eq "down called no further AssumeRole" "$(assume_role_count "$OWNER@$RENEW")" \
    $((before + 1))

# --- renewal through env and credential_process, and none after the deadline ---------------------

# start_with_stale_session NAME TEMPLATE [UP_OPTIONS...]: starts sandbox NAME with a session that
# has two minutes left, inside jitbox's renewal margin, and then expires it at the fake, so only
# a renewed session passes get-caller-identity.
start_with_stale_session() {
    fake_aws_control POST /__fake/expire '{"scope": "next", "count": 1, "lifetime_seconds": 120}' \
        >/dev/null
    logged 0 jb up "$2" --name "$1" "${@:3}"
    fake_aws_control POST /__fake/expire '{"scope": "issued"}' >/dev/null
}

start_with_stale_session "$ENV_RENEW" aws-readonly
before=$(assume_role_count "$OWNER@$ENV_RENEW")
expect_exit 0 jb env "$ENV_RENEW"
caller_via_env "$OUT"
expect_eq "env renewed the session: get-caller-identity works" "$(caller_arn_of_output)" \
    "$ASSUMED_ROLE_PREFIX/$OWNER@$ENV_RENEW"
expect_eq "env called AssumeRole once more" "$(assume_role_count "$OWNER@$ENV_RENEW")" \
    $((before + 1))
expect_exit 0 jb env "$ENV_RENEW"
expect_eq "the next env uses the renewed session" "$(assume_role_count "$OWNER@$ENV_RENEW")" \
    $((before + 1))

start_with_stale_session "$CP_RENEW" aws-readonly
before=$(assume_role_count "$OWNER@$CP_RENEW")
# The AWS CLI below, and jitbox under it, run without the base key variables, so the renewal
# takes the base key from the default profile, as on a workstation.
cat >>"$AWS_SHARED_CREDENTIALS_FILE" <<EOF
[default]
aws_access_key_id = $AWS_ACCESS_KEY_ID
aws_secret_access_key = $AWS_SECRET_ACCESS_KEY
EOF
add_credential_process_profile jitbox-renew "$CP_RENEW"
caller_via_profile jitbox-renew
expect_eq "credential_process renewed the session: get-caller-identity works" \
    "$(caller_arn_of_output)" "$ASSUMED_ROLE_PREFIX/$OWNER@$CP_RENEW"
expect_eq "credential_process called AssumeRole once more" \
    "$(assume_role_count "$OWNER@$CP_RENEW")" $((before + 1))
expect_exit 0 jb creds show "$CP_RENEW" --format credential-process
grant_end=$(epoch_of "$(record_field "$CP_RENEW" .expires_at)")
grant_left=$((grant_end - $(epoch_of "$(json "$OUT" .Expiration)")))
check "credential_process: the renewed session ends with the grant (${grant_left}s earlier)" \
    test "$grant_left" -ge 0 -a "$grant_left" -le 5
expect_eq "the next credential_process uses the renewed session" \
    "$(assume_role_count "$OWNER@$CP_RENEW")" $((before + 1))

# The record's deadline moves into the past, as it is between the deadline and the moment the
# background child removes the sandbox. Its session has most of an hour left, and no command
# may hand it out or ask STS for another.
past=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)
jq --arg past "$past" '.expires_at = $past' "$(record_path "$ENV_RENEW")" >"$TEST_DIR/record.tmp"
chmod 0600 "$TEST_DIR/record.tmp"
mv "$TEST_DIR/record.tmp" "$(record_path "$ENV_RENEW")"
calls=$(assume_role_count)
logged "$EXEC_FAILED" jb exec "$ENV_RENEW" -- true
expect_contains "after the deadline: exec says the sandbox expired" "$ERR" "expired at"
logged 4 jb env "$ENV_RENEW"
expect_contains "after the deadline: env says the sandbox expired" "$ERR" "is expired"
logged 4 jb creds show "$ENV_RENEW" --format credential-process
expect_contains "after the deadline: creds show says the sandbox expired" "$ERR" "is expired"
expect_eq "after the deadline: no AssumeRole" "$(assume_role_count)" "$calls"
logged 0 jb down "$ENV_RENEW" "$CP_RENEW"

# --- bounds and errors ----------------------------------------------------------------------------

calls=$(assume_role_count)
logged 2 jb up aws-readonly --name "short-$RUN_ID" --ttl 10m
expect_contains "a 10m ttl: the error names the STS range" "$ERR" 15m
expect_eq "a 10m ttl: no AssumeRole" "$(assume_role_count)" "$calls"
check "a 10m ttl: no record" no_record "short-$RUN_ID"

denied_message="User: $FAKE_AWS_USER_ARN is not authorized to perform: sts:AssumeRole"
fake_aws_control POST /__fake/fail "$(jq -cn --arg message "$denied_message" \
    '{action: "AssumeRole", count: 1, status: 403, code: "AccessDenied", message: $message}')" \
    >/dev/null
logged_run jb up aws-readonly --name "denied-$RUN_ID"
expect_eq "AccessDenied: up exits 3" "$RC" 3
expect_contains "AccessDenied: the error has AWS's code" "$ERR" AccessDenied
expect_contains "AccessDenied: the error has AWS's message" "$ERR" "$denied_message"
check "AccessDenied: no record" no_record "denied-$RUN_ID"
expect_eq "AccessDenied: no keyring item" "$(creds_item_count "denied-$RUN_ID")" 0

fake_aws_control POST /__fake/clock '{"offset_seconds": 600}' >/dev/null
logged_run jb up aws-readonly --name "skew-$RUN_ID"
fake_aws_control POST /__fake/clock '{"offset_seconds": 0}' >/dev/null
check "clock 10 min off: up fails" test "$RC" -ne 0
expect_match "clock 10 min off: the error names the clock skew" "$ERR" \
    'clock is off by (59[0-9]|60[0-9]) s'
check "clock 10 min off: no record" no_record "skew-$RUN_ID"

# --- MFA ------------------------------------------------------------------------------------------

logged 0 jb up aws-mfa --name "$MFA" --mfa-stdin <<<"$FAKE_AWS_MFA_CODE"
parameters=$(last_assume_role "$OWNER@$MFA")
expect_eq "MFA: AssumeRole has the serial number" "$(json "$parameters" .SerialNumber)" \
    "$FAKE_AWS_MFA_SERIAL"
expect_eq "MFA: AssumeRole has a token code" "$(json "$parameters" .TokenCode)" '***'
logged 0 jb exec "$MFA" -- "${GET_CALLER_IDENTITY[@]}"
expect_eq "MFA: exec works" "$(caller_arn_of_output)" "$ASSUMED_ROLE_PREFIX/$OWNER@$MFA"
logged 0 jb down "$MFA"

wrong_code=$(printf '%06d' $(((10#$FAKE_AWS_MFA_CODE + 1) % 1000000)))
logged_run jb up aws-mfa --name "mfa-wrong-$RUN_ID" --mfa-stdin <<<"$wrong_code"
check "wrong MFA code: up fails" test "$RC" -ne 0
expect_contains "wrong MFA code: the error has AWS's code" "$ERR" AccessDenied
expect_contains "wrong MFA code: the error has AWS's message" "$ERR" MultiFactorAuthentication
check "wrong MFA code: no record" no_record "mfa-wrong-$RUN_ID"

calls=$(assume_role_count)
started=$SECONDS
logged 2 jb_no_tty up aws-mfa --name "mfa-notty-$RUN_ID" </dev/null
check "no terminal: up fails within 10 s" test $((SECONDS - started)) -lt 10
expect_contains "no terminal: the error names --mfa-stdin" "$ERR" --mfa-stdin
expect_eq "no terminal: no AssumeRole" "$(assume_role_count)" "$calls"
check "no terminal: no record" no_record "mfa-notty-$RUN_ID"

# An MFA session is never renewed silently: with no terminal to ask on and no --mfa-stdin, the
# renewal fails before any call to STS, and with --mfa-stdin it takes the code from there.
start_with_stale_session "$MFA_RENEW" aws-mfa --mfa-stdin <<<"$FAKE_AWS_MFA_CODE"
calls=$(assume_role_count "$OWNER@$MFA_RENEW")
logged "$EXEC_FAILED" jb_no_tty exec "$MFA_RENEW" -- true </dev/null
expect_contains "MFA renewal, no terminal: exec says the session needs renewal" "$ERR" \
    "needs renewal"
expect_contains "MFA renewal, no terminal: exec names the MFA device" "$ERR" \
    "$FAKE_AWS_MFA_SERIAL"
expect_contains "MFA renewal, no terminal: exec names --mfa-stdin" "$ERR" --mfa-stdin
logged 2 jb_no_tty env "$MFA_RENEW" </dev/null
expect_contains "MFA renewal, no terminal: env names --mfa-stdin" "$ERR" --mfa-stdin
logged 2 jb_no_tty creds show "$MFA_RENEW" --format credential-process </dev/null
expect_contains "MFA renewal, no terminal: creds show names --mfa-stdin" "$ERR" --mfa-stdin
expect_eq "MFA renewal without a code: no AssumeRole" "$(assume_role_count "$OWNER@$MFA_RENEW")" \
    "$calls"
expect_exit 0 jb_no_tty env "$MFA_RENEW" --mfa-stdin <<<"$FAKE_AWS_MFA_CODE"
expect_eq "MFA renewal with --mfa-stdin: one AssumeRole" \
    "$(assume_role_count "$OWNER@$MFA_RENEW")" $((calls + 1))
parameters=$(last_assume_role "$OWNER@$MFA_RENEW")
expect_eq "MFA renewal: AssumeRole has the serial number" "$(json "$parameters" .SerialNumber)" \
    "$FAKE_AWS_MFA_SERIAL"
logged 0 jb_no_tty exec "$MFA_RENEW" -- "${GET_CALLER_IDENTITY[@]}" </dev/null
expect_eq "MFA renewal: exec uses the renewed session without a code" "$(caller_arn_of_output)" \
    "$ASSUMED_ROLE_PREFIX/$OWNER@$MFA_RENEW"
expect_eq "MFA renewal: the failed attempts are audited" "$(audit_count renew "$MFA_RENEW" error)" 3
expect_eq "MFA renewal: the renewal is audited" "$(audit_count renew "$MFA_RENEW" ok)" 1
logged 0 jb down "$MFA_RENEW"

# --- EC2 ------------------------------------------------------------------------------------------

logged 0 jb up ec2-box --name "$EC2" || die "up of an aws-ec2 template failed"
instance=$(fake_instance_of "$EC2")
instance_id=$(json "$instance" .instance_id)
expect_match "EC2: up launched an instance" "$instance_id" '^i-[0-9a-f]{17}$'
expect_eq "EC2: up returned once it was running" "$(json "$instance" .state)" running
expect_eq "EC2: image" "$(json "$instance" .image_id)" "$FAKE_AWS_IMAGE_ID"
expect_eq "EC2: instance type" "$(json "$instance" .instance_type)" t3.micro
expect_eq "EC2: subnet" "$(json "$instance" .subnet_id)" "$SUBNET"
expect_eq "EC2: security groups" "$(json "$instance" '.security_group_ids | join(",")')" \
    "$(jq -r 'join(",")' <<<"$GROUPS_TOML")"
expect_eq "EC2: key pair" "$(json "$instance" .key_name)" jitbox-test
expect_eq "EC2: root volume size" "$(json "$instance" '.block_device_mappings[0].Ebs.VolumeSize')" \
    16
expect_eq "EC2: root volume type" "$(json "$instance" '.block_device_mappings[0].Ebs.VolumeType')" \
    gp3
expect_eq "EC2: shutdown behaviour" "$(json "$instance" .instance_initiated_shutdown_behavior)" \
    terminate
expect_eq "EC2: IMDSv2 required" "$(json "$instance" .metadata_options.HttpTokens)" required
expect_contains "EC2: the user data powers off" "$(json "$instance" .user_data)" poweroff
record_expires=$(record_field "$EC2" .expires_at)
expect_eq "EC2 tag io.jitbox.sandbox" "$(json "$instance" '.tags["io.jitbox.sandbox"]')" \
    "$(record_field "$EC2" .id)"
expect_eq "EC2 tag io.jitbox.owner" "$(json "$instance" '.tags["io.jitbox.owner"]')" "$OWNER"
expect_eq "EC2 tag io.jitbox.template" "$(json "$instance" '.tags["io.jitbox.template"]')" ec2-box
expect_eq "EC2 tag io.jitbox.expires-at" \
    "$(epoch_of "$(json "$instance" '.tags["io.jitbox.expires-at"]')")" \
    "$(epoch_of "$record_expires")"
expect_eq "EC2 tag Name" "$(json "$instance" .tags.Name)" "jitbox-$EC2"
expect_eq "EC2 tag of the run label" "$(json "$instance" ".tags[\"$RUN_LABEL_KEY\"]")" "$RUN_ID"
expect_eq "EC2 volume tag io.jitbox.name" "$(json "$instance" '.volume_tags["io.jitbox.name"]')" \
    "$EC2"

logged 0 jb status
expect_match "EC2: status table shows the instance running" "$OUT" \
    "$EC2 +ec2-box +aws-ec2 +running .*$instance_id"
logged 0 jb status "$EC2" --json
expect_eq "EC2: status --json state" "$(json "$OUT" '.[0].state')" running
expect_contains "EC2: status --json detail has the instance id" "$(json "$OUT" '.[0].detail')" \
    "$instance_id"
expect_contains "EC2: status --json detail has the private address" \
    "$(json "$OUT" '.[0].detail')" "$(json "$instance" .private_ip)"

logged 0 jb extend "$EC2" --by 10m
extended_expires=$(record_field "$EC2" .expires_at)
expect_eq "extend moved the deadline by 10m" \
    $(($(epoch_of "$extended_expires") - $(epoch_of "$record_expires"))) 600
expect_eq "extend moved the io.jitbox.expires-at tag" \
    "$(epoch_of "$(json "$(fake_instance_of "$EC2")" '.tags["io.jitbox.expires-at"]')")" \
    "$(epoch_of "$extended_expires")"

logged 0 jb down "$EC2"
check "down waited until the instance was terminated" instance_state_is "$instance_id" terminated
check "down removed the record" no_record "$EC2"

instances=$(fake_aws_control GET /__fake/instances | jq '.instances | length')
unauthorized_message="You are not authorized to perform this operation."
fake_aws_control POST /__fake/fail "$(jq -cn --arg message "$unauthorized_message" \
    '{action: "RunInstances", count: 1, status: 403, code: "UnauthorizedOperation",
      message: $message}')" >/dev/null
logged 3 jb up ec2-box --name "ec2-denied-$RUN_ID"
expect_contains "UnauthorizedOperation: the error has AWS's code" "$ERR" UnauthorizedOperation
expect_contains "UnauthorizedOperation: the error has AWS's message" "$ERR" \
    "$unauthorized_message"
check "UnauthorizedOperation: no record" no_record "ec2-denied-$RUN_ID"
fake_aws_control POST /__fake/clock '{"offset_seconds": -600}' >/dev/null
logged_run jb up ec2-box --name "ec2-skew-$RUN_ID"
fake_aws_control POST /__fake/clock '{"offset_seconds": 0}' >/dev/null
check "EC2, clock 10 min off: up fails" test "$RC" -ne 0
expect_match "EC2, clock 10 min off: the error names the clock skew" "$ERR" 'clock is off'
check "EC2, clock 10 min off: no record" no_record "ec2-skew-$RUN_ID"
expect_eq "EC2 failures launched no instance" \
    "$(fake_aws_control GET /__fake/instances | jq '.instances | length')" "$instances"

logged 0 jb up ec2-box --name "$EC2_SHORT" --ttl 20s
short_id=$(json "$(fake_instance_of "$EC2_SHORT")" .instance_id)
expect_eq "short EC2 sandbox: one background child" "$(reap_pids "$EC2_SHORT" | wc -l)" 1
check "short EC2 sandbox: the background child terminates the instance within 60 s" \
    wait_until 60 instance_state_is "$short_id" terminated
check "short EC2 sandbox: the record is removed" wait_until 10 no_record "$EC2_SHORT"
check "short EC2 sandbox: the background child exits" wait_until 10 no_reap_process "$EC2_SHORT"
expect_eq "short EC2 sandbox: audit has an expire line" \
    "$(audit_count expire "$EC2_SHORT" ok)" 1

# --- down of the first session --------------------------------------------------------------------

logged 0 jb -v down "$RO"
logged "$EXEC_FAILED" jb exec "$RO" -- true
expect_eq "down: creds list has no item" "$(creds_item_count "$RO")" 0
check "down: the kernel key is gone" no_kernel_key "$RO_ID" aws-session
logged 0 jb status --json
expect_eq "no sandbox is left" "$(json "$OUT" length)" 0

# --- no secret anywhere it must not be ------------------------------------------------------------

stop_secret_watch
fake_aws_control GET /__fake/credentials |
    jq -r '.credentials[] | .secret_access_key, .session_token' >"$VALUES_FILE"
printf '%s\n' "$AWS_SECRET_ACCESS_KEY" >>"$VALUES_FILE"
expect_eq "the fake issued one session per AssumeRole" "$(($(wc -l <"$VALUES_FILE") - 1))" \
    $((2 * $(fake_requests | jq '[.requests[] | select(.action == "AssumeRole" and
        .status == 200)] | length')))
check "the command lines were sampled" test -s "$CMDLINE_LOG"
check "no secret in the output of other commands" lacks_values "$OUTPUT_LOG"
check "no secret in the audit log" lacks_values "$AUDIT_LOG"
check "no secret in the state folder" lacks_values "$STATE_DIR"
check "no secret in any process's command line" lacks_values "$CMDLINE_LOG"
