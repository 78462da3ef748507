"""The alert lifecycle: which alerts are open now, which are carried forward, which close.

Pure functions over plain data (no store, no clock). The store keeps the alerts; the sync asks
:func:`reconcile` what to do with them after scoring a client.

**An alert is about now.** A rule is evaluated on every administration (that is the history
``fit score`` shows), but an *alert* is one condition in one *scope*: a client's episode, rater
and measure family (``"ANY"`` for rules that speak for the whole episode, such as
``attendance.dropout_risk``), and one rule. It is open while the rule holds at the latest
administration of its scope (for date rules: on the evaluation date).

States and transitions:

============  =============================================================================
state         meaning
============  =============================================================================
open          holds now; nobody has acknowledged it
acknowledged  holds now; a clinician acknowledged it (``fit alerts ack ID``)
superseded    no longer holds: a later administration of its scope (or a corrected record, a
              changed setting, the date) no longer raises it; ``closed_by`` names the
              administration and session where it stopped
closed        can no longer be evaluated: its episode ended (``episode_ended``), its rule was
              switched off or uninstalled (``rule_off``), or its data were deleted
              (``no_data``)
============  =============================================================================

- *raised*: a rule starts to hold in a scope that has no open alert → a new alert (``open``),
  with the session where this run of the condition started (``first_session``).
- *carried*: it still holds at a newer administration → the **same** alert (same id, so an
  acknowledgement stays) moves to that administration, with its session, inputs and message
  updated. One alert per condition, never one per session.
- *acknowledged* / *reopened*: ``open`` ↔ ``acknowledged`` (by a person; the sync never
  changes an acknowledgement).
- *superseded* / *closed*: from ``open`` or ``acknowledged``; both are final. If the condition
  holds again later, that is a **new** alert. An acknowledgement is kept on a closed alert.

Only ``open`` alerts are pushed to the sources (``flags``/``flag_message`` of the latest
administration of the scope); an older administration's payload carries no flags once a later
one superseded them, and an ended episode's carry none.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from .models import Flag, Scored
from .scoring import ClientResult, Track

__all__ = [
    "ACTIVE_STATES",
    "CLOSE_REASONS",
    "FINAL_STATES",
    "STATES",
    "Carry",
    "Close",
    "Holding",
    "Open",
    "Plan",
    "StoredAlert",
    "holdings",
    "reconcile",
]

STATES: tuple[str, ...] = ("open", "acknowledged", "superseded", "closed")
ACTIVE_STATES: tuple[str, ...] = ("open", "acknowledged")
FINAL_STATES: tuple[str, ...] = ("superseded", "closed")
CloseReason = Literal["superseded", "episode_ended", "rule_off", "no_data"]
CLOSE_REASONS: tuple[str, ...] = ("superseded", "episode_ended", "rule_off", "no_data")

ScopeKey = tuple[str, str, str, str]  # episode_id, rater, family, rule_id


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An active (open or acknowledged) alert as the store holds it.

    ``source``/``source_key`` is the administration it is attached to (where it held last);
    ``episode_id``, ``rater`` and ``family`` its scope (None for alerts stored before the
    lifecycle existed: their scope is found from their administration).
    """

    id: int
    rule_id: str
    state: str
    source: str
    source_key: str
    episode_id: str | None = None
    rater: str | None = None
    family: str | None = None
    local_date: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Holding:
    """A rule that holds now in one scope: the flag at the scope's latest administration
    (``anchor``), and ``first``, the administration where this unbroken run began."""

    episode_id: str
    rater: str
    family: str
    anchor: Scored
    flag: Flag
    first: Scored

    @property
    def key(self) -> ScopeKey:
        return (self.episode_id, self.rater, self.family, self.flag.rule_id)


@dataclass(frozen=True, slots=True)
class Carry:
    """An existing alert still holds: move it to ``holding.anchor`` (its state is kept)."""

    alert: StoredAlert
    holding: Holding


@dataclass(frozen=True, slots=True)
class Open:
    """A new alert."""

    holding: Holding


@dataclass(frozen=True, slots=True)
class Close:
    """An alert that ends: ``state`` superseded or closed, with the reason and, for superseded,
    the administration where it stopped holding (``by``). ``scope`` is what the alert's scope
    was found to be (episode, rater, family), when known."""

    alert: StoredAlert
    state: Literal["superseded", "closed"]
    reason: CloseReason
    by: Scored | None = None
    scope: tuple[str, str, str] | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with one client's alerts."""

    carry: tuple[Carry, ...] = ()
    open: tuple[Open, ...] = ()
    close: tuple[Close, ...] = ()

    def acknowledged(self) -> set[tuple[str, str, str]]:
        """(source, source_key, rule_id) of the flags that hold now but are acknowledged."""
        return {
            (c.holding.anchor.admin.source, c.holding.anchor.admin.source_key, c.alert.rule_id)
            for c in self.carry
            if c.alert.state == "acknowledged"
        }

    def __bool__(self) -> bool:
        return bool(self.carry or self.open or self.close)


def _scope_of(rule_id: str, measure_family: str, families: Mapping[str, str]) -> str:
    family = families.get(rule_id, measure_family)
    return "ANY" if family == "ANY" else measure_family


def _fired(s: Scored, rule_id: str) -> bool:
    return any(f.rule_id == rule_id for f in s.flags)


