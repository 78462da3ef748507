"""The bad-input corpus: damaged rows, files, configs, stores and HTTP bodies, as data.

Each case says what goes in and what must come out: the exit code (or HTTP status), what the
message must name (a line, a key, a file, a config key) and, for rows and files, which good
rows must still be stored. tests/test_bad_input_corpus.py runs every case through the real
CLI (or the real `fit serve` receiver); docs/hardening.md holds the summary table, which
``python tests/bad_input_corpus.py`` prints (a test checks the two agree).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field

HEADER = (
    "client_id",
    "administered_at",
    "measure",
    "q1",
    "q2",
    "q3",
    "q4",
    "total",
    "clinician_id",
    "episode_id",
    "rater",
    "age",
    "session",
    "site",
    "date_of_birth",
    "source_key",
)
DAY = "2025-03-03"


def line(cells: dict[str, str]) -> bytes:
    """One CSV line (minimal quoting, LF) of the corpus header's columns."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([cells.get(h, "") for h in HEADER])
    return out.getvalue().encode("utf-8")


def base(client: str, **over: str) -> dict[str, str]:
    cells = {"client_id": client, "administered_at": DAY, "measure": "ORS"}
    cells.update(q1="5", q2="6", q3="7", q4="8", clinician_id="T01", session="1")
    cells.update(over)
    return cells


def key(client: str, day: str = DAY, measure: str = "ORS") -> str:
    return f"nk:{client}|{day}|{measure}|client"


HEADER_LINE = line({h: h for h in HEADER})
GOOD = [f"G{i:02d}" for i in range(1, 11)]


def good_lines(clients: list[str]) -> bytes:
    return b"".join(line(base(c)) for c in clients)


# --- rows -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowCase:
    """One row among ten good ones (it is line 7 of admins.csv).

    ``field``: the field its quarantine reason names; None when the row is accepted (exit 0).
    ``raw``: the whole line as bytes, when it cannot be written as cells.
    """

    id: str
    what: str
    cells: dict[str, str] = field(default_factory=dict)
    field: str | None = None
    raw: bytes | None = None
    keyed: bool = True  # quarantined under the row's natural key (else under its line)

    def line(self) -> bytes:
        return self.raw if self.raw is not None else line(base("B01", **self.cells))

    @property
    def key(self) -> str:
        """The row's source key (as the CSV adapter builds it)."""
        cells = base("B01", **self.cells)
        if cells.get("source_key", "").strip():
            return cells["source_key"].strip()
        when, measure = cells["administered_at"].strip(), cells["measure"].strip().upper()
        rater = cells.get("rater", "").strip().lower() or "client"
        return f"nk:{cells['client_id'].strip()}|{when}|{measure}|{rater}"

    def file(self) -> bytes:
        return HEADER_LINE + good_lines(GOOD[:5]) + self.line() + good_lines(GOOD[5:])

    @property
    def exit(self) -> int:
        return 1 if self.field else 0


def _r(id_: str, what: str, fld: str | None, **cells: str) -> RowCase:
    return RowCase(id_, what, cells, fld)


