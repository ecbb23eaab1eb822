#!/usr/bin/env bash
# Image pulls from private registries that the test starts on 127.0.0.1, each Debian's
# docker-registry with its own configuration and storage folder. It checks the pull stream, its
# progress on a pseudo-terminal and its absence in a pipe, and registry credentials from a Docker
# configuration: auths, then a credential helper on PATH. The password must appear in no
# argument list, -vv output, audit log or state record.
# shellcheck disable=SC2016 # jq filters use $ literally.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REGISTRY_BIN=${REGISTRY_BIN:-/usr/bin/docker-registry}
if [[ ! -x $REGISTRY_BIN ]] || ! command -v htpasswd >/dev/null 2>&1; then
    skip_test "needs docker-registry and htpasswd (apache2-utils); bash scripts/setup.sh installs them"
fi
if ! command -v script >/dev/null 2>&1; then
    skip_test "needs script (bsdutils) for the pseudo-terminal"
fi

# Image references of this run, removed from the engine by the cleanup.
PUSHED_IMAGES=()
remove_pushed_images() {
    local image
    for image in "${PUSHED_IMAGES[@]}"; do
        forget_image "$image"
    done
}
on_cleanup remove_pushed_images

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry NAME [HTPASSWD_FILE]: starts a registry with storage under TEST_DIR/NAME and
# sets REGISTRY to its address. With HTPASSWD_FILE, every request needs a user of that file.
start_registry() {
    local name=$1 htpasswd=${2:-} port folder
    port=$(free_port)
    folder=$TEST_DIR/$name
    mkdir -p "$folder/storage"
    {
        printf 'version: 0.1\n'
        printf 'log:\n  level: warn\n'
        printf 'storage:\n  filesystem:\n    rootdirectory: %s\n' "$folder/storage"
        printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
        if [[ -n $htpasswd ]]; then
            printf 'auth:\n  htpasswd:\n    realm: jitbox-test\n    path: %s\n' "$htpasswd"
        fi
    } >"$folder/config.yml"
    # The registry gets none of the test's output descriptors, so a pipe that reads the test's
    # output ends with the test.
    "$REGISTRY_BIN" serve "$folder/config.yml" >"$folder/registry.log" 2>&1 </dev/null \
        {TEST_STDOUT_FD}>&- {TEST_STDERR_FD}>&- &
    track_pid $!
    # /v2/ returns 200, or 401 with authentication, once the registry listens.
    if ! wait_until 30 curl -s -o /dev/null "http://127.0.0.1:$port/v2/"; then
        cat "$folder/registry.log" >&2
        die "registry $name did not start on 127.0.0.1:$port"
    fi
    REGISTRY=127.0.0.1:$port
}

# push_image ADDRESS [DOCKER_CONFIG]: builds ADDRESS/jitbox-test/box:1 from busybox:1.36 and a
# layer of its own, pushes it and removes it from the engine again. `jitbox up` then has to pull
# it, with that layer's bytes, because the engine has no image with this layer.
push_image() {
    local image=$1/jitbox-test/box:1 context=$TEST_DIR/build-$RANDOM
    PUSHED_IMAGES+=("$image")
    mkdir -p "$context"
    head -c 300000 /dev/urandom >"$context/unique.bin"
    printf 'FROM busybox:1.36\nCOPY unique.bin /unique.bin\n' >"$context/Dockerfile"
    dk build -q -t "$image" "$context" >"$TEST_DIR/build.log" 2>&1 ||
        die "cannot build $image: $(cat "$TEST_DIR/build.log")"
    if ! DOCKER_CONFIG=${2:-$TEST_DIR/no-docker-config} dk push "$image" >"$TEST_DIR/push.log" 2>&1; then
        die "cannot push $image: $(cat "$TEST_DIR/push.log")"
    fi
    dk rmi "$image" >/dev/null || die "cannot remove $image from the engine"
}

# forget_image IMAGE: removes IMAGE from the engine, so that the next `up` pulls it again.
forget_image() {
    dk rmi "$1" >/dev/null 2>&1
}

image_present() {
    dk image inspect "$1" >/dev/null 2>&1
}

# write_template IMAGE: a template `reg` for IMAGE.
write_template() {
    cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.reg]
image = "$1"
command = ["sleep", "infinity"]
user = "65534:65534"
read_only = true
$(toml_labels)
ttl = "10m"
EOF
}

mkdir -p "$TEST_DIR/no-docker-config"

# --- an open registry: the pull stream, in a pipe and on a terminal -------------------------------

start_registry open
open_image=$REGISTRY/jitbox-test/box:1
push_image "$REGISTRY"
write_template "$open_image"

DOCKER_CONFIG=$TEST_DIR/no-docker-config expect_exit 0 jb up reg --name piped
check "up pulled $open_image" image_present "$open_image"
if [[ $ERR == *$'\r'* || $ERR == *$'\x1b'* || $ERR == *"pulling image"* ]]; then
    fail "no progress in a pipe" "stderr: $ERR"
else
    pass "no progress in a pipe"
fi
expect_exit 0 jb down piped

forget_image "$open_image"
printf -v up_command 'DOCKER_CONFIG=%q %q --config %q up reg --name onpty' \
    "$TEST_DIR/no-docker-config" "$JITBOX_BIN" "$TEST_DIR/jitbox.toml"
