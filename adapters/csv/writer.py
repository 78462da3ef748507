"""Write the scores CSV atomically: temp file, fsync, ``os.replace``, fsync the directory.

Columns are :data:`fit_core.scoring.PUSH_FIELDS` in that order. Cells are rendered
deterministically (same items, same bytes) and guarded against formula injection.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fit_core.models import OutboxItem
from fit_core.scoring import PUSH_FIELDS

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_SET = frozenset(_FORMULA_START)
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def temp_path(target: Path) -> Path:
    """The fixed temp name beside ``target`` (a killed run's leftover is simply overwritten)."""
    return target.with_name(f".{target.name}.tmp")


def cell(value: Any) -> str:
    """One value as CSV text: None → "", booleans → true/false, lists joined with ";"."""
    kind = type(value)
    if kind is str:
        return guard(value) if value[:1] in _FORMULA_SET else value
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        text = str(int(value)) if value.is_integer() else repr(value)
    elif kind is int:
        text = str(value)
    elif isinstance(value, list | tuple):
        text = ";".join(cell(v) for v in value)
    else:
        text = str(value)
    return guard(text) if text[:1] in _FORMULA_SET else text


def guard(text: str) -> str:
    """Prefix ``'`` to text a spreadsheet would run as a formula (unless a plain number)."""
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def write_scores(target: Path, items: Iterable[OutboxItem], encoding: str) -> int:
    """Replace ``target`` with the scores of ``items`` (streamed); returns the row count.

    The file is mode 0600. A failure leaves the previous ``target`` in place and removes the temp.
    """
    tmp = temp_path(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        f = open(fd, "w", encoding=encoding, errors="replace", newline="")  # noqa: SIM115
    except BaseException:
        os.close(fd)
        raise
    rows = 0
    try:
        with f:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)  # the leftover of a killed run may have another mode
            writer = csv.writer(f, lineterminator="\r\n")
            writer.writerow(PUSH_FIELDS)
            write = writer.writerow
            for item in items:
                get = item.payload.get
                write([cell(get(k)) for k in PUSH_FIELDS])
                rows += 1
            f.flush()
            os.fsync(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)
    return rows


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
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
