"""Replace a file atomically through a temporary file that no link can redirect.

:func:`atomic_text` writes to a new temporary file beside the target, created with
``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode 0600 (:func:`tempfile.mkstemp`), so a symbolic or
hard link planted under a predictable temp name in a shared folder is never followed or
truncated. The data is flushed and fsynced, renamed over the target, and the folder is
fsynced, so a killed run leaves either the old or the new file. Temp files a killed run left
behind (``.<name>.*.tmp``, plain files of ours) are removed after the next successful write.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


def temp_prefix(target: Path) -> str:
    """The prefix of ``target``'s temporary files (``.<name>.``)."""
    return f".{target.name}."


@contextlib.contextmanager
def atomic_text(
    target: Path, *, encoding: str = "utf-8", errors: str = "strict", newline: str | None = ""
) -> Iterator[TextIO]:
    """Yield a text file; on a clean exit it atomically replaces ``target`` (mode 0600).

    On an exception the temporary file is removed and ``target`` is left as it was.
    """
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=temp_prefix(target), suffix=".tmp")
    tmp = Path(name)
    try:
        with open(fd, "w", encoding=encoding, errors=errors, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)
    remove_leftovers(target)


def fsync_dir(directory: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


LEFTOVER_AGE = 600.0  # seconds: younger temp files may belong to a write still going on


def remove_leftovers(target: Path) -> None:
    """Remove temporary files of ``target`` that a killed run left (plain files of ours, older
    than :data:`LEFTOVER_AGE` seconds)."""
    prefix = temp_prefix(target)
    try:
        names = [
            n for n in os.listdir(target.parent) if n.startswith(prefix) and n.endswith(".tmp")
        ]
    except OSError:
        return
    for name in names:
        path = target.parent / name
        with contextlib.suppress(OSError):
            info = path.lstat()
            old = time.time() - info.st_mtime > LEFTOVER_AGE
            if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and old:
                path.unlink()
