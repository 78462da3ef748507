"""A non-blocking, process-wide lock so two syncs never run against one store at once.

The lock file sits beside the store's *real* file (symbolic links in the configured path are
resolved first), so a store reached through two different paths still has one lock. The lock
file is opened without following a link and must be a plain file of ours with one name: a
link planted in a shared folder can never make a sync truncate or write another file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path
from types import TracebackType

from .errors import ConfigError, LockedError

_FLAGS = os.O_CREAT | os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def lock_path(store_path: Path | str) -> Path:
    """``<real path of the store>.lock``."""
    return Path(f"{os.path.realpath(Path(store_path).expanduser())}.lock")


class SyncLock:
    """``flock`` on ``<store>.lock``; released by the kernel if the process dies (even SIGKILL)."""

    def __init__(self, store_path: Path | str) -> None:
        self.path = None if str(store_path) == ":memory:" else lock_path(store_path)
        self._fd: int | None = None

    def acquire(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(self.path, _FLAGS, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _refuse(self.path, "is a symbolic link") from None
            raise ConfigError(
                f"cannot open the lock file {self.path}: {exc.strerror}",
                hint="let the user running fit write to the store's folder",
            ) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise _refuse(self.path, "is not a plain file")
            if info.st_nlink != 1:
                raise _refuse(self.path, "has another name (a hard link)")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockedError(
                    f"another fit sync is running (lock {self.path} is held)",
                    hint="wait for it to finish; nothing needs to be cleaned up",
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SyncLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _refuse(path: Path, what: str) -> ConfigError:
    return ConfigError(
        f"the lock file {path} {what}: fit-sync will not write through it",
        hint=f"remove it (rm {path}); if you did not create it, someone may be trying to make "
        "fit-sync overwrite another file: keep the store in a folder only its user can write",
    )
