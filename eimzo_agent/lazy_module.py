"""A module imported on its first attribute access, so that an idle agent never loads `cryptography`.

Why: `cryptography`'s Rust extension alone is 8 MB resident once imported, and nothing an idle agent does (listen,
answer `version`, list key files, load its TLS identity) needs it; it is needed from the first RSA/EC key opened,
PKCS#12 decrypted or signature checked. Modules that use it say

    if TYPE_CHECKING:
        from cryptography.hazmat.primitives import hashes
    else:
        hashes = lazy_module("cryptography.hazmat.primitives.hashes")

and use `hashes.SHA256()` as before: type checkers see the real module, the agent imports it when first used.
Not `importlib.util.LazyLoader`: before Python 3.12.3 it is not safe when two threads touch the module first at
once (gh-114763), and signatures run in worker threads. `importlib.import_module` holds the import lock, so two
first uses at once both get the one module. tests/test_idle_memory.py checks the agent stays without it.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["lazy_module"]


class _LazyModule:
    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r}, {state}>"


def lazy_module(name: str) -> Any:
    """A stand-in for `import name` that imports it at the first attribute read (typed Any: see the docstring)."""
    return _LazyModule(name)
