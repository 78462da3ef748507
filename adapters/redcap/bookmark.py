"""The REDCap bookmark: where the next pull starts, and when our own last imports ended.

REDCap rows carry no modification time; ``dateRangeBegin`` (server-local ``YYYY-MM-DD
HH:MM:SS``) selects records created or modified since a moment. The bookmark is JSON::

    {"since": "2025-01-15T11:55:00+00:00", "writes_until": "2025-01-15T12:00:07+00:00",
     "layout": 2, "zone": "America/Chicago", "ids": [1001, 11000]}

``since`` (ISO 8601, UTC) is the next ``dateRangeBegin``; ``writes_until`` is when this
adapter's last score imports ended (they change the records' modification time too).
``layout`` is the scoring-row layout the target holds (2: one row per session; a bookmark
without it was written by a version that paired instance *n* of every measure, see
:mod:`.push`). ``zone`` is the server timezone the times were read in (another one means every
record is read again). ``ids`` is the range of the record ids when they are all whole numbers
(``"text"`` otherwise): it lets a query too big for the server be split by record id.
The evidence of the last imports (:class:`Evidence`: when they ran, a few of the records they
changed, and whether the server's clock was checked against them) is kept in the source's state
(``context.state``, key :data:`EVIDENCE_KEY`), not here: it is saved as soon as the imports are
confirmed, and ``fit check`` reads it too.

The rule (:func:`next_since`), for a run that started at ``R`` and asked for the record ids at
``Q``, with ``overlap`` ``O``: ``since = max(previous since, R - O)``. So the first re-sync after
a run that imported scores sees those records again (they dedupe: same content hash, nothing
pushed). That re-sync has now read everything changed up to ``Q``, our imports included; if
they ended at least :data:`SETTLE` seconds before ``Q``, and the server's clock agrees with ours
(its ``Date`` header), it may also move ``since`` past them: ``since = max(..., floor(writes) +
1 s)``. Anyone else's change before that moment was already visible at ``Q`` and was read. So
the second re-sync asks for the ids since after our own writes and gets none: one request.
A run that follows our imports by less than :data:`SETTLE` seconds waits the difference before
asking for ids (at most a few seconds, only then).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: seconds between our last import and a later run's id query before that run may skip them
SETTLE = 2.5
#: the server's Date header (1 s resolution) minus our clock must fall in this range (seconds)
CLOCK_AGREEMENT = (-1.5, 1.0)
#: added to the time our imports ended, for the time between run start and adapter creation
WRITE_MARGIN = dt.timedelta(seconds=0.25)
#: the scoring-row layout this version writes (one row per session)
LAYOUT = 2
#: the layout of a bookmark that does not say (written before session rows)
LEGACY_LAYOUT = 1


#: the key of :class:`Evidence` in the source's state
EVIDENCE_KEY = "redcap.last_imports"


@dataclass(frozen=True, slots=True)
class Evidence:
    """Our last imports: when they ran (UTC), some records they changed, and the server
    timezone they were checked against (``checked``; empty until a check passed)."""

    first: dt.datetime
    last: dt.datetime
    records: tuple[str, ...]
    checked: str = ""

    def dump(self) -> str:
        return json.dumps(
            {
                "first": _iso(self.first),
                "last": _iso(self.last),
                "records": list(self.records),
                "checked": self.checked,
            },
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, value: str | None) -> Evidence | None:
        """The saved evidence, or None (none saved, or unreadable)."""
        try:
            data = json.loads(value or "null")
            if not isinstance(data, dict) or not data.get("records"):
                return None
            return cls(
                _aware(data["first"]),
                _aware(data["last"]),
                tuple(str(r) for r in data["records"]),
                str(data.get("checked") or ""),
            )
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(frozen=True, slots=True)
class Bookmark:
    """A parsed bookmark; every moment is timezone-aware (UTC) or None."""

    since: dt.datetime | None = None
    writes_until: dt.datetime | None = None
    layout: int = LAYOUT
    zone: str | None = None
    ids: tuple[int, int] | str | None = None  # (low, high), "text", or unknown

    @classmethod
    def parse(cls, value: str | None) -> Bookmark:
        """Read a bookmark; a bare ISO time is a ``since``; anything unreadable means none."""
        if not value:
            return cls()
        try:
            data = json.loads(value)
        except ValueError:
            data = value
        try:
            if isinstance(data, str):
                return cls(_aware(data), None, LEGACY_LAYOUT)
            if isinstance(data, dict):
                since = _aware(data["since"]) if data.get("since") else None
                writes = _aware(data["writes_until"]) if data.get("writes_until") else None
                ids = data.get("ids")
                return cls(
                    since,
                    writes,
                    int(data.get("layout", LEGACY_LAYOUT)),
                    str(data["zone"]) if data.get("zone") else None,
                    (int(ids[0]), int(ids[1])) if isinstance(ids, list) else ids or None,
                )
        except (ValueError, TypeError, KeyError, IndexError):
            pass
        log.info("REDCap bookmark unreadable; reading every record again")
        return cls()

    def dump(self) -> str | None:
        """The JSON text saved by the engine (None when there is no ``since``)."""
        if self.since is None:
            return None
        data: dict[str, Any] = {
            "since": _iso(self.since),
            "writes_until": _iso(self.writes_until) if self.writes_until else None,
            "layout": self.layout,
        }
        if self.zone:
            data["zone"] = self.zone
        if self.ids is not None:
            data["ids"] = list(self.ids) if isinstance(self.ids, tuple) else self.ids
        return json.dumps(data, separators=(",", ":"))


def server_local(moment: dt.datetime, tz: dt.tzinfo) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in the server's timezone, rounded down to the second."""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def clocks_agree(offsets: Sequence[float]) -> bool:
    """True when every Date-header offset is within :data:`CLOCK_AGREEMENT` (or none came)."""
    low, high = CLOCK_AGREEMENT
    return all(low <= o <= high for o in offsets)