def holdings(result: ClientResult, families: Mapping[str, str]) -> dict[ScopeKey, Holding]:
    """Every rule that holds now, by scope: the flags at the latest administration of each
    scope of an episode that has not ended. ``families`` maps active rule ids to their family."""
    out: dict[ScopeKey, Holding] = {}
    for track in result.tracks:
        if track.ended or not track.items:
            continue
        latest = track.latest
        for f in latest.flags:
            scope = families.get(f.rule_id)
            in_scope = scope == "ANY" if track.family == "ANY" else scope not in (None, "ANY")
            if not in_scope:
                continue
            first = latest
            if track.family != "ANY":  # an ANY rule answers at the latest administration only
                for s in reversed(track.items[:-1]):
                    if not _fired(s, f.rule_id):
                        break
                    first = s
            h = Holding(track.episode_id, track.rater, track.family, latest, f, first)
            out[h.key] = h
    return out


def reconcile(
    result: ClientResult, existing: Iterable[StoredAlert], families: Mapping[str, str]
) -> Plan:
    """Match what holds now (``result``, one client scored) against the client's active stored
    alerts: carry, open and close as described in the module docstring.

    ``families`` maps each *active* rule id to its family (``Scorer.rule_families``): an alert
    of any other rule is closed as ``rule_off``. A client without administrations (all deleted)
    gets an empty ``result``: every alert closes as ``no_data``.
    """
    now = holdings(result, families)
    tracks: dict[tuple[str, str, str], Track] = {
        (t.episode_id, t.rater, t.family): t for t in result.tracks
    }
    where: dict[tuple[str, str], tuple[str, str, str]] = {}  # admin key → its measure scope
    for t in result.tracks:
        if t.family != "ANY":
            for s in t.items:
                where[s.admin.key] = (t.episode_id, t.rater, t.family)

    closes: list[Close] = []
    candidates: dict[ScopeKey, list[StoredAlert]] = defaultdict(list)
    for alert in existing:
        scope = _find_scope(alert, where, families)
        if alert.rule_id not in families:
            closes.append(Close(alert, "closed", "rule_off", scope=scope))
        elif scope is None or scope not in tracks:
            closes.append(Close(alert, "closed", "no_data", scope=scope))
        elif tracks[scope].ended:
            closes.append(Close(alert, "closed", "episode_ended", scope=scope))
        else:
            candidates[(*scope, alert.rule_id)].append(alert)

    carries: list[Carry] = []
    opens: list[Open] = []
    for key in sorted(set(candidates) | set(now)):
        holding = now.get(key)
        track = tracks[key[:3]]
        alerts = sorted(candidates.get(key, ()), key=lambda a: _position(a, track))
        primary = alerts.pop() if alerts else None
        # duplicates in one scope (alerts stored one per session before the lifecycle existed):
        # the newest stays, the others were superseded by it
        for older in alerts:
            by = _stopped_at(older, track, key[3]) or _item(track, primary)
            closes.append(Close(older, "superseded", "superseded", by, key[:3]))
        if holding is None:
            if primary is not None:
                by = _stopped_at(primary, track, key[3]) or track.latest
                closes.append(Close(primary, "superseded", "superseded", by, key[:3]))
            continue
        if primary is not None and _continues(primary, holding, track):
            carries.append(Carry(primary, holding))
            continue
        if primary is not None:
            by = _stopped_at(primary, track, key[3]) or holding.first
            closes.append(Close(primary, "superseded", "superseded", by, key[:3]))
        opens.append(Open(holding))
    return Plan(tuple(carries), tuple(opens), tuple(closes))


def _find_scope(
    alert: StoredAlert,
    where: Mapping[tuple[str, str], tuple[str, str, str]],
    families: Mapping[str, str],
) -> tuple[str, str, str] | None:
    """The alert's scope now: from its administration when that still exists (an automatic
    episode id can change when older data arrive), else as stored."""
    found = where.get((alert.source, alert.source_key))
    if found is not None:
        episode, rater, family = found
        return (episode, rater, _scope_of(alert.rule_id, family, families))
    if alert.episode_id is None or alert.rater is None or alert.family is None:
        return None
    return (alert.episode_id, alert.rater, alert.family)


def _index(alert: StoredAlert, track: Track) -> int | None:
    for i, s in enumerate(track.items):
        if s.admin.key == (alert.source, alert.source_key):
            return i
    return None


def _position(alert: StoredAlert, track: Track) -> tuple[int, dt.date, int]:
    """Sort key: where the alert's administration is in the track (by date when it is gone)."""
    i = _index(alert, track)
    if i is not None:
        return (1, track.items[i].admin.local_date, i)
    return (0, alert.local_date or dt.date.min, -1)


def _continues(alert: StoredAlert, holding: Holding, track: Track) -> bool:
    """Did the condition hold without a break from the alert's administration until now?"""
    if track.family == "ANY":
        return True  # an ANY rule is only asked at the latest administration: no break is known
    i = _index(alert, track)
    first = _index_of(holding.first, track)
    if i is not None:
        return i >= first
    return alert.local_date is not None and alert.local_date >= holding.first.admin.local_date


def _index_of(s: Scored, track: Track) -> int:
    for i, item in enumerate(track.items):
        if item is s:
            return i
    return len(track.items) - 1


def _stopped_at(alert: StoredAlert, track: Track, rule_id: str) -> Scored | None:
    """The first administration, from the alert's own on, where the rule did not fire."""
    if track.family == "ANY":
        return None
    i = _index(alert, track)
    if i is None:
        after = [s for s in track.items if s.admin.local_date > (alert.local_date or dt.date.min)]
    else:
        after = list(track.items[i:])
    return next((s for s in after if not _fired(s, rule_id)), None)


def _item(track: Track, alert: StoredAlert | None) -> Scored | None:
    if alert is None:
        return None
    i = _index(alert, track)
    return track.items[i] if i is not None else None
