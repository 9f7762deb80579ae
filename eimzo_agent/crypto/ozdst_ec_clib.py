"""An O'zDSt signature's fixed-base point sum (ozdst_ec_core.c) as a plain shared library, loaded with ctypes.

The Windows installer cannot build CPython extensions (it is made on Debian, without Windows headers or an import
library for CPython), so it cross-compiles the core with mingw-w64 into `ozdst_ec.dll` beside this module, as it
does gost94.dll (gost94_clib.py). `load()` gives an object with the `_ozdst_ec` extension's surface,
`fixed_base_sum(curve, table, digits) -> bytes`, raising the same ValueErrors, so ozdst.py uses either the same
way. ctypes releases the GIL for the call, as the extension does.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

from . import shared_library

__all__ = ["CLibrary", "library_path", "load"]

#: ozdst_ec_core.h's status codes, as the extension words them.
_ERRORS = {
    1: "curve must be 96 bytes: p, a and R mod p",
    2: "table must be whole rows of 32 points of 64 bytes",
    3: "more digits than table rows",
    4: "a digit is outside [-32, 32]",
    5: "p must be odd",
}


def library_path(folder: Path | None = None) -> Path:
    """Where the library sits: beside this module, named as the platform names shared libraries."""
    return shared_library.library_path("ozdst_ec", folder or Path(__file__).resolve().parent)


class CLibrary:
    """One loaded library, used like the `_ozdst_ec` extension module."""

    def __init__(self, path: Path) -> None:
        lib = ctypes.CDLL(str(path))
        function = lib.ozdst_ec_fixed_base_sum
        function.restype = ctypes.c_int
        function.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                             ctypes.c_size_t, ctypes.c_char_p]
        self.path = path
        self._sum = function

    def fixed_base_sum(self, curve: bytes, table: bytes, digits: bytes, /) -> bytes:
        """The Jacobian sum X || Y || Z of the table entries the signed digits pick (layouts: ozdst_ec_core.c)."""
        for name, value in (("curve", curve), ("table", table), ("digits", digits)):
            if not isinstance(value, bytes):
                raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
        out = ctypes.create_string_buffer(96)
        status = self._sum(curve, len(curve), table, len(table), digits, len(digits), out)
        if status:
            raise ValueError(_ERRORS.get(status, f"the point sum failed (status {status})"))
        return out.raw


def load(path: Path | None = None) -> CLibrary | None:
    """The library at `path` (default: beside this module), or None when it is not there or does not load."""
    return shared_library.load(path or library_path(), CLibrary)