ROW_CASES: tuple[RowCase, ...] = (
    # numbers
    _r(
        "num-thousands",
        "`1,000` in an item (thousands separator or decimal comma?)",
        "q1",
        q1="1,000",
    ),
    _r("num-thousands-2", "`10,500` in an item", "q2", q2="10,500"),
    _r("num-exponent", "`1e1` in an item", "q1", q1="1e1"),
    _r(
        "num-exponent-total",
        "`2.4E1` as the total",
        "total",
        q1="",
        q2="",
        q3="",
        q4="",
        total="2.4E1",
    ),
    _r("num-arabic-indic", "Arabic-Indic digit `٥` in an item", "q1", q1="٥"),
    _r("num-fullwidth", "full-width digit `５` in an item", "q3", q3="５"),
    _r("num-superscript", "superscript `²` in an item", "q1", q1="²"),
    _r("num-inf", "`inf` in an item", "q1", q1="inf"),
    _r("num-minus-inf", "`-Infinity` in an item", "q4", q4="-Infinity"),
    _r("num-nan", "`nan` in an item", "q1", q1="nan"),
    _r("num-underscore", "`1_0` in an item", "q1", q1="1_0"),
    _r("num-hex", "`0x5` in an item", "q1", q1="0x5"),
    _r("num-two-points", "`5.5.5` in an item", "q1", q1="5.5.5"),
    _r("num-comma-and-point", "`1.000,5` in an item", "q1", q1="1.000,5"),
    _r("num-text", "`abc` in an item", "q2", q2="abc"),
    _r("num-inner-space", "`5 5` in an item", "q1", q1="5 5"),
    _r("num-percent-sign", "`5%` in an item", "q1", q1="5%"),
    _r("num-currency", "`$5` in an item", "q1", q1="$5"),
    _r("num-double-sign", "`--5` in an item", "q1", q1="--5"),
    _r("num-sign-only", "`+` alone in an item", "q1", q1="+"),
    _r("num-point-only", "`.` alone in an item", "q1", q1="."),
    _r("num-400-digits", "a 400-digit number in an item", "q1", q1="9" * 400),
    _r("num-above-range", "`11` in an item (0-10)", "q1", q1="11"),
    _r("num-below-range", "`-1` in an item", "q1", q1="-1"),
    _r(
        "num-total-range",
        "total `41` alone (0-40)",
        "total",
        q1="",
        q2="",
        q3="",
        q4="",
        total="41",
    ),
    _r("num-total-disagrees", "a total that disagrees with the items", "total", total="30"),
    _r("num-partial-items", "three items of four", "q4", q4=""),
    _r("num-nothing", "no items and no total", "total", q1="", q2="", q3="", q4=""),
    # dates
    _r(
        "date-year-1-east",
        "`0001-01-01T00:00:00+01:00` (overflowed)",
        "administered_at",
        administered_at="0001-01-01T00:00:00+01:00",
    ),
    _r(
        "date-year-9999-west",
        "`9999-12-31T23:00:00-05:00` (overflowed)",
        "administered_at",
        administered_at="9999-12-31T23:00:00-05:00",
    ),
    _r("date-1900", "a date in 1900", "administered_at", administered_at="1900-01-01"),
    _r("date-1989", "the day before the window", "administered_at", administered_at="1989-12-31"),
    _r("date-2099", "a date in 2099", "administered_at", administered_at="2099-01-01"),
    _r("date-feb-30", "`2025-02-30`", "administered_at", administered_at="2025-02-30"),
    _r("date-month-13", "`2025-13-45`", "administered_at", administered_at="2025-13-45"),
    _r(
        "date-us-format",
        "`03/03/2025` (not ISO 8601)",
        "administered_at",
        administered_at="03/03/2025",
    ),
    _r("date-hour-25", "`2025-03-03T25:00`", "administered_at", administered_at="2025-03-03T25:00"),
    _r("date-word", "`yesterday`", "administered_at", administered_at="yesterday"),
    _r(
        "date-bad-offset",
        "offset `+25:00`",
        "administered_at",
        administered_at="2025-03-03T10:00:00+25:00",
    ),
    _r(
        "dob-after",
        "date of birth after the administration",
        "date_of_birth",
        date_of_birth="2026-01-01",
    ),
    _r("dob-word", "date of birth `unknown`", "date_of_birth", date_of_birth="unknown"),
    # identifiers
    _r("id-ansi", "client id with an ANSI escape sequence", "client_id", client_id="B01\x1b[31m"),
    _r("id-nul", "client id with a NUL", "client_id", client_id="B01\x00"),
    _r("id-10000", "client id of 10,000 characters", "client_id", client_id="B" * 10000),
    _r("id-129", "client id of 129 characters", "client_id", client_id="B" * 129),
    _r("id-bidi", "client id with a right-to-left override", "client_id", client_id="B01\u202e"),
    _r("id-zero-width", "client id with a zero-width space", "client_id", client_id="B0\u200b1"),
    _r("id-tab", "client id with a tab", "client_id", client_id="B0\t1"),
    _r("id-line-separator", "client id with U+2028", "client_id", client_id="B0\u20281"),
    _r("id-nbsp", "client id with a no-break space inside", "client_id", client_id="B0\u00a01"),
    _r("id-vertical-tab", "rater with a vertical tab", "rater", rater="par\x0bent"),
    _r(
        "clinician-escape",
        "clinician id with an escape sequence",
        "clinician_id",
        clinician_id="T01\x1b]0;x\x07",
    ),
    _r("episode-long", "episode id of 200 characters", "episode_id", episode_id="E" * 200),
    _r("site-nul", "site with a NUL", "site", site="North\x00"),
    # other fields
    _r("measure-unknown", "measure `XYZ`", "measure", measure="XYZ"),
    _r("session-1e20", "session `1e20`", "session", session="1e20"),
    _r("session-negative", "session `-1`", "session", session="-1"),
    _r("session-fraction", "session `2.5`", "session", session="2.5"),
    _r("session-huge", "session `10000`", "session", session="10000"),
    _r("age-200", "age `200`", "age", age="200"),
    _r("age-negative", "age `-3`", "age", age="-3"),
    _r("age-text", "age `abc`", "age", age="abc"),
    _r("key-too-long", "a source_key of 2,000 characters", "source_key", source_key="k" * 2000),
    # rows that cannot be read as cells
    RowCase(
        "row-stray-quote",
        'a stray `"` opening the last cell',
        {},
        "row",
        raw=b'B01,2025-03-03,ORS,5,6,7,8,,"T01,,,,,,,\n',
    ),
    RowCase(
        "row-quote-in-id",
        'a stray `"` opening the client id',
        {},
        "row",
        raw=b'"B01,2025-03-03,ORS,5,6,7,8,,T01,,,,1,,,\n',
        keyed=False,
    ),
    RowCase(
        "row-extra-cells",
        "more cells than the header (an unquoted decimal comma)",
        {},
        "row",
        raw=b"B01,2025-03-03,ORS,5,6,7,8,,T01,,,,1,,,,7,5\n",
        keyed=False,
    ),
    RowCase(
        "row-invalid-utf8",
        "bytes that are not UTF-8",
        {},
        "row",
        raw=b"B\xe9\xff01,2025-03-03,ORS,5,6,7,8,,T01,,,,1,,,\n",
        keyed=False,
    ),
    RowCase(
        "row-only-id",
        "a client id and nothing else",
        {},
        "administered_at",
        raw=b"B01\n",
        keyed=False,
    ),
    # accepted forms (exit 0, the row is stored)
    _r("ok-decimal-comma", "`7,5` (a decimal comma)", None, q1="7,5"),
    _r("ok-zero", "`0` in every item (0 is a score)", None, q1="0", q2="0", q3="0", q4="0"),
    _r("ok-spaces", "spaces around values", None, q1=" 5 ", client_id=" B01 "),
    _r("ok-total-only", "the total alone", None, q1="", q2="", q3="", q4="", total="26"),
    _r(
        "ok-offset", "a date-time with an offset", None, administered_at="2025-03-03T10:00:00-05:00"
    ),
    _r("ok-unicode-id", "a client id with accents and CJK", None, client_id="Bé01漢"),
    _r("ok-trailing-point", "`5.` in an item", None, q1="5."),
)


