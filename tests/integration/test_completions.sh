#!/usr/bin/env bash
# Shell completion in the real shells: bash with bash-completion, zsh's compsys and fish, each
# loading its script from completions/, which runs the hidden `jitbox __complete`. Templates
# come from a configuration with alpha, beta and db, sandbox names from the records of two
# sandboxes that `jitbox up` starts on the real dockerd. The expected subcommands and options
# are read from `jitbox --help`, so a script that offers something else fails here.
#
# Each shell runs non-interactively:
#   - bash sources bash-completion and completions/jitbox.bash, sets COMP_LINE, COMP_POINT,
#     COMP_WORDS and COMP_CWORD as readline would, calls _jitbox and prints COMPREPLY.
#   - fish sources completions/jitbox.fish and prints `complete -C LINE`, its own listing of
#     the candidates for a command line.
#   - zsh completes only inside its line editor, which needs a terminal, so zsh_candidates
#     starts an interactive `zsh -f -i` in a pseudo-terminal through the zsh/zpty module. That
#     shell runs compinit with completions/ first in $fpath and replaces compadd with a function
#     that prints each match that compsys adds, as `MATCH:VALUE`, instead of adding it. A widget
#     bound to Ctrl-T runs complete-word and then prints a marker, so the reader knows when
#     completion has finished. Each marker is written as arithmetic, such as END-$((3*3)), so
#     the terminal's echo of the typed command never contains the marker itself.
# shellcheck disable=SC2016 # the shells' scripts below use $ literally.
# shellcheck disable=SC2119 # toml_labels without extra labels takes no arguments.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BASH_COMPLETION=/usr/share/bash-completion/bash_completion
COMPLETIONS=$REPO_ROOT/completions
for tool in zsh fish; do
    if ! command -v "$tool" >/dev/null; then
        die "$tool is missing. Run bash scripts/setup.sh, which installs the test tools"
    fi
done
if [[ ! -r $BASH_COMPLETION ]]; then
    die "$BASH_COMPLETION is missing. Run bash scripts/setup.sh, which installs bash-completion"
fi

template() {
    printf '[templates.%s]\nimage = "busybox:1.36"\ncommand = ["sleep", "infinity"]\n%s\n' \
        "$1" "$(toml_labels)"
}
{
    template alpha
    template beta
    template db
} >"$TEST_DIR/jitbox.toml"

# The shells run `jitbox` from PATH, with the test's configuration and state folder.
mkdir "$TEST_DIR/bin"
ln -s "$JITBOX_BIN" "$TEST_DIR/bin/jitbox"
export PATH=$TEST_DIR/bin:$PATH
export JITBOX_CONFIG=$TEST_DIR/jitbox.toml

expect_exit 0 jb up alpha --name alpha-1 --ttl 10m
expect_exit 0 jb up db --name db-1 --ttl 10m

# --- the shells ---------------------------------------------------------------------------------

