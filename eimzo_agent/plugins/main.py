"""The unnamed main plugin: version, apikey, apidoc — the three calls that work before any approval."""

from __future__ import annotations

from typing import Any

from eimzo_agent import EIMZO_COMPAT_VERSION, __version__
from eimzo_agent.policy.domains import DomainGate, parse_key_pairs
from eimzo_agent.protocol.calls import MAIN, Argument, Call, PluginFunction
from eimzo_agent.protocol.dispatcher import build_apidoc
from eimzo_agent.protocol.errors import EimzoError, Status, function_not_found
from eimzo_agent.protocol.registry import Registry


class MainPlugin:
    def __init__(self, gate: DomainGate, registry: Registry) -> None:
        self.gate = gate
        #: The table `apidoc` describes (the one this plugin is registered in).
        self.registry = registry

    def functions(self) -> list[PluginFunction]:
        return [
            PluginFunction(MAIN, "version", self.version, needs_approved_domain=False),
            PluginFunction(MAIN, "apikey", self.apikey, (Argument("domain"), Argument("key")),
                           needs_approved_domain=False, variadic=True),
            PluginFunction(MAIN, "apidoc", self.apidoc, needs_approved_domain=False),
        ]

    async def version(self, call: Call) -> dict[str, Any]:
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

    async def apikey(self, call: Call) -> dict[str, Any]:
        pairs = parse_key_pairs(call.values)
        if pairs is None:
            raise function_not_found("apikey")
        invalid = self.gate.install_keys(pairs, call.caller)
        if invalid:
            raise EimzoError(Status.APIKEY_INVALID, "apikey_invalid", domain=invalid[0])
        return {"message": call.context.origin_header or ""}

    async def apidoc(self, call: Call) -> list[Any]:
        return build_apidoc(self.registry, call.language)
