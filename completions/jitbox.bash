# bash completion for jitbox.
#
# Every candidate comes from the hidden command `jitbox __complete WORD...`. It takes the
# words after `jitbox` up to the cursor and prints one candidate a line, with a tab and a
# description after it where there is one. When the word is a file or folder name, it
# prints the single line `:files` or `:directories` instead. It reads the binary's own command
# tree, the configuration's templates and the state folder's records, and never contacts the
# Docker engine.
#
# bash-completion 2 loads this file on first use from its completions folder. Without
# bash-completion, `source` it from ~/.bashrc; `--format=VALUE` is then not completed.

_jitbox() {
    local cur prev words cword split=false
    if declare -F _init_completion >/dev/null; then
        # -s splits `--format=js` into prev=--format and cur=js.
        _init_completion -s || return
    else
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${COMP_WORDS[COMP_CWORD]}
    fi

    local arguments=("${words[@]:1:cword-1}")
    if [[ $split == true ]]; then
        arguments+=("$prev")
    fi
    arguments+=("$cur")

    local line kind="" candidates=()
    while IFS= read -r line; do
        case $line in
            :files) kind=files ;;
            :directories) kind=directories ;;
            *) candidates+=("${line%%$'\t'*}") ;;
        esac
    done < <("$1" __complete "${arguments[@]}" 2>/dev/null)

    if [[ -z $kind ]]; then
        COMPREPLY=("${candidates[@]}")
        return
    fi
    local flag=-f
    if [[ $kind == directories ]]; then
        flag=-d
    fi
    if declare -F _filedir >/dev/null; then
        if [[ $flag == -d ]]; then
            _filedir -d
        else
            _filedir
        fi
        return
    fi
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen "$flag" -- "$cur")
}

complete -F _jitbox jitbox
