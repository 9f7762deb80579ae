#!/usr/bin/env bash
# Builds the signed and notarized macOS package of eimzo-agent. Runs on a Mac only (pkgbuild, productbuild,
# codesign, notarytool and stapler are Apple's); it was written and shellchecked on Linux but never run there:
# see README.md, "What was tested".
#
#   bash service_installers/macos/build-pkg.sh --python TARBALL --app-identity NAME --installer-identity NAME
#        [--notary-profile NAME] [--arch arm64|x86_64] [--out DIR]
#     --python TARBALL       a relocatable CPython 3.11+ for macOS of that architecture (python-build-standalone's
#                            cpython-3.13.*-<arch>-apple-darwin-install_only.tar.gz, checked against its SHA256SUMS)
#     --app-identity NAME    "Developer ID Application: <Org> (<TEAMID>)": signs the Python and its libraries
#     --installer-identity NAME  "Developer ID Installer: <Org> (<TEAMID>)": signs the .pkg
#     --notary-profile NAME  a `xcrun notarytool store-credentials` profile: notarize and staple (else skipped)
#     --arch                 the Mac's own architecture by default (the bundled Python runs on that one only)
#     --out DIR              default dist/ of the checkout
#
# The package: /Library/eimzo-agent/{python,bin/eimzo-agent,share/macos}, the LaunchAgent
# /Library/LaunchAgents/uz.eimzo-agent.plist and /usr/local/bin/eimzo-agent (both written by the postinstall
# script, install.sh). Package id uz.eimzo-agent.pkg; version from eimzo_agent/__init__.py.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd -P)"
repo="$(cd "$here/../.." && pwd -P)"
python_tarball="" app_identity="" installer_identity="" notary_profile="" arch="" out="$repo/dist"
die() { echo "build-pkg.sh: $*" >&2; exit 1; }
while (( $# )); do
  (( $# >= 2 )) || die "$1 needs a value (see --help)"
  case "$1" in
    --python) python_tarball="$2" ;;
    --app-identity) app_identity="$2" ;;
    --installer-identity) installer_identity="$2" ;;
    --notary-profile) notary_profile="$2" ;;
    --arch) arch="$2" ;;
    --out) out="$2" ;;
    *) die "unknown option $1 (see the head of this file)" ;;
  esac
  shift 2
done
[[ "$(uname -s)" == Darwin ]] || die "the .pkg is built on a Mac (pkgbuild, codesign, notarytool are Apple's)"
for tool in pkgbuild productbuild codesign xcrun file; do
  command -v "$tool" >/dev/null || die "$tool is missing (xcode-select --install)"
done
[[ -f "$python_tarball" ]] || die "--python: a python-build-standalone install_only tarball is needed"
[[ -n "$app_identity" && -n "$installer_identity" ]] || die "--app-identity and --installer-identity are needed"
arch="${arch:-$(uname -m)}"
[[ "$arch" == arm64 || "$arch" == x86_64 ]] || die "--arch must be arm64 or x86_64"
version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$repo/eimzo_agent/__init__.py")"
[[ -n "$version" ]] || die "no __version__ in eimzo_agent/__init__.py"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
payload="$work/payload"
prefix="$payload/Library/eimzo-agent"
mkdir -p "$prefix/bin" "$prefix/share/macos" "$work/scripts" "$out"

echo "1/6 Python runtime and the agent with its [tokens] extra"
tar -xzf "$python_tarball" -C "$prefix"  # install_only tarballs hold one folder, python/
python="$prefix/python/bin/python3"
arch -"$arch" "$python" -c 'import sys; assert sys.version_info >= (3, 11), sys.version'
arch -"$arch" "$python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location "${repo}[tokens]"
# pip's own launchers name this build folder; the package's command is launcher.sh.
rm -f "$prefix/python/bin/eimzo-agent"
install -m 0755 "$here/launcher.sh" "$prefix/bin/eimzo-agent"
install -m 0755 "$here/install.sh" "$here/uninstall.sh" "$here/browser-policy.sh" "$prefix/share/macos/"
install -m 0644 "$here/uz.eimzo-agent.plist.in" "$prefix/share/macos/"
arch -"$arch" "$prefix/bin/eimzo-agent" version

echo "2/6 signing every Mach-O file (hardened runtime, secure timestamp)"
executables=()
while IFS= read -r -d '' candidate; do
  if file -b "$candidate" | grep -q 'Mach-O'; then
    if [[ "$candidate" == "$prefix"/python/bin/* ]]; then
      executables+=("$candidate")
    else
      codesign --force --timestamp --options runtime --sign "$app_identity" "$candidate"
    fi
  fi
done < <(find "$prefix" -type f -print0)
# Executables last, with the entitlements (see entitlements.plist): after the libraries they load are signed.
for executable in "${executables[@]}"; do
  codesign --force --timestamp --options runtime --entitlements "$here/entitlements.plist" \
    --sign "$app_identity" "$executable"
done
codesign --verify --strict --verbose=2 "$python"

echo "3/6 component package"
install -m 0755 "$here/postinstall" "$work/scripts/postinstall"
pkgbuild --root "$payload" --identifier uz.eimzo-agent.pkg --version "$version" --install-location / \
  --scripts "$work/scripts" --ownership recommended --filter '\.DS_Store$' "$work/eimzo-agent-component.pkg"

echo "4/6 product archive, signed"
sed -e "s|@VERSION@|$version|g" -e "s|@ARCH@|$arch|g" "$here/distribution.xml.in" > "$work/distribution.xml"
product="$out/eimzo-agent-$version-$arch.pkg"
productbuild --distribution "$work/distribution.xml" --package-path "$work" --sign "$installer_identity" \
  --timestamp "$product"
pkgutil --check-signature "$product"

if [[ -n "$notary_profile" ]]; then
  echo "5/6 notarization (Apple's service; takes minutes)"
  xcrun notarytool submit "$product" --keychain-profile "$notary_profile" --wait
  echo "6/6 stapling the ticket"
  xcrun stapler staple "$product"
  xcrun stapler validate "$product"
  spctl --assess --type install --verbose=2 "$product"
else
  echo "5/6, 6/6 skipped: no --notary-profile (Gatekeeper refuses an un-notarized package on other Macs)"
fi
echo "built $product ($(du -h "$product" | cut -f1))"
