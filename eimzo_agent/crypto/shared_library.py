"""Finding and loading our C cores built as plain shared libraries (the Windows installer's DLLs), for ctypes.

gost94_clib and ozdst_ec_clib each wrap one library; what they share is where it sits and how a missing or foreign
file is treated: not there, or not loadable, means None and the caller's next choice (pure Python).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["library_path", "load"]

T = TypeVar("T")


def library_path(stem: str, folder: Path) -> Path:
    """`stem` named as the platform names shared libraries, in `folder`: gost94.dll, libgost94.so, libgost94.dylib."""
    if sys.platform == "win32":
        return folder / f"{stem}.dll"
    return folder / (f"lib{stem}.dylib" if sys.platform == "darwin" else f"lib{stem}.so")


def load(path: Path, wrap: Callable[[Path], T]) -> T | None:
    """`wrap(path)`, or None when the file is not there or does not load (wrong architecture, a broken file, a
    library without the functions `wrap` looks up)."""
    if not path.is_file():
        return None
    try:
        return wrap(path)
    except (OSError, AttributeError):
        return None
