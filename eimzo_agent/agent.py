"""The agent's parts, put together once: settings, domain gate, loaded keys, prompter, plugin table.

The server gets an `Agent` and only ever calls `agent.dispatcher.handle(frame, context)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eimzo_agent import i18n
from eimzo_agent.config import AgentConfig, user_data_path
from eimzo_agent.keys.disks import Disk, discover_disks
from eimzo_agent.keys.sessions import KeySessions
from eimzo_agent.policy.consent import CONSENT_FILE, SiteConsent
from eimzo_agent.policy.domains import ApiKeyVerifier, DomainGate
from eimzo_agent.policy.journal import JOURNAL_FILE, Journal
from eimzo_agent.protocol.dispatcher import Dispatcher
from eimzo_agent.protocol.registry import Registry
from eimzo_agent.ui.prompter import Prompter, choose_prompter
from eimzo_agent.ui.remember import PasswordMemory


@dataclass
class Agent:
    config: AgentConfig
    prompter: Prompter
    gate: DomainGate
    sessions: KeySessions
    language: str
    registry: Registry = field(default_factory=Registry)
    journal: Journal | None = None
    #: The person's answers to "may this site use your keys?" (None: unknown sites are simply refused).
    consent: SiteConsent | None = None
    #: Passwords the person asked to have remembered for a site and key (memory only, they expire).
    passwords: PasswordMemory = field(default_factory=PasswordMemory)
    dispatcher: Dispatcher = field(init=False)

    def __post_init__(self) -> None:
        self.dispatcher = Dispatcher(self.registry, self.gate, lambda: self.language)

    def disks(self) -> list[Disk]:
        """Disks as they are now: flash drives come and go, so this is looked up on every call."""
        return discover_disks(self.config.key_roots, system_locations=self.config.scan_system_locations)


def build_agent(
    config: AgentConfig,
    *,
    prompter: Prompter | None = None,
    verifiers: list[ApiKeyVerifier] | None = None,
) -> Agent:
    """`verifiers` None = the vendor's offline API-key check; approved domains persist in the user's data folder."""
    from eimzo_agent.plugins import app, hardware, main, pfx, pkcs7, x509
    from eimzo_agent.policy.apikeys import VendorApiKeyVerifier
    from eimzo_agent.policy.approved_store import APPROVED_FILE, ApprovedDomainStore

    if verifiers is None:
        verifiers = [VendorApiKeyVerifier()]

    agent = Agent(
        config=config,
        prompter=prompter or choose_prompter(config.askpass, config.prompt_timeout_seconds),
        gate=DomainGate(config.allowed_domains, verifiers,
                        store=ApprovedDomainStore(user_data_path() / APPROVED_FILE)),
        sessions=KeySessions(ttl_seconds=config.key_id_ttl_hours * 3600),
        language=config.language or i18n.language_from_environment() or i18n.DEFAULT_LANGUAGE,
        journal=Journal(user_data_path() / JOURNAL_FILE),
    )
    agent.consent = SiteConsent(
        ApprovedDomainStore(user_data_path() / CONSENT_FILE), agent.prompter, ask=config.ask_unknown_sites
    )
    agent.dispatcher.consent = agent.consent.request
    for plugin in (main, app, pfx, pkcs7, hardware, x509):
        plugin.register(agent)
    return agent
