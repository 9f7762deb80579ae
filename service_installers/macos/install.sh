#!/usr/bin/env bash
# Puts the macOS package's eimzo-agent to work: the LaunchAgent that starts it in every user's login session, and
# the `eimzo-agent` command in /usr/local/bin. The .pkg's postinstall runs it (from
# <prefix>/share/macos/install.sh); an admin may run it by hand with sudo. It is for the package layout below,
# not for pip/pipx installs: those use `eimzo-agent service install`.
#
#   install.sh [--prefix DIR] [--root DIR] [--no-load]
#     --prefix DIR  the package's folder as the installed system sees it (default /Library/eimzo-agent);
#                   the agent's command is DIR/bin/eimzo-agent
#     --root DIR    the system to install into (default /; the .pkg passes its target volume)
#     --no-load     only write the files: the agent starts at the next login
#
# Writes <root>/Library/LaunchAgents/uz.eimzo-agent.plist (root:wheel, 0644) and the symlink
# <root>/usr/local/bin/eimzo-agent -> <prefix>/bin/eimzo-agent (an eimzo-agent there that is not our symlink is
# left alone). On the running system of a Mac it then (re)loads the LaunchAgent in each graphical login session
# (launchctl bootout + bootstrap gui/<uid>), so an upgrade restarts the agent with the new files.
set -euo pipefail

LABEL=uz.eimzo-agent
here="$(cd "$(dirname "$0")" && pwd -P)"
prefix=/Library/eimzo-agent
root=/
load=1
die() { echo "install.sh: $*" >&2; exit 1; }
while (( $# )); do
  case "$1" in
    --prefix) (( $# >= 2 )) || die "--prefix needs a folder"; prefix="$2"; shift 2 ;;
    --root) (( $# >= 2 )) || die "--root needs a folder"; root="$2"; shift 2 ;;
    --no-load) load=0; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
# The prefix goes into the plist and a symlink as it is: keep it to characters that need no quoting anywhere.
[[ "$prefix" =~ ^(/[A-Za-z0-9._-]+)+$ ]] || die "--prefix must be an absolute path of letters, digits, . _ - (got '$prefix')"
root="${root%/}"
[[ -z "$root" || -d "$root" ]] || die "--root $root is not a folder"
program="$prefix/bin/eimzo-agent"
[[ -x "$root$program" ]] || die "$root$program is missing: install the package's files first"
template="$here/$LABEL.plist.in"
[[ -f "$template" ]] || die "$template is missing"

agents="$root/Library/LaunchAgents"
plist="$agents/$LABEL.plist"
mkdir -p "$agents"
sed "s|@PREFIX@|$prefix|g" "$template" > "$plist.new"
chmod 0644 "$plist.new"
(( EUID == 0 )) && chown 0:0 "$plist.new"  # root:wheel, or launchd ignores the file
mv -f "$plist.new" "$plist"
echo "wrote $plist"

bin="$root/usr/local/bin"
link="$bin/eimzo-agent"
if [[ ! -e "$link" && ! -L "$link" ]] || [[ -L "$link" && "$(readlink "$link")" == "$program" ]]; then
  mkdir -p "$bin"
  ln -sfn "$program" "$link"
  echo "linked $link -> $program"
else
  echo "note: $link exists and is not this package's: left as it is (the package's command is $program)"
fi

# launchctl acts on the running Mac only.
if (( load )) && [[ -z "$root" ]] && [[ "$(uname -s)" == Darwin ]]; then
  # Every graphical login session (fast user switching may have several): the users running loginwindow.
  uids="$(ps -axo uid=,comm= | awk '$2 ~ /loginwindow$/ && $1 != 0 { print $1 }' | sort -u)"
  for uid in $uids; do
    launchctl bootout "gui/$uid/$LABEL" >/dev/null 2>&1 || true
    if launchctl bootstrap "gui/$uid" "$plist"; then
      echo "started it for user $uid (launchctl bootstrap gui/$uid)"
    else
      echo "note: could not start it for user $uid now: it starts at their next login"
    fi
  done
  [[ -n "$uids" ]] || echo "note: nobody is logged in: the agent starts at the next login"
else
  echo "note: the agent starts at the next login"
fi
