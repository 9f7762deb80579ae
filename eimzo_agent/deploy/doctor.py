"""`eimzo-agent doctor`: what stands between a portal and a signature on this computer, and how to fix it.

Each check gives a status (ok, warning, blocking), a message and a fix in the person's language, and details for
inventory scripts. "Blocking" is kept for what stops a portal from reaching a working agent: no agent on the port,
another program on it, a wss certificate the browsers do not trust, a settings file the agent refuses, and, for
`--site`, a Chromium-family browser whose policies do not let that portal reach 127.0.0.1 (Chrome 142+ asks the
person or blocks). Things a person can still get past, or that hurt only later (no autostart, no key files, E-IMZO
holding the port, Firefox without a policy), are warnings; so is a session where nobody could be asked for a
password (no screen, no askpass program): it is judged from the doctor's own environment, which is the agent's
when both are started the same way, but not when the doctor runs over ssh for an agent on the desktop.

The checks look only, never change anything, and take their paths from `Places` and their NSS databases from a
parameter, so a test can run them against a temporary home, root and policy folder.
"""

from __future__ import annotations

import enum
import getpass
import os
import shutil
import socket
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes

from eimzo_agent import __version__, i18n, trust
from eimzo_agent.config import (
    ENV_ASKPASS,
    AgentConfig,
    ConfigError,
    load_config,
    system_config_path,
    tls_path,
    user_config_path,
)
from eimzo_agent.deploy import autostart, browsers, ports
from eimzo_agent.deploy.places import Places
from eimzo_agent.deploy.probe import Probe, Speaker, probe
from eimzo_agent.policy.domains import DomainGate
from eimzo_agent.ui.prompter import display_available

CA_FILE = "ca.crt.pem"  #: the local CA's certificate in tls_path() (server/tls.py writes it)


class Status(enum.Enum):
    OK = "ok"
    WARNING = "warning"
    BLOCKING = "blocking"


@dataclass
class Check:
    id: str
    status: Status
    message: str
    fix: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status.value, "message": self.message, "fix": self.fix,
                "details": self.details}


@dataclass
class Report:
    language: str
    checks: list[Check]

    @property
    def blocking(self) -> list[Check]:
        return [check for check in self.checks if check.status is Status.BLOCKING]

    def as_json(self) -> dict[str, Any]:
        """For inventory scripts: which machine and user, then the verdict and every check."""
        return {"host": socket.gethostname(), "user": getpass.getuser(), "platform": sys.platform,
                "agent_version": __version__, "language": self.language, "ok": not self.blocking,
                "blocking": [check.id for check in self.blocking],
                "checks": [check.as_json() for check in self.checks]}


def diagnose(config_file: Path | None = None, site: str | None = None, *, places: Places | None = None,
             nss_dbs: list[Path] | None = None, timeout: float = 5.0) -> Report:
    """Run every check. `site` must already be an origin (`browsers.origin_of`); `nss_dbs` None = the user's
    browsers' databases."""
    places = places or Places.from_environment()
    try:
        config, config_error = load_config(config_file), None
    except ConfigError as exc:
        config, config_error = AgentConfig(), exc
    lang = i18n.normalize_language(config.language) or i18n.language_from_environment() or i18n.DEFAULT_LANGUAGE
    doctor = _Doctor(lang, config, places)
    checks = [doctor.settings(config_error, config_file), doctor.prompter()]
    ws, wss = probe(config.ws_port, timeout=timeout), probe(config.wss_port, tls=True, timeout=timeout)
    checks += [doctor.port("ws", config.ws_port, ws, None), doctor.port("wss", config.wss_port, wss, ws)]
    checks += [doctor.certificate(nss_dbs), doctor.autostart(), doctor.keys(), doctor.browsers()]
    if site is not None:
        checks += doctor.site(site)
    return Report(lang, checks)


