"""Record exports that survive REDCap's "ran out of server memory" answer by asking for less.

REDCap builds a whole answer in memory before sending it, so a big project can exhaust the
server on any export, even one holding only the record ids (one row per record, event and
repeat instance). Every record export of the adapter goes through :class:`Exporter`:

- **Records by id** (the batches of a pull, the read-back before a push): a batch that runs out
  of memory is halved, for the rest of the run; a single record that still does is read one
  event at a time.
- **The ids of changed records** (``dateRangeBegin``, or every record on the first sync): the
  query is split into :class:`Slice` s, each narrower than its parent, until each one fits:
  by **record id range** (``filterLogic`` on the record id; only once every record id seen, in
  this run or the last, is a whole number, so no record can fall outside the ranges), by
  **time** (halving the ``dateRangeBegin``/``dateRangeEnd`` window down to a few seconds; the
  first sync starts from the project's creation) and by **event** (one event at a time). A
  slice that cannot be split yet is asked again at the end, when the others may have shown
  that the ids are whole numbers. Window edges overlap by a
  second, so a record changed exactly on an edge is listed (once: ids are deduplicated).

A slice that cannot be split further stops the source with :class:`TooBigForServer`, naming
what failed and what to change.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fit_core.errors import SourceError

from .client import RedcapClient, ServerOutOfMemory
from .rows import text

log = logging.getLogger(__name__)

LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"
ONE_SECOND = dt.timedelta(seconds=1)
#: first-sync windows start here before the project's creation (clock changes, copies)
BEFORE_CREATION = dt.timedelta(days=1)
#: an open id range [n, ∞) that runs out of memory is split at n * GROWTH + GROWTH_STEP
GROWTH, GROWTH_STEP = 2, 1000
#: at most this many parts at once when a slice is cut to the size that fitted before
MAX_PARTS = 64
#: a changed-records query split more often than this stops (a server far too small)
MAX_SPLITS = 2000

Row = dict[str, Any]


class TooBigForServer(SourceError):
    """REDCap runs out of memory even for the smallest request fit-sync can make."""


def local_text(moment: dt.datetime) -> str:
    """A server-local naive datetime as ``YYYY-MM-DD HH:MM:SS``."""
    return moment.strftime(LOCAL_FORMAT)


def is_whole_number(value: str) -> bool:
    """A record id REDCap's logic compares as a number: digits, no sign, no leading zero."""
    return value.isdigit() and (value == "0" or not value.startswith("0"))


@dataclass(frozen=True)
class Slice:
    """A part of the changed-records query: a time window (server-local, inclusive, ``None``
    for open), an event (``None``: all) and a record id range ``[low, high)`` (``None`` ends
    are open; ``ids is None``: no range)."""

    begin: dt.datetime | None = None
    end: dt.datetime | None = None
    event: str | None = None
    ids: tuple[int | None, int | None] | None = None

    def describe(self) -> str:
        """For messages: what this slice asks for."""
        when = (
            "every change"
            if self.begin is None and self.end is None
            else f"changes from {local_text(self.begin) if self.begin else 'the start'} to "
            f"{local_text(self.end) if self.end else 'now'} (server time)"
        )
        parts = [when]
        if self.event is not None:
            parts.append(f"event {self.event}")
        if self.ids is not None:
            low, high = self.ids
            parts.append(
                f"record ids {'' if low is None else low}..{'' if high is None else high - 1}"
            )
        return ", ".join(parts)

    def logic(self, id_field: str) -> str | None:
        """The ``filterLogic`` of the id range, or None."""
        if self.ids is None:
            return None
        low, high = self.ids
        terms = []
        if low is not None:
            terms.append(f"[{id_field}] >= {low}")
        if high is not None:
            terms.append(f"[{id_field}] < {high}")
        return " and ".join(terms) or None


