"""Writing report files: readable by the owner only, replaced atomically, safe names.

Reports hold clinical information, so every file is written mode 0600 (through a temporary file
in the same folder, then renamed, so a reader never sees half a report) and a folder created
for them is mode 0700. Names are reduced to letters, digits, ``.``, ``_`` and ``-``.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from ..errors import ConfigError

__all__ = ["ensure_dir", "safe_name", "write_private"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, *, max_len: int = 100) -> str:
    """``text`` as a file name: unsafe runs become ``_``; never empty, never hidden."""
    name = _UNSAFE.sub("_", text).strip("._-")[:max_len]
    return name or "report"


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) if it does not exist; an existing folder is left as it is."""
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"--out {path} exists and is not a folder")
        return path
    try:
        path.mkdir(mode=0o700, parents=True)
        os.chmod(path, 0o700)  # mkdir's mode is masked by the umask
    except OSError as exc:
        raise ConfigError(f"cannot create the folder {path}: {exc.strerror}") from None
    return path


def write_private(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` with mode 0600, atomically (temporary file + rename)."""
    blob = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".fit-report-", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write in {path.parent}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
