"""Sans-I/O core of the wire protocol: request text in, reply text out.

No sockets here. The server hands us the text of one frame plus what it learned at the handshake (the Origin);
we parse, check the domain gate, call the plugin function and shape the reply exactly as E-IMZO does:
flat JSON, `success`/`status` first, payload fields beside them, `reason` on failure.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from eimzo_agent import i18n
from eimzo_agent.caller import Caller
from eimzo_agent.protocol.calls import MAIN, Call, CallContext, PluginFunction
from eimzo_agent.protocol.errors import EimzoError, Status, function_not_found
from eimzo_agent.protocol.large_request import FramePieces, LongText, PreparedDocument, load_request, plain
from eimzo_agent.protocol.registry import Registry
from eimzo_agent.protocol.replies import encode_reply_parts, failure, success

log = logging.getLogger(__name__)


class SitePolicy(Protocol):
    """Decides whether a caller may use gated functions without asking (admin allowlist, verified API key)."""

    def is_allowed(self, caller: Caller) -> bool: ...


#: Asks the person whether a not-yet-approved page may go on (site consent). Returns normally when it may;
#: raises `EimzoError` (with the reason the page should read) when it may not.
ConsentHook = Callable[[CallContext, str], Awaitable[None]]


class Dispatcher:
    def __init__(
        self,
        registry: Registry,
        policy: SitePolicy,
        language: Callable[[Caller], str],
        consent: ConsentHook | None = None,
    ) -> None:
        self.registry = registry
        self.policy = policy
        #: The language of replies and dialogs for a caller (a site may have chosen its own).
        self.language = language
        self.consent = consent
        #: Told when a connection ends (an opaque page's "allow this time" ends with its connection).
        self.closed_hooks: list[Callable[[CallContext], None]] = []

    def connection_closed(self, context: CallContext) -> None:
        for hook in self.closed_hooks:
            try:
                hook(context)
            except Exception:
                log.exception("connection-closed hook failed")

    async def handle(self, frame: str | bytes, context: CallContext) -> str:
        """Answer one request frame. Never raises (except cancellation): every failure becomes a reply."""
        return "".join(await self.answer(frame, context))

    async def answer(self, frame: str | bytes | bytearray | FramePieces, context: CallContext,
                     prepared: PreparedDocument | None = None) -> list[str]:
        """`handle`, with the reply as pieces to send in turn (a large signature stays apart from the JSON around
        it). `frame` is the text, or its UTF-8 bytes, whole or in the pieces they arrived in (a large frame is then
        parsed without decoding it whole);
        `prepared`: its document's digests, computed as it arrived."""
        lang = self.language(context.caller)
        try:
            function, values = self._parse(await _loaded(frame, prepared))
            await self._check_domain(function, context, lang)
            result = await function.handler(Call(function, values, context, lang))
        except EimzoError as exc:
            return encode_reply_parts(self.error_reply(exc, lang))
        except Exception:
            # Details go to the agent's log only: a page must never see paths, stack traces or key data.
            log.exception("plugin function failed")
            return encode_reply_parts(failure(Status.OTHER, i18n.text(lang, "reasons", "internal_error")))
        if isinstance(result, list):
            return encode_reply_parts(result)  # apidoc is E-IMZO's only bare-array reply
        return encode_reply_parts(success(result))

    def error_reply(self, exc: EimzoError, lang: str) -> dict[str, Any]:
        return failure(exc.status, i18n.text(lang, "reasons", exc.reason_key, **exc.params))

    def _parse(self, request: object) -> tuple[PluginFunction, list[str | LongText]]:
        if not isinstance(request, dict):
            raise function_not_found()
        plugin = plain(request.get("plugin")) or MAIN
        name = plain(request.get("name"))
        arguments = request.get("arguments", [])
        if arguments is None:
            arguments = []
        if not isinstance(plugin, str) or not isinstance(name, str) or not isinstance(arguments, list):
            raise function_not_found()
        if plugin == "apikey" and name == "apikey":
            plugin = MAIN  # very old clients sent {"plugin":"apikey","name":"apikey"}
        function = self.registry.lookup(plugin, name)
        if function is None:
            raise function_not_found(_shown_name(plugin, name))
        values = [_as_text(value) for value in arguments]
        return function, values if function.variadic else _complete(function, values)

    async def _check_domain(self, function: PluginFunction, context: CallContext, lang: str) -> None:
        if not function.needs_approved_domain:
            return
        caller = context.caller
        if not caller.identified and not caller.opaque:
            raise EimzoError(Status.DOMAIN_UNKNOWN, "domain_unknown")
        if self.policy.is_allowed(caller):
            return
        if self.consent is not None:
            await self.consent(context, lang)  # raises with the person's answer as the reason
            return
        raise EimzoError(Status.DOMAIN_NOT_ALLOWED, "domain_not_allowed", domain=caller.domain or caller.label)