# --- files ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileCase:
    """Files in the source folder; the errors by location → field, and the good rows stored."""

    id: str
    what: str
    build: Callable[[], dict[str, bytes]]
    errors: dict[str, str]  # location ("a.csv line 7", "a.csv line 1", "b.csv") -> field
    stored: int  # administrations that must be stored
    exit: int = 1
    absent: tuple[str, ...] = ()  # source keys that must not be stored


def _goods(prefix: str, n: int) -> list[bytes]:
    return [line(base(f"{prefix}{i:05d}")) for i in range(n)]


def _stray_quote_issue() -> dict[str, bytes]:
    head = b"client_id,administered_at,measure,q1,q2,q3,q4,total,clinician_id\n"
    rows = [b'A,2025-03-03,ORS,5,5,5,5,,"T1\n']
    rows += [f"C{i:02d},2025-03-03,ORS,5,5,5,5,,T1\n".encode() for i in range(20)]
    return {"a.csv": head + b"".join(rows)}


def _stray_quote_near_end() -> dict[str, bytes]:
    rows = _goods("C", 20000)
    rows[19950] = b'B01,2025-03-03,ORS,5,6,7,8,,"T01,,,,,,,\n'
    return {"a.csv": HEADER_LINE + b"".join(rows)}


def _many_stray_quotes() -> dict[str, bytes]:
    rows = _goods("C", 30)
    for i in (3, 10, 25):
        rows[i] = f'Q{i},2025-03-03,ORS,5,6,7,8,,"T01,,,,,,,\n'.encode()
    return {"a.csv": HEADER_LINE + b"".join(rows)}


def _multiline_cell() -> dict[str, bytes]:
    rows = _goods("C", 10)
    rows.insert(4, b'B01,2025-03-03,ORS,5,6,7,8,,T01,"first\n')
    rows.insert(5, b'episode",,,,,,\n')
    return {"a.csv": HEADER_LINE + b"".join(rows)}


