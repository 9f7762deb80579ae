#!/usr/bin/env bash
# Refreshes the pictures in docs/screenshots/ on purpose: runs exactly the tests that take them, with
# EIMZO_SCREENSHOT_DIR pointing there (a normal test run keeps its screenshots in a temporary folder).
# Needs what the tests need: run `bash scripts/test.sh` (or scripts/bootstrap.sh --test) once first.
set -euo pipefail
cd "$(dirname "$0")/.."
EIMZO_SCREENSHOT_DIR="$PWD/docs/screenshots" .venv/bin/python -m pytest -p no:cacheprovider -q \
  tests/test_browser_e2e.py::test_demo_screenshot_is_written \
  tests/test_password_dialog_gui.py::test_screenshot_in_each_language \
  tests/test_password_dialog_gui.py::test_change_password_screenshot \
  tests/test_consent_gui.py::test_consent_screenshot \
  tests/test_portal_login_browser.py::test_screenshots_are_written \
  "$@"
git status --short docs/screenshots/
