"""Issuing login challenges and taking them back, bound to the site (`Host`) and client IP that asked.

Two formats: "origin" (default) is `login_challenge`'s line naming the site's origin, so our agent refuses to
sign it for another page; "uuid" is E-IMZO-server's bare UUID, for portals whose code checks the form. Either
way the store holds it with its binding for the TTL, and `take` removes it before anything is validated: a
challenge is good for one attempt, failed or not.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from eimzo_agent.login_challenge import new_challenge, normalise_origin
from eimzo_agent.portal.challenge_store import ChallengeBinding, ChallengeStore
from eimzo_agent.portal.settings import ChallengeFormat

#: Longer signed content is no challenge of ours: refused without asking the store.
MAX_CHALLENGE_LENGTH = 256


class BadOrigin(ValueError):
    """The request names no usable site (missing or malformed Host / X-Forwarded-Proto)."""


@dataclass(frozen=True)
class Taken:
    ok: bool
    message: str = ""


class Challenges:
    def __init__(self, store: ChallengeStore, *, ttl: float, form: ChallengeFormat,
                 origins: tuple[str, ...] = ()) -> None:
        self.store = store
        self.ttl = ttl
        self.form = form
        #: When not empty, the only sites challenges are issued for (normalised origins).
        self.origins = frozenset(origins)

    async def issue(self, scheme: str, host: str, ip: str) -> str:
        """A new challenge for the site at `scheme://host`, remembered for `ttl` seconds (BadOrigin)."""
        binding = ChallengeBinding(host=_host_key(host), ip=ip, issued=time.time())
        try:
            origin = normalise_origin(f"{scheme}://{host}")
        except ValueError as exc:
            raise BadOrigin(f"cannot name this site's origin: {exc}") from None
        if self.origins and origin not in self.origins:
            raise BadOrigin(f"this server issues challenges for {', '.join(sorted(self.origins))}, not {origin}")
        text = str(uuid.uuid4()) if self.form == "uuid" else new_challenge(origin).text
        await self.store.put(text, binding, self.ttl)
        return text

    async def take(self, content: bytes, host: str, ip: str) -> Taken:
        """Consume the challenge `content` claims to be; it must have been issued to this `host` and `ip`."""
        if not content or len(content) > MAX_CHALLENGE_LENGTH:
            return Taken(False, "the signed content is not a challenge of this server")
        try:
            text = content.decode("ascii")
        except UnicodeDecodeError:
            return Taken(False, "the signed content is not a challenge of this server")
        binding = await self.store.take(text)
        if binding is None:
            return Taken(False, "challenge not found or expired: try again")
        if binding.host != _host_key(host):
            return Taken(False, "the challenge was issued for another site: try again")
        if binding.ip != ip:
            return Taken(False, "the challenge was issued to another client address: try again")
        return Taken(True)


def _host_key(host: str) -> str:
    """Host as compared: host names are case-insensitive."""
    return host.strip().lower()