def _field_limit() -> dict[str, bytes]:
    rows = _goods("C", 10)
    rows.insert(5, b'B01,2025-03-03,ORS,5,6,7,8,,"' + b"x" * 200_000 + b'",,,,,,,\n')
    return {"a.csv": HEADER_LINE + b"".join(rows)}


def _long_line() -> dict[str, bytes]:
    rows = _goods("C", 10)
    rows.insert(5, b"B01,2025-03-03,ORS,5,6,7,8,," + b"y" * 300_000 + b",,,,,,,\n")
    return {"a.csv": HEADER_LINE + b"".join(rows)}


def _bad_byte_at(n_rows: int, at: int) -> Callable[[], dict[str, bytes]]:
    def build() -> dict[str, bytes]:
        rows = _goods("C", n_rows)
        rows[at] = b"B\xe9\xff01,2025-03-03,ORS,5,6,7,8,,T01,,,,1,,,\n"
        return {"a.csv": HEADER_LINE + b"".join(rows)}

    return build


def _with_good_file(name: str, content: bytes) -> Callable[[], dict[str, bytes]]:
    def build() -> dict[str, bytes]:
        return {name: content, "z.csv": HEADER_LINE + b"".join(_goods("Z", 5))}

    return build


def _duplicates() -> dict[str, bytes]:
    rows = _goods("C", 10)
    rows.insert(3, line(base("D01")))
    rows.insert(8, line(base("D01", q1="9")))
    return {"a.csv": HEADER_LINE + b"".join(rows)}


def _semicolons() -> dict[str, bytes]:
    text = "client_id;administered_at;measure;q1;q2;q3;q4\n"
    text += "".join(f"S{i};2025-03-03;ORS;5,5;6;7;8\n" for i in range(5))
    return {"a.csv": text.encode()}


def _line_endings() -> dict[str, bytes]:
    rows = [r.rstrip(b"\n") for r in _goods("C", 6)]
    ends = [b"\r\n", b"\n", b"\r", b"\r\n", b"\n", b"\r\n"]
    return {
        "a.csv": HEADER_LINE.rstrip(b"\n")
        + b"\r\n"
        + b"".join(r + e for r, e in zip(rows, ends, strict=True))
    }


def _blank_lines() -> dict[str, bytes]:
    rows = _goods("C", 6)
    rows.insert(2, b"\n")
    rows.insert(4, b" , ,  \n")
    return {"a.csv": HEADER_LINE + b"".join(rows)}


def _quote_last_line() -> dict[str, bytes]:
    return {"a.csv": HEADER_LINE + b"".join(_goods("C", 5)) + b'B01,2025-03-03,ORS,5,6,7,8,,"T01'}


def _nul_row() -> dict[str, bytes]:
    rows = _goods("C", 6)
    rows.insert(3, b"B01\x00,2025-03-03,ORS,5,6,7,8,,T01,,,,1,,,\n")
    return {"a.csv": HEADER_LINE + b"".join(rows)}


