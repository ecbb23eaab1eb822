#!/usr/bin/env bash
# The manual pages against the binary and the sources. Both pages render without warnings in
# groff and mandoc. man/jitbox.1 has a section for every subcommand that `--help` lists, with
# every option of that subcommand's `--help`, and describes every global option under GLOBAL
# OPTIONS. Its EXIT STATUS has every exit code of `jitbox --help`, and its ENVIRONMENT every
# environment variable that src/ names. man/jitbox.toml.5 names every key of the configuration
# reader's key tables in src/config/.
# shellcheck disable=SC2016 # awk programs use $ literally.
TEST_NEEDS_DOCKER=0
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MAN1=$REPO_ROOT/man/jitbox.1
MAN5=$REPO_ROOT/man/jitbox.toml.5
for tool in groff mandoc; do
    if ! command -v "$tool" >/dev/null; then
        die "$tool is missing. Run bash scripts/setup.sh, which installs groff-base and mandoc"
    fi
done

# --- rendering ----------------------------------------------------------------------------------

for page in "$MAN1" "$MAN5"; do
    name=$(basename "$page")
    run groff -man -ww -z "$page"
    expect_eq "$name: groff -ww prints no warning" "$OUT$ERR" ""
    # Style notes, such as source lines over 80 bytes, are below the warning level.
    run mandoc -T lint -W warning "$page"
    expect_eq "$name: mandoc -T lint prints no warning" "$OUT$ERR" ""
done

# --- reading the page and the help --------------------------------------------------------------

# plain FILE: the page source with \- as - and without font escapes, for word searches.
plain() {
    sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(aq/'"'"'/g' "$1"
}

# save_man_section HEADER FILE: writes the plain text of jitbox.1's .SH section HEADER to FILE.
save_man_section() {
    plain "$MAN1" | awk -v header=".SH $1" '$0 == header { inside = 1; next }
        /^\.SH / { inside = 0 } inside' >"$2"
}

# save_command_section WORDS FILE: writes to FILE the plain text of the .SS section whose
# heading starts with the command WORDS, such as "policy check", followed by an argument or
# nothing. In the source an argument starts with a font escape, such as \fIname\fR.
save_command_section() {
    awk -v command="$1" '
        /^\.S[SH] / {
            words = ""
            for (i = 2; i <= NF && $i ~ /^[a-z][a-z-]*$/; i++) {
                words = words (words == "" ? "" : " ") $i
            }
            inside = $1 == ".SS" && words == command
        }
        inside' "$MAN1" | plain /dev/stdin >"$2"
}

# options_of COMMAND...: every option name in `jitbox COMMAND... --help`, one a line.
options_of() {
    help_section "$@" "Options:" | tr ',' '\n' | grep -E '^-'
}

# describes FILE WORD: true when WORD appears in FILE with no letter, digit or hyphen next to it.
describes() {
    grep -qE -- "(^|[^a-zA-Z0-9-])$2([^a-zA-Z0-9-]|\$)" "$1"
}

# --- subcommands and options --------------------------------------------------------------------

commands=()
for command in $(help_section "Subcommands:"); do
    commands+=("$command")
    for sub in $(help_section "$command" "Subcommands:"); do
        commands+=("$command $sub")
    done
done
expect_contains "jitbox --help lists policy check" "${commands[*]}" "policy check"

global_section=$TEST_DIR/global-options.txt
save_man_section "GLOBAL OPTIONS" "$global_section"
for option in $(options_of); do
    check "jitbox.1: GLOBAL OPTIONS describes $option" describes "$global_section" "$option"
done

for command in "${commands[@]}"; do
    # shellcheck disable=SC2086 # the words of the command
    mapfile -t options < <(options_of $command | grep -vxE -- '-h|--help')
    # shellcheck disable=SC2086
    subcommands=$(help_section $command "Subcommands:")
    if [[ -n $subcommands && ${#options[@]} -eq 0 ]]; then
        continue # a group such as `policy`: its subcommands have the sections
    fi
    section=$TEST_DIR/command-${command// /-}.txt
    save_command_section "$command" "$section"
    if [[ ! -s $section ]]; then
        fail "jitbox.1: a section for '$command'" "no .SS line starts with '$command'"
        continue
    fi
    pass "jitbox.1: a section for '$command'"
    for option in "${options[@]}"; do
        check "jitbox.1: '$command' section describes $option" describes "$section" "$option"
    done
done

# --- exit codes, environment, configuration keys ------------------------------------------------

exit_section=$TEST_DIR/exit-status.txt
save_man_section "EXIT STATUS" "$exit_section"
for code in $("$JITBOX_BIN" --help | awk '/^Exit codes:/ { inside = 1; next }
    inside && /^  [0-9]+ / { print $1 }'); do
    check "jitbox.1: EXIT STATUS has $code" grep -qx "\.B $code" "$exit_section"
done

environment_section=$TEST_DIR/environment.txt
save_man_section "ENVIRONMENT" "$environment_section"
for variable in $(grep -rhoE '"(JITBOX|DOCKER|AWS|XDG)_[A-Z_]+"' "$REPO_ROOT/src" |
    tr -d '"' | sort -u); do
    check "jitbox.1: ENVIRONMENT has $variable" describes "$environment_section" "$variable"
done

# The key tables are the arrays of KeyRule in src/config, one {"key", reader} entry a line.
keys_page=$TEST_DIR/jitbox.toml.5.txt
plain "$MAN5" >"$keys_page"
mapfile -t keys < <(awk '/KeyRule<.*> *k_|k_[a-z_]+ = std::to_array<KeyRule/ { inside = 1; next }
    inside && /^}+\)?;/ { inside = 0 }
    inside && match($0, /^ *\{\{?"[a-z_]+",/) {
        key = substr($0, RSTART, RLENGTH); gsub(/[^a-z_]/, "", key); print key }' \
    "$REPO_ROOT"/src/config/*.cpp | sort -u)
expect_contains "src/config has key tables" "${keys[*]}" "max_ttl"
for key in "${keys[@]}"; do
    check "jitbox.toml.5 describes the key $key" describes "$keys_page" "$key"
done
