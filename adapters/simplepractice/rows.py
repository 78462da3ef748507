"""One export row -> a parsed appointment or client row, or the reasons it cannot be read.

Reasons name fields and say what is wrong; they quote no cell except an unknown status word.
A client's name is read only to be hashed at once (:class:`~.names.NameHasher`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from .columns import Layout
from .names import NameHasher
from .options import SpOptions
from .resolve import ClientRef
from .values import (
    Cell,
    ValueProblem,
    clean_code,
    is_intake,
    local_date,
    normalise_status,
    parse_time,
    parse_when,
    text,
    to_utc,
)


@dataclass(frozen=True, slots=True)
class ApptRow:
    """An appointment row as read (not yet linked)."""

    ref: ClientRef
    key: str  # the appointment's source key
    starts_at: dt.datetime  # UTC
    local_date: dt.date
    status: str | None  # None for billing rows (a billed service: attended)
    clinician: str | None
    code: str | None
    intake: bool
    upcoming: bool  # starts after the run started (a date alone: after today)


@dataclass(frozen=True, slots=True)
class ClientRow:
    """A client-list row as read (not yet linked)."""

    ref: ClientRef
    key: str
    date_of_birth: dt.date | None
    clinician: str | None
    status: str | None


@dataclass(frozen=True, slots=True)
class Problem:
    """A row that cannot be read: its key (when one could be made) and the reasons.

    ``damage``: the row is unreadable as written (a date, time or status that does not parse,
    no client, a row cut off), which counts towards refusing its file as damaged; False for
    rows that are readable but say something unusable (a past appointment without status).
    """

    key: str | None
    reasons: dict[str, str]
    damage: bool = True


SKIP = None  # a blank row, a footer ("Total") row, or a status mapped to "ignore"


def cell(row: Sequence[Cell], layout: Layout, field: str) -> Cell:
    i = layout.index.get(field)
    if i is None or i >= len(row):
        return ""
    return row[i]


def client_name(row: Sequence[Cell], layout: Layout) -> str:
    """The name as written (for hashing, or for ``--show-names`` only): full or first + last."""
    full = text(cell(row, layout, "client"))
    if full:
        return full
    parts = (text(cell(row, layout, "first_name")), text(cell(row, layout, "last_name")))
    return " ".join(p for p in parts if p)


def client_ref(row: Sequence[Cell], layout: Layout, hasher: NameHasher) -> ClientRef | None:
    """The row's :class:`ClientRef`; None when the row names no client at all."""
    direct = text(row[layout.link]) if layout.link is not None and layout.link < len(row) else ""
    number = clean_code(cell(row, layout, "client_number")) or ""
    name_hash = hasher.name(client_name(row, layout))
    if not (direct or number or name_hash):
        return None
    return ClientRef(name_hash, number or None, direct or None)


def is_blank(row: Sequence[Cell]) -> bool:
    return not any(text(c) for c in row)


def cut_off(row: Sequence[Cell], layout: Layout) -> str | None:
    """The reason when ``row`` ends before a column the layout reads (a file cut short)."""
    used = [*layout.index.values(), *([layout.link] if layout.link is not None else [])]
    if used and len(row) <= max(used):
        return f"cut off: the row has {len(row)} of {layout.width} columns (is the file cut short?)"
    return None


