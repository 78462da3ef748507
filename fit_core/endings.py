"""When an episode has ended, and how: the one definition that scoring, the alert rules, the
alert lifecycle, ``fit stats`` and the clinic report all use. Pure functions over plain data.

An *episode view* is one client + episode + rater; :func:`episode_ending` looks at its first and
last administration, "today" (``as_of``) and, when a practice system supplied them, the client's
appointments:

- **Without attendance data** (or for an episode that is not the client's latest): the episode
  has ended once its last administration is more than ``episode_gap_days`` (90) old.
- **With attendance data**, the client's latest episode has ended when no appointment is booked
  from ``as_of`` on and the last session (administration or attended appointment) is more than
  ``episode_end_days`` (60) old. A booked appointment keeps it open.

How it ended (:func:`planned_ending`) follows the planned vs unilateral ending categories that
FIT agencies report (the ICCE/OpenFIT aggregate indices: planned or unilateral ending, inside or
outside the target). A unilateral ending is read from what the data shows:

- with attendance data, an ending is **unplanned** when the episode ended after missed
  appointments (its last held appointment was a no-show or late cancellation: the client did not
  come back, the "failure to keep the last appointment" definition of dropout, Pekarik 1985,
  compared with other definitions by Hatchett & Park 2003) or without reaching the target
  (change from intake below the reliable change); **planned** otherwise;
- without attendance data only the target is known: planned when it was reached.

Definitions of dropout change dropout rates a great deal (Swift & Greenberg 2012, J Consult Clin
Psychol 80(4):547-559), so this one is documented in the docs and applied the same everywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from .models import MISSED_STATUSES, Appointment
from .settings import Settings

__all__ = [
    "HELD_STATUSES",
    "Ending",
    "episode_ending",
    "held_appointments",
    "latest_episode_ids",
    "planned_ending",
]

#: appointments that took place or should have (a cancellation in good time is neither)
HELD_STATUSES: frozenset[str] = frozenset({"attended", *MISSED_STATUSES})
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Ending:
    """Whether an episode view has ended by ``as_of``, and what the data says about it.

    ``last_session`` is the latest administration or attended appointment; ``ended_on`` the first
    day the episode counts as ended (None while a booking keeps it open); ``next_booked`` the
    earliest appointment booked on or after ``as_of``; ``held`` the episode's held appointments
    (attended, no-show, late cancellation) up to ``as_of`` or the ending, oldest first;
    ``missed_at_end`` how many of those came after the last attended one; ``review_on`` the next
    date on which the answer may change without new data (None: never).
    """

    ended: bool
    basis: Literal["gap", "attendance"]
    last_session: dt.date
    ended_on: dt.date | None
    next_booked: dt.date | None = None
    held: tuple[Appointment, ...] = ()
    missed_at_end: int = 0
    review_on: dt.date | None = None

    @property
    def attendance(self) -> bool:
        """True when attendance data decided it."""
        return self.basis == "attendance"


def held_appointments(
    appointments: Iterable[Appointment], first: dt.date, until: dt.date
) -> tuple[Appointment, ...]:
    """Attended and missed appointments dated ``first`` … ``until`` (inclusive), oldest first."""
    return tuple(
        sorted(
            (
                a
                for a in appointments
                if a.status in HELD_STATUSES and first <= a.local_date <= until
            ),
            key=lambda a: (a.starts_at, a.source_key),
        )
    )


def _missed_at_end(held: Sequence[Appointment]) -> int:
    n = 0
    for a in reversed(held):
        if a.status not in MISSED_STATUSES:
            break
        n += 1
    return n


def episode_ending(
    first: dt.date,
    last: dt.date,
    as_of: dt.date,
    settings: Settings,
    appointments: Sequence[Appointment] = (),
    *,
    latest: bool = True,
) -> Ending:
    """The :class:`Ending` of an episode view whose administrations span ``first`` … ``last``.

    ``appointments`` are the client's (from the practice system, any order); ``latest`` says
    whether this is the client's latest episode (see :func:`latest_episode_ids`): attendance data
    decides only the latest one's end, an earlier one ends by the gap.
    """
    if not appointments or not latest:
        ended_on = last + dt.timedelta(days=settings.episode_gap_days) + _DAY
        ended = as_of >= ended_on
        held = (
            held_appointments(appointments, first, min(as_of, ended_on - _DAY))
            if appointments
            else ()
        )
        return Ending(
            ended=ended,
            basis="gap",
            last_session=last,
            ended_on=ended_on,
            held=held,
            missed_at_end=_missed_at_end(held),
            review_on=None if ended else ended_on,
        )
    booked = min(
        (a.local_date for a in appointments if a.status == "scheduled" and a.local_date >= as_of),
        default=None,
    )
    # attended appointments count as sessions of this episode up to the gap after its last
    # administration (a later one belongs to whatever comes next)
    until = min(last + dt.timedelta(days=settings.episode_gap_days), as_of)
    last_session = max(
        [
            last,
            *(
                a.local_date
                for a in appointments
                if a.status == "attended" and first <= a.local_date <= until
            ),
        ]
    )
    if booked is not None:
        held = held_appointments(appointments, first, as_of)
        return Ending(
            ended=False,
            basis="attendance",
            last_session=last_session,
            ended_on=None,
            next_booked=booked,
            held=held,
            missed_at_end=_missed_at_end(held),
            review_on=booked + _DAY,  # the day after, an unchanged booking has passed
        )
    ended_on = last_session + dt.timedelta(days=settings.episode_end_days) + _DAY
    ended = as_of >= ended_on
    held = held_appointments(appointments, first, min(as_of, ended_on - _DAY))
    return Ending(
        ended=ended,
        basis="attendance",
        last_session=last_session,
        ended_on=ended_on,
        held=held,
        missed_at_end=_missed_at_end(held),
        review_on=None if ended else ended_on,
    )


def planned_ending(ending: Ending, reached_target: bool | None) -> bool | None:
    """True for a planned ending, False for an unplanned (unilateral) one, None while open.

    With attendance data: unplanned when the episode ended after missed appointments or without
    reaching the target, planned otherwise. Without: planned when the target was reached
    (``reached_target`` None, fewer than two ORS, counts as not reached).
    """
    if not ending.ended:
        return None
    if ending.missed_at_end:
        return False
    return bool(reached_target)


def latest_episode_ids(last_dates: Iterable[tuple[str, dt.date]]) -> set[str]:
    """The client's latest episode(s): those holding the client's latest administration.

    ``last_dates`` are (episode id, last administration date) pairs, one per view (rater) or
    episode; an episode whose latest date is the client's latest is "latest" for every rater.
    """
    pairs = list(last_dates)
    if not pairs:
        return set()
    newest = max(d for _, d in pairs)
    return {e for e, d in pairs if d == newest}
