"""One table of every plugin function: it drives dispatch, argument checks, `apidoc` and docs/compat.md."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eimzo_agent.protocol.dispatcher import Call

Handler = Callable[["Call"], Awaitable[dict[str, Any] | list[Any]]]

#: The main plugin (version, apikey, apidoc) has no name on the wire: `plugin` absent or "".
MAIN = ""


@dataclass(frozen=True)
class Argument:
    name: str
    description: str = ""
    #: E-IMZO marks some arguments optional; the caller still sends them (as ""), the count must match.
    optional: bool = False


@dataclass(frozen=True)
class PluginFunction:
    plugin: str
    name: str
    handler: Handler
    arguments: tuple[Argument, ...] = ()
    #: Russian, as E-IMZO's apidoc; an empty description hides the function from apidoc (E-IMZO does the same).
    description: str = ""
    #: False for version/apikey/apidoc: those work before any domain is approved.
    needs_approved_domain: bool = True
    #: True when the argument list is open-ended (apikey's domain/key pairs); the handler checks it.
    variadic: bool = False
    #: Our own additions (not E-IMZO's) are listed as such in docs/compat.md.
    extension: bool = False


@dataclass
class Registry:
    _functions: dict[tuple[str, str], PluginFunction] = field(default_factory=dict)

    def add(self, function: PluginFunction) -> None:
        key = (function.plugin, function.name)
        if key in self._functions:
            raise ValueError(f"duplicate plugin function {function.plugin}.{function.name}")
        self._functions[key] = function

    def lookup(self, plugin: str, name: str) -> PluginFunction | None:
        return self._functions.get((plugin, name))

    def __iter__(self) -> Iterator[PluginFunction]:
        return iter(self._functions.values())

    def plugins(self) -> list[str]:
        seen: dict[str, None] = {}
        for function in self._functions.values():
            seen.setdefault(function.plugin, None)
        return list(seen)