# bash_candidates LINE: the words that bash offers with the cursor at the end of LINE.
bash_candidates() {
    bash --norc --noprofile -c '
        source "$1"
        source "$2"
        COMP_LINE=$3
        COMP_POINT=${#COMP_LINE}
        read -r -a typed <<<"$COMP_LINE"
        COMP_WORDS=()
        for word in "${typed[@]}"; do
            # Readline also ends a word at "=", which is in COMP_WORDBREAKS.
            while [[ $word == *=* ]]; do
                if [[ -n ${word%%=*} ]]; then
                    COMP_WORDS+=("${word%%=*}")
                fi
                COMP_WORDS+=("=")
                word=${word#*=}
            done
            if [[ -n $word ]]; then
                COMP_WORDS+=("$word")
            fi
        done
        if [[ $COMP_LINE == *" " ]]; then
            COMP_WORDS+=("")
        fi
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        _jitbox jitbox "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        printf "%s\n" "${COMPREPLY[@]}"
    ' bash "$BASH_COMPLETION" "$COMPLETIONS/jitbox.bash" "$1"
}

# fish_listing LINE: what fish offers after LINE, each value with a tab and its description.
fish_listing() {
    fish --no-config -c 'source $argv[1]; complete -C $argv[2]' "$COMPLETIONS/jitbox.fish" "$1"
}

fish_candidates() {
    fish_listing "$1" | cut -f1
}

cat >"$TEST_DIR/zsh_candidates.zsh" <<'EOF'
# zsh -f zsh_candidates.zsh COMPLETIONS_DIR LINE: prints the matches compsys finds for LINE.
zmodload zsh/zpty || exit 1
completions_dir=$1 line=$2
zpty shell zsh -f -i
zpty -w shell "PS1='' RPROMPT=''; unset zle_bracketed_paste"
zpty -w shell "fpath=(${(q)completions_dir} \$fpath); autoload -Uz compinit; compinit -u -D"
# Calls with -O, -A or -D only collect names for compsys itself, so they pass through.
zpty -w shell 'compadd() {
    if (( ${@[(I)-[OAD]]} )); then builtin compadd "$@"; return; fi
    local -a found
    builtin compadd -O found "$@"
    print -rl -- ${found/#/MATCH:}
}'
zpty -w shell 'complete-and-mark() { zle complete-word; print -r -- "DONE-$((3*3))"; }'
zpty -w shell 'zle -N complete-and-mark; bindkey "^T" complete-and-mark; print READY-$((1+1))'
zpty -r shell output '*READY-2*'
zpty -w -n shell "$line"$'\C-t'
zpty -r shell output '*DONE-9*'
zpty -d shell
print -r -- "${output//$'\r'/}" | sed -n 's/^.*MATCH://p'
EOF

# zsh_candidates LINE: the matches that zsh's compsys offers after LINE.
zsh_candidates() {
    timeout -k 5 30 zsh -f "$TEST_DIR/zsh_candidates.zsh" "$COMPLETIONS" "$1"
}

# --- expectations from the binary's own help ----------------------------------------------------

# long_options COMMAND...: the long options of `jitbox COMMAND... --help`, one a line.
long_options() {
    help_section "$@" "Options:" | tr ',' '\n' | grep -E '^--'
}

sorted() {
    sort -u | sed '/^$/d' | tr '\n' ' '
}

SUBCOMMANDS=$(help_section "Subcommands:" | sorted)
POLICY_SUBCOMMANDS=$(help_section policy "Subcommands:" | sorted)
CREDS_SUBCOMMANDS=$(help_section creds "Subcommands:" | sorted)
UP_OPTIONS=$( (long_options up && long_options) | sorted)
expect_contains "jitbox --help lists subcommands" "$SUBCOMMANDS" "status"
expect_contains "jitbox up --help lists options" "$UP_OPTIONS" "--ttl"

# --- the same cases in every shell --------------------------------------------------------------

for shell in bash zsh fish; do
    candidates() {
        "${shell}_candidates" "$1" | sorted
    }
    expect_eq "$shell: subcommands after 'jitbox '" "$(candidates 'jitbox ')" "$SUBCOMMANDS"
    expect_eq "$shell: templates after 'jitbox up '" "$(candidates 'jitbox up ')" "alpha beta db "
    expect_eq "$shell: prefix 'jitbox up b'" "$(candidates 'jitbox up b')" "beta "
    expect_eq "$shell: sandboxes after 'jitbox down '" "$(candidates 'jitbox down ')" \
        "alpha-1 db-1 "
    expect_eq "$shell: sandboxes after a global option" "$(candidates 'jitbox -q status ')" \
        "alpha-1 db-1 "
    expect_eq "$shell: sandboxes after 'jitbox creds show '" \
        "$(candidates 'jitbox creds show ')" "alpha-1 db-1 "
    expect_eq "$shell: options after 'jitbox up --'" "$(candidates 'jitbox up --')" "$UP_OPTIONS"
    expect_eq "$shell: --format values" "$(candidates 'jitbox creds show x --format ')" \
        "credential-process env json "
    expect_eq "$shell: subcommands of policy" "$(candidates 'jitbox policy ')" \
        "$POLICY_SUBCOMMANDS"
    expect_eq "$shell: subcommands of creds" "$(candidates 'jitbox creds ')" "$CREDS_SUBCOMMANDS"
    expect_eq "$shell: subcommands of audit" "$(candidates 'jitbox audit ')" "stats verify "
    expect_eq "$shell: no candidates for --ttl" "$(candidates 'jitbox up --ttl ')" ""
    expect_contains "$shell: file names after --config" "$(candidates 'jitbox --config jit')" \
        "jitbox.toml"
done

# bash replaces only the part after "=", the others the whole word.
expect_eq "bash: value after --format=" \
    "$(bash_candidates 'jitbox creds show x --format=c' | sorted)" "credential-process "
for shell in zsh fish; do
    expect_eq "$shell: value after --format=" \
        "$("${shell}_candidates" 'jitbox creds show x --format=c' | sorted)" \
        "--format=credential-process "
done

expect_match "fish: subcommands have descriptions" "$(fish_listing 'jitbox stat')" \
    $'^status\tList your sandboxes'

# --- the listing command alone ------------------------------------------------------------------

run "$JITBOX_BIN" --help
expect_eq "__complete is not listed in --help" "$(grep -c __complete <<<"$OUT")" 0

# No engine, no session bus and an unusable keyring choice: the listing must not need them.
audit_before=$(sha256sum "$AUDIT_LOG")
started=$(date +%s%N)
run env DOCKER_HOST="unix://$TEST_DIR/no-engine.sock" \
    DBUS_SESSION_BUS_ADDRESS="unix:path=$TEST_DIR/no-bus" JITBOX_KEYRING=no-such-backend \
    "$JITBOX_BIN" __complete down ""
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
expect_eq "__complete without an engine exits 0" "$RC" 0
expect_eq "__complete without an engine lists the sandboxes" "$(cut -f1 <<<"$OUT" | sorted)" \
    "alpha-1 db-1 "
expect_eq "__complete without an engine prints no error" "$ERR" ""
if ((elapsed_ms < 1000)); then
    pass "__complete answers in under a second (${elapsed_ms} ms)"
else
    fail "__complete answers in under a second" "it took ${elapsed_ms} ms"
fi
expect_eq "__complete leaves the audit log alone" "$(sha256sum "$AUDIT_LOG")" "$audit_before"
expect_match "__complete describes a sandbox by its template and time left" \
    "$(grep '^db-1' <<<"$OUT")" $'^db-1\tdb, [0-9]+m'

printf '[templates.alpha\n' >"$TEST_DIR/broken.toml"
run env JITBOX_CONFIG="$TEST_DIR/broken.toml" "$JITBOX_BIN" __complete up ""
expect_eq "__complete with a broken configuration exits 0" "$RC" 0
expect_eq "__complete with a broken configuration prints nothing" "$OUT" ""
expect_eq "__complete with a broken configuration prints no error" "$ERR" ""

run "$JITBOX_BIN" __complete --config "$TEST_DIR/missing.toml" up ""
expect_eq "__complete with a missing --config prints nothing" "$OUT$ERR" ""

run env XDG_STATE_HOME="$TEST_DIR/fresh-state" "$JITBOX_BIN" __complete down ""
expect_eq "__complete without a state folder prints nothing" "$OUT$ERR" ""
check "__complete creates no state folder" test ! -e "$TEST_DIR/fresh-state"

run "$JITBOX_BIN" __complete creds show x --format=c
expect_eq "__complete completes --format=VALUE" "$OUT" "--format=credential-process"

run "$JITBOX_BIN" __complete policy verify --keys ""
expect_eq "__complete asks the shell for folder names" "$OUT" ":directories"

# --- installation -------------------------------------------------------------------------------

build_dir=$(dirname "$JITBOX_BIN")
if [[ -f $build_dir/cmake_install.cmake ]]; then
    run cmake --install "$build_dir" --prefix "$TEST_DIR/prefix"
    expect_eq "cmake --install exits 0" "$RC" 0
    for file in bash-completion/completions/jitbox zsh/site-functions/_jitbox \
        fish/vendor_completions.d/jitbox.fish man/man1/jitbox.1 man/man5/jitbox.toml.5; do
        check "cmake --install writes share/$file" test -f "$TEST_DIR/prefix/share/$file"
    done
else
    skip "cmake --install installs the completions" "$build_dir is not a CMake build folder"
fi
