#!/usr/bin/env bash
# exec, shell and logs in docker sandboxes, against the real dockerd (or, with
# JITBOX_TEST_ENGINE=podman, a private Podman service) and a real gnome-keyring-daemon on a
# private bus: stdout and stderr kept apart, exit codes (the
# command's, 126, 127, 125 and 2), stdin with -i and its end, -e, -w and -u, generated secrets
# in the exec environment, several MiB each way checked by SHA-256, exec -t, logs with and
# without --follow, `shell` on a pseudo-terminal (a command, its exit code, a resize, SIGTERM,
# the terminal restored), sandboxes that are not usable, the audit records, and exec through
# DOCKER_HOST=tcp:// both plain and over TLS, by a proxy on 127.0.0.1 to the engine's socket.
# shellcheck disable=SC2016 # sh -c scripts and jq filters use $ literally.
# shellcheck source-path=SCRIPTDIR source=lib.sh

source "$(dirname "${BASH_SOURCE[0]}")/keyring_lib.sh"
run_on_private_bus "$@"

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PTY_SESSION=(python3 "$REPO_ROOT/tests/integration/pty_session.py")
ENGINE_PROXY=(python3 "$REPO_ROOT/tests/integration/engine_proxy.py")
KEYRING_DAEMON_PID=""

export HOME=$TEST_DIR/home
export XDG_DATA_HOME=$HOME/.local/share XDG_CONFIG_HOME=$HOME/.config XDG_CACHE_HOME=$HOME/.cache
export XDG_RUNTIME_DIR=$TEST_DIR/runtime
mkdir -m 0700 "$HOME" "$XDG_RUNTIME_DIR"
unset JITBOX_KEYRING GNOME_KEYRING_CONTROL DOCKER_TLS_VERIFY DOCKER_CERT_PATH
if [[ $JITBOX_TEST_ENGINE == podman ]]; then
    # lib.sh pointed DOCKER_HOST at the private service's socket.
    ENGINE_SOCKET=$PODMAN_SOCKET
else
    ENGINE_SOCKET=/var/run/docker.sock
    unset DOCKER_HOST
fi

stop_exec_helpers() {
    stop_keyring_daemon
    rm -rf "$bus_dir"
}
on_cleanup stop_exec_helpers

cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.box]
image = "busybox:1.36"
command = ["sleep", "infinity"]
$(toml_labels)
ttl = "10m"

[templates.box.secrets]
API_TOKEN = {}

[templates.ash]
image = "busybox:1.36"
command = ["sleep", "infinity"]
shell = "/bin/ash"
$(toml_labels)
ttl = "10m"

[templates.talker]
image = "busybox:1.36"
command = ["sh", "-c", "echo out-1; echo err-1 >&2; sleep 3; echo out-2; echo err-2 >&2"]
$(toml_labels)
ttl = "10m"
EOF

if ! start_keyring_daemon --unlock; then
    die "gnome-keyring-daemon provided no default collection within 10 s (see keyring-daemon.log)"
fi

BOX=box-$RUN_ID
expect_exit 0 jb up box --name "$BOX" || die "the first sandbox did not start"
expect_exit 0 jb creds show "$BOX" API_TOKEN --format json
TOKEN=$(json "$OUT" .API_TOKEN)
expect_match "the generated secret is 32 letters and digits" "$TOKEN" '^[A-Za-z0-9]{32}$'
printf '%s\n' "$TOKEN" >"$TEST_DIR/token.txt"

# --- streams and exit codes -----------------------------------------------------------------------

expect_exit 0 jb exec "$BOX" -- sh -c 'echo to-out; echo to-err >&2'
expect_eq "exec: stdout has only stdout" "$OUT" to-out
expect_eq "exec: stderr has only stderr" "$ERR" to-err

