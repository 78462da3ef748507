"""Records deleted in REDCap, and scores taken back out of the scoring instrument.

**Finding deletions.** A deleted record vanishes from every export, date-range exports included,
so the incremental pull never sees it. After each pull the adapter asks:

1. the project's logging (Export Logging, ``content=log&logtype=record_delete``) for the records
   deleted since the bookmark (server-local minutes, from the bookmark's time), when the token's
   user has the Logging right. REDCap answers a user without it with an error, not an empty
   list: the adapter then notes that (source state ``logging_refused``), logs it once, and
   relies on
2. a reconciliation of record ids every ``deletion_check_hours`` (24 by default): every record id
   the token can see is listed (split like every export when the server runs out of memory,
   see :mod:`.exports`), and stored records that are not among them are gone. It runs with the
   Logging right too: a renamed record is logged as an update of its new name, so only the
   list finds the old name gone. The logging is tried again at each reconciliation, in case
   the right was granted meanwhile.

On the first sync (and after a change of ``server_timezone``) every record is read anyway, so
the stored records that did not come back are gone at once. Besides, when a record *is* read
again (it changed), its stored administrations that it no longer holds (an instrument's data
deleted, an instance removed, a form set back from Complete) are gone too. For each, the pull
yields :class:`~fit_core.models.Deleted`.

**Taking scores out** (:func:`clearing_rows`): the scoring row of a removed administration is
found as a push finds it (the row of its event, repeating event instance, or, for a repeating
instrument, its session: the row whose date field holds its date). Since the administration may
be gone from REDCap, a session row is cleared for an instrument when no administration of that
instrument that REDCap still holds (and that is not being removed) has that session's date.
Only that instrument's score fields are blanked (``overwriteBehavior=overwrite``); its labelled
part of a shared ``flags``/``message`` field goes; a shared date or session field is blanked
when no other instrument's scores are left on the row. A record that no longer exists needs
nothing. Rows keyed by session number (no date field mapped) cannot be told apart once their
administration is gone: they are left as they are, with a warning.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from fit_core.models import Record

from .push import (
    FLAG_PARTS,
    MESSAGE_PARTS,
    ImportBuilder,
    Slot,
    TargetRows,
    join_parts,
    local_date,
)
from .push import parse_parts as _parse_parts
from .rows import EVENT, REPEAT_INSTANCE, REPEAT_INSTRUMENT

log = logging.getLogger(__name__)

#: source state: when every record id was last listed (ISO time)
CHECKED = "deletions_checked"
#: source state: when the logging export was refused for want of the Logging right (ISO time)
LOG_REFUSED = "logging_refused"
_DELETE = re.compile(r"^\s*delete(?:d)?\s+record\s+(.+?)\s*$", re.IGNORECASE)

KeyParts = tuple[str, str, str, int | None]  # record, event, instrument, instance


def key_parts(key: str) -> KeyParts | None:
    """``record|event|instrument|instance`` → its parts (None for a key of another form)."""
    parts = key.split("|")
    if len(parts) != 4:
        return None
    record, event, instrument, raw = (unquote(p) for p in parts)
    instance = int(raw) if raw.isdigit() else None
    return record, event, instrument, instance


def record_of(key: str) -> str:
    """The record id of a source key."""
    return unquote(key.split("|", 1)[0])


def deleted_records(rows: Iterable[Mapping[str, Any]]) -> set[str]:
    """The record ids of the ``Delete record …`` actions of a logging export."""
    out: set[str] = set()
    for row in rows:
        m = _DELETE.match(str(row.get("action") or ""))
        if m is None:
            continue
        record = str(row.get("record") or "").strip() or m.group(1)
        out.add(record)
    return out


def log_begin(since: dt.datetime, server_tz: dt.tzinfo) -> str:
    """A bookmark time as the logging export's ``beginTime`` (server-local, whole minutes)."""
    local = since.astimezone(server_tz).replace(tzinfo=None, second=0, microsecond=0)
    return local.strftime("%Y-%m-%d %H:%M")


def due(last: str | None, now: dt.datetime, every: dt.timedelta) -> bool:
    """Whether a periodic check last done at ``last`` (ISO, None: never) is due ``now``."""
    if not last:
        return True
    try:
        moment = dt.datetime.fromisoformat(last)
    except ValueError:
        return True
    return now - moment >= every


# --- taking scores out ---------------------------------------------------------------------------


