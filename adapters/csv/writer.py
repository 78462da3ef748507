"""Write the scores CSV atomically: fresh temp file, fsync, ``os.replace``, fsync the folder.

Columns are :data:`fit_core.scoring.PUSH_FIELDS` in that order. Cells are rendered
deterministically (same items, same bytes) and guarded against formula injection.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fit_core.floattext import FloatText
from fit_core.models import OutboxItem
from fit_core.safefile import atomic_text
from fit_core.scoring import PUSH_FIELDS

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_SET = frozenset(_FORMULA_START)
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


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


def _number(value: float) -> str:
    """:func:`cell` of a finite float: its shortest repr, a whole number without ``.0``."""
    return str(int(value)) if value.is_integer() else repr(value)


_NUMBERS = FloatText(_number)  # the cell text of each float seen (no call per cell)


def write_scores(target: Path, items: Iterable[OutboxItem], encoding: str) -> int:
    """Replace ``target`` with the scores of ``items`` (streamed); returns the row count.

    The file is mode 0600, written through a fresh temporary file that no planted link can
    redirect (:func:`fit_core.safefile.atomic_text`). A failure leaves the previous ``target``
    in place and removes the temp.

    Every cell is :func:`cell` of its value. The common values are rendered inline, without a
    call per cell: text that cannot start a formula as it is, None and an empty list as "", a
    finite float as :func:`cell` writes it (its shortest repr, whole numbers without ``.0``,
    memoised by :class:`~fit_core.floattext.FloatText`; a negative one is a plain number, which
    the formula guard leaves alone), an int as its
    digits, a boolean as true/false; anything else (text the guard must look at, other lists)
    goes through :func:`cell`.
    """
    rows = 0
    formula = _FORMULA_SET
    numbers = _NUMBERS
    with atomic_text(target, encoding=encoding, errors="replace", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(PUSH_FIELDS)
        write = writer.writerow
        for item in items:
            get: Callable[[str], Any] = item.payload.get
            write(
                [
                    (v if v[:1] not in formula else cell(v))
                    if (t := type(v := get(k))) is str
                    else ""
                    if v is None
                    else numbers[v]
                    if t is float and v - v == 0.0
                    else str(v)
                    if t is int
                    else ("true" if v else "false")
                    if t is bool
                    else ""
                    if t is list and not v
                    else cell(v)
                    for k in PUSH_FIELDS
                ]
            )
            rows += 1
    return rows
