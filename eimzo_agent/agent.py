"""The composition root: the agent's parts, made and wired together once.

Everything else gets only the narrow services it needs: plugins get a key store, the prompter, the key sessions,
the journal; the dispatcher gets the plugin table, the site policy and the consent hook. The server gets an
`Agent` and calls `agent.dispatcher.handle(frame, context)`; the tray reads and changes the person's settings
through it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from eimzo_agent import i18n
from eimzo_agent.caller import Caller
from eimzo_agent.config import DEFAULT_ORIGIN, ENV_ASKPASS, AgentConfig, ConfigError, user_data_path
from eimzo_agent.crypto.base64_digests import Base64Digests
from eimzo_agent.keys.disks import Disk, discover_disks
from eimzo_agent.keys.sessions import KeySessions
from eimzo_agent.policy.asking import can_ask
from eimzo_agent.policy.consent import CONSENT_FILE, DENIED_FILE, SiteConsent
from eimzo_agent.policy.domains import ApiKeyVerifier, DomainGate
from eimzo_agent.policy.journal import JOURNAL_FILE, Journal
from eimzo_agent.policy.languages import LANGUAGE_FILE, SiteLanguages
from eimzo_agent.protocol.dispatcher import Dispatcher
from eimzo_agent.protocol.registry import Registry
from eimzo_agent.ui.choice import choose_prompter
from eimzo_agent.ui.prompter import Prompter
from eimzo_agent.ui.remember import PasswordMemory
from eimzo_agent.ui.tray_menu import MenuOpener

log = logging.getLogger(__name__)


@dataclass
class Agent:
    config: AgentConfig
    prompter: Prompter
    gate: DomainGate
    sessions: KeySessions
    languages: SiteLanguages
    registry: Registry = field(default_factory=Registry)
    journal: Journal | None = None
    #: The person's answers to "may this site use your keys?" (None: unknown sites are simply refused).
    consent: SiteConsent | None = None
    #: Passwords the person asked to have remembered for a site and key (memory only, they expire).
    passwords: PasswordMemory = field(default_factory=PasswordMemory)
    #: The tray menu, for `app.show_menu` (the tray fills it in when it runs).
    menu: MenuOpener = field(default_factory=MenuOpener)
    dispatcher: Dispatcher = field(init=False)

    def __post_init__(self) -> None:
        self.dispatcher = Dispatcher(self.registry, self.gate, self.languages.for_caller,
                                     consent=self.consent.request if self.consent is not None else None)
        if self.consent is not None:
            consent = self.consent
            self.dispatcher.closed_hooks.append(lambda context: consent.connection_closed(context.connection_id))

    @property
    def language(self) -> str:
        """The person's language (settings, tray); a site may have chosen another for its own pages."""
        return self.languages.default

    @language.setter
    def language(self, value: str) -> None:
        self.languages.default = value

    def language_for(self, caller: Caller) -> str:
        return self.languages.for_caller(caller)

    def document_digester(self, caller: Caller) -> Base64Digests | None:
        """Digests to compute while a large create_pkcs7 request arrives (server/prehash.py): only for a page that
        has a key loaded that may be an O'zDSt one (as far as its file tells without the password — an RSA key's
        file does — or its first opening told), and only the O'zDSt 1106 hash, which nearly every Uzbek key signs
        with and which is slow (≈ 90 ms for 10 MB). SHA-256 (the journal's, an RSA or ECDSA key's) is ≈ 15 times
        faster and runs beside the end of this one, so computing it here would only lengthen the hash's thread."""
        if caller.opaque or not self.sessions.has_keys(caller.origin, ozdst=True):
            return None  # no key, or only keys known to be RSA/ECDSA ones, which never use this hash
        return Base64Digests(("gost94",))

    def disks(self) -> list[Disk]:
        """Disks as they are now: flash drives come and go, so this is looked up on every call."""
        return discover_disks(self.config.key_roots, system_locations=self.config.scan_system_locations)

    def allowed_sites(self) -> list[str]:
        """Sites allowed by a verified API key, plus those the person allowed when asked."""
        sites = set(self.gate.approved_sites())
        if self.consent is not None:
            sites.update(self.consent.sites())
        return sorted(sites)

    def revoke_site(self, site: str) -> bool:
        """Take a site's permission away (API-key approval and the person's answer); the admin list stays."""
        revoked = self.gate.revoke(site)
        if self.consent is not None:
            revoked = self.consent.revoke(site) or revoked
        return revoked


def trust_anchors(config: AgentConfig) -> list[bytes]:
    """The bundled national root, then the admin's `[verify] trust_anchors` files (DER certificates); a file that
    cannot be read or holds no certificate stops the agent (ConfigError naming it), not a later verification."""
    from eimzo_agent.crypto.anchors import bundled_anchors, read_anchor_file

    anchors = bundled_anchors()
    for path in config.trust_anchors:
        try:
            anchors += read_anchor_file(path)
        except (OSError, ValueError) as exc:
            where = config.origins.get("verify.trust_anchors", DEFAULT_ORIGIN)
            raise ConfigError(f"{where}: verify.trust_anchors: {path}: {exc}") from None
    return anchors


