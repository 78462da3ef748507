"""Open an export (CSV or Excel ``.xlsx``) as a header and a stream of numbered rows.

CSV rows come from :mod:`csv` one at a time; ``.xlsx`` rows from openpyxl in read-only mode
(streamed from the zip, never the whole sheet in memory). Leading title rows (fewer than two
filled cells, e.g. "Appointment Status Report") are skipped; the header is the first row with
two or more filled cells. Locations are ``<file> line N`` (CSV) or ``<file> row N`` (Excel).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .values import Cell

SUFFIXES = (".csv", ".xlsx", ".xls")  # .xls is reported as unsupported, not skipped
_SNIFF = (",", ";", "\t")
_MAX_TITLE_ROWS = 10


class TableError(Exception):
    """A file that cannot be read as a table (the message names no cell values)."""


@dataclass
class Table:
    """An open export: its header (raw names), where the header is, and the data rows."""

    name: str
    header: list[Cell]
    header_at: int
    rows: Iterator[tuple[int, list[Cell]]]
    unit: str  # "line" (CSV) or "row" (Excel)
    titles: str = ""  # the title lines above the header (report names, never data)
    #: False for a CSV file whose last line has no line break: its last row may be cut off
    ends_cleanly: bool = True

    def where(self, number: int) -> str:
        return f"{self.name} {self.unit} {number}"


def fingerprint(path: Path) -> dict[str, Any]:
    """``{"size": n, "sha256": hex}`` of a file, hashed in chunks."""
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
        return {"size": f.tell(), "sha256": digest}


def is_export(path: Path) -> bool:
    """A file the bridge reads: ``*.csv`` / ``*.xlsx``, not hidden, not an Excel lock file."""
    name = path.name
    return path.suffix.lower() in SUFFIXES and not name.startswith((".", "~$")) and path.is_file()


@contextlib.contextmanager
def open_table(
    path: Path, name: str, *, encoding: str, delimiter: str, sheet: str | None
) -> Iterator[Table]:
    """Open ``path`` as a :class:`Table`; TableError when it has no header or is unreadable."""
    if path.suffix.lower() == ".xls":
        raise TableError(f"{name}: the old Excel .xls format is not read; export as .xlsx or CSV")
    if path.suffix.lower() == ".xlsx":
        with _open_xlsx(path, name, sheet) as table:
            yield table
    else:
        with _open_csv(path, name, encoding, delimiter) as table:
            yield table


def _filled(row: list[Cell]) -> int:
    return sum(1 for c in row if (c.strip() if isinstance(c, str) else c is not None))


def _find_header(
    numbered: Iterator[tuple[int, list[Cell]]], name: str
) -> tuple[int, list[Cell], str]:
    """(line, header, title text above it)."""
    titles: list[str] = []
    for n, (number, row) in enumerate(numbered):
        if _filled(row) >= 2:
            return number, row, " ".join(titles)
        titles.extend(c for c in row if isinstance(c, str) and c.strip())
        if n >= _MAX_TITLE_ROWS:
            break
    raise TableError(f"{name}: no header row (a row with two or more column names) found")


def _ends_cleanly(path: Path) -> bool:
    """True when the file is empty or its last byte is a line break."""
    with path.open("rb") as f:
        f.seek(0, 2)
        if f.tell() == 0:
            return True
        f.seek(-1, 2)
        return f.read(1) in (b"\n", b"\r")


# --- CSV -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _open_csv(path: Path, name: str, encoding: str, delimiter: str) -> Iterator[Table]:
    try:
        f = path.open(encoding=encoding, newline="")
    except OSError as exc:
        raise TableError(f"{name}: cannot read ({type(exc).__name__})") from None
    with f:
        try:
            first = f.readline()
            f.seek(0)
            sep = (
                (max(_SNIFF, key=first.count) if first else ",")
                if delimiter == "auto"
                else delimiter
            )
            reader = csv.reader(f, delimiter=sep)
            numbered = _csv_rows(reader)
            number, header, titles = _find_header(numbered, name)
            clean = _ends_cleanly(path)
        except UnicodeDecodeError:
            raise TableError(
                f"{name}: not valid {encoding} text (set encoding, for example cp1252)"
            ) from None
        except csv.Error as exc:
            raise TableError(f"{name}: unreadable CSV ({exc})") from None
        except OSError as exc:
            raise TableError(f"{name}: cannot read ({type(exc).__name__})") from None
        rows = _guard_csv(numbered, name, encoding)
        yield Table(name, header, number, rows, "line", titles, clean)


def _csv_rows(reader: Any) -> Iterator[tuple[int, list[Cell]]]:
    last = reader.line_num
    for row in reader:
        yield last + 1, list(row)
        last = reader.line_num


def _guard_csv(
    rows: Iterator[tuple[int, list[Cell]]], name: str, encoding: str
) -> Iterator[tuple[int, list[Cell]]]:
    try:
        yield from rows
    except UnicodeDecodeError:
        raise TableError(
            f"{name}: not valid {encoding} text part way through (set encoding, for example "
            "cp1252); the rows before it were read"
        ) from None
    except csv.Error as exc:
        raise TableError(f"{name}: unreadable CSV ({exc})") from None


# --- Excel ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _open_xlsx(path: Path, name: str, sheet: str | None) -> Iterator[Table]:
    try:
        import openpyxl
    except ImportError:  # the optional `simplepractice` extra
        raise TableError(
            f"{name}: reading .xlsx needs openpyxl, which is not installed: "
            "pip install 'fit-sync[simplepractice]' (or export the report as CSV)"
        ) from None
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException variants
        raise TableError(f"{name}: not a readable .xlsx workbook ({type(exc).__name__})") from None
    try:
        if sheet is not None:
            if sheet not in book.sheetnames:
                raise TableError(f"{name}: no sheet named {sheet!r} (see the sheet option)")
            ws = book[sheet]
        else:
            ws = book.worksheets[0]
        numbered = _xlsx_rows(ws)
        number, header, titles = _find_header(numbered, name)
        yield Table(name, header, number, numbered, "row", titles)
    finally:
        book.close()


def _xlsx_rows(ws: Any) -> Iterator[tuple[int, list[Cell]]]:
    for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
        yield number, [_xlsx_cell(v) for v in values]


def _xlsx_cell(value: Any) -> Cell:
    """An Excel value as a cell: text, or a datetime/date/time (numbers as text)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)
