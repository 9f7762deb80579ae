"""One table of every plugin function: it drives dispatch, argument checks, `apidoc` and docs/compat.md."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from eimzo_agent.protocol.calls import PluginFunction


@dataclass
class Registry:
    _functions: dict[tuple[str, str], PluginFunction] = field(default_factory=dict)

    def add(self, function: PluginFunction) -> None:
        key = (function.plugin, function.name)
        if key in self._functions:
            raise ValueError(f"duplicate plugin function {function.plugin}.{function.name}")
        self._functions[key] = function

    def add_all(self, functions: Iterable[PluginFunction]) -> None:
        for function in functions:
            self.add(function)

    def lookup(self, plugin: str, name: str) -> PluginFunction | None:
        return self._functions.get((plugin, name))

    def __iter__(self) -> Iterator[PluginFunction]:
        return iter(self._functions.values())

    def plugins(self) -> list[str]:
        seen: dict[str, None] = {}
        for function in self._functions.values():
            seen.setdefault(function.plugin, None)
        return list(seen)
