"""Retention: how long an ended episode is kept, and which episodes have expired. Pure functions.

``[privacy] retain_after_end`` (off by default) is a period such as ``"7y"``, ``"84m"``,
``"6w"`` or ``"2555d"``. An episode *expires* when it has ended (the one definition of
:mod:`fit_core.endings`: without attendance data ``episode_gap_days`` after its last
administration, with attendance data ``episode_end_days`` after its last session and nothing
booked) and the period has passed since the day it ended (``Ending.ended_on``). Episodes are
the ones scoring assigns (an explicit ``episode_id``, else a gap of more than
``episode_gap_days`` starts a new one), taken across raters.

What expires is purged at each sync (see :mod:`fit_core.sync`), from the store and from the
targets, and each purged record leaves a keyed-hash tombstone so a source that still holds it
does not bring it back. When every episode of a client has expired, the client's practice data
(appointments, details) goes with them.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .endings import episode_ending, latest_episode_ids
from .errors import ConfigError
from .models import Administration, Appointment
from .scoring import assign_episodes
from .settings import Settings

_PERIOD = re.compile(r"^\s*(\d+)\s*([ymwd])\s*$", re.IGNORECASE)
_OFF = ("", "off", "never", "none")


@dataclass(frozen=True, slots=True)
class Retention:
    """A retention period: whole years, months, weeks or days."""

    amount: int
    unit: str  # y | m | w | d
    text: str

    def cutoff(self, as_of: dt.date) -> dt.date:
        """The latest end date that has expired by ``as_of`` (``as_of`` minus the period)."""
        if self.unit == "d":
            return as_of - dt.timedelta(days=self.amount)
        if self.unit == "w":
            return as_of - dt.timedelta(weeks=self.amount)
        months = self.amount * (12 if self.unit == "y" else 1)
        year, month = divmod(as_of.year * 12 + as_of.month - 1 - months, 12)
        day = min(as_of.day, calendar.monthrange(year, month + 1)[1])
        return dt.date(year, month + 1, day)


def parse_retention(value: object, where: str = "[privacy] retain_after_end") -> Retention | None:
    """``"7y"`` → Retention; ``"off"``, ``false`` or an empty string → None."""
    if value is False or value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f'{where} must be a period such as "7y" or "off"', hint=_HINT)
    if value.strip().lower() in _OFF:
        return None
    m = _PERIOD.match(value)
    if m is None or int(m.group(1)) < 1:
        raise ConfigError(f"{where} {value!r} is not a period", hint=_HINT)
    return Retention(int(m.group(1)), m.group(2).lower(), value.strip())


_HINT = (
    'a whole number and a unit: "7y" (years), "84m" (months), "6w" (weeks) or "2555d" '
    '(days); "off" keeps everything'
)


@dataclass(frozen=True, slots=True)
class Expired:
    """One episode of one client whose retention has passed."""

    namespace: str
    client_id: str
    episode_id: str
    first: dt.date
    last_session: dt.date
    ended_on: dt.date
    keys: tuple[tuple[str, str], ...]  # (source, source_key) of its administrations
    #: every episode of the client has expired: its practice data goes too
    whole_client: bool


def expired_episodes(
    admins: Sequence[Administration],
    appointments: Sequence[Appointment],
    as_of: dt.date,
    settings: Settings,
    retention: Retention,
) -> list[Expired]:
    """The episodes of ONE client whose retention has passed by ``as_of``."""
    if not admins:
        return []
    episode_of = assign_episodes(admins, settings.episode_gap_days)
    groups: dict[str, list[Administration]] = defaultdict(list)
    for a in admins:
        groups[episode_of[a.key]].append(a)
    spans = {
        eid: (min(a.local_date for a in group), max(a.local_date for a in group))
        for eid, group in groups.items()
    }
    latest = latest_episode_ids((eid, last) for eid, (_first, last) in spans.items())
    cutoff = retention.cutoff(as_of)
    out: list[tuple[str, dt.date, dt.date, dt.date]] = []
    for eid, (first, last) in spans.items():
        ending = episode_ending(first, last, as_of, settings, appointments, latest=eid in latest)
        if ending.ended and ending.ended_on is not None and ending.ended_on <= cutoff:
            out.append((eid, first, ending.last_session, ending.ended_on))
    whole = len(out) == len(groups)
    client = admins[0].client
    return [
        Expired(
            client[0],
            client[1],
            eid,
            first,
            last_session,
            ended_on,
            tuple(sorted(a.key for a in groups[eid])),
            whole,
        )
        for eid, first, last_session, ended_on in sorted(out, key=lambda e: e[1])
    ]


def appointments_to_purge(
    appointments: Iterable[Appointment], expired: Sequence[Expired], kept_from: dt.date | None
) -> list[Appointment]:
    """The appointments that go with expired episodes: all of them when the whole client
    expired, else those before the first day of the earliest episode that is kept."""
    if not expired:
        return []
    if expired[0].whole_client or kept_from is None:
        return list(appointments)
    return [a for a in appointments if a.local_date < kept_from]
