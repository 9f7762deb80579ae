#!/usr/bin/env bash
# Installs what eimzo-agent needs on Debian 12 / Ubuntu 22.04+: the missing system packages (apt), a virtual
# environment in .venv and the agent itself (editable). Safe to run again: it only adds what is missing, and once
# the agent is installed it needs no network (scripts/run.sh calls it at every start).
#   scripts/bootstrap.sh           what the agent needs to run: .pfx keys, tokens through their vendor's PKCS#11 module
#   scripts/bootstrap.sh --tokens  plus smart-card readers and OpenSC tokens (pcscd, OpenSC, pyscard, a C compiler)
#   scripts/bootstrap.sh --test    plus what the test suite needs (includes --tokens)
set -euo pipefail
cd "$(dirname "$0")/.."

# 0 = run, 1 = tokens, 2 = test: each level includes the ones below it.
case "${1:-}" in
  "") level=0 ;;
  --tokens) level=1 ;;
  --test) level=2 ;;
  *) echo "usage: scripts/bootstrap.sh [--tokens | --test]" >&2; exit 2 ;;
esac

# The agent alone. ca-certificates (with openssl): pip's HTTPS to PyPI on the first install.
packages=(openssl ca-certificates)
python_ok() { command -v python3 >/dev/null && python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
python_ok || packages+=(python3 python3-venv python3-pip)
# The password dialog is Tk; Debian's own Python keeps tkinter in a separate package.
python3 -c 'import tkinter' 2>/dev/null || packages+=(python3-tk)
# No compiler for the agent alone: every dependency it installs has binary wheels for Debian 12's Python 3.11
# (python-pkcs11 too), and the O'zDSt hash's C extension is optional (setup.py: without a compiler setuptools
# skips it and the pure-Python hash, ~1 MB/s, does the work; when gcc and Python's headers are already there it
# is built). pcscd and OpenSC serve smart-card readers and OpenSC-driven tokens only: --tokens.
if (( level >= 1 )); then
  # pcscd + OpenSC to reach readers, cards and tokens. pyscard (PC/SC readers) has no Linux wheels on PyPI, only
  # an sdist: it compiles against libpcsclite-dev, so it needs a C compiler and Python's headers (which also
  # build the O'zDSt hash's C extension).
  packages+=(pcscd libpcsclite-dev opensc)
  command -v cc >/dev/null || packages+=(gcc)
  python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
    2>/dev/null || packages+=(python3-dev)
fi
if (( level >= 2 )); then
  # GUI tests: a virtual screen, xdotool to type into the dialog, import (ImageMagick) for screenshots,
  # trayer as a system tray for the tray-icon test, openbox for the dialog-under-a-window-manager test.
  packages+=(xvfb xdotool x11-utils imagemagick trayer openbox)
  # Token tests: SoftHSM2 tokens, the vpcd virtual reader for a scripted card, pcsc_scan for debugging,
  # pkcs11.h (libp11-kit-dev) for the PIN-counting test module tests/pkcs11_shim/ compiled at test time.
  packages+=(softhsm2 vsmartcard-vpcd pcsc-tools libp11-kit-dev)
  # wss trust tests: certutil for throw-away NSS databases, Chromium to prove the browser trusts the agent;
  # update-ca-certificates for `sudo trust install` into the system store (tests/test_trust_sudo.py, in a private
  # mount namespace).
  packages+=(libnss3-tools chromium ca-certificates)
  # JS client tests: `node --test`, and playwright-core (npm) driving that Chromium for the browser tests.
  { command -v node >/dev/null && command -v npm >/dev/null; } || packages+=(nodejs npm)
  # O'zDSt 1106 hash tests cross-check our GOST R 34.11-94 against librhash's independent one (via ctypes).
  packages+=(librhash0)
  # Windows installer tests (tests/test_msi_package.py): build the MSI (wixl, msitools, osslsigncode, mingw-w64
  # for gost94.dll and the custom-action DLL) and install it under Wine (wine64) with the bundled Python.
  packages+=(wixl msitools osslsigncode gcc-mingw-w64-x86-64-win32 wine64)
  # Portal server tests: a real Redis shared by two server processes behind a real nginx, each started by the
  # tests in a temporary folder (the packages' own services are not used).
  packages+=(redis-server nginx)
  # Linux package tests (tests/test_deb_package.py): mmdebstrap makes the clean Debian 12 root they install into;
  # lintian checks the packages, systemd-analyze their user unit, desktop-file-validate their desktop entries.
  packages+=(mmdebstrap lintian systemd desktop-file-utils)
  # `eimzo-agent service` tests use the same two: systemd-analyze verifies the user unit and systemctl reads its
  # enable links (both work without a running systemd), desktop-file-validate checks the XDG autostart entry.
  # The macOS package's scripts cannot run here: tests/test_macos_files.py checks them with shellcheck.
  packages+=(shellcheck)
  # tests/test_bootstrap_offline.py starts README command 1 in a network namespace (`unshare -n`, util-linux) and
  # needs `ip` to bring its loopback up.
  packages+=(iproute2)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo "bootstrap: installing system packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python_ok || { echo "bootstrap: Python 3.11 or newer is required (found: $(python3 --version 2>&1))" >&2; exit 1; }

if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  rm -rf .venv
  python3 -m venv .venv
fi

# pip runs only when the install is missing or out of date: even with nothing to do it rebuilds the editable wheel
# (~3 s per start) in an isolated build environment that fetches setuptools, so offline it fails. Not
# `--no-build-isolation` instead: that still rebuilds at every start, and needs setuptools inside .venv, which
# Python 3.12's venv no longer brings. A stamp in .venv (gone with it) holds a hash of what an editable install
# does not pick up by itself — dependencies and build (pyproject.toml, setup.py), the C extension's sources — and
# the level installed. Python sources need nothing: the editable install reads them from the checkout.
stamp=.venv/eimzo-agent-bootstrap.stamp
digest="$(sha256sum pyproject.toml setup.py eimzo_agent/crypto/_gost94.c eimzo_agent/crypto/gost94_core.[ch] \
  eimzo_agent/crypto/_ozdst_ec.c eimzo_agent/crypto/ozdst_ec_core.[ch] \
  | sha256sum | cut -d' ' -f1)"
stamped_digest="" stamped_level=-1
if [[ -f "$stamp" && -x .venv/bin/eimzo-agent ]]; then
  read -r stamped_digest stamped_level < "$stamp" || true
  [[ "$stamped_level" =~ ^[0-2]$ ]] || stamped_level=-1
fi
if [[ "$stamped_digest" != "$digest" ]] || (( stamped_level < level )); then
  # A changed project is reinstalled at the level it had, so a test venv keeps its test tools up to date.
  install_level=$(( stamped_level > level ? stamped_level : level ))
  echo "bootstrap: installing eimzo-agent into .venv"
  extras=("" "[tokens]" "[tokens,test,portal]")
  pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
  "${pip[@]}" --editable ".${extras[install_level]}"
  if (( install_level == 0 )); then
    # python-pkcs11 (PKCS#11 tokens through a vendor's module) has binary wheels, so it costs no compiler; the
    # version comes from the [tokens] extra in pyproject.toml. Where no wheel exists, --tokens compiles it.
    pkcs11="$(.venv/bin/python -c 'import tomllib
extra = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["tokens"]
print(next(r for r in extra if r.startswith("python-pkcs11")))')"
    "${pip[@]}" --only-binary python-pkcs11 "$pkcs11" || echo "bootstrap: no binary python-pkcs11 for this machine;" \
      "for tokens run: bash scripts/bootstrap.sh --tokens" >&2
  fi
  echo "$digest $install_level" > "$stamp"
fi
if (( level >= 2 )); then
  # playwright-core for tests/test_browser_e2e.py and rollup for the JS client's build check (browser_js/build.mjs),
  # exactly as package-lock.json says (node_modules/ is git-ignored).
  node -e 'process.exit(parseInt(process.versions.node, 10) < 20 ? 1 : 0)' \
    || echo "bootstrap: warning: node $(node --version) is older than 20, which playwright-core needs" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "bootstrap: ready ($(.venv/bin/eimzo-agent version))"
