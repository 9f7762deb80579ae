#!/usr/bin/env bash
# Installs everything eimzo-agent needs on Debian 12 / Ubuntu 22.04+: the missing system packages (apt),
# a virtual environment in .venv and the agent itself (editable). Safe to run again: it only adds what is missing.
#   scripts/bootstrap.sh          what the agent needs to run
#   scripts/bootstrap.sh --test   plus what the test suite needs
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[[ "${1:-}" == "--test" ]] && want_tests=1

packages=(openssl ca-certificates)
python_ok() { command -v python3 >/dev/null && python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
python_ok || packages+=(python3 python3-venv python3-pip)
# The password dialog is Tk; Debian's own Python keeps tkinter in a separate package.
python3 -c 'import tkinter' 2>/dev/null || packages+=(python3-tk)
# Tokens and smart cards (the [tokens] extra): pcscd + OpenSC to reach them; pyscard compiles against
# libpcsclite-dev, so it needs a C compiler and Python's headers too.
packages+=(pcscd libpcsclite-dev opensc)
command -v cc >/dev/null || packages+=(gcc)
python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
  2>/dev/null || packages+=(python3-dev)
if (( want_tests )); then
  # GUI tests: a virtual screen, xdotool to type into the dialog, import (ImageMagick) for screenshots,
  # trayer as a system tray for the tray-icon test, openbox for the dialog-under-a-window-manager test.
  packages+=(xvfb xdotool x11-utils imagemagick trayer openbox)
  # Token tests: SoftHSM2 tokens, the vpcd virtual reader for a scripted card, pcsc_scan for debugging,
  # pkcs11.h (libp11-kit-dev) for the PIN-counting test module tests/pkcs11_shim/ compiled at test time.
  packages+=(softhsm2 vsmartcard-vpcd pcsc-tools libp11-kit-dev)
  # wss trust tests: certutil for throw-away NSS databases, Chromium to prove the browser trusts the agent.
  packages+=(libnss3-tools chromium)
  # JS client tests: `node --test`, and playwright-core (npm) driving that Chromium for the browser tests.
  { command -v node >/dev/null && command -v npm >/dev/null; } || packages+=(nodejs npm)
  # O'zDSt 1106 hash tests cross-check our GOST R 34.11-94 against librhash's independent one (via ctypes).
  packages+=(librhash0)
  # Windows installer tests (tests/test_msi_package.py): build the MSI (wixl, msitools, osslsigncode, mingw-w64
  # for gost94.dll and the custom-action DLL) and install it under Wine (wine64) with the bundled Python.
  packages+=(wixl msitools osslsigncode gcc-mingw-w64-x86-64-win32 wine64)
  # Linux package tests (tests/test_deb_package.py): mmdebstrap makes the clean Debian 12 root they install into;
  # lintian checks the packages, systemd-analyze their user unit, desktop-file-validate their desktop entries.
  packages+=(mmdebstrap lintian systemd desktop-file-utils)
  # `eimzo-agent service` tests use the same two: systemd-analyze verifies the user unit and systemctl reads its
  # enable links (both work without a running systemd), desktop-file-validate checks the XDG autostart entry.
  # The macOS package's scripts cannot run here: tests/test_macos_files.py checks them with shellcheck.
  packages+=(shellcheck)
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
extra="[tokens]"
(( want_tests )) && extra="[tokens,test]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --editable ".${extra}"
if (( want_tests )); then
  # playwright-core for tests/test_browser_e2e.py, exactly as package-lock.json says (node_modules/ is git-ignored).
  node -e 'process.exit(parseInt(process.versions.node, 10) < 20 ? 1 : 0)' \
    || echo "bootstrap: warning: node $(node --version) is older than 20, which playwright-core needs" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "bootstrap: ready ($(.venv/bin/eimzo-agent version))"
