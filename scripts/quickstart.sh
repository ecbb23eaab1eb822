#!/usr/bin/env bash
# The quick start, run as root: sudo bash scripts/quickstart.sh
#   1. scripts/setup.sh installs the packages, builds jitbox and starts the engine,
#   2. cmake --install puts jitbox, its man pages and completions under /usr/local,
#   3. one sandbox starts from the embedded default template, and `jitbox status` shows it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
cmake --install "$root/build" >/dev/null
jitbox=/usr/local/bin/jitbox
echo "quickstart: installed $jitbox, \`man jitbox\` and the bash, zsh and fish completions"

# The embedded default applies only where no jitbox.toml is found, so `up` runs in an empty
# temp dir with JITBOX_CONFIG unset.
workdir=$(mktemp -d)
trap 'cd / && rmdir "$workdir"' EXIT
cd "$workdir"
unset JITBOX_CONFIG

name=$("$jitbox" up)
echo "quickstart: started sandbox $name, which removes itself when its ttl runs out (EXPIRES IN)"
"$jitbox" status
echo "quickstart: to remove it now, run: $jitbox down $name"
