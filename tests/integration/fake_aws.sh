# shellcheck shell=bash
# Starts and stops the fake AWS (tests/fake_aws/fake_aws.py) for an integration test. lib.sh
# sources this file, and its cleanup stops a fake that is still running.
#
# fake_aws_start launches the fake on 127.0.0.1 with a generated key file and exports:
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY  a base key that the fake accepts
#   AWS_REGION, AWS_DEFAULT_REGION            the fake's region
#   AWS_ENDPOINT_URL, FAKE_AWS_URL            http://127.0.0.1:PORT
#   HOME, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE  empty files under TEST_DIR/home, so
#                                             that nothing of the machine's AWS set-up is read
#   AWS_EC2_METADATA_DISABLED=true
#   FAKE_AWS_PORT, FAKE_AWS_ACCOUNT_ID, FAKE_AWS_USER_ARN, FAKE_AWS_ROLE_ARN,
#   FAKE_AWS_MFA_SERIAL, FAKE_AWS_MFA_CODE, FAKE_AWS_IMAGE_ID
# Every other AWS_* variable is unset first.

FAKE_AWS_SCRIPT=$REPO_ROOT/tests/fake_aws/fake_aws.py
# Debian's python3 and awscli, not whatever else PATH finds first, so that the tests run with
# what scripts/setup.sh installs.
FAKE_AWS_PYTHON=${FAKE_AWS_PYTHON:-/usr/bin/python3}
FAKE_AWS_CLI=${FAKE_AWS_CLI:-/usr/bin/aws}
FAKE_AWS_PID=""
FAKE_AWS_START_SECONDS=10

# Unsets every AWS_* variable and points HOME and the AWS CLI's files at empty ones in TEST_DIR.
fake_aws_isolate_environment() {
    local name
    for name in $(compgen -e); do
        if [[ $name == AWS_* ]]; then
            unset "$name"
        fi
    done
    export HOME=$TEST_DIR/home
    mkdir -p "$HOME/.aws"
    chmod 0700 "$HOME" "$HOME/.aws"
    export AWS_CONFIG_FILE=$HOME/.aws/config
    export AWS_SHARED_CREDENTIALS_FILE=$HOME/.aws/credentials
    : >"$AWS_CONFIG_FILE"
    : >"$AWS_SHARED_CREDENTIALS_FILE"
    export AWS_EC2_METADATA_DISABLED=true
    # A proxy from the environment must not see requests meant for the fake.
    export no_proxy=127.0.0.1,localhost${no_proxy:+,$no_proxy}
    export NO_PROXY=$no_proxy
}

# Writes the fake's key file FILE with a fresh base key, an MFA device, one role and one image,
# and sets the FAKE_AWS_* variables that describe them.
fake_aws_write_keys() {
    local file=$1 key_id secret
    read -r key_id secret < <("$FAKE_AWS_PYTHON" -c '
import secrets, string
alphabet = string.ascii_uppercase + "234567"
print("AKIA" + "".join(secrets.choice(alphabet) for _ in range(16)), secrets.token_urlsafe(30))
')
    FAKE_AWS_ACCESS_KEY_ID=$key_id
    FAKE_AWS_SECRET_ACCESS_KEY=$secret
    FAKE_AWS_ACCOUNT_ID=123456789012
    FAKE_AWS_USER_ARN=arn:aws:iam::$FAKE_AWS_ACCOUNT_ID:user/jitbox-test
    FAKE_AWS_ROLE_ARN=arn:aws:iam::$FAKE_AWS_ACCOUNT_ID:role/jitbox-sandbox
    FAKE_AWS_MFA_SERIAL=arn:aws:iam::$FAKE_AWS_ACCOUNT_ID:mfa/jitbox-test
    FAKE_AWS_MFA_CODE=$(printf '%06d' $((RANDOM % 1000000)))
    FAKE_AWS_IMAGE_ID=ami-0123456789abcdef0
    jq -n \
        --arg key_id "$key_id" --arg secret "$secret" --arg account "$FAKE_AWS_ACCOUNT_ID" \
        --arg user "$FAKE_AWS_USER_ARN" --arg role "$FAKE_AWS_ROLE_ARN" \
        --arg serial "$FAKE_AWS_MFA_SERIAL" --arg code "$FAKE_AWS_MFA_CODE" \
        --arg image "$FAKE_AWS_IMAGE_ID" '{
            access_keys: {($key_id): {secret_access_key: $secret, account_id: $account,
                                      user_arn: $user}},
            mfa: {serial_number: $serial, token_code: $code},
            roles: {($role): {max_session_duration: 43200}},
            images: {($image): {name: "jitbox-test-image", root_device_name: "/dev/xvda"}}
        }' >"$file"
    chmod 0600 "$file"
}

