"""A copy of the package with a chosen set of C accelerators, for the loader-order tests of test_gost94.py and
test_ozdst_ec.py: the extension left out or kept, the plain library (the Windows installer's DLL layout) put beside
its module or not, and a script run against the copy in a fresh interpreter — the checkout is never touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (extension present, library present, EIMZO_AGENT_PURE_PYTHON, the backend expected): extension, then library,
#: then Python; the variable wins.
LOADER_CASES = [
    (True, True, "", "extension"),
    (False, True, "", "library"),
    (False, False, "", "python"),
    (False, True, "1", "python"),
]


def run_in_copy(tmp_path: Path, code: str, *, extension: str | None, library: Callable[[Path], Path] | None,
                pure_env: str) -> list[str]:
    """Copy eimzo_agent into tmp_path without any built accelerator, add the extension file `extension` and the
    library `library(folder)` builds into crypto/, run `code` there; its output's words."""
    package = tmp_path / "eimzo_agent"
    shutil.copytree(ROOT / "eimzo_agent", package, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.dll"))
    if extension is not None:
        shutil.copy2(extension, package / "crypto")
    if library is not None:
        library(package / "crypto")
    env = dict(os.environ, PYTHONPATH=str(tmp_path), EIMZO_AGENT_PURE_PYTHON=pure_env)
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                          check=True).stdout.split()
