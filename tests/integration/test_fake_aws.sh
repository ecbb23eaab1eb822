#!/usr/bin/env bash
# The fake AWS (tests/fake_aws) against Debian's AWS CLI as an independent client: the CLI's
# own SigV4 signing must pass the fake's check, and the fake's XML must parse into the fields
# the CLI documents. Covers AssumeRole and GetCallerIdentity with base and temporary keys, the
# signature, key, region and clock-skew errors, the EC2 instance life cycle, ClientToken,
# filters and pagination, the control interface, a credential_process profile, and that the
# fake listens on 127.0.0.1 only. Needs neither dockerd nor the jitbox binary.
# shellcheck disable=SC2016 # jq filters use $ literally.
TEST_NEEDS_DOCKER=0
TEST_NEEDS_JITBOX=0
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ ! -x $FAKE_AWS_CLI ]]; then
    die "$FAKE_AWS_CLI is missing. Run bash scripts/setup.sh, which installs awscli"
fi
fake_aws_start --pending-seconds 1 --shutting-down-seconds 1

SESSION=fake-test
IMAGE=$FAKE_AWS_IMAGE_ID

# expect_aws_error NAME CODE CMD...: runs an AWS CLI command that must fail with AWS error CODE.
# The CLI exits 254 when the service returned an error.
expect_aws_error() {
    local name=$1 code=$2
    shift 2
    run "$@"
    if ((RC == 254)) && [[ $ERR == *"($code)"* ]]; then
        pass "$name"
        return 0
    fi
    fail "$name" "expected exit 254 and error ($code)" "exit status: $RC"
    show_output
}

