"""The agent's one way to replace a file: all at once, durably, through symlinks, with no litter left behind.

Key files, the TLS identity, the dev CA and the remembered-site lists all go through `write_atomically`, so a
crash or a full disk leaves either the old file or the new one, never half of each. Its temporary files carry a
recognisable name (`.<name>.eimzo-tmp-<8 hex>`), so that the few a power cut leaves behind can be found and
removed at the next start (`remove_leftover_temp_files`) without touching anything else.

Errors are `OSError`s; callers turn them into their own error kinds.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

log = logging.getLogger(__name__)

TEMP_MARKER = ".eimzo-tmp-"
#: A temporary file of ours: dot, (a prefix of) the target's name, the marker, 8 hex digits.
TEMP_NAME = re.compile(r"\..*" + re.escape(TEMP_MARKER) + r"[0-9a-f]{8}", re.DOTALL)
#: Leftovers younger than this may belong to a write in progress (another agent, the CLI): left alone.
LEFTOVER_AGE = 60.0
NEW_FILE_MODE = 0o600
# Keep temporary names well inside NAME_MAX (255) whatever the target's name.
_MAX_NAME_PART = 100
_CREATE_ATTEMPTS = 100


def write_atomically(path: Path, data: bytes, *, mode: int | None = None) -> Path:
    """Replace the file at `path` with `data` all at once; return the path actually written.

    A symlink is followed: its target is replaced and the link stays a link. The file gets `mode` when given,
    else the mode of the file it replaces, else 0600. The temporary file lives in the target's folder (so the
    rename is atomic), is fsynced before the rename and the folder after it; on any failure it is removed and
    the original left untouched. Raises OSError.
    """
    target = Path(os.path.realpath(path))
    if mode is None:
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            mode = NEW_FILE_MODE
    fd, temp = _create_temp_file(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(temp)
        raise
    fsync_directory(target.parent)
    return target


def is_temp_file_name(name: str) -> bool:
    """Whether `name` is what `write_atomically` names its temporary files."""
    return TEMP_NAME.fullmatch(name) is not None


def remove_leftover_temp_files(folders: Iterable[Path], *, older_than: float = LEFTOVER_AGE) -> list[Path]:
    """Delete the temporary files an interrupted `write_atomically` left in `folders`; return what was deleted.

    Only regular files (never symlinks or folders) named as `write_atomically` names them, not modified for
    `older_than` seconds and, on POSIX, owned by this user. Folders that cannot be read are skipped.
    """
    removed: list[Path] = []
    deadline = time.time() - older_than
    for folder in folders:
        try:
            with os.scandir(folder) as entries:
                candidates = [entry for entry in entries if is_temp_file_name(entry.name)]
        except OSError as exc:
            log.debug("cannot look for leftover temporary files in %s: %s", folder, exc)
            continue
        for entry in candidates:
            try:
                info = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode) or info.st_mtime > deadline or not _owned_by_us(info):
                    continue
                os.unlink(entry.path)
            except OSError as exc:
                log.debug("cannot remove %s: %s", entry.path, exc)
                continue
            log.info("removed a leftover temporary file %s", entry.path)
            removed.append(Path(entry.path))
    return removed


def _create_temp_file(target: Path) -> tuple[int, str]:
    """A new, empty, private temporary file beside `target`, opened for writing (never an existing entry)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    prefix = f".{target.name[:_MAX_NAME_PART]}{TEMP_MARKER}"
    for _ in range(_CREATE_ATTEMPTS):
        temp = str(target.parent / f"{prefix}{secrets.token_hex(4)}")
        try:
            return os.open(temp, flags, NEW_FILE_MODE), temp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name beside {target}")


def _owned_by_us(info: os.stat_result) -> bool:
    getuid = getattr(os, "getuid", None)
    return getuid is None or info.st_uid == getuid()


def fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); Windows cannot open folders and needs no such step."""
    if os.name != "posix":
        return
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