class RowReader:
    """Parses rows with the source's options, the clinic timezone and the run's start."""

    def __init__(
        self, opts: SpOptions, hasher: NameHasher, tz: dt.tzinfo, now: dt.datetime
    ) -> None:
        self.opts = opts
        self.hasher = hasher
        self.tz = tz
        self.now = now
        self.today = now.astimezone(tz).date()

    def appointment(
        self, row: Sequence[Cell], layout: Layout, formats: Sequence[str] | None = None
    ) -> ApptRow | Problem | None:
        """Parse an appointment (status report) or billing row; ``formats``: the date formats
        of its file (default: the source's)."""
        if is_blank(row):
            return SKIP
        reasons: dict[str, str] = {}
        ref = client_ref(row, layout, self.hasher)
        try:
            when, has_time = parse_when(
                cell(row, layout, "date"), formats or self.opts.date_formats
            )
        except ValueProblem as exc:
            if ref is None:
                return SKIP  # a footer such as "Total": no client, no date
            reasons[exc.field] = exc.reason
            when, has_time = None, False
        if ref is None:
            reasons["client"] = "empty: the row names no client"
        short = cut_off(row, layout)
        if short:
            return Problem(None, {"row": short})
        if when is not None and not has_time and layout.has("time"):
            try:
                t = parse_time(cell(row, layout, "time"))
            except ValueProblem as exc:
                reasons[exc.field] = exc.reason
            else:
                if t is not None:
                    when, has_time = dt.datetime.combine(when.date(), t, when.tzinfo), True
        status: str | None = None
        if layout.kind == "appointments":
            try:
                status = normalise_status(cell(row, layout, "status"), self.opts.statuses)
            except ValueProblem as exc:
                reasons[exc.field] = exc.reason
            if status == "ignore":
                return SKIP
        key: str | None = None
        day = self.today
        if when is not None and ref is not None:
            local = when if when.tzinfo is None else when.astimezone(self.tz).replace(tzinfo=None)
            stamp = local.isoformat(timespec="minutes") if has_time else local.date().isoformat()
            key = f"appt:{self.hasher.derive('appt', ref.ident, stamp)}"
            day = local_date(when, self.tz)
            if status == "scheduled" and day < self.today and not reasons:
                return Problem(
                    key,
                    {
                        "status": "no attendance status for a past appointment (set it in "
                        'SimplePractice and export again; statuses = {"" = "ignore"} skips '
                        "such rows)"
                    },
                    damage=False,
                )
        if reasons or when is None or ref is None or key is None:
            return Problem(key, reasons)
        starts = to_utc(when, self.tz)
        upcoming = starts > self.now if has_time else day > self.today
        if status == "attended" and upcoming:
            status = "scheduled"  # SimplePractice sets "Show" on every new appointment
        code = clean_code(cell(row, layout, "code"))
        clinician = self.opts.clinician(text(cell(row, layout, "clinician")))
        return ApptRow(
            ref,
            key,
            starts,
            day,
            status,
            clinician,
            code,
            is_intake(code, self.opts.intake_codes),
            upcoming,
        )

    def client(
        self, row: Sequence[Cell], layout: Layout, formats: Sequence[str] | None = None
    ) -> ClientRow | Problem | None:
        """Parse a client-list row; ``formats``: the date formats of its file."""
        if is_blank(row):
            return SKIP
        short = cut_off(row, layout)
        if short:
            return Problem(None, {"row": short})
        ref = client_ref(row, layout, self.hasher)
        if ref is None:
            return Problem(None, {"client": "empty: the row names no client"})
        # one key per SimplePractice client (two clients may share a name)
        key = f"client:{self.hasher.derive('client', ref.ident, ref.number or '')}"
        born: dt.date | None = None
        if layout.has("date_of_birth") and text(cell(row, layout, "date_of_birth")):
            try:
                value, _ = parse_when(
                    cell(row, layout, "date_of_birth"),
                    formats or self.opts.date_formats,
                    "date_of_birth",
                )
            except ValueProblem as exc:
                return Problem(key, {exc.field: exc.reason})
            born = value.date()
            if born > self.today:
                return Problem(key, {"date_of_birth": "in the future"}, damage=False)
        status = text(cell(row, layout, "status")).casefold()[:40] or None
        clinician = self.opts.clinician(text(cell(row, layout, "clinician")))
        return ClientRow(ref, key, born, clinician, status)

    def census_entry(
        self, row: Sequence[Cell], layout: Layout, formats: Sequence[str] | None = None
    ) -> tuple[str | None, str | None, str | None]:
        """(name hash, SimplePractice id, date of birth text) of a client-list row."""
        name_hash = self.hasher.name(client_name(row, layout))
        number = clean_code(cell(row, layout, "client_number"))
        birth_cell = cell(row, layout, "date_of_birth")
        try:
            birth: str | None = (
                parse_when(birth_cell, formats or self.opts.date_formats)[0].date().isoformat()
            )
        except ValueProblem:
            birth = text(birth_cell) or None
        return name_hash, number, birth
