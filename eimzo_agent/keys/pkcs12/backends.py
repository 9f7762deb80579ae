"""Which backends open key files, in which order: the one place where they are registered.

`cryptography` comes first, so RSA and NIST EC files never reach the national code; the O'zDSt backend takes
the files whose keys `cryptography` declines. A plug-in backend (another national algorithm, a test double of a
foreign format) is added with `register_backend`.
"""

from __future__ import annotations

import threading

from .cryptography_backend import CryptographyBackend
from .entries import PfxBackend
from .ozdst_backend import OzdstBackend


def default_backends() -> list[PfxBackend]:
    """The backends every agent has, in the order they are tried."""
    return [CryptographyBackend(), OzdstBackend()]


_lock = threading.Lock()
_backends: list[PfxBackend] = default_backends()


def registered_backends() -> tuple[PfxBackend, ...]:
    """The backends `open_pfx` tries, in order (a snapshot)."""
    with _lock:
        return tuple(_backends)


def register_backend(backend: PfxBackend, *, first: bool = False) -> None:
    """Add a backend (first: tried before the others); one with the same name is replaced."""
    with _lock:
        _backends[:] = [other for other in _backends if other.name != backend.name]
        _backends.insert(0 if first else len(_backends), backend)


def unregister_backend(name: str) -> None:
    with _lock:
        _backends[:] = [backend for backend in _backends if backend.name != name]
