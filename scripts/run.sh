#!/usr/bin/env bash
# Installs what the agent needs (the first time; later starts need no network) and starts it in the foreground;
# extra arguments go to `eimzo-agent serve`. Smart-card readers and OpenSC tokens: `bash scripts/bootstrap.sh
# --tokens` once first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/eimzo-agent serve "$@"
