"""The unnamed main plugin: version, apikey, apidoc — the three calls that work before any approval."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eimzo_agent import EIMZO_COMPAT_VERSION, __version__
from eimzo_agent.policy.domains import parse_key_pairs
from eimzo_agent.protocol.dispatcher import Call, build_apidoc
from eimzo_agent.protocol.errors import EimzoError, Status, function_not_found
from eimzo_agent.protocol.registry import MAIN, Argument, PluginFunction

if TYPE_CHECKING:
    from eimzo_agent.agent import Agent


def register(agent: Agent) -> None:
    async def version(call: Call) -> dict[str, Any]:
        major, minor, patch = EIMZO_COMPAT_VERSION
        # E-IMZO 6.4.7's fields, so every client's major*100+minor threshold passes; then our own.
        return {
            "major": major,
            "minor": minor,
            "patch": patch,
            "edition": "Standard",
            "agent": "eimzo-agent",
            "agent_version": __version__,
        }

    async def apikey(call: Call) -> dict[str, Any]:
        pairs = parse_key_pairs(call.values)
        if pairs is None:
            raise function_not_found()
        invalid = agent.gate.install_keys(pairs)
        if invalid:
            raise EimzoError(Status.APIKEY_INVALID, "apikey_invalid", domain=invalid[0])
        return {"message": call.context.origin or ""}

    async def apidoc(call: Call) -> list[Any]:
        return build_apidoc(agent.registry, call.language)

    for name, handler, args in (
        ("version", version, ()),
        ("apikey", apikey, (Argument("domain"), Argument("key"))),
        ("apidoc", apidoc, ()),
    ):
        agent.registry.add(
            PluginFunction(
                MAIN, name, handler, args, needs_approved_domain=False, variadic=(name == "apikey")
            )
        )