FILE_CASES: tuple[FileCase, ...] = (
    FileCase(
        "file-stray-quote",
        "the audit's file: `A,...,\"T1` then 20 valid rows",
        _stray_quote_issue,
        {"a.csv line 2": "row"},
        20,
        absent=(key("A"),),
    ),
    FileCase(
        "file-stray-quote-20000",
        "a stray quote 50 rows before the end of 20,000 rows",
        _stray_quote_near_end,
        {"a.csv line 19952": "row"},
        19999,
    ),
    FileCase(
        "file-three-stray-quotes",
        "three stray quotes in 30 rows",
        _many_stray_quotes,
        {"a.csv line 5": "row", "a.csv line 12": "row", "a.csv line 27": "row"},
        27,
    ),
    FileCase(
        "file-quote-last-line",
        "a stray quote on a last line without a line break",
        _quote_last_line,
        {"a.csv line 7": "row"},
        5,
    ),
    FileCase(
        "file-multiline-cell",
        "a quoted cell holding a line break",
        _multiline_cell,
        {"a.csv line 6": "row", "a.csv line 7": "administered_at"},
        10,
    ),
    FileCase(
        "file-field-limit",
        "a 200,000-character quoted field (csv's field limit)",
        _field_limit,
        {"a.csv line 7": "row"},
        10,
    ),
    FileCase("file-long-line", "a 300,000-character line", _long_line, {"a.csv line 7": "row"}, 10),
    FileCase(
        "file-bad-byte-first-row",
        "invalid UTF-8 in the first data row",
        _bad_byte_at(10, 0),
        {"a.csv line 2": "row"},
        9,
    ),
    FileCase(
        "file-bad-byte-line-10001",
        "invalid UTF-8 on line 10,001 of 10,001",
        _bad_byte_at(10000, 9999),
        {"a.csv line 10001": "row"},
        9999,
    ),
    FileCase(
        "file-bad-header-bytes",
        "invalid UTF-8 in the header (another file is fine)",
        _with_good_file("a.csv", b"client\xff_id,administered_at\nC1,2025-03-03\n"),
        {"a.csv line 1": "header"},
        5,
    ),
    FileCase(
        "file-empty",
        "an empty file beside a good one",
        _with_good_file("a.csv", b""),
        {"a.csv line 1": "header"},
        5,
    ),
    FileCase(
        "file-binary",
        "random bytes named .csv beside a good one",
        _with_good_file("a.csv", bytes(range(256)) * 4),
        {"a.csv line 1": "header"},
        5,
    ),
    FileCase(
        "file-utf16",
        "a UTF-16 file read as UTF-8",
        _with_good_file("a.csv", "client_id,administered_at\n".encode("utf-16")),
        {"a.csv line 1": "header"},
        5,
    ),
    FileCase(
        "file-missing-column",
        "a header without `measure`",
        _with_good_file("a.csv", b"client_id,administered_at,total\nC1,2025-03-03,20\n"),
        {"a.csv line 1": "header"},
        5,
    ),
    FileCase(
        "file-quote-in-header",
        "a stray quote in the header",
        _with_good_file("a.csv", b'client_id,"administered_at,measure,total\nC1,x,ORS,2\n'),
        {"a.csv line 1": "header"},
        5,
    ),
    FileCase(
        "file-duplicate-key",
        "the same client, date and measure twice (one entry naming both lines)",
        _duplicates,
        {"a.csv line 5": "source_key"},
        10,
    ),
    FileCase("file-nul", "a NUL byte inside a row", _nul_row, {"a.csv line 5": "client_id"}, 6),
    FileCase("file-header-only", "a header and no rows", lambda: {"a.csv": HEADER_LINE}, {}, 0, 0),
    FileCase("file-semicolons", "`;` as delimiter with decimal commas", _semicolons, {}, 5, 0),
    FileCase("file-mixed-line-ends", "CRLF, LF and CR line ends mixed", _line_endings, {}, 6, 0),
    FileCase(
        "file-bom",
        "a UTF-8 byte-order mark",
        lambda: {"a.csv": b"\xef\xbb\xbf" + HEADER_LINE + b"".join(_goods("C", 4))},
        {},
        4,
        0,
    ),
    FileCase(
        "file-blank-lines", "blank and whitespace-only lines between rows", _blank_lines, {}, 6, 0
    ),
)


# --- configs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigCase:
    """A config file (``{store}``, ``{input}``, ``{scores}`` are filled in); exit and the text
    it names.

    A refused config (exit 3) must create no store.
    """

    id: str
    what: str
    text: bytes
    exit: int
    names: str
    store_ok: bool = False  # the failure is a source's own (others would still sync)


GOOD_CONFIG = (
    b'[store]\npath = "{store}"\n[sync]\ntimezone = "UTC"\n'
    b'[sources.clinic]\nadapter = "csv"\npath = "{input}"\nscores_path = "{scores}"\n'
)


def _cfg(extra: str = "", *, sync: str = "", rules: str = "") -> bytes:
    text = GOOD_CONFIG.decode().replace("[sync]\n", f"[sync]\n{sync}")
    if rules:
        text += f"\n[rules]\n{rules}\n"
    return (text + extra).encode()


