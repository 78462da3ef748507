"""Report kinds, their default column names, and how a header row becomes a :class:`Layout`.

SimplePractice names columns differently per report and version, so every field has a list of
candidate header names (compared case-insensitively, spaces collapsed). ``columns`` in the
source options replaces a field's candidates for one report kind. A candidate ``"Charge#2"``
means the second column named ``Charge`` (exports repeat header names); without ``#N`` the
first one is used.

Three kinds are detected from the header (and, where it leaves a doubt, from the file name
and the title lines above the header):

- ``appointments``: the appointment status / attendance report (date, client, status);
- ``billing``: the billing "appointment report" (Date of Service, Client, Clinician, Billing
  Code, and payment columns such as Client Payment Status, Paid, Unpaid; its payment statuses
  are not attendance and are never read);
- ``clients``: the client list (client id and/or name, date of birth, status, clinician).

A report that looks like a status report but lacks a column it needs (the status, the date) is
an error naming the column, never a billing report or a client list: billed rows would count
as attended sessions.

Header names are not PHI, but a file without a header row would show data as "columns": such a
row (one holding a date or a number) is never quoted in a message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

KINDS = ("appointments", "billing", "clients")

_COMMON_DATE = (
    "Date of Service",
    "Date",
    "Appointment Date",
    "Appointment Date/Time",
    "Date/Time",
    "Start",
    "Start Date",
    "Start Time",
    "Scheduled Date",
    "Service Date",
    "Appointment Start",
    "Start Date/Time",
    "Date & Time",
    "DOS",
)
_CLIENT = ("Client", "Client Name", "Name", "Patient", "Patient Name", "Client Full Name")
_NUMBER = ("Client ID", "Client Id", "Client Number", "Client #", "Patient ID")
_CLINICIAN = (
    "Clinician",
    "Clinician Name",
    "Provider",
    "Provider Name",
    "Therapist",
    "Rendering Provider",
)
_CODE = ("Billing Code", "CPT Code", "CPT", "Service Code", "Procedure Code", "Code", "Service")
_TIME = (
    "Time",
    "Start Time",
    "Appointment Time",
    "Appointment Start Time",
    "Start",
    "Time of Service",
)
#: payment columns: they mark a billing report (a status report does not say what was paid)
BILLING_EVIDENCE = (
    "Client Payment Status",
    "Insurance Payment Status",
    "Payment Status",
    "Paid",
    "Unpaid",
    "Uninvoiced",
)
#: words of a file name or title line that tell the report kind when the header does not
_STATUS_WORDS = re.compile(r"status|attendance|attended|no.?show", re.IGNORECASE)
_BILLING_WORDS = re.compile(r"billing|invoice|payment|income|charges", re.IGNORECASE)

#: kind -> field -> default candidate header names (first match wins)
DEFAULT_COLUMNS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "appointments": {
        "date": _COMMON_DATE,
        "time": _TIME,
        "client": _CLIENT,
        "client_number": _NUMBER,
        "status": (
            "Status",
            "Appointment Status",
            "Attendance",
            "Attendance Status",
            "Appt Status",
            "Show Status",
        ),
        "clinician": _CLINICIAN,
        "code": _CODE,
    },
    "billing": {
        "date": _COMMON_DATE,
        "time": _TIME,
        "client": _CLIENT,
        "client_number": _NUMBER,
        "clinician": _CLINICIAN,
        "code": _CODE,
    },
    "clients": {
        "client": (*_CLIENT, "Full Name"),
        "first_name": ("First Name", "Legal First Name", "Client First Name"),
        "last_name": ("Last Name", "Legal Last Name", "Client Last Name"),
        "client_number": (*_NUMBER, "ID", "Id"),
        "date_of_birth": ("Date of Birth", "DOB", "Birth Date", "Birthdate", "Birthday"),
        "status": ("Status", "Client Status"),
        "clinician": (*_CLINICIAN, "Primary Clinician", "Assigned Clinician"),
    },
}

#: fields a report kind cannot do without (a client reference is checked separately)
REQUIRED: Mapping[str, tuple[str, ...]] = {
    "appointments": ("date", "status"),
    "billing": ("date", "code"),
    "clients": (),
}

_OCCURRENCE = re.compile(r"^(.*?)#(\d+)$")
_MAX_SHOWN = 30


class HeaderError(Exception):
    """The header row does not fit a report kind; the message names what is missing."""


def norm(name: object) -> str:
    """A header name as compared: BOM dropped, case-folded, whitespace collapsed."""
    return " ".join(str(name).replace("\ufeff", "").casefold().split())


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each field of one report kind sits in a header (column indices)."""

    kind: str
    index: Mapping[str, int]
    link: int | None  # the link_column (ORS/SRS client id), when the report has it
    width: int

    def has(self, field: str) -> bool:
        return field in self.index

    @property
    def has_client_ref(self) -> bool:
        return self.link is not None or any(
            f in self.index for f in ("client", "client_number", "first_name", "last_name")
        )