expect_exit 3 jb exec "$BOX" -- sh -c 'exit 3'
expect_exit 0 jb exec box -- true
expect_exit 127 jb exec "$BOX" -- no-such-command
expect_contains "127: the error names the command" "$ERR" "no-such-command: command not found"
expect_eq "127: the engine's report is not on stdout" "$OUT" ""
expect_exit 127 jb exec "$BOX" -- /no/such/program
expect_exit 126 jb exec "$BOX" -- /etc/passwd
expect_contains "126: the error says why" "$ERR" "permission denied"
expect_exit 126 jb exec -u no-such-user "$BOX" -- id
expect_contains "126 for an unknown user names it" "$ERR" "no-such-user"
expect_exit 126 jb exec -w /no/such/folder "$BOX" -- true
expect_exit 125 jb exec "missing-$RUN_ID" -- true
expect_contains "125: the error names the sandbox" "$ERR" "missing-$RUN_ID"
expect_exit 2 jb exec "$BOX"
expect_exit 2 jb exec -w relative "$BOX" -- true
expect_exit 2 jb exec -e =x "$BOX" -- true
expect_exit 2 jb exec -it "$BOX" -- true </dev/null
expect_contains "-it without a terminal says to leave out -t" "$ERR" "leave out -t"

# --- stdin, -e, -w, -u and secrets ----------------------------------------------------------------

run bash -c 'echo piped | "$@"' bash "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" exec -i "$BOX" -- cat
expect_eq "exec -i passes stdin, and its end ends cat" "$RC:$OUT" "0:piped"
run bash -c 'echo piped | "$@"' bash "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" exec "$BOX" -- cat
expect_eq "exec without -i passes no stdin" "$RC:$OUT" "0:"
early_reader=(head -n 2)
if [[ $JITBOX_TEST_ENGINE == podman ]]; then
    # Podman 4.3 can drop the output of a command that exits with input still unread: its read
    # from conmon's attach socket fails with "connection reset by peer" first. The pause lets
    # the output through before the exit.
    early_reader=(sh -c 'head -n 2; sleep 1')
fi
run bash -c 'yes | "$@"' bash "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" \
    exec -i "$BOX" -- "${early_reader[@]}"
expect_eq "exec -i: a command that stops reading early exits with its own code" "$RC:$OUT" \
    $'0:y\ny'

export LOCAL_VALUE=from-here
expect_exit 0 jb exec -e FOO=bar -e LOCAL_VALUE -e UNSET_HERE -w /tmp -u 1234:5678 "$BOX" -- \
    sh -c 'echo "$FOO|$LOCAL_VALUE|${UNSET_HERE-unset}|$(pwd)|$(id -u):$(id -g)"'
expect_eq "exec: -e, -e NAME, -w and -u apply" "$OUT" "bar|from-here|unset|/tmp|1234:5678"
unset LOCAL_VALUE

expect_exit 0 jb exec "$BOX" -- sh -c 'printf %s "$API_TOKEN"'
check "exec: the command sees the generated secret" test "$OUT" == "$TOKEN"
expect_exit 0 jb exec -e API_TOKEN=override "$BOX" -- sh -c 'printf %s "$API_TOKEN"'
expect_eq "exec: -e wins over a generated secret" "$OUT" override

# --- several MiB each way -------------------------------------------------------------------------

head -c $((6 * 1024 * 1024)) /dev/urandom >"$TEST_DIR/big.bin"
local_sum=$(sha256sum <"$TEST_DIR/big.bin" | cut -d' ' -f1)
run bash -c '"$@" <"$0"' "$TEST_DIR/big.bin" "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" \
    exec -i "$BOX" -- sh -c 'cat >/tmp/big.bin && sha256sum /tmp/big.bin'
expect_eq "6 MiB of stdin arrive intact" "$RC:${OUT%% *}" "0:$local_sum"
run bash -c '"$@" | sha256sum' bash "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" \
    exec "$BOX" -- cat /tmp/big.bin
expect_eq "6 MiB of stdout arrive intact" "${OUT%% *}" "$local_sum"
expect_exit 0 jb exec "$BOX" -- sh -c \
    'head -c 3000000 /dev/zero | tr "\0" a; head -c 2000000 /dev/zero | tr "\0" b >&2'
