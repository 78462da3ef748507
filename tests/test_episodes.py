"""When an episode has ended: by the gap alone, or from attendance data when there is some."""

from __future__ import annotations

import datetime as dt

from fit_core.episodes import episodes_of, is_ended, summarize
from fit_core.measures import BUILTIN_MEASURES
from fit_core.models import Administration, Appointment, ClientContext
from fit_core.scoring import score_client
from fit_core.settings import Settings

MEASURES = {m.key: m for m in BUILTIN_MEASURES}
D0 = dt.date(2026, 1, 5)


def ors(key: str, day: dt.date, total: float) -> Administration:
    when = dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC)
    return Administration("t", key, "t", "C1", "ORS", when, day, False, total)


def appt(day: dt.date, status: str) -> Appointment:
    when = dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC)
    return Appointment("sp", str(day), "t", "C1", when, day, status)


def view():
    scored = score_client(
        [ors("a", D0, 15.0), ors("b", D0 + dt.timedelta(7), 22.0)], MEASURES, Settings()
    )
    (v,) = episodes_of(scored.scored)
    return v


def test_without_attendance_the_gap_ends_an_episode() -> None:
    s = Settings()
    assert not is_ended(view(), D0 + dt.timedelta(days=97), s)
    assert is_ended(view(), D0 + dt.timedelta(days=98), s)


def test_with_attendance_a_booked_appointment_keeps_it_open_and_silence_ends_it() -> None:
    s = Settings()
    last_attended = D0 + dt.timedelta(days=30)
    ctx = ClientContext((appt(last_attended, "attended"),))
    assert not is_ended(view(), last_attended + dt.timedelta(days=60), s, ctx)
    assert is_ended(view(), last_attended + dt.timedelta(days=61), s, ctx)
    booked = ClientContext((*ctx.appointments, appt(D0 + dt.timedelta(days=200), "scheduled")))
    assert not is_ended(view(), last_attended + dt.timedelta(days=150), s, booked)
    summary = summarize(view(), MEASURES, s, last_attended + dt.timedelta(days=61), context=ctx)
    assert summary.ended and summary.planned_ending is True  # +7 reached the target
