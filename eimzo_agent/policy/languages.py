"""The language of replies and dialogs: the person's choice (settings, tray) and what each site asked for.

E-IMZO's `app.change_ui_lang` switches the whole agent; here it switches only the calling origin's replies and
dialogs, so one site cannot change what the person reads when another site asks. Site choices are memory only
and bounded (oldest forgotten first).

The person's choice from the tray is kept in the user's data folder (`language.json`) and wins at the next start
over the settings file and the environment: it is the later, explicit choice, and a language that fell back to
the settings' at every restart would look like a forgotten choice. Choosing in the tray again changes it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Collection
from pathlib import Path

from eimzo_agent.caller import Caller
from eimzo_agent.fsutil import write_atomically

log = logging.getLogger(__name__)

#: Sites whose language choice is kept at most.
MAX_SITES = 1024
LANGUAGE_FILE = "language.json"
#: A file larger than this is not ours.
_MAX_FILE_BYTES = 4096


class SiteLanguages:
    def __init__(self, default: str, store: Path | None = None, known: Collection[str] = ()) -> None:
        """`default`: from the settings or the environment; `store`: where the tray's choice is kept (None: not
        kept); `known`: the languages a stored choice may name (anything else in the file is ignored)."""
        self._store = store
        saved = self._load(known) if store is not None else None
        #: The person's language: the tray's choice (kept across restarts), else settings or environment.
        self._default = saved or default
        self._chosen: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def default(self) -> str:
        return self._default

    @default.setter
    def default(self, language: str) -> None:
        """The person chose `language` (the tray): used from now on and at the next start."""
        changed = language != self._default
        self._default = language
        if changed and self._store is not None:
            self._save(language)

    def for_caller(self, caller: Caller) -> str:
        if caller.origin is None or caller.opaque:
            return self.default
        with self._lock:
            return self._chosen.get(caller.origin, self.default)

    def choose(self, caller: Caller, language: str) -> None:
        """The caller's pages get `language` from now on. An opaque origin names no site: nothing is kept."""
        if caller.origin is None or caller.opaque:
            return
        with self._lock:
            self._chosen[caller.origin] = language
            self._chosen.move_to_end(caller.origin)
            while len(self._chosen) > MAX_SITES:
                self._chosen.popitem(last=False)

    def _load(self, known: Collection[str]) -> str | None:
        """The kept choice; None (logged when damaged) if there is none: a lost choice only means the settings'
        language, never a refusal to start."""
        assert self._store is not None
        try:
            if self._store.stat().st_size > _MAX_FILE_BYTES:
                raise ValueError("file too large")
            language = json.loads(self._store.read_text(encoding="utf-8")).get("language")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
            log.warning("cannot read the language choice %s (%s); using the settings' language", self._store, exc)
            return None
        if language not in known:
            log.warning("ignoring an unknown language %r in %s", language, self._store)
            return None
        return str(language)

    def _save(self, language: str) -> None:
        """Replace the file atomically; a failure is logged (the choice still holds until the agent stops)."""
        assert self._store is not None
        try:
            if not self._store.parent.is_dir():
                self._store.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
                os.chmod(self._store.parent, 0o700)  # mkdir's mode is filtered through the umask
            write_atomically(self._store, (json.dumps({"version": 1, "language": language}) + "\n").encode())
        except OSError as exc:
            log.warning("cannot keep the language choice in %s: %s", self._store, exc)
