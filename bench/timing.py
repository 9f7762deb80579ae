"""Shared by the bench scripts: latency samples and the table they print."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def measure(fn: Callable[[], object], calls: int) -> tuple[float, float]:
    """Median and 90th percentile in milliseconds over `calls` runs, after one warm-up run (imports, tables)."""
    fn()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.9))]


def measure_reported(fn: Callable[[], float], calls: int) -> tuple[float, float]:
    """`measure`, for a function that times its own part and returns it in seconds (a call up to its reply)."""
    fn()
    samples = sorted(fn() * 1000 for _ in range(calls))
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.9))]


def print_table(title: str, rows: list[tuple[str, float, float]], decimals: int = 2) -> None:
    print(title)
    print(f"{'':44} {'median':>10} {'p90':>10}")
    for label, median, p90 in rows:
        print(f"{label:44} {median:10.{decimals}f} {p90:10.{decimals}f}")


def isolate_home(tmp: Path) -> None:
    """Point HOME and the XDG folders of this process, and so of the agent it starts, into `tmp`: a bench's agent
    writes its journal, TLS identity and settings there, never into the real user's eimzo-agent folders."""
    for name, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "home/.config"), ("XDG_DATA_HOME", "home/.local/share"),
                      ("XDG_STATE_HOME", "home/.local/state"), ("XDG_CACHE_HOME", "home/.cache")):
        folder = tmp / sub
        folder.mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(folder)
