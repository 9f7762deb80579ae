"""The signing journal: every entry written at once (before the reply), fsynced behind by one background thread."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from eimzo_agent.policy.journal import Journal, JournalEntry, now_utc


def entry(n: int) -> JournalEntry:
    return JournalEntry(now_utc(), "https://soliq.uz", "pkcs7.create_pkcs7", "7283d8ca", "ALIYEV VALI",
                        f"{n:064x}", "signed")


def test_entries_from_many_threads_are_all_written_and_synced(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "data" / "journal.jsonl")
    workers = [threading.Thread(target=lambda k=k: [journal.append(entry(k * 100 + i)) for i in range(25)])
               for k in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert journal.sync(timeout=30)
    digests = sorted(e.content_sha256 for e in journal.entries())
    assert digests == sorted(f"{k * 100 + i:064x}" for k in range(8) for i in range(25))
    assert stat.S_IMODE(os.stat(journal.path).st_mode) == 0o600


def test_an_entry_is_in_the_file_before_append_returns(tmp_path: Path) -> None:
    """What makes an entry survive the agent being killed right after a signature: no buffering in the process."""
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append(entry(1))
    assert journal.path.read_text().count("\n") == 1  # read by another file handle, before any sync


def test_sync_with_nothing_written_returns_at_once(tmp_path: Path) -> None:
    assert Journal(tmp_path / "journal.jsonl").sync(timeout=0.1)


def test_an_unwritable_journal_is_logged_not_raised(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    journal = Journal(tmp_path / "file" / "journal.jsonl")  # a file where the folder should be
    journal.append(entry(1))
    assert journal.sync(timeout=1)  # nothing was written, so nothing waits
