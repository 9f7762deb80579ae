#!/bin/sh
# The `eimzo-agent` command of the macOS package (build-pkg.sh installs it as <prefix>/bin/eimzo-agent, and
# install.sh links /usr/local/bin/eimzo-agent to it). It runs the agent with the package's own Python in
# <prefix>/python, found from this file's real location: no build-time path is baked in (pip's own launchers
# would name the build folder), so the folder works wherever the package puts it.
set -eu
self=$0
# Follow symlinks by hand: macOS before 12.3 has no `readlink -f`.
while [ -L "$self" ]; do
  link=$(readlink "$self")
  case $link in
    /*) self=$link ;;
    *) self=$(dirname "$self")/$link ;;
  esac
done
prefix=$(cd "$(dirname "$self")/.." && pwd -P)
# -I: the package's Python ignores PYTHONPATH, PYTHONHOME and the user's site-packages, so nothing in a person's
# environment can change which code signs their documents.
exec "$prefix/python/bin/python3" -I -m eimzo_agent "$@"
