"""Map one file's header onto fit field names: which column holds what.

Header names are compared stripped and case-insensitively. ``columns`` renames a fit field's
header; in wide mode the ``wide`` table says which columns hold each measure's items and total.
A missing required column is reported with the columns the file does have.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .options import FIELDS, ITEM_FIELDS, WIDE_OWNED, CsvOptions

#: fields copied into Record.data (``source_key`` is the key, not data)
DATA_FIELDS = tuple(f for f in FIELDS if f != "source_key")


@dataclass(frozen=True, slots=True)
class WideColumns:
    """Column indices of one measure in a wide row."""

    measure: str
    items: tuple[int, ...]  # q1.. in order
    total: int | None


@dataclass(frozen=True, slots=True)
class Layout:
    """Column indices for one file (None: the file has no such column)."""

    width: int
    fields: tuple[str, ...]  # data field names, in the order of ``indices``
    indices: tuple[int, ...]
    client_id: int
    administered_at: int
    measure: int | None  # None in wide mode
    rater: int | None
    source_key: int | None
    wide: tuple[WideColumns, ...] = ()


class HeaderError(ValueError):
    """The header lacks a required column (the message names it; no row data)."""


def _label(field: str, header: str) -> str:
    return header if header == field else f"{header!r} ({field})"


_DATE = re.compile(r"\d{4}-\d\d-\d\d")
_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")
_SHOWN = 40


def _found(names: list[str]) -> str:
    """The header names, for a message; never the cells of a data row (they may be PHI)."""
    cells = [n for n in names if n]
    numeric = sum(1 for n in cells if _NUMBER.fullmatch(n))
    if any(_DATE.match(n) for n in cells) or numeric * 2 > len(cells):
        return "line 1 looks like data, not a header: add a header line (columns not shown)"
    shown = ", ".join(repr(n) for n in cells[:_SHOWN]) or "none"
    return f"columns found: {shown}{', ...' if len(cells) > _SHOWN else ''}"


def resolve(header: Sequence[str], opts: CsvOptions) -> Layout:
    """The :class:`Layout` for ``header``, or :class:`HeaderError` naming what is missing."""
    names = [h.strip().lstrip("\ufeff").strip().lower() for h in header]
    index: dict[str, int] = {}
    repeated: set[str] = set()
    for i, name in enumerate(names):
        if name in index:
            repeated.add(name)
        else:
            index[name] = i

    wide_mode = bool(opts.wide)
    found: dict[str, int] = {}
    used: list[str] = []
    for field in FIELDS:
        if wide_mode and field in WIDE_OWNED:
            continue
        header_name = opts.columns.get(field, field)
        if header_name in index:
            found[field] = index[header_name]
            used.append(header_name)

    missing: list[str] = []
    required = (
        ("client_id", "administered_at")
        if wide_mode
        else ("client_id", "administered_at", "measure")
    )
    for field in required:
        if field not in found:
            missing.append(_label(field, opts.columns.get(field, field)))
    if not wide_mode and "total" not in found and not all(q in found for q in ITEM_FIELDS):
        absent = [
            _label(f, opts.columns.get(f, f)) for f in (*ITEM_FIELDS, "total") if f not in found
        ]
        missing.append(f"{' / '.join(absent)} (give q1-q4 or total)")

    wide: list[WideColumns] = []
    for spec in opts.wide:
        heads = [*spec.items, *([spec.total] if spec.total else [])]
        absent = [h for h in heads if h not in index]
        if absent:
            missing.extend(f"{h!r} ({spec.measure})" for h in absent)
            continue
        used.extend(heads)
        wide.append(
            WideColumns(
                spec.measure,
                tuple(index[h] for h in spec.items),
                index[spec.total] if spec.total else None,
            )
        )

    if missing:
        raise HeaderError(f"missing column {', '.join(missing)}; {_found(names)}")
    twice = sorted(set(used) & repeated)
    if twice:
        raise HeaderError(f"column {', '.join(map(repr, twice))} appears more than once")

    data_fields = tuple(f for f in DATA_FIELDS if f in found)
    return Layout(
        width=len(names),
        fields=data_fields,
        indices=tuple(found[f] for f in data_fields),
        client_id=found["client_id"],
        administered_at=found["administered_at"],
        measure=found.get("measure"),
        rater=found.get("rater"),
        source_key=found.get("source_key"),
        wide=tuple(wide),
    )
