"""A call, as the protocol hands it to a plugin: the function table's entries, and what came with the request.

Plain data, no behaviour beyond reading arguments: the registry (the table), the dispatcher (parsing, gating)
and every plugin import this module, and it imports none of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from eimzo_agent.caller import UNIDENTIFIED, Caller
from eimzo_agent.protocol.large_request import LongText

#: The main plugin (version, apikey, apidoc) has no name on the wire: `plugin` absent or "".
MAIN = ""

Handler = Callable[["Call"], Awaitable[dict[str, Any] | list[Any]]]


@dataclass(frozen=True)
class Argument:
    name: str
    description: str = ""
    #: E-IMZO's apidoc mark. A call may leave out trailing optional arguments (the dispatcher fills in `default`);
    #: an optional argument with required ones after it must still be sent (E-IMZO counts them: load_key's path).
    optional: bool = False
    #: What a left-out optional argument reads as; "" is what E-IMZO's clients send for "not given".
    default: str = ""


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

    @property
    def full_name(self) -> str:
        return f"{self.plugin}.{self.name}" if self.plugin else self.name


@dataclass(frozen=True)
class CallContext:
    """What the server knows about the connection a frame came on."""

    caller: Caller = UNIDENTIFIED
    connection_id: int = 0
    #: The Origin header exactly as sent: E-IMZO's `apikey` echoes it; nothing decides anything by it.
    origin_header: str | None = None

    @classmethod
    def from_origin(cls, origin: str | None, connection_id: int = 0) -> CallContext:
        return cls(Caller.from_origin(origin), connection_id, origin)


@dataclass
class Call:
    """One parsed request, handed to a plugin handler."""

    function: PluginFunction
    #: The arguments as given: text, or for a long one of a large request a `LongText` still in the frame.
    given: list[str | LongText]
    context: CallContext
    language: str

    @property
    def caller(self) -> Caller:
        return self.context.caller

    @property
    def values(self) -> list[str]:
        """The arguments as text (a `LongText` made a `str`)."""
        return [value if isinstance(value, str) else value.text() for value in self.given]

    def arg(self, name: str) -> str:
        value = self.long_arg(name)
        return value if isinstance(value, str) else value.text()

    def release_long_arg(self, name: str) -> bool:
        """The handler is done with the long argument `name` (it decoded a document from it): when no other
        argument still reads from the request's frame, the frame's memory is freed now instead of after the reply
        (`LongText.release_frame`); reading `name` again is then an error. Read every other argument first. True
        when memory was freed."""
        value = self.long_arg(name)
        if not isinstance(value, LongText):
            return False
        if any(isinstance(other, LongText) and other is not value and other.in_frame for other in self.given):
            return False
        return value.release_frame()

    def long_arg(self, name: str) -> str | LongText:
        """`arg`, but a long string of a large request may stay in the request's frame: for an argument the plugin
        only decodes (a document's Base64), a 13 MB string is then never made (protocol/large_request.py)."""
        for argument, value in zip(self.function.arguments, self.given, strict=False):
            if argument.name == name:
                return value
        raise KeyError(name)
