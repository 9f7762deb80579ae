#!/usr/bin/env bash
# Installs what the tests need (system packages included) and runs the whole suite: lint, the JS client's unit
# tests, then pytest. Then checks that the tests left no trace: nothing changed or added in the checkout (ignored
# files included), nothing written into the home folder — pytest runs with HOME and XDG_* pointing at an empty
# sentinel folder that must stay empty — and the real user's eimzo-agent folders unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --test
.venv/bin/ruff check .
node --test browser_js/test/

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
sentinel="$scratch/home"
mkdir "$sentinel"
user_folders=("${XDG_DATA_HOME:-$HOME/.local/share}/eimzo-agent" "${XDG_CONFIG_HOME:-$HOME/.config}/eimzo-agent")
user_listing() { { find "${user_folders[@]}" -printf '%p %s %T@\n' 2>/dev/null || true; } | sort; }
# Every untracked file, every ignored file or folder (build/, .hypothesis/, __pycache__/...), and the tracked
# files' contents.
checkout_state() {
  git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "not a git checkout: not checked"; return; }
  git status --porcelain --ignored=matching --untracked-files=all
  git diff HEAD --binary | sha256sum
}
user_listing > "$scratch/user-before"
checkout_state > "$scratch/checkout-before"

# Byte-code goes to the scratch folder too, so that Python's __pycache__/ folders do not count as a trace.
status=0
env HOME="$sentinel" XDG_CONFIG_HOME="$sentinel/.config" XDG_DATA_HOME="$sentinel/.local/share" \
  XDG_STATE_HOME="$sentinel/.local/state" XDG_CACHE_HOME="$sentinel/.cache" PYTHONPYCACHEPREFIX="$scratch/pycache" \
  .venv/bin/python -m pytest -p no:cacheprovider "$@" || status=$?

# The WebSocket edge once more against the lowest websockets release pyproject.toml admits (the venv has the
# newest): the supported range is a tested claim, not a guess.
if (( $# == 0 )); then
  lowest="$(sed -n 's/^ *"websockets>=\([0-9.]*\),.*/\1/p' pyproject.toml)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --target "$scratch/websockets" \
    "websockets==$lowest"
  echo "test.sh: the WebSocket edge with websockets $lowest"
  env HOME="$sentinel" XDG_CONFIG_HOME="$sentinel/.config" XDG_DATA_HOME="$sentinel/.local/share" \
    XDG_STATE_HOME="$sentinel/.local/state" XDG_CACHE_HOME="$sentinel/.cache" PYTHONPYCACHEPREFIX="$scratch/pycache" \
    PYTHONPATH="$scratch/websockets" .venv/bin/python -m pytest -p no:cacheprovider -q \
    tests/test_listener.py tests/test_agent_e2e.py tests/test_large_frame.py || status=$?
fi

if ! diff -u "$scratch/checkout-before" <(checkout_state) >"$scratch/checkout-diff"; then
  echo "test.sh: the tests changed the checkout (git status --porcelain --ignored, before/after):" >&2
  cat "$scratch/checkout-diff" >&2
  status=1
fi
if [[ -n "$(find "$sentinel" -mindepth 1 -print -quit)" ]]; then
  echo "test.sh: the tests wrote into the home folder:" >&2
  find "$sentinel" -mindepth 1 >&2
  status=1
fi
if ! diff -u "$scratch/user-before" <(user_listing) >"$scratch/user-diff"; then
  echo "test.sh: the tests changed the real user's eimzo-agent folders:" >&2
  cat "$scratch/user-diff" >&2
  status=1
fi
exit "$status"