def find(header: Sequence[str], candidate: str) -> int | None:
    """Index of ``candidate`` in the normalised ``header`` (``"Name#2"``: 2nd occurrence)."""
    wanted, nth = candidate, 1
    m = _OCCURRENCE.match(candidate.strip())
    if m and m.group(1).strip():
        wanted, nth = m.group(1), int(m.group(2))
    key = norm(wanted)
    seen = 0
    for i, h in enumerate(header):
        if h == key:
            seen += 1
            if seen == nth:
                return i
    return None


def candidates(
    kind: str, field: str, columns: Mapping[str, Mapping[str, Sequence[str]]]
) -> tuple[str, ...]:
    """The header names tried for ``field`` of ``kind``: the configured ones, else defaults."""
    override = columns.get(kind, {}).get(field)
    if override:
        return tuple(override)
    return DEFAULT_COLUMNS[kind][field]


def locate(
    header: Sequence[str], kind: str, field: str, columns: Mapping[str, Mapping[str, Sequence[str]]]
) -> int | None:
    for name in candidates(kind, field, columns):
        i = find(header, name)
        if i is not None:
            return i
    return None


def build_layout(
    raw_header: Sequence[object],
    kind: str,
    columns: Mapping[str, Mapping[str, Sequence[str]]],
    link_column: str | None,
) -> Layout:
    """The layout of ``kind`` over ``raw_header``; HeaderError naming a missing column."""
    header = [norm(h) for h in raw_header]
    index: dict[str, int] = {}
    for field in DEFAULT_COLUMNS[kind]:
        i = locate(header, kind, field, columns)
        if i is not None:
            index[field] = i
    if index.get("time") is not None and index.get("time") == index.get("date"):
        del index["time"]  # one "Start Time" column holding date and time
    link = find(header, link_column) if link_column else None
    layout = Layout(kind, index, link, len(header))
    for field in REQUIRED[kind]:
        if field not in index:
            raise HeaderError(_missing(kind, field, columns, raw_header))
    if not layout.has_client_ref:
        raise HeaderError(_missing(kind, "client", columns, raw_header, link_column))
    halves = ("first_name" in index) != ("last_name" in index)
    others = "client" in index or "client_number" in index or link is not None
    if kind == "clients" and halves and not others:
        half = "last_name" if "first_name" in index else "first_name"
        raise HeaderError(_missing(kind, half, columns, raw_header))
    return layout


