"""Scores → import rows of the scoring instrument: one row is one session, never two.

Where the scores of an administration read from record ``r``, event ``E``, instrument ``I``,
instance ``n`` go:

- ``I`` is a **repeating instrument** on ``E``: the scoring instrument repeats on ``E`` too, and
  its rows are **keyed by session**: the row whose date field (``score_fields.date``, default
  ``fit_date``) holds the administration's clinic-local date, or, without a date field, whose
  session field holds its session number. So the ORS and the SRS of one session share a row
  whatever their own instance numbers are (an SRS skipped once shifts every later SRS
  instance). A session not written yet gets the administration's own instance number when no
  other session holds that row (so row *n* is usually the session of ORS *n*), else a free row,
  else the next new instance;
- ``E`` is a **repeating event**: the row of that event instance (one visit);
- otherwise the row of event ``E`` (one visit).

Before writing, the rows of the batch's records are read back (one export, split when the server
runs out of memory) to find the session rows, to merge fields shared by several instruments
(``flags`` and ``message`` keep one labelled part per measure: ``ORS: ...; SRS: ...``), and to
leave out records that no longer exist or that the token cannot see (a Data Access Group): an
import would create a new, empty record there.

Rows are imported with ``overwriteBehavior=overwrite``: fit-sync owns the scoring instrument, so
a value that no longer applies is erased rather than left behind. "No alert" is still written as
``none`` (status without a trajectory model, no open flags). ``<scoring instrument>_complete`` is
set to ``scores_complete`` (default 2, Complete).

**Migration** from the layout that paired instance *n* of every measure in one row: rows without
a session key are *legacy*. When the adapter migrates (the first sync, or the first after an
upgrade; every administration is then pushed again), legacy rows are reused for sessions (an
administration's own instance first) with every other score field blanked, and legacy rows left
over are blanked, so no row keeps a mix of two sessions.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fit_core.errors import ConfigError
from fit_core.models import OutboxItem

from .discovery import Placement
from .options import InstrumentMap
from .rows import EVENT, REPEAT_INSTANCE, REPEAT_INSTRUMENT, repeat_instance, text

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 500
NONE = "none"
#: separators of the labelled parts of a shared field
FLAG_PARTS = "; "
MESSAGE_PARTS = " || "

#: the columns that place a row (not values)
_KEYS = frozenset({EVENT, REPEAT_INSTRUMENT, REPEAT_INSTANCE})

Slot = tuple[str, str, str, int | None]  # record, event, repeat instrument or "", instance


def score_values(
    payload: Mapping[str, Any], score_fields: Mapping[str, str], local_date: str = ""
) -> dict[str, str]:
    """The scoring instrument's field → text value for one administration's payload."""
    out: dict[str, str] = {}
    for key, name in score_fields.items():
        if key == "date":
            out[name] = local_date
        elif key == "total":
            out[name] = _number(payload.get("total"))
        elif key == "session":
            session = payload.get("session")
            out[name] = "" if session is None else str(int(session))
        elif key == "status":
            out[name] = str(payload.get("status") or NONE)
        elif key == "flags":
            flags = payload.get("flags") or []
            out[name] = ", ".join(str(f) for f in flags) or NONE
        elif key == "message":
            out[name] = _clip(str(payload.get("flag_message") or "").strip() or NONE)
        elif key == "change":
            out[name] = _number(payload.get("change_from_intake"))
        elif key == "rc_class":
            out[name] = str(payload.get("rc_class") or "")
    return out


def _number(value: Any) -> str:
    if value is None or value == "":
        return ""
    return f"{float(value):.1f}"


def _clip(message: str, limit: int = MESSAGE_LIMIT) -> str:
    if len(message) <= limit:
        return message
    return message[: max(0, limit - 3)].rstrip() + "..."


def local_date(administered_at: Any, tz: dt.tzinfo) -> str:
    """The clinic-local date (``YYYY-MM-DD``) of a payload's ``administered_at``."""
    value = str(administered_at or "")
    if len(value) == 10:
        return value
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(tz).date().isoformat()


# --- shared fields: one labelled part per measure ------------------------------------------


