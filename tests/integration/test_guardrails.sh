#!/usr/bin/env bash
# Guardrails and access to other users' sandboxes, against the real dockerd.
#
# The first part needs nothing but Docker: with a policy in a temp --config, `status --all-users`
# and `down --user` are denied (exit 6) and audited without a role whose actions name
# status-all and down-others, and work with one. The state folder is the user's own, so the
# sandbox of the user running the test takes the place of "another user's".
#
# The second part writes the system policy /etc/jitbox/jitbox.toml with a [guardrails] table,
# because the binary reads it with no override. It runs only as root and only when /etc/jitbox
# does not exist yet; the test then creates it and removes it again. It checks that an allowed
# template starts with the memory ceiling as its limit, that templates asking for a disallowed
# image, a privileged container, the host's network or a mount of /etc are denied before any
# engine request and audited as attempted violations, and that a project file with
# [guardrails] is rejected.
# shellcheck disable=SC2016 # jq filters use $ literally.

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SELF=$(id -un)
CREATED_ETC_JITBOX=0

audit_records() {
    jq -c --arg action "$1" --arg result "$2" \
        'select(.action == $action and .result == $result)' "$AUDIT_LOG" 2>/dev/null | wc -l
}

write_policy() {
    cat >"$TEST_DIR/jitbox.toml" <<EOF
[templates.tiny]
$(tiny_template_body)

[[roles]]
name = "self"
members = ["user:$SELF"]
templates = ["tiny"]
$1
EOF
    chmod 0644 "$TEST_DIR/jitbox.toml"
}

# --- other users' sandboxes -------------------------------------------------------------------

write_policy ""
expect_exit 0 jb up tiny --name g1

expect_exit 6 jb status --all-users
expect_contains "status --all-users names the missing action" "$ERR" "status-all"
expect_eq "the denied status --all-users is audited" "$(audit_records status-all denied)" 1

expect_exit 6 jb down --user "$SELF" g1
expect_contains "down --user names the missing action" "$ERR" "down-others"
expect_eq "the denied down --user is audited" \
    "$(jq -r 'select(.action == "down" and .result == "denied") | .detail' "$AUDIT_LOG")" \
    "sandbox of user $SELF"
expect_eq "the denied down --user left the container" "$(run_containers | wc -l)" 1

write_policy '
[[roles]]
name = "admin"
members = ["user:'"$SELF"'"]
templates = ["tiny"]
actions = ["status-all", "down-others"]'
expect_exit 0 jb --json status --all-users
expect_eq "status --all-users lists the sandbox" "$(jq -r '.[].name' <<<"$OUT")" g1

expect_exit 4 jb down --user jbx-nobody g1
expect_exit 0 jb down --user "$SELF" g1
expect_eq "down --user removed the record" "$(record_names)" ""
expect_eq "down --user is audited with the owner" \
    "$(jq -r 'select(.action == "down" and .result == "ok") | .detail' "$AUDIT_LOG")" \
    "sandbox of user $SELF"
expect_exit 2 jb down --user "$SELF" --all

# --- guardrails of the system policy ----------------------------------------------------------

remove_etc_jitbox() {
    if ((CREATED_ETC_JITBOX)); then
        rm -rf /etc/jitbox
    fi
}
on_cleanup remove_etc_jitbox

if ((EUID != 0)); then
    skip "guardrails" "writing /etc/jitbox/jitbox.toml needs root"
    exit 0
fi
if ! mkdir -m 0755 /etc/jitbox 2>/dev/null; then
    skip "guardrails" "/etc/jitbox exists, and the test changes it only when it made it"
    exit 0
fi
CREATED_ETC_JITBOX=1
rm -f "$TEST_DIR/jitbox.toml"

# template NAME KEYS: the tiny template's keys but its image and network, then KEYS.
template() {
    printf '[templates.%s]\n%s\n%s\n\n' "$1" \
        "$(tiny_template_body | grep -v -e '^image = ' -e '^network = ')" "$2"
}

{
    cat <<'EOF'
[policy]
allow_sensitive_mounts = true

[guardrails]
images = ["busybox:*"]
privileged = false
host_namespaces = false
max_memory = "64MiB"
max_live_per_user = 2

EOF
    template allowed 'image = "busybox:1.36"'
    template other-image 'image = "alpine:3.19"'
    template privileged $'image = "busybox:1.36"\nprivileged = true'
    template host-network $'image = "busybox:1.36"\nnetwork = "host"'
    etc_mount='mounts = [{ source = "/etc", target = "/x", allow_sensitive = true }]'
    template etc-mount $'image = "busybox:1.36"\n'"$etc_mount"
} >/etc/jitbox/jitbox.toml
chmod 0644 /etc/jitbox/jitbox.toml

expect_exit 0 jb_raw up allowed --name g2
expect_eq "the memory ceiling became the limit" \
    "$(container_field "$(run_containers | head -n 1)" '{{.HostConfig.Memory}}')" \
    $((64 * 1024 * 1024))

for case in "other-image:guardrails.images" "privileged:guardrails.privileged" \
    "host-network:guardrails.host_namespaces" "etc-mount:guardrails.mount_sources (built in)"; do
    name=${case%%:*}
    expect_exit 6 jb_raw up "$name"
    expect_contains "up $name names the guardrail" "$ERR" "${case#*:}"
done
expect_contains "the image denial names the file position" \
    "$(jb_raw up other-image 2>&1)" "guardrails.images (/etc/jitbox/jitbox.toml:5:10)"
expect_eq "no container of a denied template exists" "$(run_containers | wc -l)" 1

run jb_raw --json audit stats
expect_eq "audit stats counts the guardrail denials as attempted violations" \
    "$(jq '[.usage[].attempted_violations] | add' <<<"$OUT")" 5

printf '[guardrails]\nprivileged = true\n' >"$TEST_DIR/project.toml"
chmod 0644 "$TEST_DIR/project.toml"
expect_exit 2 jb_raw --config "$TEST_DIR/project.toml" templates
expect_contains "a project [guardrails] is rejected with its position" "$ERR" \
    "project.toml:1:1: guardrails: [guardrails] is read only from the system policy"

expect_exit 0 jb_raw down g2