timeout -k 5 "$JITBOX_TIMEOUT" script -qfec "$up_command" "$TEST_DIR/typescript" \
    </dev/null >/dev/null 2>&1
expect_eq "up on a pseudo-terminal exits 0" "$?" 0
check "the pseudo-terminal shows the pull step" \
    grep -q "pulling image $open_image" <(strip_terminal "$TEST_DIR/typescript")
check "the pseudo-terminal shows the layer count" \
    grep -qE '[0-9]+/[0-9]+ layers' <(strip_terminal "$TEST_DIR/typescript")
check "the progress line is redrawn in place" grep -q $'\r' "$TEST_DIR/typescript"
check "the progress line is erased at the end" grep -q $'\r\x1b\\[K' "$TEST_DIR/typescript"
expect_exit 0 jb down onpty

# --- a registry with a password -------------------------------------------------------------------

user=jbtest
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
auth=$(printf '%s:%s' "$user" "$password" | base64 -w0)
# -i reads the password from standard input, so it stays out of the argument list.
printf '%s' "$password" | htpasswd -Bic "$TEST_DIR/htpasswd" "$user" >/dev/null 2>&1 ||
    die "htpasswd failed"
start_registry secure "$TEST_DIR/htpasswd"
secure_registry=$REGISTRY
secure_image=$secure_registry/jitbox-test/box:1
mkdir -p "$TEST_DIR/pusher"
printf '%s' "$password" | DOCKER_CONFIG=$TEST_DIR/pusher dk login "$secure_registry" \
    -u "$user" --password-stdin >/dev/null 2>&1 || die "docker login to $secure_registry failed"
push_image "$secure_registry" "$TEST_DIR/pusher"
write_template "$secure_image"

# The files that hold the password are written before the sampling of argument lists starts,
# because jq takes the values as arguments.
mkdir -p "$TEST_DIR/auths" "$TEST_DIR/bin" "$TEST_DIR/helper"
jq -n --arg registry "$secure_registry" --arg auth "$auth" \
    '{auths: {($registry): {auth: $auth}}}' >"$TEST_DIR/auths/config.json"
jq -n --arg user "$user" --arg password "$password" '{Username: $user, Secret: $password}' \
    >"$TEST_DIR/helper-reply.json"
start_secret_watch
printf '%s\n%s\n' "$password" "$auth" >"$VALUES_FILE"


DOCKER_CONFIG=$TEST_DIR/no-docker-config logged 3 jb -vv up reg --name nocreds
error_lines=$(grep -c '^jitbox: error:' "$TEST_DIR/last.err")
expect_eq "a pull without credentials fails with one error line" "$error_lines" 1
expect_contains "the error names the missing credentials" "$ERR" \
    "jitbox sent no credentials for $secure_registry"
check "no record is left after the failed pull" test -z "$(record_names)"

# auths with the base64 user:password that `docker login` writes.
DOCKER_CONFIG=$TEST_DIR/auths logged 0 jb -vv up reg --name withauths
check "up pulled $secure_image with auths" image_present "$secure_image"
expect_contains "-v names where the credentials came from" "$ERR" \
    "credentials from auths in $TEST_DIR/auths/config.json"
logged 0 jb down withauths
forget_image "$secure_image"

# A credential helper on PATH; it records the server it reads on standard input.
cat >"$TEST_DIR/bin/docker-credential-jbtest" <<EOF
#!/bin/sh
read -r server
printf '%s %s\n' "\$1" "\$server" >>"$TEST_DIR/helper-calls.log"
cat "$TEST_DIR/helper-reply.json"
EOF
chmod 0700 "$TEST_DIR/bin/docker-credential-jbtest"
jq -n --arg registry "$secure_registry" '{credHelpers: {($registry): "jbtest"}}' \
    >"$TEST_DIR/helper/config.json"
PATH=$TEST_DIR/bin:$PATH DOCKER_CONFIG=$TEST_DIR/helper logged 0 jb -vv up reg --name withhelper
check "up pulled $secure_image with the credential helper" image_present "$secure_image"
expect_eq "the helper got the registry on standard input" \
    "$(cat "$TEST_DIR/helper-calls.log" 2>/dev/null)" "get $secure_registry"
logged 0 jb status withhelper --json
logged 0 jb down withhelper

# A helper that fails stops the pull with a configuration error.
cat >"$TEST_DIR/bin/docker-credential-jbbroken" <<'EOF'
#!/bin/sh
echo "the keychain is gone" >&2
exit 1
EOF
chmod 0700 "$TEST_DIR/bin/docker-credential-jbbroken"
forget_image "$secure_image"
jq -n '{credsStore: "jbbroken"}' >"$TEST_DIR/helper/config.json"
PATH=$TEST_DIR/bin:$PATH DOCKER_CONFIG=$TEST_DIR/helper logged 2 jb up reg --name brokenhelper
expect_contains "a failing helper is named with its message" "$ERR" \
    "credential helper docker-credential-jbbroken failed with exit status 1 (the keychain is gone)"

stop_secret_watch
check "the password is in no argument list" lacks_values "$CMDLINE_LOG"
check "the password is in no output, -vv included" lacks_values "$OUTPUT_LOG"
check "the password is in no audit record or state file" lacks_values "$STATE_DIR"