def skip_own_writes(writes_until: dt.datetime) -> dt.datetime:
    """The first whole second after our writes: a ``since`` that leaves them out."""
    return writes_until.replace(microsecond=0) + dt.timedelta(seconds=1)


def next_since(
    *,
    begin: dt.datetime | None,
    run_started: dt.datetime,
    overlap: dt.timedelta,
    query_at: dt.datetime | None,
    prev_writes: dt.datetime | None,
    clocks_ok: bool,
) -> dt.datetime:
    """The next ``since`` (see the module docstring); never before ``begin``."""
    candidates = [run_started - overlap]
    if begin is not None:
        candidates.append(begin)
    if (
        prev_writes is not None
        and clocks_ok
        and query_at is not None
        and query_at >= prev_writes + dt.timedelta(seconds=SETTLE)
    ):
        candidates.append(skip_own_writes(prev_writes))
    return max(candidates)


def settle_delay(
    *,
    now: dt.datetime,
    begin: dt.datetime | None,
    run_started: dt.datetime,
    overlap: dt.timedelta,
    prev_writes: dt.datetime | None,
    clocks_ok: bool,
) -> float:
    """Seconds to wait before the id query so that this run may skip our previous writes.

    0 when there is nothing to skip, when the usual rule already passes them, when the clocks
    disagree, or when the wait would be implausibly long (a clock jumped).
    """
    if prev_writes is None or not clocks_ok:
        return 0.0
    floor = max(run_started - overlap, begin) if begin is not None else run_started - overlap
    if skip_own_writes(prev_writes) <= floor:
        return 0.0
    wait = (prev_writes + dt.timedelta(seconds=SETTLE) - now).total_seconds()
    return wait if 0 < wait <= SETTLE + 1 else 0.0


def _aware(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()