expect_eq "3 MB on stdout stay on stdout" "$(tr -d a <"$TEST_DIR/last.out" | wc -c):$(wc -c <"$TEST_DIR/last.out")" \
    "0:3000000"
expect_eq "2 MB on stderr stay on stderr" "$(tr -d b <"$TEST_DIR/last.err" | wc -c):$(wc -c <"$TEST_DIR/last.err")" \
    "0:2000000"

# --- exec -t --------------------------------------------------------------------------------------

expect_exit 4 jb exec -t "$BOX" -- sh -c 'echo out; echo err >&2; exit 4'
check "exec -t: both streams arrive on stdout through the TTY" \
    test "$(cat -v "$TEST_DIR/last.out")" == $'out^M\nerr^M'
expect_eq "exec -t: nothing on stderr" "$ERR" ""

run "${PTY_SESSION[@]}" 'expect:ready' 'send:typed\r' 'expect:got typed' -- \
    "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" exec -it "$BOX" -- \
    sh -c 'echo ready; read -r line; echo "got $line"'
expect_contains "exec -it on a terminal: input and output" "$OUT" "status exit 0"
expect_contains "exec -it restores the terminal" "$OUT" "terminal restored"

# --- shell ----------------------------------------------------------------------------------------

run "${PTY_SESSION[@]}" --size 30x100 --transcript "$TEST_DIR/shell.txt" \
    'expect:# ' 'send:stty size\r' 'expect:30 100' \
    'resize:40x120' 'sleep:0.5' 'send:stty size\r' 'expect:40 120' \
    'send:echo $((6*7)); exit 3\r' 'expect:42' -- \
    "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" shell "$BOX"
expect_eq "shell: the driver saw every expected output" "$RC" 0
expect_contains "shell: exits with the shell's code" "$OUT" "status exit 3"
expect_contains "shell: the terminal is restored" "$OUT" "terminal restored"
check "shell: the TTY starts at the local size" grep -q '30 100' "$TEST_DIR/shell.txt"
check "shell: a resize reaches the TTY" grep -q '40 120' "$TEST_DIR/shell.txt"
check "shell: the command ran" grep -q '^42' "$TEST_DIR/shell.txt"

run "${PTY_SESSION[@]}" 'expect:# ' 'signal:TERM' -- \
    "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" shell "$BOX"
expect_contains "shell: SIGTERM ends it with 143" "$OUT" "status exit 143"
expect_contains "shell: the terminal is restored after SIGTERM" "$OUT" "terminal restored"

ASH=ash-$RUN_ID
expect_exit 0 jb up ash --name "$ASH"
run "${PTY_SESSION[@]}" --transcript "$TEST_DIR/ash.txt" 'expect:\$ ' \
    'send:echo "shell=$0 dir=$(pwd) uid=$(id -u)"; exit\r' 'expect:uid=4321' -- \
    "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" shell -u 4321 -w /tmp "$ASH"
expect_eq "shell: the template's shell, -u and -w apply" \
    "$(grep -o 'shell=[^ ]* dir=[^ ]* uid=[0-9]*' "$TEST_DIR/ash.txt" | tail -n 1)" \
    "shell=/bin/ash dir=/tmp uid=4321"
expect_exit 0 jb down "$ASH"

expect_exit 2 jb shell "$BOX" </dev/null
expect_contains "shell without a terminal points to exec -i" "$ERR" "exec -i"

# --- audit ----------------------------------------------------------------------------------------

# audit_details ACTION: the `detail` of every ACTION record of the first sandbox, one a line.
audit_details() {
    jq -r --arg action "$1" --arg sandbox "$BOX" \
        'select(.action == $action and .sandbox == $sandbox) | .detail' "$AUDIT_LOG"
}
check "audit: exec records name the command and count the arguments" \
    grep -qx 'command sh with 2 arguments' <(audit_details exec)
check "audit: an exec that did not start is recorded too" \
    grep -qx 'command no-such-command with 0 arguments' <(audit_details exec)