@dataclass
class IdHints:
    """What this run (or the bookmark) knows about the record ids: all whole numbers, and
    their range (for id-range slices)."""

    numeric: bool | None = None  # None: nothing seen yet
    low: int | None = None
    high: int | None = None

    def see(self, ids: Iterable[str]) -> None:
        for record in ids:
            if not is_whole_number(record):
                self.numeric = False
                continue
            if self.numeric is None:
                self.numeric = True
            n = int(record)
            self.low = n if self.low is None else min(self.low, n)
            self.high = n if self.high is None else max(self.high, n)


class Exporter:
    """Record exports of one source, split whenever the server runs out of memory.

    ``events`` lists the project's events (called only when an id query must be split by
    event; empty for a classic project). ``now`` is the server's local time now (naive);
    ``created`` the project's creation time (server-local, or None).
    """

    def __init__(
        self,
        client: RedcapClient,
        *,
        source: str,
        id_field: str,
        batch_size: int,
        events: Callable[[], Sequence[str]],
        now: Callable[[], dt.datetime],
        created: dt.datetime | None = None,
        hints: IdHints | None = None,
    ) -> None:
        self.client = client
        self.source = source
        self.id_field = id_field
        self.batch_size = batch_size
        self.events = events
        self.now = now
        self.created = created
        self.hints = hints or IdHints()
        self.splits = 0  # queries split because the server ran out of memory
        self._fit_width: dt.timedelta | None = None  # the last time window that fitted
        self._fit_span: int | None = None  # the last id range that fitted
        self._logic_ok: bool | None = None  # whether the server applies filterLogic

    # --- records by id -------------------------------------------------------------------------

    def batches(
        self,
        ids: Sequence[str],
        fields: Sequence[str],
        *,
        survey_fields: bool = True,
        groups: bool = False,
    ) -> Iterator[tuple[list[str], list[Row]]]:
        """(ids asked, rows) per batch of ``ids``; a batch that runs out of memory is halved
        (and ``batch_size`` stays halved for the run)."""
        i = 0
        while i < len(ids):
            batch = list(ids[i : i + self.batch_size])
            try:
                rows = self._export(batch, fields, survey_fields, groups)
            except ServerOutOfMemory:
                if len(batch) > 1:
                    self.batch_size = max(1, len(batch) // 2)
                    self.splits += 1
                    log.warning(
                        "%s: REDCap ran out of memory exporting %d records; trying %d a batch",
                        self.source,
                        len(batch),
                        self.batch_size,
                    )
                    continue
                rows = self._one_record_by_event(batch[0], fields, survey_fields, groups)
            i += len(batch)
            yield batch, rows

    def _export(
        self,
        records: Sequence[str],
        fields: Sequence[str],
        survey_fields: bool,
        groups: bool,
        events: Sequence[str] | None = None,
    ) -> list[Row]:
        return self.client.export_records(
            fields=fields,
            records=records,
            survey_fields=survey_fields,
            groups=groups,
            events=events,
        )

    def _one_record_by_event(
        self, record: str, fields: Sequence[str], survey_fields: bool, groups: bool
    ) -> list[Row]:
        events = list(self.events())
        if not events:
            raise TooBigForServer(
                f"REDCap runs out of server memory exporting record {record} alone",
                hint="the record is too big for the server's memory: ask the REDCap "
                "administrator to raise PHP's memory_limit, or map fewer fields",
            )
        log.warning(
            "%s: REDCap ran out of memory exporting record %s; reading it one event at a time",
            self.source,
            record,
        )
        rows: list[Row] = []
        for event in events:
            try:
                rows += self._export([record], fields, survey_fields, groups, [event])
            except ServerOutOfMemory:
                raise TooBigForServer(
                    f"REDCap runs out of server memory exporting record {record} on event "
                    f"{event} alone",
                    hint="the record is too big for the server's memory: ask the REDCap "
                    "administrator to raise PHP's memory_limit, or map fewer fields",
                ) from None
        return rows

    # --- the ids of changed records --------------------------------------------------------

    def changed_ids(self, since: dt.datetime | None) -> list[str]:
        """The ids of records changed at or after ``since`` (server-local; None: every record),
        in the order REDCap lists them, each once.

        A slice that runs out of memory and cannot be split yet waits until the others are
        done: their ids may show that record ids are whole numbers, so it can be split by id.
        """
        found: dict[str, None] = {}
        stack = [Slice(begin=since)]
        waiting: list[Slice] = []
        last_round = False
        while stack or waiting:
            if not stack:
                stack, waiting, last_round = list(reversed(waiting)), [], True
            part = stack.pop()
            if self.splits > MAX_SPLITS:
                raise TooBigForServer(
                    f"REDCap ran out of server memory {self.splits} times listing the records "
                    "changed; fit-sync stopped splitting the query",
                    hint="ask the REDCap administrator to raise the server's memory (PHP "
                    "memory_limit)",
                )
            try:
                rows = self.client.export_records(
                    fields=[self.id_field],
                    since=local_text(part.begin) if part.begin else None,
                    until=local_text(part.end) if part.end else None,
                    events=None if part.event is None else [part.event],
                    logic=part.logic(self.id_field),
                    survey_fields=False,
                )
            except ServerOutOfMemory:
                pieces = self.split(part)
                if pieces:
                    self.splits += 1
                    log.info(
                        "%s: REDCap ran out of memory listing %s; asking in %d parts",
                        self.source,
                        part.describe(),
                        len(pieces),
                    )
                    stack.extend(reversed(pieces))
                elif not last_round:
                    waiting.append(part)
                else:
                    raise TooBigForServer(
                        f"REDCap runs out of server memory listing the records changed "
                        f"({part.describe()}), even after splitting the query by time, event "
                        "and record id",
                        hint="ask the REDCap administrator to raise the server's memory (PHP "
                        "memory_limit); record ids that are not whole numbers cannot be split "
                        "by range",
                    ) from None
                continue
            ids = [r for r in (text(row.get(self.id_field)) for row in rows) if r]
            if part.ids is not None:
                self._check_range(part, ids)
            self._fitted(part)
            self.hints.see(ids)
            found.update(dict.fromkeys(ids))
        return list(found)

    def _fitted(self, part: Slice) -> None:
        """Remember the width of the last id range that fitted: its neighbours (asked next) are
        cut to that width at once instead of being halved again and again."""
        if part.ids is not None:
            low, high = part.ids
            if low is not None and high is not None:
                self._fit_span = high - low

    def split(self, part: Slice) -> list[Slice]:
        """Narrower slices that together cover ``part`` (empty: it cannot be split).

        Once the record ids are known to be whole numbers, by id range first (records are
        spread evenly over their ids, while a sync's own imports crowd into a few seconds),
        then by time, then by event; before that by time, then event."""
        order = (
            (self._by_ids, self._by_time, self._by_event)
            if self.hints.numeric
            else (self._by_time, self._by_event, self._by_ids)
        )
        for how in order:
            pieces = how(part)
            if pieces:
                return pieces
        return []

    def _by_time(self, part: Slice) -> list[Slice]:
        """Halves of the time window; neighbours share a second at their edge (inclusive or
        exclusive, a change on the edge is in one of them)."""
        if part.event is not None:
            return []  # split by event after time: its windows were as small as they get
        now = self.now().replace(microsecond=0)
        lower = (self.created - BEFORE_CREATION) if self.created else None
        begin, end = part.begin, part.end

        def cut(*windows: tuple[dt.datetime | None, dt.datetime | None]) -> list[Slice]:
            return [replace(part, begin=a, end=b) for a, b in windows]

        if end is None:
            start = begin if begin is not None else lower
            if start is None or now - start < 2 * ONE_SECOND:
                return []
            head = [(None, start + ONE_SECOND)] if begin is None else []
            return cut(*head, (start, now + ONE_SECOND), (now, None))
        if begin is None:
            if lower is None or end - lower < 2 * ONE_SECOND:
                return []
            return cut((None, lower + ONE_SECOND), (lower, end))
        if end - begin < 3 * ONE_SECOND:
            return []
        middle = (begin + (end - begin) / 2).replace(microsecond=0)
        return cut((begin, middle + ONE_SECOND), (middle, end))

    def _by_event(self, part: Slice) -> list[Slice]:
        if part.event is not None:
            return []
        events = list(self.events())
        if len(events) < 2:
            return []
        return [replace(part, event=e) for e in events]

    def _by_ids(self, part: Slice) -> list[Slice]:
        hints = self.hints
        if not hints.numeric or hints.low is None or hints.high is None:
            return []
        if not self._logic_works():
            raise SourceError(
                "REDCap ignores the filterLogic fit-sync uses to split the list of changed "
                "records by record id, so a list too big for the server's memory cannot be "
                "split further",
                hint="ask the REDCap administrator to raise the server's memory (PHP memory_limit)",
            )
        if part.ids is None:
            first, stop = hints.low, hints.high + 1
            return [
                replace(part, ids=(None, first)),
                *(replace(part, ids=r) for r in self._ranges(first, stop, 2)),
                replace(part, ids=(stop, None)),
            ]
        low, high = part.ids
        if low is None:
            return [replace(part, ids=(None, 0)), replace(part, ids=(0, high))] if high else []
        if high is None:
            cut = low * GROWTH + GROWTH_STEP
            return [replace(part, ids=(low, cut)), replace(part, ids=(cut, None))]
        if high - low < 2:
            return []
        return [replace(part, ids=r) for r in self._ranges(low, high, 2)]

    def _ranges(self, low: int, high: int, parts: int) -> list[tuple[int, int]]:
        """[low, high) cut into ``parts`` ranges, or into ranges as wide as the last one that
        fitted when it is less than half as wide."""
        span = high - low
        if self._fit_span is not None and self._fit_span < span / 2:
            parts = min(MAX_PARTS, math.ceil(span / max(self._fit_span, 1)))
        parts = max(1, min(parts, span))
        cuts = [low + span * i // parts for i in range(parts + 1)]
        return [(a, b) for a, b in itertools.pairwise(dict.fromkeys(cuts)) if a < b]

    def _logic_works(self) -> bool:
        """Once per run, before the first split by id: a ``filterLogic`` that selects no record
        must get an empty answer (a server that ignores it would answer with every record)."""
        if self._logic_ok is None:
            try:
                rows = self.client.export_records(
                    fields=[self.id_field], logic=f"[{self.id_field}] < 0", survey_fields=False
                )
            except ServerOutOfMemory:
                rows = [{}]
            self._logic_ok = not rows
        return self._logic_ok

    def _check_range(self, part: Slice, ids: Sequence[str]) -> None:
        """Every id of an id-range slice must lie in the range: else the server does not
        apply ``filterLogic`` and the split would be wrong."""
        assert part.ids is not None
        low, high = part.ids
        for record in ids:
            ok = is_whole_number(record) and (
                (low is None or int(record) >= low) and (high is None or int(record) < high)
            )
            if not ok:
                raise SourceError(
                    "REDCap ignored the filterLogic fit-sync used to split the list of changed "
                    f"records by record id ({part.describe()}): the list cannot be split safely",
                    hint="ask the REDCap administrator to raise the server's memory (PHP "
                    "memory_limit)",
                )


def metadata_in_parts(client: RedcapClient, source: str) -> list[Row]:
    """The data dictionary; when it is too big for the server's memory, instrument by
    instrument (halving the list of instruments asked at once), in the project's order."""
    try:
        return client.metadata()
    except ServerOutOfMemory:
        pass
    forms = client.instruments()
    log.warning(
        "%s: REDCap ran out of memory exporting the data dictionary; asking by instrument",
        source,
    )
    out: list[Row] = []
    size = max(1, len(forms) // 2)
    i = 0
    while i < len(forms):
        part = forms[i : i + size]
        try:
            out += client.metadata(part)
        except ServerOutOfMemory:
            if len(part) == 1:
                raise TooBigForServer(
                    f"REDCap runs out of server memory exporting the data dictionary of "
                    f"instrument {part[0]} alone",
                    hint="ask the REDCap administrator to raise PHP's memory_limit",
                ) from None
            size = max(1, len(part) // 2)
            continue
        i += len(part)
    if not out:
        raise SourceError(f"{client.where}: the data dictionary is empty")
    return out
