#!/usr/bin/env bash
# Builds the Debian packages from this checkout into OUT_DIR (service_installers/build.sh deb [--out DIR] calls it):
#   eimzo-agent_<version>_amd64.deb                  the agent, its private Python environment in /usr/lib
#   eimzo-agent-browser-policy_<version>_all.deb     optional: browser policies for the portals in the settings
# Needs Debian 12 (amd64) and Debian's package mirror and PyPI; installs the tools it lacks (mmdebstrap) with apt.
#
# The private environment is built inside a throw-away Debian 12 root (mmdebstrap), never with the build
# machine's own Python: its interpreter links, paths and compiled modules must be those of the machines it is
# installed on. The packages are then assembled with dpkg-deb from the files in this folder.
set -euo pipefail
umask 022  # files in a package are readable by all, whatever the builder's own umask
(( $# == 1 )) || { echo "usage: build-deb.sh OUT_DIR" >&2; exit 2; }
out="$1"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"

[[ "$(dpkg --print-architecture)" == amd64 ]] \
  || { echo "build-deb.sh: builds amd64 packages on an amd64 Debian machine only" >&2; exit 1; }
# mmdebstrap makes the build root (as root: through sudo for a normal user, like apt-get).
if ! dpkg-query -W -f='${Status}' mmdebstrap 2>/dev/null | grep -q "install ok installed"; then
  echo "build-deb.sh: installing mmdebstrap"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi

version="$(sed -n 's/^__version__ = "\([^"]*\)"$/\1/p' "$repo/eimzo_agent/__init__.py")"
[[ -n "$version" ]] || { echo "build-deb.sh: no __version__ in eimzo_agent/__init__.py" >&2; exit 1; }
maintainer="${DEBFULLNAME:-eimzo-agent maintainers} <${DEBEMAIL:-maintainers@eimzo-agent.invalid}>"
# The changelog's date: the last commit's, so that two builds of one commit agree; the copyright's years.
when="$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)"
first="$(git -C "$repo" log --format=%ad --date=format:%Y 2>/dev/null | tail -n 1 || true)"  # tail: no SIGPIPE
last="$(date -u -d "@$when" +%Y)"
years="${first:-$last}"; [[ "$years" == "$last" ]] || years="$years-$last"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in" "$work/eimzo-agent/usr/lib/eimzo-agent" "$out"

# What goes into the build root: the sources a wheel is built from, the templates, and what pip needs to reach
# PyPI from there as it does here: the build machine's CA bundle (a company proxy may re-sign TLS), its index
# and proxy settings.
tar -C "$repo" -cf "$work/in/eimzo-src.tar" --exclude=__pycache__ --exclude='*.so' --exclude='*.pyc' \
  --exclude='*.egg-info' pyproject.toml setup.py README.md eimzo_agent browser_js examples/demo-portal
cp "$here/build-in-root.sh" "$here/desktop_entry.py" "$here"/eimzo-agent/*.desktop.in "$work/in/"
ca="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
if [[ -f "$ca" ]]; then cp "$ca" "$work/in/ca-bundle.pem"; else : > "$work/in/ca-bundle.pem"; fi
: > "$work/in/build-env"
for name in PIP_INDEX_URL PIP_TRUSTED_HOST http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  value="${!name:-}"
  [[ -n "$value" && "$value" != *"'"* ]] && printf "%s='%s'\n" "$name" "$value" >> "$work/in/build-env"
done

echo "build-deb.sh: building the private Python environment in a Debian 12 root (mmdebstrap)"
# The hooks run in mmdebstrap's shell, where "$1" is the root.
# shellcheck disable=SC2016
$SUDO mmdebstrap --quiet --variant=apt \
  --include=python3.11-venv,python3.11-dev,gcc,libc6-dev,swig,libpcsclite-dev,ca-certificates,dpkg-dev,help2man \
  --customize-hook="copy-in $(printf '%s ' "$work"/in/*) /tmp" \
  --customize-hook='env -i PATH=/usr/sbin:/usr/bin HOME=/root LANG=C.UTF-8 chroot "$1" sh /tmp/build-in-root.sh' \
  --customize-hook="sync-out /usr/lib/eimzo-agent $work/eimzo-agent/usr/lib/eimzo-agent" \
  --customize-hook="copy-out /tmp/out/shlibs /tmp/out/eimzo-agent.1 /tmp/out/eimzo-agent.desktop \
                    /tmp/out/eimzo-agent-autostart.desktop $work" \
  bookworm /dev/null
[[ -z "$SUDO" ]] || $SUDO chown -R "$(id -u):$(id -g)" "$work"

# Common parts: documentation, the control file, md5sums; then dpkg-deb.
add_docs() {  # add_docs STAGE PACKAGE
  local doc="$1/usr/share/doc/$2"
  install -d "$doc"
  sed "s/@YEARS@/$years/" "$here/copyright" > "$doc/copyright"
  { printf '%s (%s) unstable; urgency=medium\n\n' "$2" "$version"
    printf '  * Built from the eimzo-agent sources (see its git history).\n\n'
    printf ' -- %s  %s\n' "$maintainer" "$(date -R -u -d "@$when")"; } | gzip -9n > "$doc/changelog.gz"
}
finish() {  # finish STAGE PACKAGE DEB_NAME [SHLIBS]
  local stage="$1" package="$2" size
  size="$(du -sk --apparent-size --exclude=DEBIAN "$stage" | cut -f1)"
  sed -e "s/@VERSION@/$version/g" -e "s/@MAINTAINER@/$maintainer/" -e "s/@INSTALLED_SIZE@/$size/" \
    -e "s/@SHLIBS@/${4:-}/" "$here/$package/control.in" > "$stage/DEBIAN/control"
  (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0r md5sum) \
    > "$stage/DEBIAN/md5sums"
  dpkg-deb --root-owner-group --build "$stage" "$out/$3" >/dev/null
  echo "build-deb.sh: $out/$3 ($(du -h "$out/$3" | cut -f1))"
}

# eimzo-agent
stage="$work/eimzo-agent"
install -d -m 0755 "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/lib/systemd/user" "$stage/usr/share/applications" \
  "$stage/usr/share/icons/hicolor/scalable/apps" "$stage/etc/xdg/eimzo-agent" "$stage/etc/xdg/autostart" \
  "$stage/usr/share/lintian/overrides" "$stage/usr/share/man/man1"
install -m 0755 "$here/eimzo-agent/eimzo-agent.sh" "$stage/usr/bin/eimzo-agent"
install -m 0644 "$here/eimzo-agent/eimzo-agent.service" "$stage/usr/lib/systemd/user/eimzo-agent.service"
install -m 0644 "$work/eimzo-agent.desktop" "$stage/usr/share/applications/eimzo-agent.desktop"
install -m 0644 "$work/eimzo-agent-autostart.desktop" "$stage/etc/xdg/autostart/eimzo-agent.desktop"
install -m 0644 "$here/eimzo-agent/eimzo-agent.svg" "$stage/usr/share/icons/hicolor/scalable/apps/eimzo-agent.svg"
install -m 0644 "$here/eimzo-agent/config.toml" "$stage/etc/xdg/eimzo-agent/config.toml"
install -m 0644 "$here/eimzo-agent/lintian-overrides" "$stage/usr/share/lintian/overrides/eimzo-agent"
gzip -9n < "$work/eimzo-agent.1" > "$stage/usr/share/man/man1/eimzo-agent.1.gz"
add_docs "$stage" eimzo-agent
install -m 0644 "$here/README.md" "$stage/usr/share/doc/eimzo-agent/README.md"
install -m 0755 "$here"/eimzo-agent/{postinst,prerm,postrm} "$stage/DEBIAN/"
printf '%s\n' /etc/xdg/eimzo-agent/config.toml /etc/xdg/autostart/eimzo-agent.desktop > "$stage/DEBIAN/conffiles"
finish "$stage" eimzo-agent "eimzo-agent_${version}_amd64.deb" "$(cat "$work/shlibs")"

# eimzo-agent-browser-policy: only maintainer scripts. The files they write depend on the admin's settings, so
# they are made at configuration time (eimzo-agent policy browser --apply), with the folders they need; --remove
# takes away those files and the folders it made, nothing else.
stage="$work/eimzo-agent-browser-policy"
install -d -m 0755 "$stage/DEBIAN" "$stage/usr/share/lintian/overrides"
add_docs "$stage" eimzo-agent-browser-policy
install -m 0644 "$here/eimzo-agent-browser-policy/lintian-overrides" \
  "$stage/usr/share/lintian/overrides/eimzo-agent-browser-policy"
install -m 0755 "$here"/eimzo-agent-browser-policy/{postinst,prerm} "$stage/DEBIAN/"
finish "$stage" eimzo-agent-browser-policy "eimzo-agent-browser-policy_${version}_all.deb"
