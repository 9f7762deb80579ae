#!/usr/bin/env bash
# Installs what the agent needs and starts it in the foreground; extra arguments go to `eimzo-agent serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/eimzo-agent serve "$@"
