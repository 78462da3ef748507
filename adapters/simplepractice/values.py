"""Cell values of SimplePractice exports: dates and times, appointment statuses, billing codes.

Pure functions. Error messages never quote a cell, except an unknown *status* word (statuses
are not PHI, and naming the spelling is what lets a user map it).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence

Cell = str | dt.datetime | dt.date | dt.time

ISO = "iso"
#: tried in order; ``iso`` is ISO 8601 (date or date-time, with or without an offset)
DEFAULT_DATE_FORMATS: tuple[str, ...] = (
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %I:%M%p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    ISO,
)
#: how numeric dates (``NN/NN/YYYY``) are read: ``auto`` (detected per file), month first
#: (US) or day first
DATE_ORDERS = ("auto", "MDY", "DMY")
_DATE_TIME = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2})$")
_DATE_ONLY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})$")
#: regular expressions equivalent to the commonest strptime formats (strptime is slow), and
#: whether the month comes first
_FAST: Mapping[str, tuple[re.Pattern[str], bool]] = {
    "%m/%d/%Y %H:%M": (_DATE_TIME, True),
    "%m/%d/%Y": (_DATE_ONLY, True),
    "%d/%m/%Y %H:%M": (_DATE_TIME, False),
    "%d/%m/%Y": (_DATE_ONLY, False),
}
_NUMERIC = re.compile(r"\s*(\d{1,2})/(\d{1,2})/(\d{4})(?!\d)")
TIME_FORMATS: tuple[str, ...] = ("%H:%M", "%I:%M %p", "%I:%M%p", "%H:%M:%S", "%I %p")

STATUSES = ("attended", "no_show", "late_cancel", "cancelled", "clinician_cancelled", "scheduled")
IGNORE = "ignore"

#: status spellings (normalised with :func:`status_word`) -> normalised status
STATUS_WORDS: Mapping[str, str] = {
    "show": "attended",
    "showed": "attended",
    "shown": "attended",
    "attended": "attended",
    "arrived": "attended",
    "completed": "attended",
    "kept": "attended",
    "no show": "no_show",
    "noshow": "no_show",
    "no showed": "no_show",
    "did not attend": "no_show",
    "late canceled": "late_cancel",
    "late cancelled": "late_cancel",
    "late cancel": "late_cancel",
    "late cancellation": "late_cancel",
    "canceled": "cancelled",
    "cancelled": "cancelled",
    "cancel": "cancelled",
    "cancellation": "cancelled",
    "client canceled": "cancelled",
    "client cancelled": "cancelled",
    "clinician canceled": "clinician_cancelled",
    "clinician cancelled": "clinician_cancelled",
    "provider canceled": "clinician_cancelled",
    "provider cancelled": "clinician_cancelled",
    "therapist canceled": "clinician_cancelled",
    "therapist cancelled": "clinician_cancelled",
    "": "scheduled",
    "scheduled": "scheduled",
    "confirmed": "scheduled",
    "booked": "scheduled",
    "pending": "scheduled",
}


class ValueProblem(ValueError):
    """A cell that cannot be read; ``field`` names the column's field, the text says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def text(cell: Cell | None) -> str:
    """A cell as stripped text (dates as ISO)."""
    if cell is None:
        return ""
    if isinstance(cell, dt.datetime | dt.date | dt.time):
        return cell.isoformat()
    return " ".join(cell.split())


def status_word(value: str) -> str:
    """A status spelling as compared: case-folded, ``-``/``_`` as spaces, spaces collapsed."""
    return " ".join(value.replace("-", " ").replace("_", " ").casefold().split())


def normalise_status(value: Cell | None, extra: Mapping[str, str]) -> str:
    """The normalised status of a cell (or ``"ignore"``); ValueProblem for an unknown word.

    ``extra`` (from the ``statuses`` option, keys already normalised) wins over the built-in
    spellings.
    """
    word = status_word(text(value))
    found = extra.get(word) or STATUS_WORDS.get(word)
    if found is None:
        shown = text(value)[:40]
        raise ValueProblem(
            "status",
            f"unknown status {shown!r} (known: Show, No Show, Late Canceled, Canceled, "
            'Clinician Canceled; map others with statuses = {"..." = "attended"} or "ignore")',
        )
    return found


def clean_code(value: Cell | None) -> str | None:
    """A billing (CPT) code: stripped (exports add trailing spaces), ``90791.0`` -> ``90791``,
    ``"90834 Psychotherapy, 45 min"`` -> ``90834``."""
    if isinstance(value, dt.date | dt.time):
        return None
    code = text(value)
    if code.endswith(".0") and code[:-2].isdigit():
        code = code[:-2]
    described = _DESCRIBED.match(code)
    if described:
        code = described.group(1)
    return code or None


def is_intake(code: str | None, intake_codes: frozenset[str]) -> bool:
    """True for a diagnostic-evaluation code (90791 by default), modifiers ignored."""
    if not code:
        return False
    base = re.split(r"[\s:,-]", code.strip(), maxsplit=1)[0].upper()
    return base in intake_codes


_DESCRIBED = re.compile(r"^([0-9]{4}[0-9A-Z])\s+\S.*$")  # a code followed by its description


