"""Shared by the bench scripts: latency samples and the table they print."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


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


def print_table(title: str, rows: list[tuple[str, float, float]], decimals: int = 2) -> None:
    print(title)
    print(f"{'':44} {'median':>10} {'p90':>10}")
    for label, median, p90 in rows:
        print(f"{label:44} {median:10.{decimals}f} {p90:10.{decimals}f}")