expect_eq "audit: shell records name the shell" \
    "$(jq -r 'select(.action == "shell") | .detail' "$AUDIT_LOG" | sort -u | tr '\n' ' ')" \
    "shell /bin/ash shell /bin/sh "
check "audit: no argument value" test "$(grep -c 'to-out' "$AUDIT_LOG")" -eq 0
check "audit: no secret value" test "$(grep -cF -f "$TEST_DIR/token.txt" "$AUDIT_LOG")" -eq 0

# --- logs -----------------------------------------------------------------------------------------

TALKER=talker-$RUN_ID
expect_exit 0 jb up talker --name "$TALKER"
started=$SECONDS
expect_exit 0 jb logs --follow "$TALKER"
expect_eq "logs --follow: stdout, to the end" "$OUT" $'out-1\nout-2'
expect_eq "logs --follow: stderr, to the end" "$ERR" $'err-1\nerr-2'
check "logs --follow waited for the container to stop" test $((SECONDS - started)) -ge 2

expect_exit 0 jb logs "$TALKER"
expect_eq "logs: stdout" "$OUT" $'out-1\nout-2'
expect_eq "logs: stderr" "$ERR" $'err-1\nerr-2'
expect_exit 0 jb logs --tail 1 "$TALKER"
expect_eq "logs --tail 1: one line in all" "$(cat "$TEST_DIR/last.out" "$TEST_DIR/last.err" | wc -l)" 1
expect_exit 0 jb logs --timestamps "$TALKER"
expect_match "logs --timestamps: RFC 3339 first" "${OUT%% *}" "$RFC3339_UTC"
expect_exit 0 jb logs --since 2099-01-01T00:00:00Z "$TALKER"
expect_eq "logs --since a later time: nothing" "$OUT$ERR" ""
expect_exit 0 jb logs --since 1h "$TALKER"
expect_eq "logs --since 1h: everything" "$OUT" $'out-1\nout-2'
expect_exit 2 jb logs --tail many "$TALKER"
expect_exit 2 jb logs --since yesterday "$TALKER"
expect_exit 125 jb exec "$TALKER" -- true
expect_contains "exec in a stopped container says so" "$ERR" "not running"
expect_exit 0 jb down "$TALKER"
expect_exit 4 jb logs "$TALKER"

"$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" logs --follow "$BOX" >/dev/null 2>&1 &
follower=$!
track_pid "$follower"
sleep 1
kill -INT "$follower"
if timeout 10 tail --pid="$follower" -f /dev/null; then
    wait "$follower"
    follow_status=$?
else
    kill -KILL "$follower"
    follow_status="still running after 10 s"
fi
expect_eq "logs --follow ends with 130 on SIGINT" "$follow_status" 130

# --- sandboxes that cannot be used ----------------------------------------------------------------

# write_record NAME PROVIDER OWNER EXPIRES: a record in the state folder without resources
# behind it, removed again right after its checks.
write_record() {
    jq -n --arg name "$1" --arg provider "$2" --arg owner "$3" --arg expires "$4" '{
        name: $name, id: "00000000000000aa", template: "box", provider: $provider,
        state: "running", owner: $owner, created_at: "2026-01-01T00:00:00Z",
        expires_at: $expires, max_expires_at: $expires, endpoint: "", region: "",
        resources: {items: [], ports: []}}' >"$(record_path "$1")"
    chmod 0600 "$(record_path "$1")"
}

write_record "ec2-$RUN_ID" aws-ec2 "$(id -un)" 2099-01-01T00:00:00Z
expect_exit 125 jb exec "ec2-$RUN_ID" -- true
expect_contains "exec on EC2 says to use ssh" "$ERR" "ssh"
expect_exit 2 jb logs "ec2-$RUN_ID"
rm -f "$(record_path "ec2-$RUN_ID")"

write_record "other-$RUN_ID" docker someone-else 2099-01-01T00:00:00Z
expect_exit 125 jb exec "other-$RUN_ID" -- true
expect_contains "exec in another user's sandbox names its owner" "$ERR" "belongs to someone-else"
expect_exit 6 jb logs "other-$RUN_ID"
rm -f "$(record_path "other-$RUN_ID")"

