#!/bin/sh
# Runs inside the throw-away Debian 12 root that build-deb.sh makes with mmdebstrap (never on the build machine):
# the agent's private Python environment, built at its final path with Debian's own python3.11, so that its
# interpreter links, paths and compiled modules are those of the machines it is installed on; and the files made
# from it or from the sources with Debian's tools.
#   in:  /tmp/eimzo-src.tar (the project's sources), /tmp/ca-bundle.pem (the build machine's CAs, for PyPI),
#        /tmp/build-env (pip's index and proxy settings), /tmp/*.desktop.in, /tmp/desktop_entry.py
#   out: /usr/lib/eimzo-agent/venv, /tmp/out/shlibs (the Depends its compiled modules need),
#        /tmp/out/eimzo-agent.1 (the manual page, from --help), /tmp/out/*.desktop (the desktop entries)
set -eu
umask 022
# pip's index and proxy settings, as build-deb.sh found them
set -a
# shellcheck source=/dev/null
. /tmp/build-env
set +a
src=/tmp/eimzo-src wheels=/tmp/wheels out=/tmp/out venv=/usr/lib/eimzo-agent/venv build=/tmp/build-venv
mkdir -p "$src" "$wheels" "$out"
tar -xf /tmp/eimzo-src.tar -C "$src"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off
[ -s /tmp/ca-bundle.pem ] && export PIP_CERT=/tmp/ca-bundle.pem

# The [tokens] extra's pyscard requirement, as pyproject.toml states it.
pyscard="$(python3.11 -c 'import sys, tomllib
extra = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["tokens"]
print(next(r for r in extra if r.startswith("pyscard")))' "$src/pyproject.toml")"

# Build tools only: they never reach the package.
python3.11 -m venv "$build"
"$build/bin/pip" install --quiet 'setuptools>=68' wheel
# Our wheel, with the O'zDSt hash accelerator compiled for Debian's Python; pyscard, which PyPI has as source only,
# compiled with Debian's swig against libpcsclite-dev.
"$build/bin/pip" wheel --quiet --no-build-isolation --no-deps --wheel-dir "$wheels" "$src" "$pyscard"

# The environment itself: no pip inside (dpkg owns every file; nobody should install into it), wheels only.
python3.11 -m venv --without-pip "$venv"
"$build/bin/pip" --python "$venv/bin/python3" install --quiet --no-compile --only-binary=:all: \
  --find-links "$wheels" "$(ls "$wheels"/eimzo_agent-*.whl)[tokens]"
# Only what the package runs: the interpreter links (the package's /usr/bin/eimzo-agent runs "python3 -m
# eimzo_agent"), no activation scripts or console scripts of the libraries. No byte-code either: the package's
# postinst compiles it, as Debian's Python packages do.
find "$venv/bin" -mindepth 1 ! -name 'python*' -delete
# The interpreter link relative (/usr/lib/eimzo-agent/venv/bin -> /usr/bin), as Debian wants links within /usr.
ln -sfn ../../../../bin/python3.11 "$venv/bin/python3.11"
find "$venv" -name __pycache__ -prune -exec rm -rf {} +
rm -rf "$venv/include"  # empty: headers are for building, not running
# Compiled modules and libraries as Debian ships them (dh_strip's options): no symbol tables, not executable.
find "$venv" -type f -name '*.so*' -exec strip --strip-unneeded --remove-section=.comment --remove-section=.note {} + \
  -exec chmod 0644 {} +

# What the package promises, checked here: the accelerators were compiled (setup.py makes them optional), token and
# smart-card support imports, the stripped libraries load and work (the tray icon is drawn with Pillow), the command
# line runs. -B: none of this leaves byte-code behind.
"$venv/bin/python3" -I -B -c '
import eimzo_agent.crypto._gost94, eimzo_agent.crypto._ozdst_ec, pkcs11, smartcard.scard, websockets.speedups
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from PIL import ImageFont
from eimzo_agent.ui.tray import icon_image
ec.generate_private_key(ec.SECP256R1()).sign(b"x", ec.ECDSA(hashes.SHA256()))
ImageFont.load_default(size=12)
assert icon_image(32).size == (32, 32)
'
# The manual page, from --help, of the command as the package installs it.
mkdir -p /tmp/bin
printf '#!/bin/sh\nexec %s -I -B -m eimzo_agent "$@"\n' "$venv/bin/python3" > /tmp/bin/eimzo-agent
chmod 0755 /tmp/bin/eimzo-agent
/tmp/bin/eimzo-agent version
help2man --no-info --no-discard-stderr --version-string="$(/tmp/bin/eimzo-agent version | cut -d' ' -f2)" \
  --name="local signing agent for Uzbek ERI keys, compatible with E-IMZO" --output="$out/eimzo-agent.1" \
  /tmp/bin/eimzo-agent

# Debian packages that the compiled modules need (libc6, libpcsclite1, ...): dpkg-shlibdeps over every ELF file.
# Libraries a manylinux wheel brings along (found through -l) belong to no package and are skipped.
mkdir -p /tmp/shlibs/debian
: > /tmp/shlibs/debian/control
cd /tmp/shlibs
find "$venv" -type f -name '*.so*' > elf-files
sed 's|/[^/]*$||' elf-files | sort -u | sed 's/^/-l/' > library-dirs
# shellcheck disable=SC2046  # one argument per line of the lists (no spaces in these paths)
dpkg-shlibdeps -O --ignore-missing-info $(cat library-dirs) $(cat elf-files) 2>warnings \
  | sed -n 's/^shlibs:Depends=//p' > "$out/shlibs"
[ -s "$out/shlibs" ] || { cat warnings >&2; exit 1; }

# The desktop entries, with the texts of every language the agent speaks.
for kind in eimzo-agent eimzo-agent-autostart; do
  python3.11 /tmp/desktop_entry.py "$src/eimzo_agent/i18n" "/tmp/$kind.desktop.in" "$out/$kind.desktop"
done
