"""Rescoring in two processes changes nothing: a clinic synced over time (first sync, edits,
an acknowledged alert, deletions, bad rows) ends with the same scores file, alerts (ids,
states, events), reviews and outbox whether its batches were scored in one process or two."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from fit_core import sync as sync_module
from fit_core.config import Config, config_from_mapping
from fit_core.plugins import load_plugins
from fit_core.store import Store
from fit_core.sync import PARALLEL_MIN_ADMINISTRATIONS, RESCORE_BATCH, SyncEngine
from fit_core.synthetic import bad_rows, generate_rows, write_csv

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

#: what is compared (times of day are left out: the two runs happen at different moments)
TABLES = {
    "flags": "SELECT id, namespace, client_id, episode_id, rater, family, rule_id, severity, "
    "message, inputs, state, source, source_key, session, local_date, first_source_key, "
    "close_reason, closed_by_key FROM flags ORDER BY id",
    "flag_events": "SELECT id, flag_id, event, state, source, source_key, session, detail "
    "FROM flag_events ORDER BY id",
    "client_reviews": "SELECT * FROM client_reviews ORDER BY namespace, client_id",
    "outbox": "SELECT source, source_key, namespace, client_id, payload, extra, hash, line "
    "FROM outbox ORDER BY source, source_key",
    "push_ledger": "SELECT source, source_key, hash FROM push_ledger ORDER BY 1, 2",
}


def mid_life_clinic(
    workdir: Path, n: int, seed: int, timezone: str, processes: int
) -> tuple[Config, list[dict[str, str]], dt.datetime]:
    """A synthetic clinic exported three-quarters into its life (alerts hold then), in
    ``workdir/admins.csv``: its config (one CSV source), its rows, and that day's evening."""
    rows = list(generate_rows(n, seed=seed))
    days = sorted(r["administered_at"][:10] for r in rows)
    today = days[len(days) * 3 // 4]
    rows = [r for r in rows if r["administered_at"][:10] <= today]
    write_csv(workdir / "admins.csv", rows)
    config = config_from_mapping(
        {
            "store": {"path": str(workdir / "fit.sqlite3")},
            "sync": {"timezone": timezone, "processes": processes},
            "sources": {
                "clinic": {
                    "adapter": "csv",
                    "path": str(workdir / "admins.csv"),
                    "scores_path": str(workdir / "scores.csv"),
                }
            },
        }
    )
    now = dt.datetime.combine(dt.date.fromisoformat(today), dt.time(18), tzinfo=dt.UTC)
    return config, rows, now


def life_of_a_clinic(
    workdir: Path, processes: int, tables: Mapping[str, str] = TABLES
) -> tuple[dict[str, list[Any]], list[bytes]]:
    """Sync a clinic three times with changes between; the stored ``tables`` (by their
    queries) and the scores files."""
    workdir.mkdir()
    config, rows, now = mid_life_clinic(workdir, 6_000, 5, "America/Chicago", processes)
    admins = workdir / "admins.csv"
    files: list[bytes] = []
    store = Store.open(config.store_path)
    try:
        engine = SyncEngine(config, load_plugins(), store, clock=lambda: now)
        assert engine.run().exit_code == 0
        files.append((workdir / "scores.csv").read_bytes())
        open_alerts = store.list_flags(state="open")
        assert len(open_alerts) > 10  # the clinic is mid-life: alerts hold
        # the same alert whichever ids the alerts got
        first = min(open_alerts, key=lambda a: (a["client_id"], a["rule_id"], a["source_key"]))
        store.set_flag_state(first["id"], "acknowledged")
        for i, row in enumerate(rows):  # answers edited, a clinician changed
            if i % 53 == 7 and row["q1"]:
                row["q1"] = "0.5" if row["q1"] != "0.5" else "9.5"
                row["total"] = ""
            elif i % 61 == 3:
                row["clinician_id"] = "T42"
        kept = [r for i, r in enumerate(rows) if i % 41 != 9]  # some rows deleted
        write_csv(admins, [*kept, *bad_rows(kept[len(kept) // 2])])
        assert engine.run().exit_code == 1
        files.append((workdir / "scores.csv").read_bytes())
        later = now + dt.timedelta(days=40)  # date rules move on with no new data
        engine = SyncEngine(config, load_plugins(), store, clock=lambda: later)
        assert engine.run().exit_code == 0  # the bad rows were reported already
        files.append((workdir / "scores.csv").read_bytes())
    finally:
        store.close()
    conn = sqlite3.connect(workdir / "fit.sqlite3")
    try:
        stored = {name: conn.execute(sql).fetchall() for name, sql in tables.items()}
    finally:
        conn.close()
    return stored, files


def test_two_processes_store_and_push_what_one_does(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    forking: list[int],
) -> None:
    assert PARALLEL_MIN_ADMINISTRATIONS < 6_000  # the first sync's batches are split
    assert RESCORE_BATCH >= 300
    serial = life_of_a_clinic(tmp_path / "one", processes=1)  # [sync] processes = 1: no fork
    forks = forking  # forks even with other threads in the test run or on one CPU
    # every batch of every run is split, the small ones of the later syncs too
    monkeypatch.setattr(sync_module, "PARALLEL_MIN_ADMINISTRATIONS", 2)
    parallel = life_of_a_clinic(tmp_path / "two", processes=2)
    assert len(forks) >= 3, "not every sync scored in a second process"
    # the children's results came back (alert plans hold records with read-only mappings):
    # none was scored again here
    assert "second process failed" not in caplog.text
    for name in TABLES:
        assert parallel[0][name] == serial[0][name], name
    assert parallel[1] == serial[1]


@pytest.mark.parametrize("processes", [1, 2])
def test_an_alert_acknowledged_while_its_batch_is_scored_is_rescored_in_the_same_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forking: list[int], processes: int
) -> None:
    """The next batch is read before the one before it is written: an acknowledgement made in
    between (``fit alerts ack`` in another shell) keeps that client dirty, and the sync takes
    it again before it ends, so its pushed row no longer carries the acknowledged flag."""
    monkeypatch.setattr(sync_module, "RESCORE_BATCH", 4)
    monkeypatch.setattr(sync_module, "PARALLEL_MIN_ADMINISTRATIONS", 2)
    config, _rows, now = mid_life_clinic(tmp_path, 400, 8, "UTC", processes)
    store = Store.open(config.store_path)
    try:
        engine = SyncEngine(config, load_plugins(), store, clock=lambda: now)
        assert engine.run().exit_code == 0
        alerts = store.list_flags(state="open")
        clients = sorted({(a["namespace"], a["client_id"]) for a in alerts})
        # a client of the second batch: read before the first batch is written
        target = next(a for a in alerts if (a["namespace"], a["client_id"]) == clients[5])
        assert len(clients) > 8
        store.mark_dirty(clients)  # e.g. a settings change: every client again
        acked: list[int] = []

        def ack_once(_source: str, stage: str, _count: int) -> None:
            if stage == "rescored clients" and not acked:
                assert store.set_flag_state(target["id"], "acknowledged")
                acked.append(target["id"])

        engine = SyncEngine(config, load_plugins(), store, clock=lambda: now, progress=ack_once)
        assert engine.run().exit_code == 0
        assert acked
        assert store.dirty_batch(10) == []
        assert store.alert(target["id"])["state"] == "acknowledged"
        pushed = store.conn.execute(  # a scores-file source keeps the line it pushes
            "SELECT payload || coalesce(line, '') FROM outbox WHERE source = ? AND source_key = ?",
            (target["source"], target["source_key"]),
        ).fetchone()[0]
        assert pushed and target["rule_id"] not in pushed  # acknowledged flags are not pushed
    finally:
        store.close()


@pytest.mark.parametrize(
    ("value", "message"),
    [(3, "must be 1 or 2, not 3"), (0, "whole number >= 1"), ("2", "whole number >= 1")],
)
def test_processes_must_be_one_or_two(value: object, message: str) -> None:
    from fit_core.errors import ConfigError

    with pytest.raises(ConfigError, match=message) as caught:
        config_from_mapping({"sync": {"processes": value}})
    assert "[sync] processes" in str(caught.value)


def test_processes_defaults_to_two() -> None:
    assert config_from_mapping({}).sync.processes == 2
    assert config_from_mapping({"sync": {"processes": 1}}).sync.processes == 1