write_record "old-$RUN_ID" docker "$(id -un)" 2026-01-01T00:10:00Z
expect_exit 125 jb exec "old-$RUN_ID" -- true
expect_contains "exec in an expired sandbox says so" "$ERR" "expired"
expect_exit 4 jb logs "old-$RUN_ID"
rm -f "$(record_path "old-$RUN_ID")"

# --- DOCKER_HOST=tcp:// through a proxy, plain and TLS --------------------------------------------

# start_proxy NAME [ARGS...]: starts a proxy, which the cleanup stops after `down --all`, and
# sets PROXY_PORT to its port. Not in a subshell, so that track_pid records it.
start_proxy() {
    local name=$1
    shift
    "${ENGINE_PROXY[@]}" --socket "$ENGINE_SOCKET" --port-file "$TEST_DIR/$name.port" \
        --log "$TEST_DIR/$name.log" "$@" >/dev/null 2>&1 &
    track_pid "$!"
    wait_until 10 test -s "$TEST_DIR/$name.port" || return 1
    PROXY_PORT=$(<"$TEST_DIR/$name.port")
}

start_proxy plain || die "the plain TCP proxy did not start"
plain_port=$PROXY_PORT
TCP=tcp-$RUN_ID
DOCKER_HOST=tcp://127.0.0.1:$plain_port run jb up box --name "$TCP"
expect_eq "up through tcp:// works" "$RC" 0
run bash -c 'echo over-tcp | "$@"' bash "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" \
    exec -i "$TCP" -- sh -c 'cat; echo err >&2; exit 7'
expect_eq "exec -i over tcp://: output, end of input and exit code" "$RC:$OUT:$ERR" \
    "7:over-tcp:err"

certs=$TEST_DIR/certs
mkdir "$certs"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=jitbox test CA" \
    -keyout "$certs/ca-key.pem" -out "$certs/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout "$certs/server-key.pem" \
    -out "$certs/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$certs/san.cnf"
openssl x509 -req -days 1 -in "$certs/server.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca-key.pem" \
    -CAcreateserial -extfile "$certs/san.cnf" -out "$certs/server-cert.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=client -keyout "$certs/key.pem" \
    -out "$certs/client.csr" 2>/dev/null
openssl x509 -req -days 1 -in "$certs/client.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca-key.pem" \
    -CAcreateserial -out "$certs/cert.pem" 2>/dev/null
start_proxy tls --cert "$certs/server-cert.pem" --key "$certs/server-key.pem" ||
    die "the TLS proxy did not start"
tls_port=$PROXY_PORT
export DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$certs
TLS=tls-$RUN_ID
DOCKER_HOST=tcp://127.0.0.1:$tls_port run jb up box --name "$TLS"
expect_eq "up through tcp:// with TLS works" "$RC" 0
run bash -c 'echo over-tls | "$@"' bash "$JITBOX_BIN" --config "$TEST_DIR/jitbox.toml" \
    exec -i "$TLS" -- sh -c 'cat; exit 8'
expect_eq "exec -i over TLS: output, end of input and exit code" "$RC:$OUT" "8:over-tls"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$TEST_DIR/tls.bin"
run bash -c '"$@" <"$0" | sha256sum' "$TEST_DIR/tls.bin" "$JITBOX_BIN" --config \
    "$TEST_DIR/jitbox.toml" exec -i "$TLS" -- cat
expect_eq "2 MiB through TLS both ways arrive intact" "${OUT%% *}" \
    "$(sha256sum <"$TEST_DIR/tls.bin" | cut -d' ' -f1)"
expect_exit 0 jb logs "$TLS"
no_truncated_input() {
    ! grep -qs truncated "$TEST_DIR/tls.log"
}
check "the end of input over TLS was a close_notify" no_truncated_input
expect_exit 0 jb down "$TLS"
unset DOCKER_TLS_VERIFY DOCKER_CERT_PATH
expect_exit 0 jb down "$TCP"
