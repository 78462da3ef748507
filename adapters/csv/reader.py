"""Stream one CSV file into :class:`Record` / :class:`RecordError` objects.

Rows are read with :mod:`csv` one at a time; nothing but the keys seen so far is kept (see
:class:`KeyLedger`). Messages name files, line numbers, source keys and field names, never cell
values.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Generator, Iterator, Mapping
from operator import itemgetter
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fit_core.models import Record, RecordError

from .layout import HeaderError, Layout, WideColumns, resolve
from .options import ITEM_FIELDS, CsvOptions

_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})
_SNIFF = (",", ";", "\t")
_LINE_BITS = 32

Item = Record | RecordError


class KeyLedger:
    """Source keys seen in one pull: ``hash(key) -> first location``, packed as one int.

    A location is ``(file number << 32) | line``; file names are kept once in ``files``. Keys are
    held by their 64-bit ``hash()`` (stable within one process), not as strings: that halves the
    memory of a 1M-row pull. Two different keys with the same hash would be reported as a
    conflict (odds about 3e-8 for a million rows): reported and quarantined, never lost. When a
    key comes again, the new row gets a RecordError at once and the key is remembered as
    conflicted; :meth:`closing_errors` then reports the first occurrence too (it was already
    yielded as a Record, and a later RecordError for a key replaces it in the core).
    """

    __slots__ = ("conflicts", "files", "seen", "tainted")

    def __init__(self) -> None:
        self.files: list[str] = []
        self.seen: dict[int, int] = {}
        self.conflicts: dict[str, tuple[int, bool]] = {}  # key -> (second location, explicit)
        self.tainted: set[int] = set()  # numbers of the files involved in a conflict

    def conflicted_files(self) -> set[str]:
        """Names of the files that hold a conflicting row."""
        return {self.files[n] for n in self.tainted}

    def where(self, packed: int) -> str:
        return f"{self.files[packed >> _LINE_BITS]} line {packed & ((1 << _LINE_BITS) - 1)}"

    def duplicate(self, key: str, first: int, packed: int, explicit: bool, raw: Any) -> RecordError:
        """Note a repeated key; the RecordError for the repeating row."""
        self.conflicts.setdefault(key, (packed, explicit))
        self.tainted.update((first >> _LINE_BITS, packed >> _LINE_BITS))
        return RecordError(
            key, {"source_key": _dup(explicit, self.where(first))}, self.where(packed), raw
        )

    def closing_errors(self) -> Iterator[RecordError]:
        """RecordErrors for the first occurrence of every conflicted key (end of the pull)."""
        for key, (second, explicit) in self.conflicts.items():
            yield RecordError(
                key,
                {"source_key": _dup(explicit, self.where(second))},
                self.where(self.seen[hash(key)]),
            )


def _dup(explicit: bool, other: str) -> str:
    return f"duplicate {'source_key' if explicit else 'natural key'}: also on {other}"


def fingerprint(path: Path) -> dict[str, Any]:
    """``{"size": n, "sha256": hex}`` of a file, hashed in chunks."""
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
        return {"size": f.tell(), "sha256": digest}


def sniff(first_line: str) -> str:
    """The delimiter among ``,`` ``;`` and tab that the header line uses most (``,`` on a tie)."""
    return max(_SNIFF, key=first_line.count) if first_line else ","


def read_file(
    path: Path, name: str, opts: CsvOptions, ledger: KeyLedger
) -> Generator[Item, None, bool]:
    """Yield the records of one file; return True when the whole file was read."""
    file_no = len(ledger.files)
    ledger.files.append(name)
    reader: Any = None
    try:
        with path.open(encoding=opts.encoding, newline="") as f:
            first = f.readline()
            delimiter = sniff(first) if opts.delimiter == "auto" else opts.delimiter
            f.seek(0)
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, None)
            if not header:
                yield _header_error(name, "empty file: no header line")
                return False
            try:
                layout = resolve(header, opts)
            except HeaderError as exc:
                yield _header_error(name, str(exc))
                return False
            rows = _wide_rows if layout.wide else _long_rows
            yield from rows(reader, layout, name, opts, ledger, file_no)
    except UnicodeDecodeError:
        where = f"after line {reader.line_num}" if reader is not None else "in line 1"
        yield RecordError(
            f"{name}:encoding",
            {
                "file": (
                    f"not valid {opts.encoding} text {where} (set encoding in the source options, "
                    "for example cp1252); the rows read before it were kept"
                )
            },
            name,
        )
        return False
    except csv.Error as exc:
        yield RecordError(f"{name}:csv", {"file": f"unreadable CSV: {exc}"}, name)
        return False
    except OSError as exc:
        yield RecordError(f"{name}:file", {"file": f"cannot read: {type(exc).__name__}"}, name)
        return False
    return True


def _header_error(name: str, reason: str) -> RecordError:
    return RecordError(f"{name}:header", {"header": reason}, f"{name} line 1")


def _row_error(name: str, line: int, reasons: dict[str, str]) -> RecordError:
    return RecordError(f"{name}:line:{line}", reasons, f"{name} line {line}")


def _is_blank(row: list[str]) -> bool:
    return not any(cell.strip() for cell in row)


def _bad_width(row: list[str], width: int, name: str, line: int) -> RecordError:
    return _row_error(
        name,
        line,
        {
            "row": (
                f"{len(row)} cells but the header has {width} (a decimal comma in a "
                "comma-separated file? quote the value or use ; as the delimiter)"
            )
        },
    )


_ANSWERS = (*ITEM_FIELDS, "total")
_NO_COMMA = "decimal comma not allowed (decimal_comma = false)"


def _comma_errors(data: Mapping[str, str]) -> dict[str, str]:
    """decimal_comma = false: the answer fields that hold a comma."""
    return {f: _NO_COMMA for f in _ANSWERS if "," in data.get(f, "")}


def _long_rows(
    reader: Any, layout: Layout, name: str, opts: CsvOptions, ledger: KeyLedger, file_no: int
) -> Iterator[Item]:
    """Long format: one Record per row. The hot loop: keep it free of per-row extras."""
    fields, width, scale = layout.fields, layout.width, opts.scale
    get = itemgetter(*layout.indices)
    ci, wi, mi, ri, si = (
        layout.client_id,
        layout.administered_at,
        layout.measure,
        layout.rater,
        layout.source_key,
    )
    assert mi is not None
    check_commas = not opts.decimal_comma
    seen, base, last = ledger.seen, file_no << _LINE_BITS, reader.line_num
    for row in reader:
        line, last = last + 1, reader.line_num
        if len(row) != width:
            if _is_blank(row):
                continue
            if len(row) > width:
                yield _bad_width(row, width, name, line)
                continue
            row += [""] * (width - len(row))
        explicit = row[si].strip() if si is not None else ""
        if explicit:
            key = explicit
        else:
            c, w, m = row[ci].strip(), row[wi].strip(), row[mi].strip()
            if not (c and w and m):
                if not _is_blank(row):
                    yield _missing_key(name, line, client_id=c, administered_at=w, measure=m)
                continue
            rater = row[ri].strip().lower() if ri is not None else ""
            key = f"nk:{c}|{w}|{m.upper()}|{rater or 'client'}"
        data = dict(zip(fields, get(row), strict=False))
        packed = base | line
        first = seen.setdefault(hash(key), packed)
        if first != packed:
            yield ledger.duplicate(key, first, packed, bool(explicit), data)
        elif check_commas and (bad := _comma_errors(data)):
            yield RecordError(key, bad, f"{name} line {line}", data)
        else:
            yield Record(key, data, scale, None, f"{name} line {line}", _NO_EXTRA)


def _missing_key(name: str, line: int, **parts: str) -> RecordError:
    """A row without the values of its natural key (and no source_key column value)."""
    return _row_error(name, line, {field: "missing" for field, value in parts.items() if not value})


def _wide_rows(
    reader: Any, layout: Layout, name: str, opts: CsvOptions, ledger: KeyLedger, file_no: int
) -> Iterator[Item]:
    """Wide format: one Record per measure whose items or total are not all empty."""
    fields, width, scale = layout.fields, layout.width, opts.scale
    get = itemgetter(*layout.indices)
    ci, wi, ri, si = layout.client_id, layout.administered_at, layout.rater, layout.source_key
    check_commas = not opts.decimal_comma
    seen, base, last = ledger.seen, file_no << _LINE_BITS, reader.line_num
    for row in reader:
        line, last = last + 1, reader.line_num
        if len(row) != width:
            if _is_blank(row):
                continue
            if len(row) > width:
                yield _bad_width(row, width, name, line)
                continue
            row += [""] * (width - len(row))
        filled: list[tuple[WideColumns, list[str], str]] = []
        for wc in layout.wide:
            items = [row[i] for i in wc.items]
            total = row[wc.total] if wc.total is not None else ""
            if total.strip() or any(v.strip() for v in items):
                filled.append((wc, items, total))
        if not filled:
            continue
        explicit = row[si].strip() if si is not None else ""
        c, w = row[ci].strip(), row[wi].strip()
        if not explicit and not (c and w):
            yield _missing_key(name, line, client_id=c, administered_at=w)
            continue
        rater = (row[ri].strip().lower() if ri is not None else "") or "client"
        common = dict(zip(fields, get(row), strict=False))
        loc, packed = f"{name} line {line}", base | line
        for wc, items, total in filled:
            key = f"{explicit}:{wc.measure}" if explicit else f"nk:{c}|{w}|{wc.measure}|{rater}"
            data = {**common, "measure": wc.measure, **dict(zip(ITEM_FIELDS, items, strict=False))}
            if wc.total is not None:
                data["total"] = total
            first = seen.setdefault(hash(key), packed)
            if first != packed:
                yield ledger.duplicate(key, first, packed, bool(explicit), data)
            elif check_commas and (bad := _comma_errors(data)):
                yield RecordError(key, bad, loc, data)
            else:
                yield Record(key, data, scale, None, loc, _NO_EXTRA)


def count_rows(path: Path) -> int:
    """The non-blank lines after the header: the rows a file holds (a quoted cell with a line
    break counts twice, which is the same from one export to the next)."""
    try:
        with path.open("rb") as f:
            lines = sum(1 for line in f if line.strip())
    except OSError:
        return 0
    return max(lines - 1, 0)