def clearing_rows(
    builder: ImportBuilder,
    target: TargetRows,
    removed: Sequence[str],
    live: Iterable[Record],
    tz: dt.tzinfo,
) -> tuple[list[tuple[dict[str, Any], list[str]]], list[str], int]:
    """Rows that blank the scores of ``removed`` keys, each with the keys it settles; the keys
    settled without a write (nothing to clear, the record gone, an unmapped instrument); and
    how many keys of session-number rows were left as they are."""
    live_keys: dict[tuple[str, str, str], set[str]] = defaultdict(set)  # dates per instrument
    live_slots: set[tuple[str, str, str, int | None]] = set()
    removing = set(removed)
    for rec in live:
        if rec.source_key in removing:
            continue
        parts = key_parts(rec.source_key)
        if parts is None:
            continue
        record, event, instrument, instance = parts
        live_slots.add(parts)
        day = local_date(rec.data.get("administered_at"), tz)
        live_keys[(record, event, instrument)].add(day)
    rows: dict[Slot, dict[str, Any]] = {}
    keys: dict[Slot, list[str]] = defaultdict(list)
    settled: list[str] = []
    left = 0
    for key in removed:
        parts = key_parts(key)
        inst = builder.instruments.get(parts[2]) if parts else None
        if parts is None or inst is None or parts[0] not in target.records:
            settled.append(key)
            continue
        record, event, instrument, instance = parts
        if builder.placement.repeats(event, instrument):
            key_field = builder.key_field(inst)
            if key_field is None or key_field != inst.score_fields.get("date"):
                left += 1
                settled.append(key)
                continue
            keep = live_keys.get((record, event, instrument), set())
            slots: list[Slot] = [
                (record, event, builder.scores, n)
                for n, values in target.session_rows(record, event).items()
                if values.get(key_field, "") not in keep and _holds(values, inst)
            ]
        else:
            if (record, event, instrument, instance) in live_slots:
                settled.append(key)  # an administration REDCap still holds owns the row
                continue
            slot = (record, event, "", instance)
            slots = [slot] if _holds(target.rows.get(slot, {}), inst) else []
        if not slots:
            settled.append(key)
            continue
        for slot in slots:
            row = rows.get(slot)
            if row is None:
                row = rows[slot] = _start(builder, slot)
            _blank(builder, row, inst, {**target.rows.get(slot, {}), **_set(row)})
            keys[slot].append(key)
    return [(rows[s], keys[s]) for s in rows], settled, left


def _holds(values: Mapping[str, str], inst: Any) -> bool:
    """Whether a scoring row holds any of ``inst``'s own score values."""
    own = [n for k, n in inst.score_fields.items() if k not in ("date", "session")]
    return any(values.get(n) for n in own)


def _start(builder: ImportBuilder, slot: Slot) -> dict[str, Any]:
    record, event, ri, instance = slot
    row: dict[str, Any] = {builder.id_field: record}
    if event:
        row[EVENT] = event
    if instance is not None:
        row[REPEAT_INSTRUMENT] = ri
        row[REPEAT_INSTANCE] = instance
    return row


def _set(row: Mapping[str, Any]) -> dict[str, str]:
    return {
        k: str(v) for k, v in row.items() if k not in (EVENT, REPEAT_INSTRUMENT, REPEAT_INSTANCE)
    }


def _blank(
    builder: ImportBuilder, row: dict[str, Any], inst: Any, current: Mapping[str, str]
) -> None:
    """Blank ``inst``'s scores on ``row`` (``current``: what the row holds now)."""
    others_left = False
    for other in builder.instruments.values():
        if other is inst:
            continue
        names = [
            n
            for k, n in other.score_fields.items()
            if k not in ("date", "session", "flags", "message")
        ]
        if any(current.get(n) for n in names if builder.sharers.get(n) == [other]):
            others_left = True
    for key, name in inst.score_fields.items():
        sharers = builder.sharers[name]
        if len(sharers) > 1 and key in ("flags", "message"):
            labels = [s.measure for s in sharers]
            sep = FLAG_PARTS if key == "flags" else MESSAGE_PARTS
            parts = _parse_parts(current.get(name, ""), labels, sep)
            parts.pop(inst.measure, None)
            row[name] = join_parts(parts, labels, sep) if others_left else ""
        elif len(sharers) > 1 and key in ("date", "session"):
            if not others_left:
                row[name] = ""
        else:
            row[name] = ""
