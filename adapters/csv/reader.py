"""Stream one CSV file into :class:`Record` / :class:`RecordError` objects.

Rows are read with :mod:`csv` one at a time; nothing but the keys seen so far is kept (see
:class:`KeyLedger`). Messages name files, line numbers, source keys and field names, never cell
values.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import re
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
    """Yield the records of one file; return True when the whole file was read.

    Each physical line is one row (see :class:`Lines`): a line that cannot be read is an
    error of that line, and the lines after it are read as usual.
    """
    file_no = len(ledger.files)
    ledger.files.append(name)
    try:
        with path.open(encoding=opts.encoding, errors="surrogateescape", newline="") as f:
            first = f.readline(MAX_LINE)
            delimiter = sniff(first) if opts.delimiter == "auto" else opts.delimiter
            f.seek(0)
            lines = Lines(f)
            reader = csv.reader(lines, delimiter=delimiter)
            rows = _records(reader, lines)
            _, header, problem = next(rows, (1, None, None))
            if problem is not None:
                yield _header_error(name, problem)
                return False
            if not header:
                yield _header_error(name, "empty file: no header line")
                return False
            try:
                layout = resolve(header, opts)
            except HeaderError as exc:
                yield _header_error(name, str(exc))
                return False
            read = _wide_rows if layout.wide else _long_rows
            yield from read(rows, layout, name, opts, ledger, file_no)
    except (UnicodeError, LookupError) as exc:
        yield RecordError(
            f"{name}:encoding",
            {"file": f"cannot decode as {opts.encoding} ({type(exc).__name__})"},
            name,
        )
        return False
    except OSError as exc:
        yield RecordError(f"{name}:file", {"file": f"cannot read: {type(exc).__name__}"}, name)
        return False
    return True


#: the longest line read (characters, line break included); also the csv module's default
#: field limit, so no single field can exceed that limit either
MAX_LINE = 131_072
_SURROGATE = re.compile("[\udc80-\udcff]")
SPILLED = (
    'a quoted field starts on this line and does not end on it (a stray " or a line break '
    "inside a cell?); each line is read as one row, so the lines after it are read on their own"
)
TOO_LONG = f"longer than {MAX_LINE:,} characters; the line was skipped"


def _undecodable(encoding: str) -> str:
    return (
        f"not valid {encoding} text (set encoding in the source options, for example cp1252); "
        "the other lines were read"
    )


class Lines:
    """The physical lines of a text file, fed to :func:`csv.reader` one record at a time.

    ``csv.reader`` asks for another line only while a quoted field is still open at the end of
    a line. This feed refuses that (it ends the input for that record), so a stray quote costs
    the row it is on, never the rows after it. After each record :func:`_records` reads
    ``line`` (the physical line number) and ``problem`` (why that line could not be read, or
    None). A line longer than :data:`MAX_LINE` is skipped without holding it in memory; a line
    with bytes the encoding cannot decode (the file is opened with ``surrogateescape``) is
    reported as such. Both reach the csv reader as an empty line.
    """

    __slots__ = ("_open", "_read", "encoding", "line", "problem")

    def __init__(self, f: Any) -> None:
        self._read = functools.partial(f.readline, MAX_LINE)
        self.encoding = str(getattr(f, "encoding", "utf-8"))
        self.line = 0
        self.problem: str | None = None
        self._open = False  # a line was handed out for the record being read

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> str:
        if self._open:  # the record wants a continuation line
            self.problem = SPILLED
            raise StopIteration
        text = self._read()
        if not text:
            raise StopIteration
        self.line += 1
        self._open = True
        if len(text) >= MAX_LINE and text[-1] not in "\r\n":
            while (rest := self._read()) and rest[-1] not in "\r\n":
                pass
            self.problem = TOO_LONG
            return "\n"
        if not text.isascii() and _SURROGATE.search(text):
            self.problem = _undecodable(self.encoding)
            return "\n"
        return text


def _records(reader: Any, lines: Lines) -> Iterator[tuple[int, list[str], str | None]]:
    """``(line, cells, problem)`` for each physical line; ``problem`` is None for a good one."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field limit lowered elsewhere in the process
            lines.problem = lines.problem or f"unreadable CSV ({exc})"
            row = []
        problem = lines.problem
        if problem is not None:
            lines.problem = None
        lines._open = False
        yield lines.line, row, problem


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
    rows: Iterator[tuple[int, list[str], str | None]],
    layout: Layout,
    name: str,
    opts: CsvOptions,
    ledger: KeyLedger,
    file_no: int,
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
    seen, base = ledger.seen, file_no << _LINE_BITS
    for line, row, problem in rows:
        if problem is not None:
            yield _unreadable(layout, name, line, row, problem, ledger, base)
            continue
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


def _unreadable(
    layout: Layout,
    name: str,
    line: int,
    row: list[str],
    problem: str,
    ledger: KeyLedger,
    base: int,
) -> RecordError:
    """The error of a line that could not be read as a row.

    When the cells before the problem still give the row's key (its ``source_key``, or client,
    date and measure in long format), the error carries that key, so the row is quarantined
    as itself (and a stored earlier version of it is withdrawn); otherwise it is keyed on the
    line. The cells are not kept: they are garbled.
    """
    key = _key_of(layout, row)
    if key is None:
        return _row_error(name, line, {"row": problem})
    packed = base | line
    first = ledger.seen.setdefault(hash(key), packed)
    if first != packed:
        return ledger.duplicate(key, first, packed, not key.startswith("nk:"), None)
    return RecordError(key, {"row": problem}, f"{name} line {line}")


def _key_of(layout: Layout, row: list[str]) -> str | None:
    """The key a broken long-format row still names, when every part of it is intact.

    The unclosed field runs to the end of the line, so it holds the line break: a key part
    that does is part of the broken field and the row is keyed on its line instead.
    """
    if layout.wide or len(row) > layout.width:
        return None
    row = row + [""] * (layout.width - len(row))
    if layout.source_key is not None and (explicit := row[layout.source_key].strip()):
        return None if _broken(explicit) else explicit
    assert layout.measure is not None
    parts = [row[layout.client_id], row[layout.administered_at], row[layout.measure]]
    if layout.rater is not None:
        parts.append(row[layout.rater])
    if any(_broken(p) for p in parts):
        return None
    client, when, measure = (p.strip() for p in parts[:3])
    if not (client and when and measure):
        return None
    rater = parts[3].strip().lower() if len(parts) > 3 else ""
    return f"nk:{client}|{when}|{measure.upper()}|{rater or 'client'}"


def _broken(cell: str) -> bool:
    return "\n" in cell or "\r" in cell


def _missing_key(name: str, line: int, **parts: str) -> RecordError:
    """A row without the values of its natural key (and no source_key column value)."""
    return _row_error(name, line, {field: "missing" for field, value in parts.items() if not value})


def _wide_rows(
    rows: Iterator[tuple[int, list[str], str | None]],
    layout: Layout,
    name: str,
    opts: CsvOptions,
    ledger: KeyLedger,
    file_no: int,
) -> Iterator[Item]:
    """Wide format: one Record per measure whose items or total are not all empty."""
    fields, width, scale = layout.fields, layout.width, opts.scale
    get = itemgetter(*layout.indices)
    ci, wi, ri, si = layout.client_id, layout.administered_at, layout.rater, layout.source_key
    check_commas = not opts.decimal_comma
    seen, base = ledger.seen, file_no << _LINE_BITS
    for line, row, problem in rows:
        if problem is not None:
            yield _unreadable(layout, name, line, row, problem, ledger, base)
            continue
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
