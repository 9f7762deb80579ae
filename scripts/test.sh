#!/usr/bin/env bash
# Installs what the tests need (system packages included) and runs the whole suite: lint, the JS client's unit
# tests, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --test
.venv/bin/ruff check .
node --test browser_js/test/
.venv/bin/python -m pytest -p no:cacheprovider "$@"