# fake_aws_start [FAKE_OPTIONS...]: starts the fake with the given extra options (such as
# --pending-seconds 1), waits for its port and exports the variables listed at the top.
fake_aws_start() {
    local dir=$TEST_DIR/fake-aws
    mkdir -p "$dir"
    chmod 0700 "$dir"
    if [[ ! -x $FAKE_AWS_PYTHON ]]; then
        die "$FAKE_AWS_PYTHON is missing. Run bash scripts/setup.sh, which installs python3"
    fi
    fake_aws_isolate_environment
    fake_aws_write_keys "$dir/keys.json"

    FAKE_AWS_LOG=$dir/fake_aws.log
    "$FAKE_AWS_PYTHON" "$FAKE_AWS_SCRIPT" --keys "$dir/keys.json" --port-file "$dir/port" \
        --exit-with-pid $$ "$@" </dev/null >"$FAKE_AWS_LOG" 2>&1 &
    FAKE_AWS_PID=$!

    local deadline=$((SECONDS + FAKE_AWS_START_SECONDS))
    while [[ ! -s $dir/port ]]; do
        if ! pid_alive "$FAKE_AWS_PID" || ((SECONDS >= deadline)); then
            sed 's/^/#   fake_aws: /' "$FAKE_AWS_LOG"
            die "the fake AWS did not write its port within ${FAKE_AWS_START_SECONDS}s"
        fi
        sleep 0.1
    done
    FAKE_AWS_PORT=$(<"$dir/port")
    FAKE_AWS_URL=http://127.0.0.1:$FAKE_AWS_PORT
    export FAKE_AWS_PORT FAKE_AWS_URL
    export AWS_ENDPOINT_URL=$FAKE_AWS_URL
    export AWS_ACCESS_KEY_ID=$FAKE_AWS_ACCESS_KEY_ID
    export AWS_SECRET_ACCESS_KEY=$FAKE_AWS_SECRET_ACCESS_KEY
    export AWS_REGION=us-east-1
    export AWS_DEFAULT_REGION=$AWS_REGION
}

# Stops the fake when it runs: SIGTERM, then SIGKILL after 5 s.
fake_aws_stop() {
    if [[ -z $FAKE_AWS_PID ]]; then
        return 0
    fi
    kill -TERM "$FAKE_AWS_PID" 2>/dev/null
    wait_until 5 pid_gone "$FAKE_AWS_PID" || kill -KILL "$FAKE_AWS_PID" 2>/dev/null
    wait "$FAKE_AWS_PID" 2>/dev/null
    FAKE_AWS_PID=""
}

# fake_aws_control METHOD PATH [JSON]: calls the fake's control interface and prints the JSON
# it returns. Fails on an HTTP error status.
fake_aws_control() {
    local options=(--silent --show-error --fail-with-body --noproxy '*' --max-time 10 -X "$1")
    if [[ $1 == POST ]]; then
        options+=(-H 'Content-Type: application/json' --data "${3:-"{}"}")
    fi
    curl "${options[@]}" "$FAKE_AWS_URL$2"
}

# aws_cli ARGS...: runs Debian's AWS CLI against the fake, with JSON output, no pager and no
# retries, so that one injected failure fails one command. awscli 2.9 does not read
# AWS_ENDPOINT_URL, hence --endpoint-url.
aws_cli() {
    AWS_PAGER="" AWS_CLI_AUTO_PROMPT=off AWS_RETRY_MODE=standard AWS_MAX_ATTEMPTS=1 \
        timeout -k 5 30 "$FAKE_AWS_CLI" --endpoint-url "$FAKE_AWS_URL" --output json "$@"
}