class _Doctor:
    def __init__(self, lang: str, config: AgentConfig, places: Places) -> None:
        self.lang, self.config, self.places = lang, config, places

    def t(self, key: str, **params: Any) -> str:
        return i18n.text(self.lang, "doctor", key, **params)

    # --- settings ------------------------------------------------------------------------------------------------

    def settings(self, error: ConfigError | None, config_file: Path | None) -> Check:
        admin = system_config_path()
        details: dict[str, Any] = {"user_file": str(config_file or user_config_path()), "admin_file": str(admin),
                                   "admin_file_exists": admin.is_file()}
        if error is not None:
            return Check("settings", Status.BLOCKING, self.t("settings_error", error=str(error)),
                         self.t("settings_error_fix"), {**details, "error": str(error)})
        config = self.config
        details.update(sources=[str(p) for p in config.sources], ws_port=config.ws_port, wss_port=config.wss_port,
                       allowed_domains=config.allowed_domains, ask_unknown_sites=config.ask_unknown_sites,
                       language=config.language)
        if config.sources:
            message = self.t("settings_files", files=", ".join(map(str, config.sources)))
        else:
            message = self.t("settings_none", user_file=details["user_file"], admin_file=admin)
        domains = ", ".join(config.allowed_domains) or self.t("sites_none")
        others = self.t("others_ask" if config.ask_unknown_sites else "others_refused")
        return Check("settings", Status.OK, f"{message} {self.t('settings_sites', domains=domains, others=others)}",
                     details=details)

    # --- who answers the password questions ---------------------------------------------------------------------

    def prompter(self) -> Check:
        """As `ui.choice.choose_prompter` picks: an askpass program first, else the dialog when there is a screen."""
        askpass = os.environ.get(ENV_ASKPASS) or self.config.askpass
        display = display_available()
        details = {"askpass": askpass, "display": display}
        if askpass and shutil.which(askpass) is None:
            # The agent would start, and every question would come back "cancelled": the page says the person
            # cancelled, the person saw nothing. Blocking, as nothing can be signed.
            return Check("prompter", Status.BLOCKING, self.t("prompter_askpass_broken", program=askpass),
                         self.t("prompter_askpass_broken_fix"), details)
        if askpass:
            return Check("prompter", Status.OK, self.t("prompter_ok", how=self.t("prompter_askpass", program=askpass)),
                         "", details)
        if display:
            return Check("prompter", Status.OK, self.t("prompter_ok", how=self.t("prompter_dialog")), "", details)
        return Check("prompter", Status.WARNING, self.t("prompter_none"), self.t("prompter_none_fix"), details)

    # --- ports ---------------------------------------------------------------------------------------------------

    def port(self, kind: str, port: int, found: Probe, ws: Probe | None) -> Check:
        check_id = f"port.{kind}"
        holders = ports.listeners(port) if found.speaker is not Speaker.NOTHING else []
        details: dict[str, Any] = {"port": port, "url": found.url, "answers": found.speaker.value,
                                   "version": found.version, "error": found.error,
                                   "processes": [_listener_json(h) for h in holders]}
        owner = self._owner(holders)
        if found.speaker is Speaker.AGENT:
            if kind == "wss" and not self._certificate_is_current(found.certificate):
                return Check(check_id, Status.WARNING,
                             self.t("port_old_certificate", url=found.url, file=tls_path() / CA_FILE),
                             self.t("restart_fix"), details)
            return Check(check_id, Status.OK, self.t("port_agent", url=found.url, version=found.version), "",
                         details)
        if found.speaker is Speaker.EIMZO:
            return Check(check_id, Status.WARNING, self.t("port_eimzo", url=found.url, version=found.version,
                                                          owner=owner), self.t("port_eimzo_fix"), details)
        if found.speaker is Speaker.OTHER:
            return Check(check_id, Status.BLOCKING, self.t("port_other", url=found.url, owner=owner,
                                                           error=found.error), self.t("port_other_fix"), details)
        if ws is not None and ws.speaker is Speaker.AGENT:
            return Check(check_id, Status.BLOCKING, self.t("port_no_tls", url=found.url), self.t("restart_fix"),
                         details)
        return Check(check_id, Status.BLOCKING, self.t("port_free", url=found.url), self.t("port_free_fix"), details)

    def _owner(self, holders: list[ports.Listener]) -> str:
        for holder in holders:
            if holder.pid is not None:
                return self.t("owner_process", name=holder.name or "?", pid=holder.pid, user=holder.user)
        return self.t("owner_user", user=holders[0].user) if holders else ""

    @staticmethod
    def _certificate_is_current(der: bytes | None) -> bool:
        """The certificate the wss port shows was issued by the CA file now on disk (else: restart the agent)."""
        try:
            ca = x509.load_pem_x509_certificate((tls_path() / CA_FILE).read_bytes())
            x509.load_der_x509_certificate(der or b"").verify_directly_issued_by(ca)
        except (OSError, ValueError, TypeError, InvalidSignature):
            return False
        return True

    # --- certificate ---------------------------------------------------------------------------------------------

    def certificate(self, nss_dbs: list[Path] | None) -> Check:
        ca_path = tls_path() / CA_FILE
        details: dict[str, Any] = {"ca_file": str(ca_path)}
        try:
            ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        except (OSError, ValueError):
            return Check("certificate", Status.WARNING, self.t("cert_missing", file=ca_path),
                         self.t("cert_missing_fix"), details)
        details["sha256"] = ca.fingerprint(hashes.SHA256()).hex(":").upper()
        if sys.platform.startswith("linux"):
            details["system_store"] = trust.system_store_trusts(ca, self.places.system(str(trust.SYSTEM_CA_PATH)))
            databases = nss_dbs if nss_dbs is not None else trust.default_nss_databases(self.places.home)
            stores = {str(db): trust.nss_trusts(db, ca) for db in databases if (db / "cert9.db").exists()}
            details["nss_databases"] = stores
            if not stores:
                return Check("certificate", Status.WARNING,
                             self.t("cert_no_store", stores=", ".join(map(str, databases))), self.t("cert_fix"),
                             details)
            if None in stores.values():
                return Check("certificate", Status.WARNING, self.t("cert_cannot_check"), self.t("cert_tools_fix"),
                             details)
        else:
            name = self.t("store_windows" if sys.platform == "win32" else "store_macos")
            stores = {name: trust.user_store_trusts(ca)}
            details["stores"] = stores
            if None in stores.values():
                return Check("certificate", Status.WARNING, self.t("cert_cannot_check"), self.t("cert_fix"), details)
        untrusted = [store for store, trusted in stores.items() if not trusted]
        if untrusted:
            return Check("certificate", Status.BLOCKING, self.t("cert_untrusted", stores=", ".join(untrusted)),
                         self.t("cert_fix"), details)
        return Check("certificate", Status.OK, self.t("cert_ok", stores=", ".join(stores)), "", details)

    # --- autostart -----------------------------------------------------------------------------------------------

    def autostart(self) -> Check:
        backend = autostart.backend_for(places=self.places)
        states = [backend.status(scope) for scope in (autostart.Scope.USER, autostart.Scope.ALL_USERS)]
        others = backend.others(autostart.Scope.USER)
        where = [s.location for s in states if s.enabled] + [o.location for o in others if o.package]
        details = {"entries": [{"scope": s.scope.value, "mechanism": s.mechanism, "location": s.location,
                                "installed": s.installed, "enabled": s.enabled, "running": s.running}
                               for s in states],
                   "other": [{"description": o.description, "location": o.location, "package": o.package}
                             for o in others]}
        if where:
            return Check("autostart", Status.OK, self.t("autostart_ok", where=", ".join(dict.fromkeys(where))), "",
                         details)
        return Check("autostart", Status.WARNING, self.t("autostart_none"), self.t("autostart_fix"), details)

    # --- keys ----------------------------------------------------------------------------------------------------

    def keys(self) -> Check:
        from eimzo_agent.keys.disks import DSKEYS, discover_disks
        from eimzo_agent.keys.pfx_files import list_all_certificates

        disks = discover_disks(self.config.key_roots, system_locations=self.config.scan_system_locations,
                               home=self.places.home, fs_root=self.places.root)
        files = Counter(entry.disk for entry in {(e.disk, e.file): e for e in list_all_certificates(disks)}.values())
        count = sum(files.values())
        dskeys = self.places.home / DSKEYS
        details = {"folders": [{"folder": d.label, "key_files": files.get(d.label, 0)} for d in disks],
                   "key_files": count}
        folders = ", ".join(d.label for d in disks)
        if count:
            return Check("keys", Status.OK, self.t("keys_found", count=count, folders=folders), "", details)
        message = self.t("keys_none", folders=folders) if disks else self.t("keys_no_folders", dskeys=dskeys)
        return Check("keys", Status.WARNING, message, self.t("keys_fix", dskeys=dskeys), details)

    # --- browsers and their policies -----------------------------------------------------------------------------

    def browsers(self) -> Check:
        """Which browsers there are, and which portals their policies let reach the agent (--site judges one)."""
        found = browsers.installed(self.places)
        if not found:
            return Check("browsers", Status.WARNING, self.t("site_no_browser"), "", {"browsers": []})
        described, listed, problems = [], [], []
        for browser in found:
            lists, unreadable = browsers.policy_lists(browser, self.places)
            described.append({"id": browser.id, "name": browser.name,
                              "policies": [{"policy": p.policy, "entries": p.entries, "source": p.source}
                                           for p in lists],
                              "unreadable": [{"file": f, "error": e} for f, e in unreadable]})
            listed += [f"{browser.name}: {p.policy} = {', '.join(p.entries) or '[]'} ({p.source})" for p in lists]
            problems += [(browser.name, file, error) for file, error in unreadable]
        message = " ".join([
            self.t("browsers_found", browsers=", ".join(b.name for b in found)),
            self.t("browsers_policies", policies="; ".join(listed)) if listed else self.t("browsers_no_policies"),
            *(self.t("site_unreadable", browser=name, file=file, error=error) for name, file, error in problems)])
        if problems:  # a broken policy file is ignored by the browser: whatever it meant to allow is not allowed
            return Check("browsers", Status.WARNING, message, self.t("site_unreadable_fix", file=problems[0][1]),
                         {"browsers": described})
        return Check("browsers", Status.OK, message, "", {"browsers": described})

    # --- one portal ----------------------------------------------------------------------------------------------

    def site(self, origin: str) -> list[Check]:
        checks = [self._site_agent(origin)]
        host = urlsplit(origin).hostname or ""
        if host in ("localhost", "::1") or host.endswith(".localhost") or host.startswith("127."):
            return [*checks, Check("site.browsers", Status.OK, self.t("site_local", site=origin))]
        found = browsers.installed(self.places)
        if not found:
            return [*checks, Check("site.browsers", Status.WARNING, self.t("site_no_browser"))]
        for browser in found:
            checks += self._site_browser(browser, origin)
        return checks

    def _site_agent(self, origin: str) -> Check:
        host = urlsplit(origin).hostname or ""
        details = {"site": origin, "allowed_domains": self.config.allowed_domains,
                   "ask_unknown_sites": self.config.ask_unknown_sites}
        if DomainGate(self.config.allowed_domains).on_allowlist(host):
            return Check("site.agent", Status.OK, self.t("site_agent_allowed", site=origin), "", details)
        if self.config.ask_unknown_sites:
            return Check("site.agent", Status.OK, self.t("site_agent_asks", site=origin), "", details)
        return Check("site.agent", Status.WARNING, self.t("site_agent_refused", site=origin),
                     self.t("site_agent_refused_fix", file=system_config_path()), details)

    def _site_browser(self, browser: browsers.Browser, origin: str) -> list[Check]:
        found = browsers.verdict(browser, origin, self.places)
        check_id = f"site.{browser.id}"
        details: dict[str, Any] = {"browser": browser.name, "state": found.state, "policy": found.policy,
                                   "pattern": found.pattern, "source": found.source,
                                   "unreadable": [{"file": f, "error": e} for f, e in found.unreadable]}
        checks = [Check(f"{check_id}.unreadable", Status.WARNING,
                        self.t("site_unreadable", browser=browser.name, file=file, error=error),
                        self.t("site_unreadable_fix", file=file)) for file, error in found.unreadable]
        names = {"browser": browser.name, "site": origin}
        if found.state == "blocked":
            check = Check(check_id, Status.BLOCKING,
                          self.t("site_blocked", policy=found.policy, source=found.source, **names),
                          self.t("site_blocked_fix", pattern=found.pattern, policy=found.policy), details)
        elif browser.family == "chromium" and origin.startswith("http://"):
            check = Check(check_id, Status.BLOCKING, self.t("site_http", **names), self.t("site_http_fix"), details)
        elif found.state == "allowed":
            check = Check(check_id, Status.OK,
                          self.t("site_allowed", policy=found.policy, source=found.source, **names), "", details)
        elif browser.family == "firefox":
            location = browsers.policy_location(browser, self.places)
            check = Check(check_id, Status.WARNING, self.t("site_firefox_no_policy", **names),
                          self.t("site_firefox_fix", domain=urlsplit(origin).hostname, file=location),
                          details)
        else:
            check = Check(check_id, Status.BLOCKING, self.t("site_no_policy", **names),
                          self.t("site_no_policy_fix", command=self._policy_command(browser, origin)), details)
        return [check, *checks]

    def _policy_command(self, browser: browsers.Browser, origin: str) -> str:
        if sys.platform == "win32":
            return f"eimzo-agent policy browser --site {origin} --format windows-reg --out DIR"
        if sys.platform == "darwin":
            return f"eimzo-agent policy browser --site {origin} --format macos-plist --out DIR"
        return f"sudo eimzo-agent policy browser --site {origin} --out {browsers.policy_location(browser, self.places)}"


def _listener_json(listener: ports.Listener) -> dict[str, Any]:
    return {"address": listener.address, "pid": listener.pid, "name": listener.name, "command": listener.command,
            "user": listener.user}
