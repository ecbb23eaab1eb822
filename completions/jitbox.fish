# fish completion for jitbox.
#
# Every candidate comes from the hidden command `jitbox __complete WORD...`. It takes the
# words after `jitbox` up to the cursor and prints one candidate a line, with a tab and a
# description after it where there is one, the form that fish reads. When the word is a file or folder name, it
# prints the single line `:files` or `:directories` instead. It reads the binary's own command
# tree, the configuration's templates and the state folder's records, and never contacts the
# Docker engine.

function __jitbox_complete
    # The finished words, program first and without quoting, then the word being typed.
    set -l words (commandline -opc)
    set -l current (commandline -ct)
    set -l output ($words[1] __complete $words[2..-1] $current 2>/dev/null)
    switch "$output[1]"
        case :files
            __fish_complete_path $current
        case :directories
            __fish_complete_directories $current
        case '*'
            printf '%s\n' $output
    end
end

complete -c jitbox -f -a '(__jitbox_complete)'
