"""The O'zDSt 1106 hash core (gost94_core.c) as a plain shared library, loaded with ctypes.

Where no CPython extension can be built — the Windows installer is made on Debian, which has no Windows headers
or import library for CPython — the same C core is cross-compiled with mingw-w64 into `gost94.dll` and shipped
beside this module. `load()` gives an object with the extension's surface (`State()`, `digest(buffer)`), so
gost94.py uses either the same way. ctypes releases the GIL for every call, so objects hash in parallel threads;
a lock per object keeps concurrent updates of one object whole, as the extension does.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

from . import shared_library

__all__ = ["CLibrary", "library_path", "load"]

_DIGEST = 32


def library_path(folder: Path | None = None) -> Path:
    """Where the library sits: beside this module, named as the platform names shared libraries."""
    return shared_library.library_path("gost94", folder or Path(__file__).resolve().parent)


def _pointer(data: bytes | bytearray | memoryview) -> tuple[object, int]:
    """(something ctypes passes as `const unsigned char *`, its length) without copying where possible."""
    if isinstance(data, bytes):
        return data, len(data)
    view = memoryview(data)  # TypeError for str and other non-buffers, like the extension
    if not view.c_contiguous:
        raise BufferError("the buffer is not contiguous")
    if view.nbytes == 0:
        return b"", 0
    if view.readonly:
        return view.tobytes(), view.nbytes  # ctypes cannot point into a read-only buffer: one copy
    return (ctypes.c_char * view.nbytes).from_buffer(view.cast("B")), view.nbytes


class CLibrary:
    """One loaded library: `State` (streaming) and `digest` (one-shot), like the `_gost94` extension module."""

    def __init__(self, path: Path) -> None:
        lib = ctypes.CDLL(str(path))
        lib.gost94_prepare.restype = None
        lib.gost94_prepare.argtypes = []
        lib.gost94_ctx_size.restype = ctypes.c_size_t
        lib.gost94_ctx_size.argtypes = []
        for name, args in (("gost94_init", [ctypes.c_void_p]),
                           ("gost94_update", [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]),
                           ("gost94_final", [ctypes.c_void_p, ctypes.c_char_p]),
                           ("gost94_digest", [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p])):
            function = getattr(lib, name)
            function.restype = None
            function.argtypes = args
        lib.gost94_prepare()  # once, here: importing runs under the import lock, before any hashing
        self.path = path
        self._lib = lib
        self._ctx_size: int = lib.gost94_ctx_size()
        library = self

        class State:
            """Streaming state in C memory; update(buffer), digest() -> 32 bytes, copy()."""

            __slots__ = ("_ctx", "_lock")

            def __init__(self) -> None:
                self._ctx = ctypes.create_string_buffer(library._ctx_size)
                self._lock = threading.Lock()
                lib.gost94_init(self._ctx)

            def update(self, data: bytes | bytearray | memoryview, /) -> None:
                pointer, length = _pointer(data)
                with self._lock:
                    lib.gost94_update(self._ctx, pointer, length)

            def digest(self) -> bytes:
                out = ctypes.create_string_buffer(_DIGEST)
                with self._lock:
                    lib.gost94_final(self._ctx, out)
                return out.raw

            def copy(self) -> State:
                clone = State()
                with self._lock:
                    ctypes.memmove(clone._ctx, self._ctx, library._ctx_size)
                return clone

        self.State = State

    def digest(self, data: bytes | bytearray | memoryview, /) -> bytes:
        pointer, length = _pointer(data)
        out = ctypes.create_string_buffer(_DIGEST)
        self._lib.gost94_digest(pointer, length, out)
        return out.raw


def load(path: Path | None = None) -> CLibrary | None:
    """The library at `path` (default: beside this module), or None when it is not there or does not load."""
    return shared_library.load(path or library_path(), CLibrary)
