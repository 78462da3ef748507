"""The scores file's rows as CSV text: one line per push payload.

A file target (the CSV adapter's scores file) holds one row per administration: the values of
its push payload (:func:`fit_core.scoring.push_payload`) in :data:`PUSH_FIELDS` order, each
rendered by :func:`cell` (guarded against formula injection), written by :mod:`csv` (excel
dialect, ``\\r\\n`` line ends). :func:`line_of_payload` is that definition.

The sync renders the line when it writes the outbox row (:func:`fit_core.payload.payload_line`,
from the scored administration, without building the payload) and keeps it beside the payload,
so a snapshot push streams stored lines instead of decoding every payload again. A stored line
is a cache of :func:`line_of_payload` of its payload: a change to the rendering here must clear
the stored lines (``UPDATE outbox SET line = NULL``, in a migration); a row without a line is
rendered from its payload.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .floattext import FloatText
from .scoring import PUSH_FIELDS

__all__ = ["HEADER", "NUMBERS", "cell", "guard", "line_of_payload", "line_of_values"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FORMULA_SET = frozenset(FORMULA_START)
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def cell(value: Any) -> str:
    """One value as CSV text: None → "", booleans → true/false, lists joined with ";"."""
    kind = type(value)
    if kind is str:
        return guard(value) if value[:1] in FORMULA_SET else value
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        text = _number(value)
    elif kind is int:
        text = str(value)
    elif isinstance(value, list | tuple):
        text = ";".join(cell(v) for v in value)
    else:
        text = str(value)
    return guard(text) if text[:1] in FORMULA_SET else text


def _number(value: float) -> str:
    """:func:`cell` of a finite float: its shortest repr, a whole number without ``.0``."""
    return str(int(value)) if value.is_integer() else repr(value)


#: the cell text of each finite float seen (``NUMBERS[v]``: no Python call per cell)
NUMBERS = FloatText(_number)


def guard(text: str) -> str:
    """Prefix ``'`` to text a spreadsheet would run as a formula (unless a plain number)."""
    if text.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _csv_module_line(cells: Sequence[str]) -> str:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()


def csv_line(cells: Sequence[str]) -> str:
    """``cells`` as one CSV line, exactly as ``csv.writer(f, lineterminator="\\r\\n")`` writes
    it: joined with commas when no cell needs quotes, else through the csv module."""
    line = ",".join(cells)
    if (
        _JOIN_IS_CSV
        and len(cells) > 1
        and line.count(",") == len(cells) - 1
        and '"' not in line
        and "\n" not in line
        and "\r" not in line
    ):
        return line + "\r\n"
    return _csv_module_line(cells)


# the join above is what this Python's csv module writes for cells without a comma, a quote or
# a line end (checked once here on awkward cells: should a Python quote more, it is not used)
_PROBES = ("", " ", " a", "a ", "\x00", "\t", "'", "a;b", "é", "\u2028", "\x1f", "\\", "1e5")
_JOIN_IS_CSV = all(
    _csv_module_line(["x", p]) == f"x,{p}\r\n" and _csv_module_line([p, "x"]) == f"{p},x\r\n"
    for p in _PROBES
)


def line_of_values(values: Sequence[Any], other: Callable[[Any], str] | None = None) -> str:
    """The scores-file line of a payload's values (in :data:`PUSH_FIELDS` order):
    :func:`csv_line` of :func:`cell` of each value.

    The common values are rendered inline, without a call per cell: text that cannot start a
    formula as it is, None and an empty list as "", a finite float as :func:`cell` writes it
    (its shortest repr, whole numbers without ``.0``, memoised in :data:`NUMBERS`; a negative
    one is a plain number, which the formula guard leaves alone), an int as its digits, a
    boolean as true/false; anything else (text the guard must look at, other lists) goes
    through ``other`` (default :func:`cell`; a caller may check those values first)."""
    formula = FORMULA_SET
    numbers = NUMBERS
    rest = other or cell
    return csv_line(
        [
            (v if v[:1] not in formula else cell(v))
            if (t := type(v)) is str
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
            else rest(v)
            for v in values
        ]
    )


def line_of_payload(payload: Mapping[str, Any]) -> str:
    """The scores-file line of a push payload: the definition every fast path follows (a
    field the payload lacks is an empty cell)."""
    get = payload.get
    return line_of_values([get(k) for k in PUSH_FIELDS])


def values_of_line(line: str | None) -> dict[str, str]:
    """The cells of a scores-file line by field name, as text (what the file shows: a value
    the file guards against formula injection keeps its guard). For an outbox row that keeps
    only its line where a payload is asked for (see ``fit_core.payload.LINE_ONLY``)."""
    cells = next(csv.reader([line or ""]), [])
    return dict(zip(PUSH_FIELDS, cells, strict=False))


HEADER = csv_line(PUSH_FIELDS)
