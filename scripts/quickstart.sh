#!/usr/bin/env bash
# Installs what jitbox needs, builds it (scripts/setup.sh), installs it under /usr/local with its
# man pages and shell completions, starts one sandbox from the embedded default template and
# shows `jitbox status`. Run it as root: sudo bash scripts/quickstart.sh
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