CONFIG_CASES: tuple[ConfigCase, ...] = (
    ConfigCase(
        "cfg-rc-nan",
        "`ors_reliable_change = nan`",
        _cfg(rules="ors_reliable_change = nan"),
        3,
        "ors_reliable_change",
    ),
    ConfigCase(
        "cfg-rc-inf",
        "`ors_reliable_change = inf`",
        _cfg(rules="ors_reliable_change = inf"),
        3,
        "ors_reliable_change",
    ),
    ConfigCase(
        "cfg-rc-negative",
        "`ors_reliable_change = -5`",
        _cfg(rules="ors_reliable_change = -5"),
        3,
        "ors_reliable_change",
    ),
    ConfigCase(
        "cfg-rc-zero",
        "`ors_reliable_change = 0`",
        _cfg(rules="ors_reliable_change = 0"),
        3,
        "ors_reliable_change",
    ),
    ConfigCase(
        "cfg-srs-cutoff-nan", "`srs_cutoff = nan`", _cfg(rules="srs_cutoff = nan"), 3, "srs_cutoff"
    ),
    ConfigCase(
        "cfg-srs-cutoff-41",
        "`srs_cutoff = 41` (SRS is 0-40)",
        _cfg(rules="srs_cutoff = 41"),
        3,
        "srs_cutoff",
    ),
    ConfigCase(
        "cfg-srs-drop-negative", "`srs_drop = -1`", _cfg(rules="srs_drop = -1"), 3, "srs_drop"
    ),
    ConfigCase(
        "cfg-low-item-inf",
        "`srs_low_item = -inf`",
        _cfg(rules="srs_low_item = -inf"),
        3,
        "srs_low_item",
    ),
    ConfigCase(
        "cfg-cutoff-nan",
        '`[rules.cutoffs] "ORS.adult" = nan`',
        _cfg(rules='cutoffs = {"ORS.adult" = nan}'),
        3,
        "ORS.adult",
    ),
    ConfigCase(
        "cfg-rc-table-negative",
        "`[rules.reliable_change] ORS = -5`",
        _cfg(rules="reliable_change = {ORS = -5}"),
        3,
        "reliable_change",
    ),
    ConfigCase(
        "cfg-unknown-disabled",
        '`disabled = ["ors.chekpoint"]` (a typo)',
        _cfg(rules='disabled = ["ors.chekpoint"]'),
        3,
        "ors.chekpoint",
    ),
    ConfigCase(
        "cfg-unknown-enabled",
        '`enabled = ["srs.low_items"]` (a typo)',
        _cfg(rules='enabled = ["srs.low_items"]'),
        3,
        "srs.low_items",
    ),
    ConfigCase(
        "cfg-rules-string",
        '`srs_drop = "1"` (a string)',
        _cfg(rules='srs_drop = "1"'),
        3,
        "srs_drop",
    ),
    ConfigCase(
        "cfg-unknown-rules-key",
        "an unknown `[rules]` key",
        _cfg(rules="srs_cutof = 36"),
        3,
        "srs_cutof",
    ),
    ConfigCase(
        "cfg-checkpoints",
        "`checkpoint_sessions = [5, 3]`",
        _cfg(rules="checkpoint_sessions = [5, 3]"),
        3,
        "checkpoint_sessions",
    ),
    ConfigCase(
        "cfg-comparison",
        '`clinical_comparison = "under"`',
        _cfg(rules='clinical_comparison = "under"'),
        3,
        "clinical_comparison",
    ),
    ConfigCase(
        "cfg-gap-zero",
        "`episode_gap_days = 0`",
        _cfg(rules="episode_gap_days = 0"),
        3,
        "episode_gap_days",
    ),
    ConfigCase("cfg-bom", "a UTF-8 byte-order mark (accepted)", b"\xef\xbb\xbf" + _cfg(), 0, ""),
    ConfigCase(
        "cfg-cp1252",
        "a cp1252 `é` in a comment (not UTF-8)",
        _cfg() + b"# caf\xe9\n",
        3,
        "not UTF-8 text (line",
    ),
    ConfigCase("cfg-empty", "an empty file", b"", 3, "is empty"),
    ConfigCase("cfg-comments-only", "only comments", b"# nothing here\n\n", 3, "is empty"),
    ConfigCase(
        "cfg-no-sources",
        "a [store] and no sources",
        b'[store]\npath = "{store}"\n',
        3,
        "no sources",
    ),
    ConfigCase(
        "cfg-all-disabled",
        "every source `enabled = false`",
        _cfg().replace(b'adapter = "csv"', b'adapter = "csv"\nenabled = false'),
        3,
        "enabled = false",
    ),
    ConfigCase("cfg-bad-toml", "not TOML", b"[store\npath = 1\n", 3, "not valid TOML"),
    ConfigCase(
        "cfg-unknown-top", "an unknown top-level key", _cfg("\n[stor]\npath = 'x'\n"), 3, "stor"
    ),
    ConfigCase(
        "cfg-bad-timezone",
        '`timezone = "Mars/Olympus"`',
        GOOD_CONFIG.replace(b'"UTC"', b'"Mars/Olympus"'),
        3,
        "Mars/Olympus",
    ),
    ConfigCase(
        "cfg-batch-zero",
        "`record_batch_size = 0`",
        _cfg(sync="record_batch_size = 0\n"),
        3,
        "record_batch_size",
    ),
    ConfigCase(
        "cfg-store-empty",
        '`[store] path = ""`',
        GOOD_CONFIG.replace(b'path = "{store}"', b'path = ""'),
        3,
        "[store] path",
    ),
    ConfigCase(
        "cfg-secret-in-file",
        "a token in the config file",
        _cfg().replace(b'adapter = "csv"', b'adapter = "csv"\ntoken = "abc"'),
        3,
        "token",
    ),
    ConfigCase(
        "cfg-source-name",
        "a source named `Clinic-1`",
        _cfg().replace(b"[sources.clinic]", b'[sources."Clinic-1"]'),
        3,
        "Clinic-1",
    ),
    ConfigCase(
        "cfg-unknown-adapter",
        '`adapter = "cvs"` (fails that source only)',
        _cfg().replace(b'adapter = "csv"', b'adapter = "cvs"'),
        3,
        "cvs",
        store_ok=True,
    ),
    ConfigCase("cfg-unknown-source", "`fit sync --source nope`", _cfg(), 3, "nope"),
)