def build_agent(
    config: AgentConfig,
    *,
    prompter: Prompter | None = None,
    verifiers: list[ApiKeyVerifier] | None = None,
) -> Agent:
    """`verifiers` None = the vendor's offline API-key check; approved sites persist in the user's data folder."""
    from eimzo_agent.keys.keypairs import KeyPairs
    from eimzo_agent.plugins.app import AppPlugin
    from eimzo_agent.plugins.batch import BatchPlugin
    from eimzo_agent.plugins.enroll import EnrollPlugin
    from eimzo_agent.plugins.hardware import HardwarePlugin, TokenService
    from eimzo_agent.plugins.keyuse import KeyUnlocker
    from eimzo_agent.plugins.main import MainPlugin
    from eimzo_agent.plugins.pfx import PfxPlugin
    from eimzo_agent.plugins.pkcs7 import Pkcs7Plugin
    from eimzo_agent.plugins.pkcs7_info import Pkcs7InfoPlugin
    from eimzo_agent.plugins.pkcs10 import Pkcs10Plugin
    from eimzo_agent.plugins.timestamps import TimestampsPlugin
    from eimzo_agent.plugins.x509 import X509Plugin
    from eimzo_agent.policy.apikeys import VendorApiKeyVerifier
    from eimzo_agent.policy.approved_store import APPROVED_FILE, ApprovedDomainStore
    from eimzo_agent.policy.login_origin import LoginOriginGuard

    if verifiers is None:
        verifiers = [VendorApiKeyVerifier()]
    prompter = prompter or choose_prompter(config.askpass, config.prompt_timeout_seconds)
    if not can_ask(prompter):
        # Said at start, not only at the first signature: a service started outside the desktop session is the
        # usual cause, and every password question would otherwise just come back "cancelled".
        log.warning("nobody can be asked for key passwords or site permissions: there is no screen for the dialog "
                    "(no DISPLAY or WAYLAND_DISPLAY) and no askpass program, so every signature will be refused. "
                    "Fix: start the agent in the person's desktop session, or set an askpass program "
                    "(--askpass PROGRAM, $%s, or askpass in [ui] of the settings file)", ENV_ASKPASS)
    data = user_data_path()
    agent = Agent(
        config=config,
        prompter=prompter,
        gate=DomainGate(config.allowed_domains, verifiers, store=ApprovedDomainStore(data / APPROVED_FILE)),
        sessions=KeySessions(ttl_seconds=config.key_id_ttl_hours * 3600),
        languages=SiteLanguages(config.language or i18n.language_from_environment() or i18n.DEFAULT_LANGUAGE,
                                store=data / LANGUAGE_FILE, known=i18n.LANGUAGES),
        journal=Journal(data / JOURNAL_FILE),
        consent=SiteConsent(ApprovedDomainStore(data / CONSENT_FILE), prompter,
                            denied=ApprovedDomainStore(data / DENIED_FILE), journal=Journal(data / JOURNAL_FILE),
                            ask=config.ask_unknown_sites, can_ask=can_ask(prompter)),
    )
    remember_seconds = config.remember_max_minutes * 60 if config.allow_remember else 0
    unlocker = KeyUnlocker(agent.prompter, agent.passwords, config.password_tries,
                           remember_max_seconds=remember_seconds)
    tokens = TokenService(config.pkcs11_modules, agent.prompter, config.password_tries)
    keypairs = KeyPairs()  # generated key pairs waiting for their certificate (memory only, 1 hour)
    # Shared by the signing plugins: one warning limit across them.
    login_origins = LoginOriginGuard(agent.prompter, agent.journal)
    for plugin in (
        MainPlugin(agent.gate, agent.registry),
        AppPlugin(agent.languages, agent.menu),
        PfxPlugin(disks=agent.disks, sessions=agent.sessions, unlocker=unlocker, prompter=agent.prompter,
                  passwords=agent.passwords),
        Pkcs7Plugin(sessions=agent.sessions, unlocker=unlocker, tokens=tokens, journal=agent.journal,
                    login_origins=login_origins),
        BatchPlugin(sessions=agent.sessions, unlocker=unlocker, journal=agent.journal,
                    max_documents=config.batch_max_documents, max_bytes=config.batch_max_bytes,
                    login_origins=login_origins),
        HardwarePlugin(tokens, agent.sessions),
        X509Plugin(sessions=agent.sessions, unlocker=unlocker, tokens=tokens),
        TimestampsPlugin(),
        Pkcs7InfoPlugin(anchors=trust_anchors(config)),
        Pkcs10Plugin(keypairs=keypairs, sessions=agent.sessions, unlocker=unlocker),
        EnrollPlugin(disks=agent.disks, keypairs=keypairs, sessions=agent.sessions, unlocker=unlocker,
                     prompter=agent.prompter, journal=agent.journal),
    ):
        agent.registry.add_all(plugin.functions())
    return agent
