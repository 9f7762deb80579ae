"""What the tray menu holds and does, independent of any tray library (so it is testable anywhere).

Status page, the keys the agent sees, the sites allowed by API key or the person (each can be revoked), the sites
the person refused (each can be allowed to ask again), sites whose questions are paused after repeated cancels,
the remembered passwords (forget all), the language (remembered across restarts), about, quit. `tray.py` turns
these entries into a pystray menu, or into a Tk pop-up menu where the tray backend has no menus of its own (plain
X11).
"""

from __future__ import annotations

import datetime
import logging
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from eimzo_agent import i18n

if TYPE_CHECKING:
    from eimzo_agent.keys.disks import Disk
    from eimzo_agent.ui.remember import PasswordMemory


class Refusals(Protocol):
    """The person's "deny" answers (policy/consent.py's SiteConsent)."""

    def denied(self) -> list[str]: ...

    def forget_denial(self, site: str) -> bool: ...


class TraySubject(Protocol):
    """What the tray shows and changes: the person's own settings, nothing of the agent's insides."""

    #: The person's language (the tray's choice; a site may have chosen another for its own pages).
    language: str
    passwords: PasswordMemory
    #: The person's consent answers; None when unknown sites are simply refused.
    consent: Refusals | None
    #: The prompt queue: its `cooldowns()` (when it has them) names the sites paused after repeated cancels.
    prompter: object
    #: Where the tray offers its menu to `app.show_menu`.
    menu: MenuOpener

    def disks(self) -> list[Disk]: ...

    def allowed_sites(self) -> list[str]:
        """Sites allowed by a verified API key or by the person's "always"."""

    def revoke_site(self, site: str) -> bool:
        """Take a site's permission away; True when it had one."""

log = logging.getLogger(__name__)


class MenuOpener:
    """How a page's `app.show_menu` reaches the tray menu: the running tray sets `show`, and clears it when it
    stops. None = the agent runs without a tray icon (--no-tray, no desktop, no tray library)."""

    def __init__(self) -> None:
        self.show: Callable[[], None] | None = None


@dataclass(frozen=True)
class Entry:
    """One menu line: an action, a submenu, or (neither) a disabled label. `checked` makes it a radio item."""

    text: str
    action: Callable[[], None] | None = None
    children: tuple[Entry, ...] | None = None
    checked: bool | None = None
    default: bool = False

    @property
    def enabled(self) -> bool:
        return self.action is not None or bool(self.children)


SEPARATOR = Entry("-")


@dataclass(frozen=True)
class KeyInfo:
    name: str
    expired: bool


class TrayModel:
    def __init__(self, agent: TraySubject, port: int, on_quit: Callable[[], None],
                 opener: Callable[[str], object] = webbrowser.open,
                 show_about: Callable[[str, str], None] | None = None) -> None:
        self.agent = agent
        self.port = port
        self.on_quit = on_quit
        self.opener = opener
        self.show_about = show_about
        self.keys: list[KeyInfo] = []

    def t(self, key: str, **params: object) -> str:
        return i18n.text(self.agent.language, "tray", key, **params)

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def refresh_keys(self) -> None:
        """Look for keys again (flash drives come and go); called from the tray's refresh thread."""
        from eimzo_agent.keys.alias import owner_from_alias
        from eimzo_agent.keys.pfx_files import list_all_certificates

        now = datetime.datetime.now()
        found = []
        try:
            for entry in list_all_certificates(self.agent.disks()):
                owner = owner_from_alias(entry.alias)
                name = (owner.cn or entry.name).upper()
                found.append(KeyInfo(name, bool(owner.valid_to and owner.valid_to < now)))
        except OSError as exc:
            log.info("tray: cannot list keys: %s", exc)
        self.keys = found

    def state(self) -> tuple[object, ...]:
        """Everything the menu shows: when this changes, the menu is rebuilt."""
        return (self.agent.language, tuple(self.keys), tuple(self.allowed_sites()), len(self.agent.passwords),
                tuple(self.denied_sites()), tuple(self.cooldowns()))

    def allowed_sites(self) -> list[str]:
        return self.agent.allowed_sites()

    def denied_sites(self) -> list[str]:
        return self.agent.consent.denied() if self.agent.consent is not None else []

    def cooldowns(self) -> list[tuple[str, int]]:
        """(site, seconds left) for each site whose questions are refused after repeated cancels."""
        cooldowns = getattr(self.agent.prompter, "cooldowns", None)
        return cooldowns() if callable(cooldowns) else []

    def tooltip(self) -> str:
        """The icon's title: that the agent runs, and which sites are paused (seen without opening the menu)."""
        lines = [self.t("tooltip")] + [self.t("cooldown", domain=d, seconds=s) for d, s in self.cooldowns()]
        return "\n".join(lines)

    def entries(self) -> list[Entry]:
        t = self.t
        keys = tuple(Entry(t("key_expired_mark", name=k.name) if k.expired else k.name) for k in self.keys)
        sites = tuple(Entry(t("revoke", domain=d), self._revoker(d)) for d in self.allowed_sites())
        denied = tuple(Entry(t("forget_denial", domain=d), self._denial_forgetter(d)) for d in self.denied_sites())
        # A disabled line per paused site: the person sees why a site's signing is refused right now.
        paused = [Entry(t("cooldown", domain=d, seconds=s)) for d, s in self.cooldowns()]
        remembered = len(self.agent.passwords)
        languages = tuple(
            Entry(t(f"lang_{lang}"), self._language_setter(lang), checked=self.agent.language == lang)
            for lang in i18n.LANGUAGES
        )
        return [
            Entry(t("status_page"), self.open_status, default=True),
            SEPARATOR,
            Entry(t("keys"), children=keys or (Entry(t("keys_none")),)),
            Entry(t("sites"), children=sites or (Entry(t("sites_none")),)),
            *([Entry(t("denied_sites"), children=denied)] if denied else []),
            *paused,
            Entry(t("remembered", count=remembered)),
            Entry(t("forget_all"), self.forget_passwords if remembered else None),
            SEPARATOR,
            Entry(t("language"), children=languages),
            Entry(t("about"), self.about),
            Entry(t("quit"), self.on_quit),
        ]

    # --- actions (run on the tray's thread) ---------------------------------------------------------------

    def open_status(self) -> None:
        self.opener(self.status_url)

    def forget_passwords(self) -> None:
        count = self.agent.passwords.forget_all()
        log.info("tray: %d remembered password(s) forgotten", count)

    def about(self) -> None:
        from eimzo_agent import EIMZO_COMPAT_VERSION, __version__

        text = self.t("about_text", version=__version__, eimzo_version=".".join(EIMZO_COMPAT_VERSION))
        if self.show_about is not None:
            self.show_about(self.t("about_title"), text)

    def _revoker(self, site: str) -> Callable[[], None]:
        def revoke() -> None:
            if self.agent.revoke_site(site):
                log.info("tray: %s may no longer use the signing keys", site)

        return revoke

    def _denial_forgetter(self, site: str) -> Callable[[], None]:
        def forget() -> None:
            if self.agent.consent is not None and self.agent.consent.forget_denial(site):
                log.info("tray: %s may ask again to use the signing keys", site)

        return forget

    def _language_setter(self, lang: str) -> Callable[[], None]:
        def choose() -> None:
            self.agent.language = lang

        return choose