# --- stores ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreCase:
    """A damaged or unusable store; exit and the text the message names (``{store}``: path)."""

    id: str
    what: str
    exit: int
    names: str
    as_other_user: bool = False  # permissions bind only a user who is not root


STORE_CASES: tuple[StoreCase, ...] = (
    StoreCase(
        "store-random-bytes", "a file of random bytes", 3, "is damaged or is not a fit-sync store"
    ),
    StoreCase("store-truncated", "a store cut in half", 3, "is damaged or is not a fit-sync store"),
    StoreCase("store-text-file", "a text file where the store should be", 3, "is damaged"),
    StoreCase("store-folder", "the store path is a folder", 3, "is a folder"),
    StoreCase("store-zero-bytes", "an empty (0-byte) file (accepted: a new store)", 0, ""),
    StoreCase("store-newer-schema", "a store of a newer fit-sync", 3, "newer than this fit-sync"),
    StoreCase("store-read-only", "a store the user cannot write", 3, "read-only", True),
    StoreCase("store-folder-unwritable", "a folder the user cannot write", 3, "not writable", True),
    StoreCase(
        "store-folder-no-search", "a folder the user cannot enter", 3, "cannot be entered", True
    ),
    StoreCase(
        "store-lock-symlink",
        "`<store>.lock` is a symbolic link to another file",
        3,
        "symbolic link",
    ),
    StoreCase(
        "store-lock-hardlink", "`<store>.lock` is a hard link to another file", 3, "hard link"
    ),
    StoreCase(
        "store-via-symlink",
        "the store reached through a symlinked folder while a sync holds the real one",
        5,
        "another fit sync is running",
    ),
)


# --- HTTP bodies (fit serve) ----------------------------------------------------------------


@dataclass(frozen=True)
class HttpCase:
    """One raw request to the receiver; the status, and whether it queued a record."""

    id: str
    what: str
    request: bytes
    status: int
    queued: bool = False


NOTICE = (
    b"redcap_url=https%3A%2F%2Fredcap.example.org%2F&project_id=4242&record=1003&instrument=ors"
)


def post(body: bytes = NOTICE, *, path: bytes = b"/det", headers: bytes | None = None) -> bytes:
    if headers is None:
        headers = (
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n"
        )
    return b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body


FORM = b"Content-Type: application/x-www-form-urlencoded\r\n"

