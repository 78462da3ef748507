"""The sync engine's guarantees, against an in-memory adapter (no files, no network)."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path

import pytest

from fit_core.config import config_from_mapping
from fit_core.errors import ExitCode, LockedError
from fit_core.lock import SyncLock
from fit_core.models import RecordError
from fit_core.plugins import load_plugins
from fit_core.store import Store
from fit_core.sync import SyncEngine

sys.path.insert(0, str(Path(__file__).parent))
import memory_adapter
from memory_adapter import MemorySource

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def ors(client: str, day: int, total: float) -> dict[str, str]:
    return {
        "client_id": client,
        "administered_at": f"2026-03-{day:02d}",
        "measure": "ORS",
        "total": str(total),
    }


def srs(client: str, day: int, items: tuple[float, float, float, float]) -> dict[str, str]:
    d = {"client_id": client, "administered_at": f"2026-03-{day:02d}", "measure": "SRS"}
    d.update({f"q{i + 1}": str(v) for i, v in enumerate(items)})
    return d


@pytest.fixture
def remote() -> MemorySource:
    src = MemorySource()
    memory_adapter.SOURCES["r1"] = src
    return src


@pytest.fixture
def engine(tmp_path: Path, remote: MemorySource):
    raw = {
        "store": {"path": str(tmp_path / "fit.sqlite3")},
        "sync": {"timezone": "UTC"},
        "sources": {"mem": {"adapter": "memory", "remote": "r1"}},
        # these tests check the engine with the three starting rules; date rules are below
        "rules": {"disabled": ["srs.missing", "attendance.dropout_risk", "ors.high_intake"]},
    }
    config = config_from_mapping(raw)
    registry = load_plugins(extra=[memory_adapter])
    store = Store.open(config.store_path)
    clock = [T0 + dt.timedelta(days=30)]
    eng = SyncEngine(config, registry, store, clock=lambda: clock[0])
    eng.clock_cell = clock  # type: ignore[attr-defined]
    yield eng
    store.close()


def test_full_sync_pushes_scores_and_second_run_pushes_nothing(engine, remote) -> None:
    remote.put("a1", ors("C1", 2, 20.0), T0)
    remote.put("a2", srs("C1", 2, (9, 9, 9, 9)), T0)
    remote.put("a3", ors("C1", 9, 14.5), T0)
    remote.put("a4", srs("C1", 9, (8, 8, 8, 8)), T0)
    s = engine.run()
    assert s.exit_code == ExitCode.OK
    src = s.sources[0]
    assert (src.pulled, src.new, src.pushed, src.quarantined) == (4, 4, 4, 0)
    assert remote.target["a3"]["session"] == 2
    assert remote.target["a3"]["flags"] == ["ors.reliable_deterioration"]
    assert set(remote.target["a4"]["flags"]) == {"srs.below_cutoff", "srs.drop"}
    assert remote.target["a2"]["flags"] == []
    calls = remote.push_calls
    s2 = engine.run()
    assert s2.sources[0].pushed == 0 and remote.push_calls == calls
    assert s2.sources[0].new == 0 and s2.sources[0].changed == 0


def test_changed_record_replaces_old_and_flags_resolve(engine, remote) -> None:
    remote.put("a1", ors("C1", 2, 20.0), T0)
    remote.put("a3", ors("C1", 9, 14.5), T0)
    engine.run()
    assert engine.store.list_flags("open")[0]["rule_id"] == "ors.reliable_deterioration"
    remote.put("a3", ors("C1", 9, 26.0), T0 + dt.timedelta(days=31))
    engine.clock_cell[0] = T0 + dt.timedelta(days=32)
    s = engine.run()
    assert s.sources[0].changed == 1
    assert engine.store.count("administrations") == 2
    assert engine.store.list_flags("open") == []
    assert engine.store.list_flags("resolved")[0]["rule_id"] == "ors.reliable_deterioration"
    assert remote.target["a3"]["rc_class"] == "recovered"
    assert remote.target["a3"]["flags"] == []


def test_bad_records_are_quarantined_and_good_ones_go_through(engine, remote, caplog) -> None:
    remote.put("good", ors("C1", 2, 20.0), T0)
    remote.put(
        "bad-range",
        {**ors("C2", 2, 0), "total": "", "q1": "11", "q2": "secret-ish", "q3": "1", "q4": "1"},
        T0,
    )
    remote.put("bad-date", {**ors("C3", 2, 12.0), "administered_at": "2026-02-30"}, T0)
    remote.errors.append(RecordError("unreadable", {"record": "could not parse"}, "row 9"))
    with caplog.at_level(logging.WARNING):
        s = engine.run()
    assert s.exit_code == ExitCode.PARTIAL
    assert s.sources[0].quarantined == 3
    assert set(remote.target) == {"good"}
    q = {r["source_key"]: r["reasons"] for r in engine.store.quarantined()}
    assert set(q) == {"bad-range", "bad-date", "unreadable"}
    assert "q2" in q["bad-range"] and "administered_at" in q["bad-date"]
    assert "secret-ish" not in caplog.text and "bad-range" in caplog.text
    # fixing the record at the source releases it from quarantine
    remote.put("bad-date", ors("C3", 3, 12.0), T0 + dt.timedelta(days=1))
    remote.rows.pop("bad-range")
    remote.errors.clear()
    engine.run()
    assert {r["source_key"] for r in engine.store.quarantined()} == {"bad-range", "unreadable"}
    assert "bad-date" in remote.target


def test_push_failure_keeps_bookmark_and_next_run_pushes_the_rest(engine, remote) -> None:
    for i in range(8):
        remote.put(f"k{i}", ors(f"C{i}", 2, 20.0), T0)
    remote.fail_push_after = 1  # first batch (3 rows) lands, then the target fails
    s = engine.run()
    assert s.sources[0].status == "failed" and s.sources[0].pushed == 3
    assert engine.store.bookmark("mem") is None
    assert len(remote.target) == 3
    remote.fail_push_after = None
    s2 = engine.run()
    assert s2.sources[0].pushed == 5
    assert len(remote.target) == 8
    assert engine.store.bookmark("mem") is not None


def test_unconfirmed_rows_are_pushed_again(engine, remote) -> None:
    remote.put("k1", ors("C1", 2, 20.0), T0)
    remote.put("k2", ors("C2", 2, 20.0), T0)
    remote.reject = {"k2"}
    s = engine.run()
    assert s.exit_code == ExitCode.PARTIAL and s.sources[0].push_rejected == 1
    remote.reject = set()
    s2 = engine.run()
    assert s2.sources[0].pushed == 1 and "k2" in remote.target


def test_dry_run_pushes_nothing_and_keeps_bookmark(engine, remote) -> None:
    remote.put("k1", ors("C1", 2, 20.0), T0)
    s = engine.run(dry_run=True)
    assert s.sources[0].would_push == 1 and s.sources[0].pushed == 0
    assert remote.push_calls == 0 and remote.target == {}
    assert engine.store.bookmark("mem") is None
    s2 = engine.run()
    assert s2.sources[0].pushed == 1


def test_second_sync_while_one_runs_is_locked(engine) -> None:
    with SyncLock(engine.store.path), pytest.raises(LockedError):
        engine.run()


def test_bookmark_is_min_of_newest_and_run_start_minus_overlap(engine, remote) -> None:
    remote.put("k1", ors("C1", 2, 20.0), T0)
    engine.run()
    assert dt.datetime.fromisoformat(engine.store.bookmark("mem")) == T0 - dt.timedelta(minutes=5)


def test_store_file_is_owner_only(engine) -> None:
    import os
    import stat

    assert stat.S_IMODE(os.stat(engine.store.path).st_mode) == 0o600


def test_date_rules_are_reevaluated_without_new_data(engine, remote) -> None:
    from fit_core.settings import Settings

    engine.settings = Settings()  # every rule on
    remote.put("a1", ors("C1", 2, 20.0), T0)
    remote.put("a2", srs("C1", 2, (9, 9, 9, 9)), T0)
    remote.put("b1", ors("C2", 2, 20.0), T0)  # no SRS that day
    engine.clock_cell[0] = T0 + dt.timedelta(days=1)
    engine.run()
    open_rules = {(f["client_id"], f["rule_id"]) for f in engine.store.list_flags("open")}
    assert ("C2", "srs.missing") in open_rules
    assert not any(r == "attendance.dropout_risk" for _, r in open_rules)
    # 40 days later, nothing new at the source: the dropout risk appears by itself
    engine.clock_cell[0] = T0 + dt.timedelta(days=40)
    s = engine.run()
    assert s.sources[0].new == 0 and s.clients_rescored == 2
    open_rules = {(f["client_id"], f["rule_id"]) for f in engine.store.list_flags("open")}
    assert {("C1", "attendance.dropout_risk"), ("C2", "attendance.dropout_risk")} <= open_rules
    assert remote.target["a2"]["flags"] == ["attendance.dropout_risk"]  # latest of the episode
    # and a run the next day has nothing due: no client is rescored
    engine.clock_cell[0] = T0 + dt.timedelta(days=41)
    assert engine.run().clients_rescored == 0
    # after the episode gap the episode has ended and the flag resolves
    engine.clock_cell[0] = T0 + dt.timedelta(days=95)
    engine.run()
    assert not any(f["rule_id"] == "attendance.dropout_risk" for f in engine.store.list_flags())


def appt(key: str, day: int, status: str, client: str = "C1", month: int = 3):
    from fit_core.models import Appointment

    when = dt.datetime(2026, month, day, 9, tzinfo=dt.UTC)
    return Appointment("mem", key, "mem", client, when, when.date(), status, "T07", "90834")


def test_attendance_feeds_ors_missing_dropout_and_a_client_summary(engine, remote) -> None:
    from fit_core.models import ClientInfo
    from fit_core.settings import Settings

    engine.settings = Settings()
    remote.put("o1", ors("C1", 2, 20.0), T0)
    remote.put("s1", srs("C1", 2, (9, 9, 9, 9)), T0)
    remote.context += [
        appt("ap1", 2, "attended"),
        appt("ap2", 9, "attended"),  # no ORS that day
        appt("ap3", 16, "no_show"),
        appt("ap4", 23, "late_cancel"),
        ClientInfo("mem", "mem", "C1", dt.date(2000, 5, 1), "T07", "active"),
    ]
    engine.clock_cell[0] = dt.datetime(2026, 3, 24, 12, tzinfo=dt.UTC)
    engine.run()
    flags = {f["rule_id"]: f for f in engine.store.list_flags("open") if f["client_id"] == "C1"}
    assert flags["ors.missing"]["inputs"]["dates"] == ["2026-03-09"]
    assert flags["attendance.dropout_risk"]["inputs"]["missed"] == 2
    # enrichment: the clinician and the age come from the practice data
    assert remote.target["o1"]["flags"] == []
    summary = remote.target["client:mem:C1"]
    assert summary["clinician_id"] == "T07" and summary["ors"]["total"] == 20.0
    assert {f["rule_id"] for f in summary["flags"]} >= {"ors.missing", "attendance.dropout_risk"}
    # an unchanged re-sync pushes nothing, the summary included
    pushed = remote.push_calls
    engine.run()
    assert remote.push_calls == pushed


def test_a_practice_source_listed_first_still_reaches_this_runs_pushes(tmp_path: Path) -> None:
    from fit_core.models import Appointment

    practice, scores = MemorySource(), MemorySource()
    memory_adapter.SOURCES.update(pm=practice, sc=scores)
    config = config_from_mapping(
        {
            "store": {"path": str(tmp_path / "fit.sqlite3")},
            "sync": {"timezone": "UTC"},
            "sources": {  # the practice source first: its data changes the other's scores
                "practice": {"adapter": "memory", "remote": "pm", "namespace": "clinic"},
                "forms": {"adapter": "memory", "remote": "sc", "namespace": "clinic"},
            },
        }
    )
    scores.put("o1", ors("C1", 2, 20.0), T0)
    scores.put("s1", srs("C1", 2, (9, 9, 9, 9)), T0)
    when = dt.datetime(2026, 3, 9, 9, tzinfo=dt.UTC)
    practice.context.append(
        Appointment("practice", "ap2", "clinic", "C1", when, when.date(), "attended")
    )
    store = Store.open(config.store_path)
    try:
        engine = SyncEngine(
            config,
            load_plugins(extra=[memory_adapter]),
            store,
            clock=lambda: dt.datetime(2026, 3, 12, tzinfo=dt.UTC),
        )
        summary = engine.run()
        assert [s.status for s in summary.sources] == ["ok", "ok"]
        assert "ors.missing" in scores.target["s1"]["flags"]  # pushed in the same run
        assert "ors.missing" in {f["rule_id"] for f in practice.target["client:clinic:C1"]["flags"]}
        again = engine.run()
        assert [s.pushed for s in again.sources] == [0, 0]
    finally:
        store.close()


def test_a_full_pull_source_drops_practice_data_it_no_longer_has(engine, remote) -> None:
    memory_adapter.MemoryAdapter.pull_mode = "full"
    try:
        remote.put("o1", ors("C1", 2, 20.0), T0)
        remote.context += [appt("ap1", 2, "attended"), appt("ap2", 9, "attended")]
        engine.clock_cell[0] = dt.datetime(2026, 3, 12, tzinfo=dt.UTC)
        engine.run()
        assert any(f["rule_id"] == "ors.missing" for f in engine.store.list_flags("open"))
        remote.context = [appt("ap1", 2, "attended")]  # ap2 was deleted in the practice system
        engine.run()
        assert not any(f["rule_id"] == "ors.missing" for f in engine.store.list_flags("open"))
        assert engine.store.client_contexts([("mem", "C1")])[("mem", "C1")].appointments == (
            appt("ap1", 2, "attended"),
        )
    finally:
        memory_adapter.MemoryAdapter.pull_mode = "incremental"
