#!/usr/bin/env bash
# The files of examples/. Each configuration passes `policy check` and `policy check --strict`,
# from the top of the repository and from the examples folder, and the cases of
# policy-test.toml pass. Then the db template and the Makefile run against the real engine, in a
# copy of the folder whose db template runs busybox:1.36, because the test machines cannot pull
# postgres:16. The copy keeps the relative fixtures mount, the user, the ports and the generated
# password, and only the image, the command, the health check (busybox has no pg_isready) and
# the labels change.
# shellcheck disable=SC2016 # Go templates use $ literally.
# shellcheck disable=SC2119 # toml_labels without extra labels takes no arguments.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EXAMPLES=$REPO_ROOT/examples

# in_folder DIR CMD...: runs CMD (see `run`) with DIR as the working folder.
in_folder() {
    local folder=$1
    shift
    run bash -c 'cd "$1" && shift && exec "$@"' in_folder "$folder" "$@"
}

# --- policy check ---------------------------------------------------------------------------------

declare -A expected_templates=(
    [jitbox.toml]="db debian redis scratch"
    [aws.toml]="aws-readonly scratch-vm"
)
for file in jitbox.toml aws.toml; do
    expect_exit 0 jb_raw --config "$EXAMPLES/$file" policy check
    expect_exit 0 jb_raw --config "$EXAMPLES/$file" policy check --strict
    expect_contains "$file: policy check --strict finds no problem" "$ERR" "no problems found"
    expect_exit 0 jb_raw --config "$EXAMPLES/$file" templates --json
    expect_eq "$file: the templates the README lists" \
        "$(json "$OUT" '[.[].name] | sort | join(" ")')" "${expected_templates[$file]}"
done

in_folder "$EXAMPLES" timeout -k 5 "$JITBOX_TIMEOUT" "$JITBOX_BIN" policy check --strict
expect_eq "policy check --strict in examples/ exits 0" "$RC" 0 || show_output
expect_match "policy check in examples/ finds its jitbox.toml" "$OUT" \
    "project +$EXAMPLES/jitbox\\.toml "

expect_exit 0 jb_raw policy test "$EXAMPLES/policy-test.toml"
expect_contains "policy-test.toml: every case passes" "$OUT" "6 passed, 0 failed"

# --- the db template, from another folder ---------------------------------------------------------

COPY=$TEST_DIR/examples
cp -r "$EXAMPLES" "$COPY"
# replace_line FILE OLD NEW: replaces the line OLD of FILE with NEW; dies when OLD is missing.
replace_line() {
    local file=$1 old=$2 new=$3
    if ! grep -qxF -- "$old" "$file"; then
        die "$file has no line '$old' to replace"
    fi
    OLD=$old NEW=$new awk '$0 == ENVIRON["OLD"] { print ENVIRON["NEW"]; next } { print }' \
        "$file" >"$file.new" && mv "$file.new" "$file"
}
replace_line "$COPY/jitbox.toml" 'image = "postgres:16"' 'image = "busybox:1.36"'
replace_line "$COPY/jitbox.toml" \
    'command = ["postgres", "-c", "fsync=off", "-c", "full_page_writes=off"]' \
    'command = ["sleep", "infinity"]'
replace_line "$COPY/jitbox.toml" \
    'healthcheck = { test = ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "app", "-d", "app"], interval = "2s", retries = 30 }' \
    'healthcheck = { test = ["CMD", "true"], interval = "1s", retries = 30 }'
replace_line "$COPY/jitbox.toml" 'labels = { "com.example.team" = "payments" }' "$(toml_labels)"

# The generated password goes to a file keyring in the test's folder.
export XDG_RUNTIME_DIR=$TEST_DIR/runtime JITBOX_KEYRING=file
mkdir -m 0700 "$XDG_RUNTIME_DIR"

in_folder / timeout -k 5 "$JITBOX_TIMEOUT" "$JITBOX_BIN" --config "$COPY/jitbox.toml" \
    up db --name fixtures-db --ttl 10m
expect_eq "up db from / exits 0" "$RC" 0 || show_output
db_id=$(jq -r .id "$(record_path fixtures-db)" 2>/dev/null)
container=jitbox-fixtures-db-${db_id:0:8}
check "the db container runs" container_exists "$container"

mount_field() {
    container_field "$container" \
        "{{range .Mounts}}{{if eq .Destination \"/docker-entrypoint-initdb.d\"}}$1{{end}}{{end}}"
}
expect_eq "./fixtures is the copy's fixtures folder, not one under /" "$(mount_field '{{.Source}}')" \
    "$COPY/fixtures"
expect_eq "the fixtures are mounted read-only" "$(mount_field '{{.RW}}')" false
expect_eq "uid 999 can read the fixtures" \
    "$(dk exec "$container" grep -c 'CREATE TABLE customers' \
        /docker-entrypoint-initdb.d/01-schema.sql 2>&1)" 1
expect_eq "the db runs as uid 999" "$(dk exec "$container" id -u 2>&1)" 999

container_variable() {
    dk exec "$container" sh -c "printf '%s' \"\$$1\"" 2>&1
}
expect_eq "POSTGRES_USER is app" "$(container_variable POSTGRES_USER)" app
password=$(container_variable POSTGRES_PASSWORD)
expect_match "POSTGRES_PASSWORD is 32 letters and digits" "$password" '^[A-Za-z0-9]{32}$'
expect_exit 0 jb_raw --config "$COPY/jitbox.toml" env fixtures-db
expect_contains "jitbox env prints the same password" "$OUT" \
    "export POSTGRES_PASSWORD='$password'"
expect_exit 0 jb_raw --config "$COPY/jitbox.toml" down fixtures-db
check "down removes the db container" container_gone "$container"

# --- the Makefile ---------------------------------------------------------------------------------

# make_integration_test TEST: runs `make integration-test` in the copy with TEST as the test
# command. `up --wait` there waits for the copy's health check.
make_integration_test() {
    run timeout -k 5 120 make --no-print-directory -C "$COPY" integration-test \
        JITBOX="$JITBOX_BIN" TTL=10m TEST="$1"
}

make_integration_test "sh -c 'env >$TEST_DIR/test.env'"
expect_eq "make integration-test exits 0 when the tests pass" "$RC" 0 || show_output
test_variable() {
    sed -n "s/^$1=//p" "$TEST_DIR/test.env" 2>/dev/null
}
expect_match "the tests see SANDBOX" "$(test_variable SANDBOX)" '^db-[0-9a-f]{6}$'
expect_eq "the tests see DB_HOST" "$(test_variable DB_HOST)" 127.0.0.1
expect_match "the tests see DB_PORT" "$(test_variable DB_PORT)" '^[0-9]+$'
expect_match "the tests see PGPASSWORD" "$(test_variable PGPASSWORD)" '^[A-Za-z0-9]{32}$'
expect_eq "make removes the sandbox after passing tests" "$(run_containers)" ""
expect_eq "no record is left after passing tests" "$(record_names)" ""

make_integration_test false
check "make integration-test fails when the tests fail" test "$RC" -ne 0
expect_eq "make removes the sandbox after failing tests" "$(run_containers)" ""
expect_eq "no record is left after failing tests" "$(record_names)" ""