def parse_when(
    cell: Cell | None, formats: Sequence[str], field: str = "date"
) -> tuple[dt.datetime, bool]:
    """(naive-or-aware datetime, has_time) from a date cell; ValueProblem if unreadable.

    Excel cells arrive as ``datetime``/``date`` already; midnight from Excel counts as a date
    without a time. Naive results are clinic-local; an ISO value with an offset stays aware.
    """
    if isinstance(cell, dt.datetime):
        has_time = cell.time() != dt.time(0, 0) or cell.tzinfo is not None
        return _sane(cell, field), has_time
    if isinstance(cell, dt.date):
        return _sane(dt.datetime(cell.year, cell.month, cell.day), field), False
    value = text(cell)
    if not value:
        raise ValueProblem(field, "empty")
    month_first = _BUILT_IN.get(tuple(formats))
    if month_first is not None:  # the built-in formats' numeric shapes without strptime
        quick = _numeric(value, month_first)
        if quick is not None:
            return _sane(quick[0], field), quick[1]
    for fmt in formats:
        if fmt == ISO:
            try:
                parsed = dt.datetime.fromisoformat(value)
            except ValueError:
                continue
            return _sane(parsed, field), len(value) > 10
        fast = _FAST.get(fmt)
        if fast is not None:
            m = fast[0].match(value)
            if m is None:
                continue
            month, day, year, *clock = (int(g) for g in m.groups())
            if not fast[1]:
                month, day = day, month
            hour, minute = clock if clock else (0, 0)
            try:
                parsed = dt.datetime(year, month, day, hour, minute)
            except ValueError:
                continue
        else:
            try:
                parsed = dt.datetime.strptime(value, fmt)
            except ValueError:
                continue
        return _sane(parsed, field), "%H" in fmt or "%I" in fmt
    shown = ", ".join(f for f in formats)
    raise ValueProblem(
        field, f"not a date in a known format (tried: {shown}; see date_formats and date_order)"
    )


def _numeric(value: str, month_first: bool) -> tuple[dt.datetime, bool] | None:
    """``NN/NN/YYYY`` with an optional time (24 h, seconds, AM/PM); None for other shapes or
    impossible dates (the formats then say why)."""
    m = _DATE_AND_CLOCK.match(value)
    if m is None:
        return None
    a, b, year = int(m[1]), int(m[2]), int(m[3])
    month, day = (a, b) if month_first else (b, a)
    clock = None
    if m[4]:
        try:
            clock = parse_time(m[4])
        except ValueProblem:
            return None
    try:
        return dt.datetime.combine(dt.date(year, month, day), clock or dt.time()), bool(m[4])
    except ValueError:
        return None


def day_first(formats: Sequence[str]) -> tuple[str, ...]:
    """``formats`` read day first: ``%m/%d/%Y`` -> ``%d/%m/%Y`` (other formats as they are)."""
    return tuple(f.replace("%m/%d", "%d/%m") for f in formats)


def order_evidence(cell: Cell | None) -> str | None:
    """What a date cell says about the order of a file's numeric dates.

    ``"MDY"`` when it can only be month first (``03/25/2026``), ``"DMY"`` when it can only be
    day first (``25/03/2026``), ``"either"`` when both readings are valid dates and differ
    (``03/04/2026``); None when the order does not matter (not a numeric date, ``03/03/2026``,
    or no valid reading at all).
    """
    if not isinstance(cell, str):
        return None
    m = _NUMERIC.match(cell)
    if m is None:
        return None
    a, b, year = (int(g) for g in m.groups())
    month_first, day_first_ = _valid(year, a, b), _valid(year, b, a)
    if month_first and day_first_:
        return "either" if a != b else None
    if month_first:
        return "MDY"
    if day_first_:
        return "DMY"
    return None


def _valid(year: int, month: int, day: int) -> bool:
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def parse_time(cell: Cell | None) -> dt.time | None:
    """A separate time cell (``14:30``, ``2:30 PM``, an Excel time; of a range such as
    ``10:00 AM - 10:50 AM`` the start); None when empty."""
    if isinstance(cell, dt.time):
        return cell
    if isinstance(cell, dt.datetime):
        return cell.time()
    value = text(cell)
    if not value:
        return None
    value = _RANGE.split(value, maxsplit=1)[0].strip()
    m = _CLOCK.match(value)
    if m is not None:  # the common shapes without strptime (slow)
        hour, minute, second = int(m[1]), int(m[2]), int(m[3] or 0)
        if m[4]:
            if not 1 <= hour <= 12:
                raise ValueProblem("time", "not a time (expected HH:MM or H:MM AM/PM)")
            hour = hour % 12 + (12 if m[4] in "pP" else 0)
        if hour < 24 and minute < 60 and second < 60:
            return dt.time(hour, minute, second)
    for fmt in TIME_FORMATS:
        try:
            return dt.datetime.strptime(value.upper(), fmt).time()
        except ValueError:
            continue
    raise ValueProblem("time", "not a time (expected HH:MM or H:MM AM/PM)")


_DATE_AND_CLOCK = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})(?: (\d{1,2}:\d{2}(?::\d{2})?(?: ?[AaPp][Mm])?))?$"
)
_RANGE = re.compile(r"\s+(?:-|–|to)\s+")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([AaPp])\.?[Mm]\.?)?$")


def _sane(value: dt.datetime, field: str) -> dt.datetime:
    if not 1900 <= value.year <= 2200:
        raise ValueProblem(field, "year out of range (a two-digit year? use MM/DD/YYYY)")
    return value


def to_utc(local: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """A clinic-local naive datetime (or an aware one) in UTC."""
    if local.tzinfo is None:
        local = local.replace(tzinfo=tz)
    return local.astimezone(dt.UTC)


def local_date(moment: dt.datetime, tz: dt.tzinfo) -> dt.date:
    """The clinic-local date of a naive-local or aware datetime."""
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(tz).date()


#: the built-in format lists -> whether they read month first (they have a fast path)
_BUILT_IN: Mapping[tuple[str, ...], bool] = {
    DEFAULT_DATE_FORMATS: True,
    day_first(DEFAULT_DATE_FORMATS): False,
}
