"""What tests need from the machine, checked one way: headless Chromium's tools, namespaces, a second user.

A missing tool fails the test: `bash scripts/bootstrap.sh --test` installs every one, so on CI a gap is a bug in
the bootstrap, not a reason to skip. EIMZO_AGENT_SKIP_BROWSER=1 lets a developer without a browser skip them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")


def require_browser_tools(*tools: str) -> None:
    """node, Debian's Chromium and playwright-core, plus `tools` (e.g. "unshare", "openssl")."""
    missing = next((tool for tool in ("node", *tools) if shutil.which(tool) is None), None)
    if missing is None and not CHROMIUM.exists():
        missing = str(CHROMIUM)
    if missing is None and not (REPO / "node_modules" / "playwright-core" / "package.json").is_file():
        missing = "node_modules/playwright-core (npm ci)"
    if missing is None:
        return
    if os.environ.get("EIMZO_AGENT_SKIP_BROWSER") == "1":
        pytest.skip(f"browser tests skipped (EIMZO_AGENT_SKIP_BROWSER=1; missing {missing})")
    pytest.fail(f"the browser tests need {missing}: run `bash scripts/bootstrap.sh --test`")


def skip_or_fail_on_ci(reason: str) -> NoReturn:
    """Something this machine cannot offer (a namespace, a second user): a skip on a developer's machine, a failure
    on CI, where it must be there."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)
