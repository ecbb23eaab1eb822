# bash completion for jitbox: subcommands, options, template names and sandbox names.
# Template names come from `jitbox templates -q`, which reads only the configuration. Sandbox
# names come from the state folder's file names. So completion never waits on the engine.

_jitbox_sandbox_names() {
    local state=${XDG_STATE_HOME:-$HOME/.local/state}
    local file
    for file in "$state"/jitbox/sandboxes/*.json; do
        [[ -e $file ]] || continue
        file=${file##*/}
        printf '%s\n' "${file%.json}"
    done
}

_jitbox() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local commands="up down status extend templates gc reap audit policy creds env exec"
    local global="--config --json -v --verbose -q --quiet --help --version"

    if [[ $prev == --config ]]; then
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return
    fi

    local command="" word
    for word in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
        if [[ " $commands " == *" $word "* ]]; then
            command=$word
            break
        fi
    done

    local options words=""
    case $command in
        "") words="$commands $global" ;;
        up)
            options="--ttl --name --wait --wait-timeout --reason --break-glass --mfa-stdin"
            [[ $cur == -* ]] || words=$(jitbox templates -q 2>/dev/null)
            ;;
        down)
            options="--all --ignore-missing"
            [[ $cur == -* ]] || words=$(_jitbox_sandbox_names)
            ;;
        status)
            options="--check --prompt"
            [[ $cur == -* ]] || words=$(_jitbox_sandbox_names)
            ;;
        extend)
            options="--by --reason"
            [[ $cur == -* ]] || words=$(_jitbox_sandbox_names)
            ;;
        env)
            options="--mfa-stdin"
            [[ $cur == -* ]] || words=$(_jitbox_sandbox_names)
            ;;
        exec)
            # After `--` the words belong to the command, so offer file names.
            if [[ " ${COMP_WORDS[*]:1:COMP_CWORD-1} " == *" -- "* ]]; then
                mapfile -t COMPREPLY < <(compgen -c -f -- "$cur")
                return
            fi
            options="--allow-nested --mfa-stdin --"
            [[ $cur == -* ]] || words=$(_jitbox_sandbox_names)
            ;;
        gc) options="--dry-run --all-users" ;;
        audit) options="--since --sandbox verify" ;;
        policy) words="check explain test keygen sign verify" ;;
        creds)
            options="--format --all"
            [[ $cur == -* ]] || words="list show clear $(_jitbox_sandbox_names)"
            ;;
    esac
    mapfile -t COMPREPLY < <(compgen -W "$words $options $global" -- "$cur")
}

complete -F _jitbox jitbox