# signed_post SERVICE FORM_BODY: sends a POST signed by curl's own SigV4 code, a second client
# that can send what the CLI never would. Sets OUT to the XML and STATUS to the HTTP status.
signed_post() {
    run curl --silent --noproxy '*' --max-time 10 --aws-sigv4 "aws:amz:$AWS_REGION:$1" \
        --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" --data "$2" \
        --write-out '\n%{http_code}' "$FAKE_AWS_URL/"
    STATUS=${OUT##*$'\n'}
    OUT=${OUT%$'\n'*}
}

# as_temporary CREDENTIALS_JSON CMD...: runs CMD with the temporary credentials of an AssumeRole
# result.
as_temporary() {
    local key secret token
    key=$(json "$1" .Credentials.AccessKeyId)
    secret=$(json "$1" .Credentials.SecretAccessKey)
    token=$(json "$1" .Credentials.SessionToken)
    shift
    AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_SESSION_TOKEN=$token "$@"
}

# assume_role [CLI_OPTIONS...]: AssumeRole on the test role with the base key.
assume_role() {
    aws_cli sts assume-role --role-arn "$FAKE_AWS_ROLE_ARN" --role-session-name "$SESSION" "$@"
}

# expect_success NAME CMD...: runs CMD (see `run`) and checks that it exits 0.
expect_success() {
    local name=$1
    shift
    run "$@"
    if ((RC == 0)); then
        pass "$name"
        return 0
    fi
    fail "$name" "exit status: $RC"
    show_output
}

# instance_state ID: prints the state name that DescribeInstances returns.
instance_state() {
    aws_cli ec2 describe-instances --instance-ids "$1" 2>/dev/null |
        jq -r '.Reservations[0].Instances[0].State.Name'
}

state_is() {
    [[ $(instance_state "$1") == "$2" ]]
}

# Prints the JSON of instance ID from GET /__fake/instances.
fake_instance() {
    fake_aws_control GET /__fake/instances |
        jq --arg id "$1" '.instances[] | select(.instance_id == $id)'
}

# --- listening address ----------------------------------------------------------------------------

port_hex=$(printf '%04X' "$FAKE_AWS_PORT")
# Column 2 of /proc/net/tcp is the local address in hex, column 4 the state, 0A for LISTEN.
listeners=$(awk -v port=":$port_hex" \
    '$4 == "0A" && substr($2, length($2) - 4) == port { print $2 }' /proc/net/tcp /proc/net/tcp6)
expect_eq "the fake listens on 127.0.0.1 only" "$listeners" "0100007F:$port_hex"
if timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.2/$FAKE_AWS_PORT" 2>/dev/null; then
    fail "a connection to 127.0.0.2 is refused"
else
    pass "a connection to 127.0.0.2 is refused"
fi
for address in $(hostname -I 2>/dev/null); do
    if timeout 3 bash -c "exec 3<>/dev/tcp/$address/$FAKE_AWS_PORT" 2>/dev/null; then
        fail "a connection to $address is refused"
    else
        pass "a connection to $address is refused"
    fi
done

# --- STS with the base key and with temporary credentials -----------------------------------------

expect_exit 0 aws_cli sts get-caller-identity
expect_eq "base key: caller ARN" "$(json "$OUT" .Arn)" "$FAKE_AWS_USER_ARN"
expect_eq "base key: account" "$(json "$OUT" .Account)" "$FAKE_AWS_ACCOUNT_ID"

before=$(date -u +%s)
expect_success "assume-role with the base key" assume_role --duration-seconds 900
assumed=$OUT
expect_match "assume-role: temporary key id" "$(json "$assumed" .Credentials.AccessKeyId)" \
    '^ASIA[A-Z2-7]{16}$'
expect_eq "assume-role: assumed role ARN" "$(json "$assumed" .AssumedRoleUser.Arn)" \
    "arn:aws:sts::$FAKE_AWS_ACCOUNT_ID:assumed-role/jitbox-sandbox/$SESSION"
expiration=$(epoch_of "$(json "$assumed" .Credentials.Expiration)")
after=$(date -u +%s)
if [[ -n $expiration ]] && ((expiration >= before + 899 && expiration <= after + 901)); then
    pass "assume-role: expiration is now + 900 s"
else
    fail "assume-role: expiration is now + 900 s" \
        "expiration: $(json "$assumed" .Credentials.Expiration)"
fi

run as_temporary "$assumed" aws_cli sts get-caller-identity
expect_eq "temporary credentials: get-caller-identity exits 0" "$RC" 0
expect_eq "temporary credentials: caller ARN" "$(json "$OUT" .Arn)" \
    "arn:aws:sts::$FAKE_AWS_ACCOUNT_ID:assumed-role/jitbox-sandbox/$SESSION"
expect_match "temporary credentials: user id names the session" "$(json "$OUT" .UserId)" \
    "^AROA[A-Z2-7]+:$SESSION\$"

# The CLI checks no STS limit that these break, so each one reaches the fake.
expect_aws_error "session name with a space is rejected" ValidationError \
    aws_cli sts assume-role --role-arn "$FAKE_AWS_ROLE_ARN" --role-session-name "bad name"
expect_contains "session name error names the member" "$ERR" "at 'roleSessionName'"
expect_aws_error "duration above 12 h is rejected" ValidationError \
    assume_role --duration-seconds 43201
expect_aws_error "policy that is not JSON is rejected" MalformedPolicyDocument \
    assume_role --policy 'nope'
expect_aws_error "malformed role ARN is rejected" ValidationError \
    aws_cli sts assume-role --role-arn "arn:aws:iam::12:role/x" --role-session-name "$SESSION"
wrong_code=$(printf '%06d' $(((10#$FAKE_AWS_MFA_CODE + 1) % 1000000)))
expect_aws_error "wrong MFA code is rejected" AccessDenied \
    assume_role --serial-number "$FAKE_AWS_MFA_SERIAL" --token-code "$wrong_code"
expect_success "assume-role with MFA, policy, tags and source identity" \
    assume_role --serial-number "$FAKE_AWS_MFA_SERIAL" --token-code "$FAKE_AWS_MFA_CODE" \
    --policy '{"Version":"2012-10-17","Statement":[]}' --tags Key=team,Value=infra \
    --source-identity fake-tester
expect_eq "assume-role returns the source identity" "$(json "$OUT" .SourceIdentity)" fake-tester

# --- rejected credentials -------------------------------------------------------------------------

expect_aws_error "wrong secret key: SignatureDoesNotMatch" SignatureDoesNotMatch \
    env AWS_SECRET_ACCESS_KEY="wrong$AWS_SECRET_ACCESS_KEY" "$FAKE_AWS_CLI" \
    --endpoint-url "$FAKE_AWS_URL" sts get-caller-identity
expect_aws_error "unknown key on STS: InvalidClientTokenId" InvalidClientTokenId \
    env AWS_ACCESS_KEY_ID=AKIAUNKNOWNUNKNOWN00 "$FAKE_AWS_CLI" \
    --endpoint-url "$FAKE_AWS_URL" sts get-caller-identity
expect_aws_error "unknown key on EC2: AuthFailure" AuthFailure \
    env AWS_ACCESS_KEY_ID=AKIAUNKNOWNUNKNOWN00 "$FAKE_AWS_CLI" \
    --endpoint-url "$FAKE_AWS_URL" ec2 describe-instances
expect_aws_error "unsigned request: MissingAuthenticationToken" MissingAuthenticationToken \
    aws_cli --no-sign-request sts get-caller-identity
expect_aws_error "other region in the scope is rejected" SignatureDoesNotMatch \
    aws_cli --region eu-west-1 sts get-caller-identity
expect_contains "region error names the region" "$ERR" "eu-west-1"
expect_aws_error "temporary key without its token is rejected" InvalidClientTokenId \
    as_temporary "$assumed" env -u AWS_SESSION_TOKEN "$FAKE_AWS_CLI" \
    --endpoint-url "$FAKE_AWS_URL" sts get-caller-identity

# --- clock skew -----------------------------------------------------------------------------------

fake_aws_control POST /__fake/clock '{"offset_seconds": 600}' >/dev/null
expect_aws_error "clock 10 min ahead: STS rejects the signature" SignatureDoesNotMatch \
    aws_cli sts get-caller-identity
expect_contains "STS skew error says Signature expired" "$ERR" "Signature expired:"
expect_aws_error "clock 10 min ahead: EC2 RequestExpired" RequestExpired \
    aws_cli ec2 describe-instances
date_header=$(curl --silent --noproxy '*' --max-time 10 -D - -o /dev/null \
    "$FAKE_AWS_URL/__fake/requests" | sed -n 's/^Date: //ip' | tr -d '\r')
skew=$(($(date -u -d "$date_header" +%s) - $(date -u +%s)))
if ((skew >= 590 && skew <= 610)); then
    pass "Date header shows the offset clock"
else
    fail "Date header shows the offset clock" "Date: $date_header"
fi
fake_aws_control POST /__fake/clock '{"offset_seconds": -600}' >/dev/null
expect_aws_error "clock 10 min behind: STS rejects the signature" SignatureDoesNotMatch \
    aws_cli sts get-caller-identity
expect_contains "STS skew error says not yet current" "$ERR" "Signature not yet current:"
fake_aws_control POST /__fake/clock '{"offset_seconds": 0}' >/dev/null
expect_exit 0 aws_cli sts get-caller-identity

# --- EC2 instance life cycle ----------------------------------------------------------------------

expect_exit 0 aws_cli ec2 describe-images --image-ids "$IMAGE"
expect_eq "describe-images: root device" "$(json "$OUT" '.Images[0].RootDeviceName')" /dev/xvda
expect_aws_error "unknown image: InvalidAMIID.NotFound" InvalidAMIID.NotFound \
    aws_cli ec2 describe-images --image-ids ami-00000000000000000

user_data=$'#!/bin/sh\necho "hello from the fake"\n'
# shellcheck disable=SC2054 # the commas are part of the CLI's shorthand syntax.
run_options=(--image-id "$IMAGE" --instance-type t3.micro --count 1 --user-data "$user_data"
    --key-name jitbox --subnet-id subnet-0123456789abcdef0
    --security-group-ids sg-0123456789abcdef0
    --instance-initiated-shutdown-behavior terminate
    --metadata-options HttpTokens=required,HttpPutResponseHopLimit=2
    --block-device-mappings 'DeviceName=/dev/xvda,Ebs={VolumeSize=20,VolumeType=gp3}'
    --tag-specifications
    'ResourceType=instance,Tags=[{Key=Name,Value=fake-test},{Key=owner,Value=ci}]'
    --client-token fake-test-token-1)
expect_success "run-instances with every supported option" \
    aws_cli ec2 run-instances "${run_options[@]}"
instance=$(json "$OUT" '.Instances[0].InstanceId')
expect_match "run-instances: instance id" "$instance" '^i-[0-9a-f]{17}$'
expect_eq "run-instances: pending" "$(json "$OUT" '.Instances[0].State.Name')" pending
expect_eq "run-instances: tag Name" \
    "$(json "$OUT" '.Instances[0].Tags[] | select(.Key == "Name") | .Value')" fake-test
expect_eq "run-instances: metadata tokens" \
    "$(json "$OUT" '.Instances[0].MetadataOptions.HttpTokens')" required

details=$(fake_instance "$instance")
expect_eq "fake keeps the decoded user data" \
    "$(jq --arg expected "$user_data" '.user_data == $expected' <<<"$details")" true
expect_eq "fake keeps the tags" "$(json "$details" .tags.owner)" ci
expect_eq "fake keeps the shutdown behaviour" \
    "$(json "$details" .instance_initiated_shutdown_behavior)" terminate
expect_eq "fake keeps the volume size" \
    "$(json "$details" '.block_device_mappings[0].Ebs.VolumeSize')" 20

expect_success "run-instances again with the same ClientToken" \
    aws_cli ec2 run-instances "${run_options[@]}"
expect_eq "same ClientToken returns the same instance" "$(json "$OUT" '.Instances[0].InstanceId')" \
    "$instance"
expect_aws_error "same ClientToken, other arguments: IdempotentParameterMismatch" \
    IdempotentParameterMismatch \
    aws_cli ec2 run-instances "${run_options[@]}" --instance-type t3.small

check "instance becomes running" wait_until 10 state_is "$instance" running
expect_exit 0 aws_cli ec2 describe-instances --filters 'Name=tag:Name,Values=fake-*' \
    Name=instance-state-name,Values=running
expect_eq "filters tag:Name and instance-state-name find the instance" \
    "$(json "$OUT" '[.Reservations[].Instances[].InstanceId] | join(" ")')" "$instance"
expect_exit 0 aws_cli ec2 create-tags --resources "$instance" --tags Key=stage,Value=two
expect_exit 0 aws_cli ec2 describe-instances --filters Name=tag-key,Values=stage
expect_eq "create-tags: filter tag-key finds the instance" \
    "$(json "$OUT" '[.Reservations[].Instances[].InstanceId] | join(" ")')" "$instance"
expect_aws_error "unknown filter is rejected" InvalidParameterValue \
    aws_cli ec2 describe-instances --filters Name=vpc-id,Values=vpc-1

expect_exit 0 aws_cli ec2 terminate-instances --instance-ids "$instance"
expect_eq "terminate-instances: previous state" \
    "$(json "$OUT" '.TerminatingInstances[0].PreviousState.Name')" running
expect_eq "terminate-instances: current state" \
    "$(json "$OUT" '.TerminatingInstances[0].CurrentState.Name')" shutting-down
check "instance becomes terminated" wait_until 10 state_is "$instance" terminated
expect_aws_error "unknown instance: InvalidInstanceID.NotFound" InvalidInstanceID.NotFound \
    aws_cli ec2 terminate-instances --instance-ids i-00000000000000000

# Requests that the CLI cannot send, and the XML shapes of the two services' errors.
run_form="Action=RunInstances&Version=2016-11-15&ImageId=$IMAGE&InstanceType=t3.micro"
run_form+="&MinCount=1&MaxCount=1"
signed_post ec2 "$run_form&UserData=bm90IGJhc2U2NCE%3D%21"
expect_eq "user data that is not base64: status 400" "$STATUS" 400
expect_contains "user data that is not base64: InvalidParameterValue" "$OUT" \
    "<Code>InvalidParameterValue</Code>"
ec2_error_shape='^<\?xml [^>]*\?>[[:space:]]*<Response><Errors><Error><Code>[^<]+</Code>'
ec2_error_shape+='<Message>[^<]*</Message></Error></Errors><RequestID>[0-9a-f-]{36}</RequestID>'
ec2_error_shape+='</Response>$'
expect_match "EC2 error shape: Response/Errors/Error and RequestID" "$OUT" "$ec2_error_shape"
signed_post ec2 "$run_form&Placement.Tenancy=default"
expect_contains "unknown EC2 parameter: UnknownParameter" "$OUT" "<Code>UnknownParameter</Code>"
signed_post ec2 "$run_form&UserData=$(printf 'echo curl' | base64)"
expect_eq "curl-signed RunInstances: status 200" "$STATUS" 200
expect_contains "EC2 success namespace" "$OUT" \
    '<RunInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
signed_post sts \
    "Action=AssumeRole&Version=2011-06-15&RoleArn=$FAKE_AWS_ROLE_ARN&RoleSessionName=s&Extra=1"
expect_eq "unknown STS parameter: status 400" "$STATUS" 400
sts_error_shape='<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
sts_error_shape+='<Type>Sender</Type><Code>ValidationError</Code><Message>[^<]+</Message></Error>'
sts_error_shape+='<RequestId>[0-9a-f-]{36}</RequestId></ErrorResponse>$'
expect_match "STS error shape: ErrorResponse/Error/Type, Code, Message and RequestId" "$OUT" \
    "$sts_error_shape"
signed_post sts "Action=GetCallerIdentity&Version=2011-06-15"
expect_contains "STS success namespace" "$OUT" \
    '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'

# Six instances in pages of five: the CLI follows nextToken and returns all six.
expect_exit 0 aws_cli ec2 run-instances --image-id "$IMAGE" --instance-type t3.micro --count 6 \
    --tag-specifications 'ResourceType=instance,Tags=[{Key=batch,Value=pages}]'
expect_exit 0 aws_cli ec2 describe-instances --filters Name=tag:batch,Values=pages --page-size 5
expect_eq "paginated describe-instances returns all six" \
    "$(json "$OUT" '[.Reservations[].Instances[]] | length')" 6
pages=$(fake_aws_control GET /__fake/requests |
    jq '[.requests[] | select(.action == "DescribeInstances" and .parameters.MaxResults == "5")]
        | length')
expect_eq "the CLI fetched two pages" "$pages" 2

# --- control interface ----------------------------------------------------------------------------

fake_aws_control POST /__fake/fail '{"action": "DescribeInstances", "count": 1, "status": 503,
    "code": "Unavailable", "message": "injected by the test"}' >/dev/null
expect_aws_error "injected failure is returned once" Unavailable aws_cli ec2 describe-instances
expect_contains "injected failure carries its message" "$ERR" "injected by the test"
expect_exit 0 aws_cli ec2 describe-instances

fake_aws_control POST /__fake/delay '{"action": "GetCallerIdentity", "milliseconds": 1500}' \
    >/dev/null
started=$(date +%s%N)
expect_exit 0 aws_cli sts get-caller-identity
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
if ((elapsed_ms >= 1500)); then
    pass "delayed action takes at least 1.5 s"
else
    fail "delayed action takes at least 1.5 s" "took ${elapsed_ms} ms"
fi
fake_aws_control POST /__fake/delay '{"action": "GetCallerIdentity", "milliseconds": 0}' >/dev/null

fake_aws_control POST /__fake/expire '{"scope": "issued"}' >/dev/null
expect_aws_error "expired credentials: ExpiredToken" ExpiredToken \
    as_temporary "$assumed" aws_cli sts get-caller-identity
fake_aws_control POST /__fake/expire '{"scope": "next"}' >/dev/null
expect_success "assume-role after expire next" assume_role
already_expired=$OUT
expiration=$(epoch_of "$(json "$already_expired" .Credentials.Expiration)")
if [[ -n $expiration ]] && ((expiration < $(date -u +%s))); then
    pass "expire next: credentials are issued expired"
else
    fail "expire next: credentials are issued expired" \
        "expiration: $(json "$already_expired" .Credentials.Expiration)"
fi
expect_aws_error "credentials issued expired: ExpiredToken" ExpiredToken \
    as_temporary "$already_expired" aws_cli sts get-caller-identity
fake_aws_control POST /__fake/expire '{"scope": "next", "lifetime_seconds": 120}' >/dev/null
expect_success "assume-role after expire next with a lifetime" assume_role
short_lived=$OUT
lifetime=$(($(epoch_of "$(json "$short_lived" .Credentials.Expiration)") - $(date -u +%s)))
if ((lifetime > 100 && lifetime <= 120)); then
    pass "expire next with a lifetime: credentials expire after it"
else
    fail "expire next with a lifetime: credentials expire after it" "seconds left: $lifetime"
fi
expect_success "credentials with a short lifetime work" \
    as_temporary "$short_lived" aws_cli sts get-caller-identity
issued=$(fake_aws_control GET /__fake/credentials)
expect_eq "GET /__fake/credentials returns the session token" \
    "$(jq -r --arg key "$(json "$short_lived" .Credentials.AccessKeyId)" \
        '.credentials[] | select(.access_key_id == $key) | .session_token' <<<"$issued")" \
    "$(json "$short_lived" .Credentials.SessionToken)"

log=$(fake_aws_control GET /__fake/requests)
# Prints the distinct values that the request log shows for parameter NAME, joined by commas.
logged_values() {
    jq -r --arg name "$1" \
        '[.requests[].parameters[$name] | select(. != null)] | unique | join(",")' <<<"$log"
}
expect_eq "request log masks Policy" "$(logged_values Policy)" '***'
expect_eq "request log masks TokenCode" "$(logged_values TokenCode)" '***'
session_token=$(json "$assumed" .Credentials.SessionToken)
if [[ $log == *"$AWS_SECRET_ACCESS_KEY"* || $log == *"$session_token"* ]]; then
    fail "request log contains no secret key or session token"
else
    pass "request log contains no secret key or session token"
fi
expect_eq "request log records verdicts" \
    "$(json "$log" '[.requests[] | select(.verdict == "SignatureDoesNotMatch")] | length > 0')" true

# --- credential_process ---------------------------------------------------------------------------

# The shape of the output that `jitbox credentials` is meant to print, read by the CLI through a
# profile whose credential_process is a script.
expect_success "assume-role for credential_process" assume_role --duration-seconds 3600
printf '%s\n' "$OUT" >"$TEST_DIR/assume-role.json"
cat >"$TEST_DIR/print-credentials.sh" <<EOF
#!/bin/sh
exec jq '{Version: 1, AccessKeyId: .Credentials.AccessKeyId,
          SecretAccessKey: .Credentials.SecretAccessKey, SessionToken: .Credentials.SessionToken,
          Expiration: .Credentials.Expiration}' "$TEST_DIR/assume-role.json"
EOF
chmod 0700 "$TEST_DIR/print-credentials.sh"
cat >>"$AWS_CONFIG_FILE" <<EOF
[profile fake-process]
credential_process = $TEST_DIR/print-credentials.sh
region = $AWS_REGION
EOF
expect_success "get-caller-identity with the credential_process profile" \
    env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PAGER="" \
    "$FAKE_AWS_CLI" --endpoint-url "$FAKE_AWS_URL" --output json \
    sts get-caller-identity --profile fake-process
expect_eq "credential_process profile: caller ARN" "$(json "$OUT" .Arn)" \
    "arn:aws:sts::$FAKE_AWS_ACCOUNT_ID:assumed-role/jitbox-sandbox/$SESSION"

# --- reset and stop -------------------------------------------------------------------------------

fake_aws_control POST /__fake/reset >/dev/null
expect_eq "reset forgets the instances" \
    "$(fake_aws_control GET /__fake/instances | jq '.instances | length')" 0
fake_pid=$FAKE_AWS_PID
fake_aws_stop
check "the fake exits on SIGTERM" pid_gone "$fake_pid"
