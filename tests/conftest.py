"""Shared fixtures: a test run touches neither the real user's files nor the checkout.

Every test gets its own home and config/data folders, and so does every test module: module-scoped fixtures (an
agent shared by a module's tests) start before the per-test folders exist. Hypothesis keeps its example database
and caches in a temporary folder instead of `.hypothesis/` in the checkout; screenshots go to `screenshot_dir`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import configuration as hypothesis_configuration

sys.path.insert(0, str(Path(__file__).parent))

_HYPOTHESIS_HOME = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    # Here, not in a fixture: Hypothesis already writes its caches while the test modules are collected.
    folder = tempfile.mkdtemp(prefix="eimzo-agent-hypothesis-")
    config.stash[_HYPOTHESIS_HOME] = folder
    hypothesis_configuration.set_hypothesis_home_dir(folder)


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_HYPOTHESIS_HOME, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def _isolate(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Path:
    """HOME, the XDG folders and the admin config inside `folder`; no display, askpass or locale inherited."""
    home = folder / "home"
    home.mkdir()
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("EIMZO_AGENT_SYSTEM_CONFIG", os.devnull)  # no admin file (a missing one is an error)
    monkeypatch.delenv("EIMZO_AGENT_ASKPASS", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.delenv("LANGUAGE", raising=False)
    return home


@pytest.fixture(scope="module", autouse=True)
def isolated_module_dirs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The module's own folders, for module-scoped fixtures (autouse runs first within a scope)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield _isolate(monkeypatch, tmp_path_factory.mktemp(request.module.__name__))


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's own folders."""
    return _isolate(monkeypatch, tmp_path)


@pytest.fixture
def agent_env() -> dict[str, str]:
    """The environment for an agent subprocess (already isolated by `isolated_dirs`)."""
    return dict(os.environ)


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where tests save screenshots: a temporary folder, or $EIMZO_SCREENSHOT_DIR, which
    scripts/refresh-screenshots.sh points at docs/screenshots/ to refresh them on purpose."""
    chosen = os.environ.get("EIMZO_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def tk_screen() -> Iterator[object]:
    """One Xvfb screen for every test that runs Tk inside the pytest process (not in a subprocess).

    Tk keeps its X connection after the last window is destroyed, and once that X server is gone the next Tk call
    in the process ends it (Xlib's "fatal IO error", exit status 1, no traceback): so in-process Tk tests cannot
    each start and stop their own Xvfb. Dialogs run by an agent subprocess keep their own screens.
    """
    from xsession import require_gui_tools, xvfb

    require_gui_tools("xwininfo")
    with xvfb() as screen:
        yield screen


@pytest.fixture
def tk_here(monkeypatch: pytest.MonkeyPatch, tk_screen: object) -> Iterator[object]:
    """Tk in this (the main) thread, on the session's screen; its objects are collected here afterwards.

    Tk objects must die in the thread that made them (see ui/tk_dialog.run_dialog). Left to the next collection,
    a test's Tk variables were collected by a later dialog thread's gc and called into this thread's interpreter
    ("main thread is not in main loop")."""
    import gc

    monkeypatch.setenv("DISPLAY", tk_screen.display)  # type: ignore[attr-defined]
    yield tk_screen
    gc.collect()