def detect(
    raw_header: Sequence[object],
    columns: Mapping[str, Mapping[str, Sequence[str]]],
    link_column: str | None,
    hints: str = "",
) -> Layout:
    """Tell the report kind from the header (see the module doc); HeaderError if none fits.

    ``hints`` (the file name and any title lines above the header) break the tie when a report
    with dates has no status column: a name or title that speaks of status or attendance makes
    it a status report (then the missing status column is the error), one that speaks of
    billing or payments a billing report. Without hints, only a header with payment columns
    (:data:`BILLING_EVIDENCE`) is a billing report: a status report that lost its status
    column must never be read as billed, that is attended, sessions.
    """
    header = [norm(h) for h in raw_header]

    def has(kind: str, field: str) -> bool:
        return locate(header, kind, field, columns) is not None

    if has("appointments", "date") or has("billing", "date"):
        if has("appointments", "status"):
            return build_layout(raw_header, "appointments", columns, link_column)
        if is_billing(header, hints):
            return build_layout(raw_header, "billing", columns, link_column)
        raise HeaderError(
            _missing("appointments", "status", columns, raw_header)
            + ". Without it attended and missed appointments look the same, so the file is "
            "not read (if it is the billing report, say so with kinds, e.g. kinds = "
            '{"billing*.csv" = "billing"})'
        )
    status_report = has("billing", "code") or _STATUS_WORDS.search(hints)
    if has("appointments", "status") and status_report and not has("clients", "date_of_birth"):
        # a status report that lost its date column (not a client list with a status)
        return build_layout(raw_header, "appointments", columns, link_column)
    if has("clients", "date_of_birth") or has("clients", "client_number"):
        return build_layout(raw_header, "clients", columns, link_column)
    if has("appointments", "status"):  # an appointment report with an unknown date column
        return build_layout(raw_header, "appointments", columns, link_column)
    if has("billing", "code"):
        return build_layout(raw_header, "billing", columns, link_column)
    looked = ", ".join(repr(c) for c in candidates("appointments", "date", columns)[:6])
    born = ", ".join(repr(c) for c in candidates("clients", "date_of_birth", columns)[:3])
    raise HeaderError(
        "not a report fit-sync knows: an appointment or billing report needs a date column "
        f"(looked for {looked}, ...), a client list a date of birth ({born}, ...) or client id "
        f"column; {found_text(raw_header)} (map yours with columns, or set kinds)"
    )


def is_billing(header: Sequence[str], hints: str = "") -> bool:
    """Whether a report with dates and billing codes but no status column is the billing
    report: its name or title says so, or its header has payment columns."""
    if _STATUS_WORDS.search(hints):
        return False
    if _BILLING_WORDS.search(hints):
        return True
    return any(find(header, name) is not None for name in BILLING_EVIDENCE)


def _missing(
    kind: str,
    field: str,
    columns: Mapping[str, Mapping[str, Sequence[str]]],
    raw_header: Sequence[object],
    link_column: str | None = None,
) -> str:
    if field == "client":
        names = [*candidates(kind, "client", columns), *candidates(kind, "client_number", columns)]
        if link_column:
            names.append(link_column)
    else:
        names = list(candidates(kind, field, columns))
    looked = ", ".join(repr(n) for n in names[:8]) + (", ..." if len(names) > 8 else "")
    return (
        f"{kind} report: missing column {field!r} (looked for {looked}); "
        f"{found_text(raw_header)} (map it with columns.{kind}.{field})"
    )


def found_text(raw_header: Sequence[object]) -> str:
    """``columns found: A, B, C`` - or a note when the row looks like data, not a header."""
    cells = [str(h).replace("\ufeff", "").strip() for h in raw_header]
    if any(looks_like_data(c) for c in cells):
        return "the first row holds dates or numbers, so it looks like data, not a header"
    shown = [c[:40] for c in cells if c][:_MAX_SHOWN]
    more = f" (+{len(cells) - _MAX_SHOWN} more)" if len(cells) > _MAX_SHOWN else ""
    return f"columns found: {', '.join(shown) or '(none)'}{more}"


_DATA = re.compile(r"\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}|^[+-]?\d+(?:[.,]\d+)?$")


def looks_like_data(cell: str) -> bool:
    """True for a cell holding a date or a bare number (header names never do)."""
    return bool(_DATA.search(cell.strip()))
