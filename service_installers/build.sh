#!/usr/bin/env bash
# Builds an installer from this checkout:
#   bash service_installers/build.sh deb [--out DIR]   Debian/Ubuntu package(s)   (linux/build-deb.sh)
#   bash service_installers/build.sh msi [--out DIR]   Windows Installer package  (windows/build-msi.sh)
# DIR defaults to dist/ in the checkout. The per-platform scripts install the tools they need (apt) and say
# what they built.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
usage() { echo "usage: bash service_installers/build.sh deb|msi [--out DIR]" >&2; exit 2; }
(( $# >= 1 )) || usage
kind="$1"; shift
out="$here/../dist"
while (( $# )); do
  case "$1" in
    --out) (( $# >= 2 )) || usage; out="$2"; shift 2 ;;
    *) usage ;;
  esac
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"
case "$kind" in
  deb) exec bash "$here/linux/build-deb.sh" "$out" ;;
  msi) exec bash "$here/windows/build-msi.sh" "$out" ;;
  *) usage ;;
esac
