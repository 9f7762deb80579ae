#!/usr/bin/env bash
# Removes the macOS package's eimzo-agent: what the .pkg and install.sh put on the machine, and nothing else.
# macOS packages have no uninstaller; the package ships this as <prefix>/share/macos/uninstall.sh:
#   sudo /Library/eimzo-agent/share/macos/uninstall.sh [--purge]
#
#   uninstall.sh [--prefix DIR] [--root DIR] [--purge]
#     --prefix DIR  the package's folder (default /Library/eimzo-agent)
#     --root DIR    the system to remove it from (default /)
#     --purge       also the machine-wide settings, <root>/Library/Application Support/eimzo-agent
#
# Stops the agent in every graphical session (running system of a Mac only), removes the LaunchAgent if it is the
# package's (it names <prefix>/bin/eimzo-agent), the /usr/local/bin/eimzo-agent symlink if it points there, the
# package's folder, and the package receipt (pkgutil --forget). People's own files are never touched: their key
# files (~/DSKEYS, flash drives), settings and remembered sites (~/Library/Application Support/eimzo-agent).
set -euo pipefail

LABEL=uz.eimzo-agent
PACKAGE_ID=uz.eimzo-agent.pkg
prefix=/Library/eimzo-agent
root=/
purge=0
die() { echo "uninstall.sh: $*" >&2; exit 1; }
while (( $# )); do
  case "$1" in
    --prefix) (( $# >= 2 )) || die "--prefix needs a folder"; prefix="$2"; shift 2 ;;
    --root) (( $# >= 2 )) || die "--root needs a folder"; root="$2"; shift 2 ;;
    --purge) purge=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$prefix" =~ ^(/[A-Za-z0-9._-]+)+$ ]] || die "--prefix must be an absolute path of letters, digits, . _ - (got '$prefix')"
root="${root%/}"
[[ -z "$root" || -d "$root" ]] || die "--root $root is not a folder"
program="$prefix/bin/eimzo-agent"
running_mac=0
[[ -z "$root" && "$(uname -s)" == Darwin ]] && running_mac=1

plist="$root/Library/LaunchAgents/$LABEL.plist"
if [[ -f "$plist" ]] && grep -qF "<string>$program</string>" "$plist"; then
  if (( running_mac )); then
    for uid in $(ps -axo uid=,comm= | awk '$2 ~ /loginwindow$/ && $1 != 0 { print $1 }' | sort -u); do
      launchctl bootout "gui/$uid/$LABEL" >/dev/null 2>&1 && echo "stopped it for user $uid"
    done
  fi
  rm -f "$plist"
  echo "removed $plist"
elif [[ -e "$plist" ]]; then
  echo "note: $plist does not start $program: left as it is"
fi

link="$root/usr/local/bin/eimzo-agent"
if [[ -L "$link" && "$(readlink "$link")" == "$program" ]]; then
  rm -f "$link"
  echo "removed $link"
fi

folder="$root$prefix"
if [[ -f "$folder/bin/eimzo-agent" && -d "$folder/python" ]]; then
  rm -rf "$folder"
  echo "removed $folder"
elif [[ -e "$folder" ]]; then
  echo "note: $folder does not look like the package's folder (no bin/eimzo-agent and python/): left as it is"
fi

if (( running_mac )) && pkgutil --pkg-info "$PACKAGE_ID" >/dev/null 2>&1; then
  pkgutil --forget "$PACKAGE_ID" >/dev/null && echo "forgot the package receipt $PACKAGE_ID"
fi

settings="$root/Library/Application Support/eimzo-agent"
if (( purge )) && [[ -d "$settings" ]]; then
  rm -rf "$settings"
  echo "removed $settings"
elif [[ -d "$settings" ]]; then
  echo "kept the machine-wide settings in $settings (--purge removes them)"
fi
