"""One notion of an episode and its ending, shared by the dropout rule, the alert lifecycle and
the statistics: a clinic with attendance data, judged the week after its last appointment and
again months later."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fit_core.config import config_from_mapping
from fit_core.endings import episode_ending, planned_ending
from fit_core.models import Appointment, ClientInfo
from fit_core.plugins import load_plugins
from fit_core.settings import Settings
from fit_core.store import Store
from fit_core.sync import SyncEngine

sys.path.insert(0, str(Path(__file__).parent))
import memory_adapter
from memory_adapter import MemorySource

DAY0 = dt.date(2026, 3, 2)
S = Settings()


def day(week: int) -> dt.date:
    return DAY0 + dt.timedelta(weeks=week)


def appt(client: str, week: int, status: str) -> Appointment:
    when = dt.datetime.combine(day(week), dt.time(15), tzinfo=dt.UTC)
    return Appointment("mem", f"{client}-{week}", "mem", client, when, day(week), status, "T1")


# --- the rule, unit by unit -----------------------------------------------------------------------


def test_without_attendance_an_episode_ends_after_the_gap() -> None:
    e = episode_ending(day(0), day(4), day(4) + dt.timedelta(days=90), S)
    assert not e.ended and e.basis == "gap" and e.review_on == day(4) + dt.timedelta(days=91)
    assert episode_ending(day(0), day(4), day(4) + dt.timedelta(days=91), S).ended


def test_with_attendance_nothing_booked_and_no_session_for_60_days_ends_it() -> None:
    appts = [appt("C", w, "attended") for w in range(5)] + [appt("C", 5, "no_show")]
    open_ = episode_ending(day(0), day(3), day(4) + dt.timedelta(days=60), S, appts)
    assert not open_.ended and open_.last_session == day(4)  # an attended session counts
    ended = episode_ending(day(0), day(3), day(4) + dt.timedelta(days=61), S, appts)
    assert ended.ended and ended.basis == "attendance" and ended.missed_at_end == 1
    assert planned_ending(ended, reached_target=True) is False  # it ended after a no-show
    booked = [*appts, appt("C", 30, "scheduled")]
    assert not episode_ending(day(0), day(3), day(20), S, booked).ended


def test_planned_means_target_reached_and_no_missed_appointments_at_the_end() -> None:
    appts = [appt("C", w, "attended") for w in range(5)]
    ended = episode_ending(day(0), day(4), day(30), S, appts)
    assert planned_ending(ended, reached_target=True) is True
    assert planned_ending(ended, reached_target=False) is False
    assert planned_ending(episode_ending(day(0), day(4), day(5), S, appts), True) is None


# --- a clinic with attendance data ---------------------------------------------------------------

DROPOUTS = [f"D{i}" for i in range(6)]  # came weekly, improved a little, then two no-shows
STEADY = [f"S{i:02d}" for i in range(10)]  # came to their last appointment (week 6)
LAST_APPOINTMENT = day(6)


def clinic_data(remote: MemorySource) -> None:
    stamp = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for client in DROPOUTS:
        for week in range(5):
            total = 14 + week  # +4: no reliable change yet
            remote.put(f"{client}-o{week}", _ors(client, week, total), stamp)
            remote.put(f"{client}-s{week}", _srs(client, week), stamp)
            remote.context.append(appt(client, week, "attended"))
        remote.context += [appt(client, 5, "no_show"), appt(client, 6, "late_cancel")]
        remote.context.append(ClientInfo("mem", "mem", client, dt.date(1990, 1, 1), "T1"))
    for n, client in enumerate(STEADY):
        for week in range(7):
            status = "no_show" if (n % 3 == 0 and week == 4) else "attended"
            remote.context.append(appt(client, week, status))
            if status == "attended":
                remote.put(f"{client}-o{week}", _ors(client, week, 14 + 2 * week), stamp)
                remote.put(f"{client}-s{week}", _srs(client, week), stamp)
        if n % 2:
            remote.context.append(appt(client, 8, "scheduled"))
        remote.context.append(ClientInfo("mem", "mem", client, dt.date(1990, 1, 1), "T1"))


def _ors(client: str, week: int, total: float) -> dict[str, str]:
    return {
        "client_id": client,
        "administered_at": day(week).isoformat(),
        "measure": "ORS",
        "total": str(total),
    }


def _srs(client: str, week: int) -> dict[str, str]:
    return {**_ors(client, week, 38), "measure": "SRS"}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Any]:
    remote = MemorySource()
    memory_adapter.SOURCES["attendance"] = remote
    clinic_data(remote)
    config = config_from_mapping(
        {
            "store": {"path": str(tmp_path / "fit.sqlite3")},
            "sync": {"timezone": "UTC"},
            "sources": {"mem": {"adapter": "memory", "remote": "attendance"}},
        }
    )
    store = Store.open(config.store_path)
    now = [dt.datetime.combine(LAST_APPOINTMENT + dt.timedelta(days=7), dt.time(18), dt.UTC)]
    eng = SyncEngine(config, load_plugins(extra=[memory_adapter]), store, clock=lambda: now[0])
    eng.now = now  # type: ignore[attr-defined]
    eng.remote = remote  # type: ignore[attr-defined]
    yield eng
    store.close()


def dropout_clients(engine: Any, state: str = "open") -> set[str]:
    return {a["client_id"] for a in engine.store.list_flags(state, rule="attendance.dropout_risk")}


def test_the_week_after_the_last_appointment_two_trailing_no_shows_are_flagged(engine) -> None:
    engine.run()
    assert dropout_clients(engine) == set(DROPOUTS)  # all 6 dropouts, none of the 10 steady
    (alert,) = engine.store.list_flags(rule="attendance.dropout_risk", client="D0")
    assert "2 of the last 3 appointments missed" in alert["message"]
    assert alert["clinician_id"] == "T1"  # from the practice data, as scoring reads it
    # the alert is pushed on the client's latest administration only
    assert engine.remote.target["D0-s4"]["flags"] == ["attendance.dropout_risk"]
    assert engine.remote.target["D0-o4"]["flags"] == ["ors.checkpoint"]  # no change by week 5


def test_months_later_no_dropout_alert_stands_on_an_ended_episode(engine) -> None:
    engine.run()
    engine.now[0] += dt.timedelta(days=150)
    summary = engine.run()
    assert summary.sources[0].new == 0
    assert dropout_clients(engine) == set()
    closed = engine.store.list_flags("closed", rule="attendance.dropout_risk")
    assert {a["client_id"] for a in closed} == set(DROPOUTS)
    assert {a["close_reason"] for a in closed} == {"episode_ended"}
    assert engine.store.list_flags("current") == []  # every episode has ended


def test_a_store_first_synced_months_later_never_raises_dropout_on_ended_episodes(
    engine,
) -> None:
    engine.now[0] += dt.timedelta(days=150)
    engine.run()
    assert engine.store.list_flags("all", rule="attendance.dropout_risk") == []


def test_statistics_count_the_same_endings(engine) -> None:
    import fit_cli.main  # noqa: F401  (registers the commands before fit_cli.clinical loads)
    from fit_cli.clinical import _summaries

    engine.run()
    later = engine.now[0].date() + dt.timedelta(days=150)
    summaries = list(_summaries(engine.store, engine.config, engine.registry.measures, later, None))
    by_client = {s.client_key[1]: s for s in summaries}
    assert all(s.ended for s in summaries)
    assert {c for c, s in by_client.items() if s.planned_ending is False} >= set(DROPOUTS)
    # steady clients who reached the target and came to their last appointment: planned
    reached = [c for c in STEADY if by_client[c].target_reached()]
    assert reached and all(by_client[c].planned_ending for c in reached)
