#!/usr/bin/env bash
# Installs what the tests need (system packages included) and runs the whole suite: lint, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --test
.venv/bin/ruff check .
.venv/bin/python -m pytest -p no:cacheprovider "$@"
