#!/usr/bin/env bash
# Rejected requests: each case checks the exit code, that stderr is exactly one line naming the
# offending value, and that nothing was created: no container or network with the run label, no
# state record and no __reap process.
# shellcheck disable=SC2119 # toml_labels without extra labels takes no arguments.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# A valid configuration, so that each case differs from a working `up` in one value only.
cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.alpha]
image = "busybox:1.36"
command = ["sleep", "infinity"]
$(toml_labels)
ttl = "10m"
max_ttl = "1h"

[templates.beta]
image = "busybox:1.36"
command = ["sleep", "infinity"]
$(toml_labels)
EOF

# write_config FILE BODY: a config file with one template "alpha" made of BODY and the labels.
write_config() {
    printf '[templates.alpha]\n%s\n%s\n' "$2" "$(toml_labels)" >"$TEST_DIR/$1"
}

nothing_created() {
    local containers=() networks=() records=() reapers=()
    mapfile -t containers < <(run_containers)
    mapfile -t networks < <(run_networks)
    mapfile -t records < <(record_names)
    mapfile -t reapers < <(reap_pids)
    if ((${#containers[@]} + ${#networks[@]} + ${#records[@]} + ${#reapers[@]} == 0)); then
        pass "$1: nothing was created"
        return
    fi
    fail "$1: nothing was created" "containers: ${containers[*]}" "networks: ${networks[*]}" \
        "records: ${records[*]}" "__reap pids: ${reapers[*]}"

    # Remove what the case left, so that the next case starts clean.
    jb down --all --ignore-missing >/dev/null 2>&1
    if ((${#containers[@]} > 0)); then
        dk rm -f "${containers[@]}" >/dev/null 2>&1
    fi
    if ((${#networks[@]} > 0)); then
        dk network rm "${networks[@]}" >/dev/null 2>&1
    fi
}

# reject CASE CODE NEEDLE CMD...: runs CMD and checks that it exits CODE with one stderr line
# that contains NEEDLE, and that it created nothing.
reject() {
    local case_name=$1 code=$2 needle=$3
    shift 3
    run "$@"
    if ((RC == code)); then
        pass "$case_name: exits $code"
    else
        fail "$case_name: exits $code" "exit status: $RC, command: $(describe "$@")"
        show_output
    fi
    expect_eq "$case_name: stderr is one line" "$(wc -l <"$TEST_DIR/last.err")" 1
    expect_contains "$case_name: stderr names the value" "$ERR" "$needle"
    expect_eq "$case_name: stdout is empty" "$OUT" ""
    nothing_created "$case_name"
}

# --- configuration --------------------------------------------------------------------------------

reject "missing --config file" 2 "$TEST_DIR/missing.toml" \
    jb_raw --config "$TEST_DIR/missing.toml" up alpha

write_config unknown-key.toml 'imgae = "busybox:1.36"'
reject "unknown key" 2 "imgae" jb_raw --config "$TEST_DIR/unknown-key.toml" up alpha
expect_contains "unknown key: message has file:line:column" "$ERR" "unknown-key.toml:2:1"
expect_contains "unknown key: message suggests the known key" "$ERR" '"image"'

write_config wrong-type.toml 'image = "busybox:1.36"
pids_limit = "many"'
reject "wrong type" 2 "pids_limit" jb_raw --config "$TEST_DIR/wrong-type.toml" up alpha
expect_contains "wrong type: message has file:line" "$ERR" "wrong-type.toml:3:"

write_config bad-duration.toml 'image = "busybox:1.36"
ttl = "10 minutes"'
reject "invalid duration in file" 2 "10 minutes" \
    jb_raw --config "$TEST_DIR/bad-duration.toml" up alpha
expect_contains "invalid duration: message has file:line" "$ERR" "bad-duration.toml:3:"

write_config group-writable.toml 'image = "busybox:1.36"'
chmod 0664 "$TEST_DIR/group-writable.toml"
reject "group-writable config file" 2 "chmod go-w $TEST_DIR/group-writable.toml" \
    jb_raw --config "$TEST_DIR/group-writable.toml" up alpha
expect_contains "group-writable config file: message names the mode" "$ERR" "mode 0664"

mkdir -m 0777 "$TEST_DIR/shared"
chmod 0777 "$TEST_DIR/shared"
write_config shared/jitbox.toml 'image = "busybox:1.36"'
reject "config file in a world-writable folder" 2 "chmod go-w $TEST_DIR/shared" \
    jb_raw --config "$TEST_DIR/shared/jitbox.toml" up alpha
expect_contains "config in a world-writable folder: message names the mode" "$ERR" "mode 0777"
chmod 1777 "$TEST_DIR/shared"
expect_exit 0 jb_raw --config "$TEST_DIR/shared/jitbox.toml" templates
chmod 0700 "$TEST_DIR/shared"

write_config docker-socket.toml 'image = "busybox:1.36"
command = ["sleep", "infinity"]
mounts = [{ source = "/var/run/docker.sock", target = "/var/run/docker.sock" }]'
reject "docker socket mount" 2 "docker-socket.toml:4:22" \
    jb_raw --config "$TEST_DIR/docker-socket.toml" up alpha
expect_contains "docker socket mount: message names the fix" "$ERR" "allow_sensitive = true"

# The path as written names no sensitive folder; its real path is /.
ln -s / "$TEST_DIR/host-root"
write_config root-link.toml 'image = "busybox:1.36"
command = ["sleep", "infinity"]
mounts = [{ source = "host-root/etc/..", target = "/host" }]'
reject "mount through a link to /" 2 "resolves to /, which is the host's root file system" \
    jb_raw --config "$TEST_DIR/root-link.toml" up alpha

# --- command line ---------------------------------------------------------------------------------

reject "--ttl 5x" 2 "5x" jb up alpha --ttl 5x
reject "--ttl above max_ttl" 6 "2h" jb up alpha --ttl 2h
check "--ttl above max_ttl: audit records the denial" \
    test "$(jq -c 'select(.action == "up" and .result == "denied")' "$AUDIT_LOG" 2>/dev/null |
        wc -l)" -ge 1
reject "unknown template" 2 "nosuch" jb up nosuch
expect_contains "unknown template: message lists alpha" "$ERR" alpha
expect_contains "unknown template: message lists beta" "$ERR" beta
reject "invalid --name" 2 "Bad_Name" jb up alpha --name Bad_Name

# --- did you mean ---------------------------------------------------------------------------------

reject "mistyped template" 2 '"alpah"' jb up alpah
expect_contains "mistyped template: suggests alpha" "$ERR" 'did you mean "alpha"?'
reject "mistyped command" 2 '"stauts"' jb stauts
expect_contains "mistyped command: suggests status" "$ERR" '(did you mean "status"?)'
reject "mistyped subcommand of policy" 2 '"policy chek"' jb policy chek
expect_contains "mistyped subcommand of policy: suggests check" "$ERR" \
    '(did you mean "policy check"?)'
reject "mistyped subcommand of creds" 2 '"creds shwo"' jb creds shwo
expect_contains "mistyped subcommand of creds: suggests show" "$ERR" \
    '(did you mean "creds show"?)'
reject "mistyped option" 2 '"--tll"' jb up alpha --tll 5m
expect_contains "mistyped option: suggests --ttl" "$ERR" '(did you mean "--ttl"?)'
reject "unknown command far from every name" 2 '"xx"' jb xx
expect_eq "unknown command far from every name: no suggestion" \
    "$(grep -c 'did you mean' <<<"$ERR")" 0
reject "missing subcommand of creds" 2 "list, show, clear" jb creds
write_config mistyped-key.toml 'imgae = "busybox:1.36"'
reject "mistyped key" 2 "mistyped-key.toml:2:1" jb_raw --config "$TEST_DIR/mistyped-key.toml" \
    up alpha
expect_contains "mistyped key: suggests image" "$ERR" '(did you mean "image"?)'

# --- engine failures ------------------------------------------------------------------------------

missing_socket=$TEST_DIR/no-engine.sock
reject "DOCKER_HOST names a missing socket" 3 "$missing_socket" \
    env DOCKER_HOST="unix://$missing_socket" timeout -k 5 "$JITBOX_TIMEOUT" "$JITBOX_BIN" \
    --config "$TEST_DIR/jitbox.toml" up alpha

# A unix socket server that accepts connections and never responds. It exits by itself after
# 180 s.
silent_socket=$TEST_DIR/silent.sock
python3 - "$silent_socket" <<'EOF' &
import socket, sys, time
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(sys.argv[1])
server.listen(16)
server.settimeout(1.0)
accepted = []
deadline = time.monotonic() + 180
while time.monotonic() < deadline:
    try:
        connection, _ = server.accept()
        accepted.append(connection)
    except socket.timeout:
        pass
EOF
track_pid $!
if wait_until 10 test -S "$silent_socket"; then
    started=$SECONDS
    reject "DOCKER_HOST socket never responds" 3 "$silent_socket" \
        env DOCKER_HOST="unix://$silent_socket" timeout -k 5 90 "$JITBOX_BIN" \
        --config "$TEST_DIR/jitbox.toml" up alpha
    printf '# jitbox gave up on the silent socket after %ds\n' "$((SECONDS - started))"
else
    fail "DOCKER_HOST socket never responds: test server started" "no socket at $silent_socket"
fi

# The image is missing locally, and the pull goes to a registry address on loopback where
# nothing listens, so it fails at once without leaving this machine.
closed_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0));
print(s.getsockname()[1])')
missing_image="127.0.0.1:$closed_port/jitbox-test/no-such-image:1"
write_config missing-image.toml "image = \"$missing_image\"
command = [\"sleep\", \"infinity\"]"
reject "image that cannot be pulled" 3 "$missing_image" \
    jb_raw --config "$TEST_DIR/missing-image.toml" up alpha