def parse_parts(value: str, labels: Iterable[str], sep: str) -> dict[str, str]:
    """``"ORS: a; SRS: b"`` → ``{"ORS": "a", "SRS": "b"}``; unlabelled text is dropped."""
    known = set(labels)
    out: dict[str, str] = {}
    for part in value.split(sep) if value and value != NONE else []:
        label, colon, rest = part.partition(": ")
        if colon and label in known and rest.strip():
            out[label] = rest.strip()
    return out


def join_parts(parts: Mapping[str, str], order: Sequence[str], sep: str) -> str:
    """The labelled parts in ``order`` (``none`` when there is none)."""
    shown = [f"{label}: {parts[label]}" for label in order if parts.get(label)]
    return sep.join(shown) or NONE


# --- what is at the target -------------------------------------------------------------------


@dataclass
class TargetRows:
    """The scoring instrument's rows of some records, as read back before a push."""

    scores: str
    records: set[str] = field(default_factory=set)  # records that exist (and the token sees)
    rows: dict[Slot, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def from_export(
        cls, rows: Iterable[Mapping[str, Any]], id_field: str, scores: str, names: Sequence[str]
    ) -> TargetRows:
        """Read-back rows (every row of the records) → the scoring instrument's rows."""
        out = cls(scores)
        for row in rows:
            record = text(row.get(id_field))
            if not record:
                continue
            out.records.add(record)
            ri = text(row.get(REPEAT_INSTRUMENT))
            if ri and ri != scores:
                continue
            try:
                instance = repeat_instance(row.get(REPEAT_INSTANCE))
            except ValueError:
                continue
            values = {n: text(row.get(n)) for n in names}
            out.rows[(record, text(row.get(EVENT)), ri, instance)] = values
        return out

    def session_rows(self, record: str, event: str) -> dict[int, dict[str, str]]:
        """Instance → values of the scoring instrument's repeating rows on (record, event)."""
        return {
            slot[3]: values
            for slot, values in self.rows.items()
            if slot[0] == record and slot[1] == event and slot[2] == self.scores and slot[3]
        }


# --- building the rows -----------------------------------------------------------------------


@dataclass
class _Item:
    item: OutboxItem
    inst: InstrumentMap
    record: str
    event: str
    instance: int | None  # the administration's own instance
    repeating: bool  # a repeating instrument: the row is keyed by session
    values: dict[str, str]
    key: str  # the session key (date or session number) of a repeating instrument's row


@dataclass
class Built:
    """Rows to import and, per row, the source keys it confirms."""

    rows: list[dict[str, Any]]
    keys: list[list[str]]
    missing: list[str]  # records that do not exist (or the token cannot see): not written
    unchanged: list[bool]  # the target already holds exactly this row: nothing to import


class ImportBuilder:
    """Builds import rows for one project (its id field, placement and mapping)."""

    def __init__(
        self,
        *,
        id_field: str,
        scores_instrument: str,
        instruments: Sequence[InstrumentMap],
        placement: Placement,
        timezone: dt.tzinfo,
        complete: int | None = 2,
    ) -> None:
        self.id_field = id_field
        self.scores = scores_instrument
        self.instruments = {i.instrument: i for i in instruments}
        self.order = list(self.instruments)
        self.placement = placement
        self.tz = timezone
        self.complete = complete
        self.names = list(dict.fromkeys(n for i in instruments for n in i.score_fields.values()))
        self.sharers: dict[str, list[InstrumentMap]] = defaultdict(list)
        for inst in instruments:
            for name in inst.score_fields.values():
                self.sharers[name].append(inst)

    @property
    def read_fields(self) -> list[str]:
        """What a read-back exports: the id, every score field and the status."""
        return [self.id_field, *self.names, f"{self.scores}_complete"]

    def records_of(self, items: Sequence[OutboxItem]) -> list[str]:
        """The record ids of ``items`` whose instrument is mapped (in order, once each)."""
        return list(
            dict.fromkeys(
                str(it.extra.get("record", ""))
                for it in items
                if str(it.extra.get("instrument", "")) in self.instruments
            )
        )

    def build(
        self, items: Sequence[OutboxItem], target: TargetRows, *, migrate: bool = False
    ) -> Built:
        """Rows for ``items`` given what ``target`` holds.

        Raises ConfigError when the scoring instrument is not set up like the instrument being
        scored; items of instruments that are no longer mapped, or of records that are gone,
        are left out (not confirmed).
        """
        planned, problems, missing = self._plan(items, target)
        if problems:
            unique = list(dict.fromkeys(problems))
            raise ConfigError(
                f"the scoring instrument {self.scores!r} is not set up like the instruments it "
                f"scores: {'; '.join(unique[:3])}"
                + (f" (and {len(unique) - 3} more)" if len(unique) > 3 else ""),
                hint="in REDCap's Project Setup, designate it on the same events and make it "
                "repeat where they repeat; see docs/redcap.md",
            )
        rows: dict[Slot, dict[str, Any]] = {}
        keys: dict[Slot, list[str]] = {}
        fresh: set[Slot] = set()  # rows (re)started from nothing: every other field blanked
        by_event: dict[tuple[str, str], list[_Item]] = defaultdict(list)
        fixed: list[tuple[Slot, _Item]] = []
        for it in planned:
            if it.repeating:
                by_event[(it.record, it.event)].append(it)
            else:
                fixed.append(((it.record, it.event, "", it.instance), it))
        placed: list[tuple[Slot, _Item]] = list(fixed)
        for (record, event), group in by_event.items():
            slots, reused, left_over = self._allocate(record, event, group, target, migrate)
            placed += slots
            fresh |= reused
            for slot in left_over:
                rows[slot] = self._start(slot, blank=True)
                keys[slot] = []
        rank = {name: i for i, name in enumerate(self.order)}
        placed.sort(key=lambda p: -rank[p[1].inst.instrument])  # the first instrument last
        for slot, it in placed:
            row = rows.get(slot)
            if row is None:
                row = rows[slot] = self._start(slot, blank=slot in fresh)
                keys[slot] = []
            current = {} if slot in fresh else target.rows.get(slot, {})
            self._apply(row, it, current)
            keys[slot].append(it.item.source_key)
        same = [self._holds(target.rows.get(slot), row) for slot, row in rows.items()]
        return Built(list(rows.values()), [keys[s] for s in rows], missing, same)

    def _holds(self, current: Mapping[str, str] | None, row: Mapping[str, Any]) -> bool:
        """Whether the target row already has every value of ``row``."""
        if current is None:
            return False
        return all(
            current.get(name) == str(value)
            for name, value in row.items()
            if name not in _KEYS and name != self.id_field
        )

    # --- planning --------------------------------------------------------------------------

    def _plan(
        self, items: Sequence[OutboxItem], target: TargetRows
    ) -> tuple[list[_Item], list[str], list[str]]:
        planned: list[_Item] = []
        problems: list[str] = []
        missing: list[str] = []
        for item in items:
            extra = item.extra
            inst = self.instruments.get(str(extra.get("instrument", "")))
            if inst is None:
                continue
            record = str(extra.get("record", ""))
            event = str(extra.get(EVENT) or "")
            repeat_of = str(extra.get(REPEAT_INSTRUMENT) or "")
            raw = str(extra.get(REPEAT_INSTANCE) or "")
            instance = int(raw) if raw.isdigit() else None
            problem = self._placement_problem(inst, event, repeat_of, instance)
            if problem:
                problems.append(problem)
                continue
            if record not in target.records:
                missing.append(record)
                continue
            day = local_date(item.payload.get("administered_at"), self.tz)
            values = score_values(item.payload, inst.score_fields, day)
            key = ""
            if repeat_of:
                key_field = self.key_field(inst)
                if key_field is None:
                    problems.append(
                        f"{inst.instrument} repeats{' on event ' + event if event else ''}, so "
                        "its scores go to the row of its session: map score_fields.date (or "
                        "session) to a field of the scoring instrument"
                    )
                    continue
                key = values[key_field]
            planned.append(_Item(item, inst, record, event, instance, bool(repeat_of), values, key))
        return planned, problems, list(dict.fromkeys(missing))

    @staticmethod
    def key_field(inst: InstrumentMap) -> str | None:
        """The field whose value keys a session row: the date, else the session number."""
        return inst.score_fields.get("date") or inst.score_fields.get("session") or None

    def _placement_problem(
        self, inst: InstrumentMap, event: str, repeat_of: str, instance: int | None
    ) -> str | None:
        p = self.placement
        on = f" on event {event}" if event else ""
        if not p.designated(event, self.scores):
            return f"it is not designated on event {event} (where {inst.instrument} is)"
        scores_repeat = p.repeats(event, self.scores)
        if repeat_of:
            if not scores_repeat:
                return f"{inst.instrument} is a repeating instrument{on} but {self.scores} is not"
        elif instance is not None:
            if scores_repeat:
                return f"{self.scores} repeats on its own{on}, inside a repeating event"
        elif scores_repeat:
            return f"{self.scores} is a repeating instrument{on} but {inst.instrument} is not"
        return None

    # --- session rows ----------------------------------------------------------------------

    def _allocate(
        self,
        record: str,
        event: str,
        group: Sequence[_Item],
        target: TargetRows,
        migrate: bool,
    ) -> tuple[list[tuple[Slot, _Item]], set[Slot], list[Slot]]:
        """Session rows for ``group`` (items of one record and event): placed items, rows
        reused from nothing (legacy or blank), and legacy rows left over (to blank)."""
        key_fields = {f for it in group if (f := self.key_field(it.inst))}
        if len(key_fields) > 1:
            raise ConfigError(
                f"the instruments repeating on event {event or '(none)'} key their scoring rows "
                f"by different fields ({', '.join(sorted(key_fields))})",
                hint="map the same date (or session) field for every instrument: score_fields",
            )
        key_field = key_fields.pop()
        existing = target.session_rows(record, event)
        taken: dict[str, int] = {}
        occupied: set[int] = set()
        free: set[int] = set()  # rows that exist and may be (re)written: blank, or legacy
        legacy: set[int] = set()
        for row in sorted(existing):
            values = existing[row]
            key = values.get(key_field, "")
            if key:
                taken.setdefault(key, row)
                occupied.add(row)
            elif not any(v for n, v in values.items() if n in self.names):
                free.add(row)
            elif migrate:
                legacy.add(row)
            else:
                occupied.add(row)  # values without a key, not ours to overwrite now
        free |= legacy
        highest = max(existing, default=0)
        placed: list[tuple[Slot, _Item]] = []
        reused: set[Slot] = set()
        for it in sorted(group, key=lambda i: (i.key, i.instance or 0)):
            instance = taken.get(it.key)
            if instance is None:
                own = it.instance
                if own is not None and own not in occupied:
                    instance = own
                elif free:
                    instance = min(free)
                else:
                    instance = highest + 1
                free.discard(instance)
                occupied.add(instance)
                highest = max(highest, instance)
                taken[it.key] = instance
                if instance in existing:
                    reused.add((record, event, self.scores, instance))
            placed.append(((record, event, self.scores, instance), it))
        left_over: list[Slot] = [(record, event, self.scores, i) for i in sorted(legacy & free)]
        return placed, reused, left_over

    # --- row values ------------------------------------------------------------------------

    def _start(self, slot: Slot, *, blank: bool) -> dict[str, Any]:
        record, event, ri, instance = slot
        row: dict[str, Any] = {self.id_field: record}
        if event:
            row[EVENT] = event
        if instance is not None:
            row[REPEAT_INSTRUMENT] = ri
            row[REPEAT_INSTANCE] = instance
        if blank:
            row.update(dict.fromkeys(self.names, ""))
        return row

    def _apply(self, row: dict[str, Any], it: _Item, current: Mapping[str, str]) -> None:
        for name, value in it.values.items():
            sharers = self.sharers[name]
            key = next(k for k, n in it.inst.score_fields.items() if n == name)
            if len(sharers) > 1 and key in ("flags", "message"):
                value = self._merge(row, name, key, it, sharers, current)
            row[name] = value
        if self.complete is not None:
            row[f"{self.scores}_complete"] = str(self.complete)

    def _merge(
        self,
        row: Mapping[str, Any],
        name: str,
        key: str,
        it: _Item,
        sharers: Sequence[InstrumentMap],
        current: Mapping[str, str],
    ) -> str:
        labels = [s.measure for s in sharers]
        sep = FLAG_PARTS if key == "flags" else MESSAGE_PARTS
        before = str(row[name]) if name in row else current.get(name, "")
        parts = parse_parts(before, labels, sep)
        own = it.values[name]
        parts[it.inst.measure] = "" if own == NONE else own
        if key == "message":
            room = MESSAGE_LIMIT // len(labels) - len(it.inst.measure) - len(sep) - 2
            parts[it.inst.measure] = _clip(parts[it.inst.measure], max(room, 20))
        return join_parts(parts, labels, sep)