HTTP_CASES: tuple[HttpCase, ...] = (
    HttpCase("http-ok", "a valid notice (control)", post(), 200, True),
    HttpCase(
        "http-length-negative",
        "`Content-Length: -1`",
        post(headers=FORM + b"Content-Length: -1\r\n"),
        400,
    ),
    HttpCase(
        "http-length-text",
        "`Content-Length: abc`",
        post(headers=FORM + b"Content-Length: abc\r\n"),
        400,
    ),
    HttpCase(
        "http-length-plus",
        "`Content-Length: +5`",
        post(headers=FORM + b"Content-Length: +5\r\n"),
        400,
    ),
    HttpCase(
        "http-length-two",
        "two different Content-Lengths",
        post(headers=FORM + b"Content-Length: 5\r\nContent-Length: 6\r\n"),
        400,
    ),
    HttpCase("http-length-missing", "no Content-Length", post(headers=FORM), 411),
    HttpCase(
        "http-chunked",
        "a chunked body (no length)",
        post(b"5\r\nhello\r\n0\r\n\r\n", headers=FORM + b"Transfer-Encoding: chunked\r\n"),
        411,
    ),
    HttpCase(
        "http-length-huge",
        "`Content-Length: 400000000`",
        post(headers=FORM + b"Content-Length: 400000000\r\n"),
        413,
    ),
    HttpCase("http-length-65537", "a 65,537-byte body", post(b"record=1&" + b"x" * 65528), 413),
    HttpCase(
        "http-headers-huge",
        "40 KiB of headers",
        post(headers=FORM + b"X-Big: " + b"a" * 40000 + b"\r\n"),
        431,
    ),
    HttpCase(
        "http-headers-never-end",
        "headers that never end (request timeout)",
        b"POST /det HTTP/1.1\r\nHost: x\r\nX-Slow: a",
        408,
    ),
    HttpCase(
        "http-body-short",
        "a body shorter than its Content-Length (request timeout)",
        post(headers=FORM + b"Content-Length: 500\r\n"),
        408,
    ),
    HttpCase("http-get", "GET", b"GET /det HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    HttpCase("http-put", "PUT", post().replace(b"POST", b"PUT", 1), 405),
    HttpCase("http-wrong-path", "another path", post(path=b"/other"), 404),
    HttpCase("http-path-traversal", "`/det/../det`", post(path=b"/det/../det"), 404),
    HttpCase(
        "http-json",
        "a JSON body",
        post(headers=b"Content-Type: application/json\r\nContent-Length: 2\r\n", body=b"{}"),
        415,
    ),
    HttpCase(
        "http-garbage", "random bytes instead of HTTP", bytes(range(1, 256)) + b"\r\n\r\n", 400
    ),
    HttpCase("http-no-version", "a request line without a version", b"POST /det\r\n\r\n", 400),
    HttpCase("http-empty-body", "an empty form body", post(b""), 200),
    HttpCase(
        "http-other-project",
        "a notice for another project",
        post(NOTICE.replace(b"4242", b"99")),
        200,
    ),
    HttpCase(
        "http-other-host",
        "a notice naming another server",
        post(NOTICE.replace(b"redcap.example.org", b"evil.example.net")),
        200,
    ),
    HttpCase(
        "http-record-long",
        "a record id of 5,000 characters",
        post(NOTICE.replace(b"record=1003", b"record=" + b"9" * 5000)),
        200,
    ),
    HttpCase(
        "http-record-newline",
        "a record id with a line break and ANSI codes",
        post(NOTICE.replace(b"record=1003", b"record=1%0AERROR+fit%3A+forged%1B%5B31m")),
        200,
    ),
    HttpCase(
        "http-not-utf8", "a body that is not UTF-8", post(NOTICE + b"&x=%ff%fe\xff"), 200, True
    ),
    HttpCase(
        "http-unmapped-instrument",
        "an instrument that is not mapped",
        post(NOTICE.replace(b"instrument=ors", b"instrument=fit_scores")),
        200,
    ),
)


# --- the summary table ----------------------------------------------------------------------


def table() -> str:
    """The Markdown table of the corpus (docs/hardening.md holds a copy)."""
    out = ["| kind | case | input | outcome |", "|---|---|---|---|"]
    for r in ROW_CASES:
        outcome = f"exit {r.exit}, line 7 named, field `{r.field}`" if r.field else "exit 0, stored"
        out.append(f"| row | `{r.id}` | {r.what} | {outcome}; the 10 good rows stored |")
    for f in FILE_CASES:
        named = ", ".join(sorted(set(f.errors))) or "nothing to report"
        out.append(f"| file | `{f.id}` | {f.what} | exit {f.exit}; {named}; {f.stored} stored |")
    for c in CONFIG_CASES:
        store = "" if c.store_ok else ", no store created"
        named = f"names `{c.names}`{store}" if c.exit else "accepted"
        out.append(f"| config | `{c.id}` | {c.what} | exit {c.exit}; {named} |")
    for s in STORE_CASES:
        named = f"names the file: {s.names}" if s.names else "accepted"
        out.append(f"| store | `{s.id}` | {s.what} | exit {s.exit}; {named} |")
    for h in HTTP_CASES:
        queued = "queued" if h.queued else "nothing queued"
        out.append(f"| HTTP | `{h.id}` | {h.what} | {h.status}; {queued}; the next notice served |")
    return "\n".join(out)


def count() -> int:
    return len(ROW_CASES) + len(FILE_CASES) + len(CONFIG_CASES) + len(STORE_CASES) + len(HTTP_CASES)


if __name__ == "__main__":
    print(table())