#: Frames longer than this are parsed in a worker thread: even without copying the document (large_request.py)
#: the frame's UTF-8 check and the cut-out string are milliseconds that every other page's call would wait out.
LARGE_FRAME = 1024 * 1024


async def _loaded(frame: str | bytes | bytearray | FramePieces, prepared: PreparedDocument | None = None) -> object:
    """The frame's JSON value; E-IMZO's "function not found" (status 0) when it is not JSON in UTF-8."""
    try:
        if isinstance(frame, FramePieces):
            pieces = frame
            if len(pieces) > LARGE_FRAME:  # joined in the thread too: 13.6 MB copied is not the event loop's work
                return await asyncio.to_thread(lambda: load_request(pieces.join(), prepared))
            frame = pieces.join()
        if isinstance(frame, bytes | bytearray):
            if len(frame) > LARGE_FRAME:
                return await asyncio.to_thread(load_request, frame, prepared)
            return load_request(frame, prepared)
        if len(frame) > LARGE_FRAME:
            return await asyncio.to_thread(json.loads, frame)
        return json.loads(frame)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise function_not_found() from None


def _complete(function: PluginFunction, values: list[str | LongText]) -> list[str | LongText]:
    """The full argument list: left-out trailing optional arguments take their defaults. Any other count is
    E-IMZO's status 0 (it answers a wrong count as an unknown function); ours names the function and the counts."""
    arguments = function.arguments
    # The fewest a call may send: up to and including the last argument that is not optional.
    fewest = max((i + 1 for i, argument in enumerate(arguments) if not argument.optional), default=0)
    if not fewest <= len(values) <= len(arguments):
        expected = str(len(arguments)) if fewest == len(arguments) else f"{fewest}–{len(arguments)}"
        raise EimzoError(Status.FUNCTION_NOT_FOUND, "function_arguments", function=function.full_name,
                         expected=expected, count=len(values))
    return values + [argument.default for argument in arguments[len(values):]]


def _shown_name(plugin: str, name: str) -> str:
    """`plugin.name` as a page wrote it, cut short and stripped of control characters (it goes into a reply)."""
    shown = f"{plugin}.{name}" if plugin else name
    shown = "".join(ch if ch.isprintable() else "?" for ch in shown)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _as_text(value: Any) -> str | LongText:
    """E-IMZO clients send strings; tolerate numbers/booleans/null the way Java's JSON getString() would."""
    if isinstance(value, str | LongText):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    raise function_not_found()


def build_apidoc(registry: Registry, lang: str) -> list[dict[str, Any]]:
    """E-IMZO's apidoc: plugins with their described functions; plugin texts follow the UI language."""
    doc: list[dict[str, Any]] = []
    for plugin in registry.plugins():
        functions = [f for f in registry if f.plugin == plugin and f.description]
        if not functions or plugin == MAIN:
            continue
        try:
            plugin_text = i18n.text(lang, "plugins", plugin)
        except KeyError:
            plugin_text = ""
        doc.append(
            {
                "name": plugin,
                "description": plugin_text,
                "functions": [
                    {
                        "plugin": f.plugin,
                        "name": f.name,
                        "description": f.description,
                        "arguments": [
                            {"name": a.name, "optional": a.optional, "description": a.description}
                            for a in f.arguments
                        ],
                    }
                    for f in functions
                ],
            }
        )
    return doc
