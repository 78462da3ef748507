"""``fit clients import``: many links from a two-column file (SimplePractice client, client id).

The file (CSV or ``.xlsx``) has one row per client: the client's name as in SimplePractice (or
their SimplePractice client id, ``id:<id>``, or ``n:<hash digits>`` from ``fit clients list
--unlinked``) and the client id of the ORS/SRS namespace. A header row is recognised by its
words and skipped. Names are hashed at once (:class:`~.names.NameHasher`) and never kept,
printed or logged: rows are shown by line number and ``n:<hash>``.

:func:`plan` reads the file and decides, row by row, what linking would do; the command prints
the plan and, without ``--dry-run``, stores it in one write of the link book.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .columns import norm
from .links import Kind, LinkBook
from .names import SHORT, NameHasher
from .tables import TableError, open_table
from .values import Cell, text

#: header words of the first and second column (a row with them is a header, not a client)
NAME_HEADERS = frozenset(
    {
        "name",
        "client",
        "client name",
        "full name",
        "patient",
        "patient name",
        "simplepractice",
        "simplepractice client",
        "simplepractice name",
        "sp client",
        "sp name",
    }
)
ID_HEADERS = frozenset(
    {
        "client id",
        "client_id",
        "clientid",
        "id",
        "fit id",
        "fit client id",
        "ors client id",
        "record id",
        "record_id",
        "participant id",
    }
)
_HEX = re.compile(r"^[0-9a-f]{6,64}$")


@dataclass(frozen=True, slots=True)
class Row:
    """One usable row: where it is, the link key, how users see it, the client id."""

    line: str
    kind: Kind
    key: str
    shown: str
    client_id: str


@dataclass
class Plan:
    """What importing a file would do (no names anywhere)."""

    rows: int = 0
    new: list[Row] = field(default_factory=list)
    changed: list[tuple[Row, str]] = field(default_factory=list)  # (row, previous client id)
    same: list[Row] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (line, why)
    not_in_exports: list[Row] = field(default_factory=list)

    @property
    def to_link(self) -> list[Row]:
        return self.new + [row for row, _ in self.changed]

    def apply(self, book: LinkBook, today: dt.date) -> int:
        """Store the new and changed links in ``book`` (not saved); returns how many."""
        for row in self.to_link:
            book.set(row.kind, row.key, row.client_id, today)
        return len(self.to_link)


def read_rows(
    path: Path, *, encoding: str, delimiter: str, sheet: str | None
) -> Iterable[tuple[str, Cell, Cell] | tuple[str, None, str]]:
    """(location, first cell, second cell) per data row, or (location, None, why)."""
    try:
        with open_table(
            path, path.name, encoding=encoding, delimiter=delimiter, sheet=sheet
        ) as table:
            head = [norm(c) for c in table.header[:2]]
            if not (head[0] in NAME_HEADERS or (len(head) > 1 and head[1] in ID_HEADERS)):
                yield from _rows(table.header, table.header_at, table.unit, path.name)
            for number, row in table.rows:
                if not any(text(c) for c in row):
                    continue
                yield from _rows(row, number, table.unit, path.name)
    except TableError as exc:
        raise LinkFileError(str(exc)) from None


class LinkFileError(Exception):
    """The link file cannot be read at all (the message names no cell)."""


def _rows(
    row: Sequence[Cell], number: int, unit: str, name: str
) -> Iterable[tuple[str, Cell, Cell] | tuple[str, None, str]]:
    where = f"{name} {unit} {number}"
    if any(text(c) for c in row[2:]):
        yield where, None, "more than two columns (expected: name or SimplePractice id, client id)"
        return
    cells = [*row[:2], "", ""][:2]
    yield where, cells[0], cells[1]


def plan(
    rows: Iterable[tuple[str, Cell, Cell] | tuple[str, None, str]],
    hasher: NameHasher,
    book: LinkBook,
    *,
    in_exports: set[str],
    shared: dict[str, int],
) -> Plan:
    """Decide row by row. ``in_exports``: idents (``n:<hash>``, ``id:<id>``) of the clients in
    the exports; ``shared``: name hashes several clients share (they are refused)."""
    out = Plan()
    chosen: dict[tuple[Kind, str], Row] = {}
    conflicts: set[tuple[Kind, str]] = set()
    for where, first, second in rows:
        out.rows += 1
        if first is None:
            out.refused.append((where, str(second)))
            continue
        client_id = text(second)
        if not client_id or any(ord(c) < 32 for c in client_id):
            out.refused.append((where, "no client id in the second column"))
            continue
        ref = _ref(text(first), hasher, book, in_exports)
        if isinstance(ref, str):
            out.refused.append((where, ref))
            continue
        kind, key, shown = ref
        if kind == "name" and shared.get(key):
            out.refused.append(
                (
                    where,
                    f"{shown}: {shared[key]} SimplePractice clients share this name, a name "
                    "link would be a guess (link each by SimplePractice id)",
                )
            )
            continue
        row = Row(where, kind, key, shown, client_id)
        prev = chosen.get((kind, key))
        if prev is not None and prev.client_id != client_id:
            conflicts.add((kind, key))
            out.refused.append(
                (where, f"{shown} is linked to {prev.client_id} on {prev.line} already")
            )
            continue
        chosen.setdefault((kind, key), row)
    for (kind, key), row in chosen.items():
        if (kind, key) in conflicts:
            out.refused.append((row.line, f"{row.shown}: two client ids in the file"))
            continue
        old = book.get(kind, key)
        if old is not None and old.client_id == row.client_id:
            out.same.append(row)
        elif old is not None:
            out.changed.append((row, old.client_id or "ignored"))
        else:
            out.new.append(row)
        ident = f"n:{key}" if kind == "name" else f"id:{key}"
        if ident not in in_exports:
            out.not_in_exports.append(row)
    out.refused.sort(key=lambda r: _line_number(r[0]))
    return out


def _ref(
    value: str, hasher: NameHasher, book: LinkBook, in_exports: set[str]
) -> tuple[Kind, str, str] | str:
    """(kind, key, shown) of the first cell, or why it cannot be used."""
    if not value:
        return "no name or SimplePractice id in the first column"
    if value.startswith("id:") and value[3:].strip():
        number = value[3:].strip()
        return "number", number, f"id:{number}"
    if value.isdigit():
        return "number", value, f"id:{value}"
    if value.startswith("n:"):
        prefix = value[2:].strip().lower()
        if not _HEX.match(prefix):
            return "n: needs 6 to 64 hex digits of a name hash"
        known = {i[2:] for i in in_exports if i.startswith("n:")} | set(book.name_keys())
        matches = sorted(k for k in known if k.startswith(prefix))
        if len(matches) != 1:
            return f"n:{prefix} matches {len(matches)} clients in the exports and links"
        return "name", matches[0], f"n:{matches[0][:SHORT]}"
    name_hash = hasher.name(value)
    if name_hash is None:
        return "no name in the first column"
    return "name", name_hash, f"n:{name_hash[:SHORT]}"


def _line_number(where: str) -> int:
    tail = where.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0
