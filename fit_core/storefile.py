"""The store's file: where it really is, whether it can be used, and what to do when it cannot.

:func:`prepare` resolves the configured path to the real file (so a store reached through a
symbolic link is one store, with one lock), creates it owner-only without following a link,
and warns when its folder is writable by every user. :func:`store_error` turns whatever the
operating system or SQLite raised about the file into a :class:`StoreError` (exit 3) that
names the file and says what to do: a damaged or foreign file, a read-only file, a folder
that cannot be written or entered, a path that is a folder. Nothing about the store is ever
reported as an internal error with a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import stat
from pathlib import Path

from .errors import ConfigError, LockedError

log = logging.getLogger(__name__)

_last: list[str] = []


class StoreError(ConfigError):
    """The store cannot be opened, read or written (exit 3); the message names the file."""


def last_opened() -> str | None:
    """The path of the store most recently opened by this process (for error messages)."""
    return _last[-1] if _last else None


def prepare(path: Path | str) -> Path:
    """The real path of the store file, created (mode 0600, never through a link) if new."""
    text = str(path)
    if not text.strip():
        raise StoreError(
            "[store] path is empty",
            hint='give a file, for example path = "~/.local/share/fit/fit.sqlite3"',
        )
    given = Path(text).expanduser()
    target = Path(os.path.realpath(given))
    _last.append(str(target))
    del _last[:-1]
    if _is_dir(target):
        raise StoreError(
            f"the store path {given} is a folder",
            hint=f"set [store] path to a file in it, for example {given / 'fit.sqlite3'}",
        )
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _exists(target):
            flags = os.O_CREAT | os.O_RDWR | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            with contextlib.suppress(FileExistsError):  # created meanwhile by another fit
                os.close(os.open(target, flags, 0o600))
    except OSError as exc:
        raise store_error(target, exc) from None
    warn_world_writable(folder, "the store's folder")
    return target


def warn_world_writable(path: Path, what: str, *, sticky_ok: bool = False) -> None:
    """Log a warning when ``path`` can be written by every user of the machine.

    ``sticky_ok``: a world-writable folder with the sticky bit (like /tmp) is fine, because
    nobody else can replace a file in it (true for the config file's folder; not for the
    store's, where another user could create the store's -wal and -shm files first).
    """
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & stat.S_IWOTH and not (sticky_ok and mode & stat.S_ISVTX):
        log.warning(
            "%s %s is writable by every user: another user could change or replace what "
            "fit-sync reads and writes there; chmod o-w it or move it to a private folder",
            what,
            path,
        )


def store_error(path: Path | str, exc: BaseException) -> StoreError | LockedError:
    """A :class:`StoreError` (or :class:`LockedError`) for ``exc`` raised about ``path``."""
    p = Path(path)
    folder = p.parent
    message = str(exc).lower()
    code = getattr(exc, "errno", None)
    if isinstance(exc, IsADirectoryError) or _is_dir(p):
        return StoreError(
            f"the store path {p} is a folder",
            hint=f"set [store] path to a file in it, for example {p / 'fit.sqlite3'}",
        )
    if "database is locked" in message or "database is busy" in message:
        return LockedError(
            f"the store {p} is busy: another fit process keeps it locked",
            hint="wait for it to finish and try again",
        )
    if code == errno.ENOSPC or "disk is full" in message:
        return StoreError(
            f"no space left to write the store {p}", hint=f"free space on the disk of {folder}"
        )
    if not _searchable(folder):
        return StoreError(
            f"cannot reach the store {p}: the folder {_blocked(folder)} cannot be entered "
            "(no search permission)",
            hint="let the user running fit enter it (chmod u+x), or move [store] path",
        )
    if isinstance(exc, sqlite3.DatabaseError) and (
        "not a database" in message or "malformed" in message or "disk image" in message
    ):
        return StoreError(
            f"the store {p} is damaged or is not a fit-sync store ({exc})",
            hint=f"restore it from a backup; or move it away (mv {p} {p}.damaged) and run "
            "`fit sync` to rebuild it from the sources (acknowledged alerts are lost)",
        )
    if _exists(p) and not os.access(p, os.R_OK | os.W_OK):
        return StoreError(
            f"the store {p} is read-only for this user",
            hint=f"let the user running fit read and write it (chmod u+rw {p}, or chown), or "
            "run fit as its owner",
        )
    if (
        not os.access(folder, os.W_OK)
        or code in (errno.EACCES, errno.EPERM, errno.EROFS)
        or ("readonly" in message or "read-only" in message or "unable to open" in message)
    ):
        return StoreError(
            f"cannot write the store {p}: its folder {folder} is not writable for this user "
            "(SQLite keeps -wal and -shm files beside the store)",
            hint="let the user running fit write to that folder, or move [store] path",
        )
    return StoreError(
        f"cannot use the store {p}: {exc}",
        hint="check the file, its folder and the disk; `fit check` opens the store",
    )


def _searchable(folder: Path) -> bool:
    return all(os.access(part, os.X_OK) for part in (folder, *folder.parents) if _exists(part))


def _blocked(folder: Path) -> Path:
    """The outermost folder on the way to ``folder`` that cannot be entered."""
    for part in (*reversed(folder.parents), folder):
        if _exists(part) and not os.access(part, os.X_OK):
            return part
    return folder


def _exists(path: Path) -> bool:
    try:
        path.stat()
    except OSError:
        return False
    return True


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.stat().st_mode)
    except OSError:
        return False
