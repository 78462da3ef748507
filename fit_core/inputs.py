"""The forms fit-sync accepts for values that come from outside: numbers, identifiers, dates.

Every adapter's values reach the core as text (or JSON numbers) and are checked here, through
:mod:`fit_core.validation`. A value outside these forms is an error of its record, named by
field, with a reason that never repeats the value. The forms are documented in
docs/hardening.md; in short:

Numbers
    Plain decimal notation with the digits 0-9: an optional sign, digits, and an optional
    decimal point or decimal comma with digits (``7``, ``7.5``, ``7,5``, ``.5``). Not accepted:
    exponents (``1e1``), ``inf``/``nan``, other digit sets (Arabic-Indic ``٥``, full-width
    ``５``), inner spaces or underscores, both a comma and a point, and the ambiguous
    ``1,000`` / ``12,500`` (commas before groups of exactly three digits may be thousands
    separators; ``0,125`` is not ambiguous).
Identifiers (client, clinician, episode, rater, site)
    After trimming surrounding spaces: 1 to :data:`MAX_ID_LENGTH` characters, all printable
    (letters, marks, digits, punctuation, symbols and the ASCII space). Control characters
    (line breaks, tabs, NUL, escape sequences), formatting characters (bidirectional overrides,
    zero-width characters), other spaces and unpaired surrogates are refused: they forge log
    lines and make two clients look like one.
Source keys
    1 to :data:`MAX_KEY_LENGTH` characters of text that can be stored (no unpaired surrogates).
Dates
    Clinic-local dates from :data:`EARLIEST_DATE` to one day after the date of the run
    (:data:`FUTURE_SLACK`); anything else is a typo or a wrong column.
Whole numbers (age, session)
    Numbers as above without a fraction; sessions from 0 to :data:`MAX_SESSION`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

EARLIEST_DATE = dt.date(1990, 1, 1)
FUTURE_SLACK = dt.timedelta(days=1)
MAX_ID_LENGTH = 128
MAX_KEY_LENGTH = 1024
MAX_SESSION = 9999

_PLAIN = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)")
_GROUPED = re.compile(r"[+-]?[1-9][0-9]{0,2}(?:,[0-9]{3})+")  # 0,125 is never a thousand
_EXPONENT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][+-]?[0-9]+")

NOT_A_NUMBER = "not a number"
EXPONENT = "uses exponent notation (write the plain decimal number)"
OTHER_DIGITS = "uses digits other than 0-9"
AMBIGUOUS = (
    "ambiguous: a comma before three digits may be a thousands separator or a decimal comma "
    "(write the value without the comma, or with a point)"
)
TOO_LARGE = "out of range (too large)"


def parse_number(value: Any) -> float | None:
    """A number from a cell: ``""``/None → None (missing); ``"7,5"`` → 7.5.

    Raises ValueError whose message is the reason (never the value) for anything outside the
    accepted form (see the module docstring).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(NOT_A_NUMBER)
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise ValueError(TOO_LARGE) from None
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(NOT_A_NUMBER)
        return value
    text = value.strip() if isinstance(value, str) else str(value).strip()
    if not text:
        return None
    if "," in text and _GROUPED.fullmatch(text):
        raise ValueError(AMBIGUOUS)
    if not _PLAIN.fullmatch(text):
        raise ValueError(_number_problem(text))
    text = text.replace(",", ".")
    f = float(text)
    if math.isinf(f):
        raise ValueError(TOO_LARGE)
    return f


def _number_problem(text: str) -> str:
    if any(c.isdigit() and not c.isascii() for c in text):
        return OTHER_DIGITS
    if _EXPONENT.fullmatch(text):
        return EXPONENT
    return NOT_A_NUMBER


def parse_whole(value: Any) -> int | None:
    """A whole number (age, session) in the accepted number form; ValueError with the reason."""
    f = parse_number(value)
    if f is None:
        return None
    if not f.is_integer():
        raise ValueError("not a whole number")
    return int(f)


def id_problem(text: str) -> str | None:
    """Why ``text`` (already trimmed, non-empty) is not an acceptable identifier, or None."""
    if len(text) > MAX_ID_LENGTH:
        return f"longer than {MAX_ID_LENGTH} characters"
    if not text.isprintable():
        return (
            "contains control, formatting or invisible characters (line breaks, tabs, escape "
            "sequences, NUL ...)"
        )
    return None


def key_problem(key: str) -> str | None:
    """Why a source key cannot be stored, or None."""
    if not key:
        return "missing"
    if len(key) > MAX_KEY_LENGTH:
        return f"longer than {MAX_KEY_LENGTH} characters"
    if not storable(key):
        return "not valid text (unpaired surrogate characters)"
    return None


def storable(text: str) -> bool:
    """``text`` can be written as UTF-8 (to the store, a file or a terminal)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_text(text: str) -> str:
    """``text``, with characters that cannot be written as UTF-8 backslash-escaped."""
    return text if storable(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


TOO_EARLY = f"before {EARLIEST_DATE.isoformat()}: check the year"
TOO_LATE = "in the future (more than one day after the sync): check the year and the column"


def date_problem(day: dt.date, latest: dt.date) -> str | None:
    """Why a clinic-local administration date is outside the accepted window, or None."""
    if day < EARLIEST_DATE:
        return TOO_EARLY
    if day > latest:
        return TOO_LATE
    return None


def latest_date(today: dt.date) -> dt.date:
    """The last accepted administration date for a run on ``today``."""
    return today + FUTURE_SLACK
