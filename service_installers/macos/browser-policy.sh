#!/usr/bin/env bash
# The browser policies that let chosen portals reach eimzo-agent on a Mac without a permission prompt (Chrome's
# and Edge's Local Network Access; Firefox's LocalNetworkAccess), made by `eimzo-agent policy browser`.
#
#   browser-policy.sh --site URL [--site URL]... [--out DIR]
#     --site URL  a portal: https://my.gov.uz, or https://[*.]soliq.uz for the domain and its sub-domains
#     --out DIR   where to write (default ./eimzo-agent-browser-policy)
#
# Writes into DIR:
#   com.google.Chrome.plist, com.microsoft.Edge.plist, org.chromium.Chromium.plist
#       managed preferences, one per browser: upload each to your MDM as custom settings for that domain
#   eimzo-agent-browser-policy.mobileconfig
#       the same three in one configuration profile, for Macs without MDM (double-click, then approve it in
#       System Settings > Privacy & Security > Profiles); Chrome and Edge read these policies only when managed
#   policies.json
#       Firefox: goes to /Applications/Firefox.app/Contents/Resources/distribution/ (merge it into an existing one)
# EIMZO_AGENT names the agent's command (default: eimzo-agent on PATH, else /Library/eimzo-agent/bin/eimzo-agent).
set -euo pipefail

out=eimzo-agent-browser-policy
sites=()
die() { echo "browser-policy.sh: $*" >&2; exit 2; }
while (( $# )); do
  case "$1" in
    --site) (( $# >= 2 )) || die "--site needs a portal URL"; sites+=(--site "$2"); shift 2 ;;
    --out) (( $# >= 2 )) || die "--out needs a folder"; out="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
(( ${#sites[@]} )) || die "name at least one portal, e.g. --site https://my.gov.uz"
agent="${EIMZO_AGENT:-}"
if [[ -z "$agent" ]]; then
  agent="$(command -v eimzo-agent || echo /Library/eimzo-agent/bin/eimzo-agent)"
fi

# The generator checks the patterns (a malformed one stops here, before anything is written).
"$agent" policy browser "${sites[@]}" --format macos-plist --out "$out"
"$agent" policy browser "${sites[@]}" --format firefox-json --out "$out"

uuid() {
  if command -v uuidgen >/dev/null; then uuidgen; else cat /proc/sys/kernel/random/uuid; fi | tr '[:lower:]' '[:upper:]'
}
# The policies as a <dict> element: the generated plist without its header and <plist> wrapper.
policies="$(sed -e '1,/^<plist/d' -e '/^<\/plist>/,$d' "$out/com.google.Chrome.plist")"
names="$(printf '%s\n' "${sites[@]}" | grep -v '^--site$' | paste -sd ' ' -)"
domains=""
for domain in com.google.Chrome com.microsoft.Edge org.chromium.Chromium; do
  domains+="
				<key>$domain</key>
				<dict>
					<key>Forced</key>
					<array>
						<dict>
							<key>mcx_preference_settings</key>
$policies
						</dict>
					</array>
				</dict>"
done
profile="$out/eimzo-agent-browser-policy.mobileconfig"
cat > "$profile" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>PayloadContent</key>
	<array>
		<dict>
			<key>PayloadContent</key>
			<dict>$domains
			</dict>
			<key>PayloadDisplayName</key>
			<string>Chrome, Edge, Chromium: Local Network Access for the signing portals</string>
			<key>PayloadEnabled</key>
			<true/>
			<key>PayloadIdentifier</key>
			<string>uz.eimzo-agent.browser-policy.preferences</string>
			<key>PayloadType</key>
			<string>com.apple.ManagedClient.preferences</string>
			<key>PayloadUUID</key>
			<string>$(uuid)</string>
			<key>PayloadVersion</key>
			<integer>1</integer>
		</dict>
	</array>
	<key>PayloadDescription</key>
	<string>Lets these portals reach the signing agent eimzo-agent on this Mac without asking: $names</string>
	<key>PayloadDisplayName</key>
	<string>eimzo-agent: browser policy</string>
	<key>PayloadIdentifier</key>
	<string>uz.eimzo-agent.browser-policy</string>
	<key>PayloadScope</key>
	<string>System</string>
	<key>PayloadType</key>
	<string>Configuration</string>
	<key>PayloadUUID</key>
	<string>$(uuid)</string>
	<key>PayloadVersion</key>
	<integer>1</integer>
</dict>
</plist>
EOF
echo "$profile"
