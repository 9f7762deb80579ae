"""The language of replies and dialogs: the person's choice (settings, tray) and what each site asked for.

E-IMZO's `app.change_ui_lang` switches the whole agent; here it switches only the calling origin's replies and
dialogs, so one site cannot change what the person reads when another site asks. Choices are memory only and
bounded (oldest forgotten first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from eimzo_agent.caller import Caller

#: Sites whose language choice is kept at most.
MAX_SITES = 1024


class SiteLanguages:
    def __init__(self, default: str) -> None:
        #: The person's language: settings file, environment, or the tray's choice.
        self.default = default
        self._chosen: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

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
