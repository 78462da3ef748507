"""The alert-lifecycle migration: a store built at the schema before it keeps every alert id
and acknowledgement, and the next sync brings its one-alert-per-session rows to the new states."""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
from pathlib import Path

from fit_core.config import config_from_mapping
from fit_core.plugins import load_plugins
from fit_core.store import ALERT_LIFECYCLE_SCHEMA, MIGRATIONS, SCHEMA_VERSION, Store
from fit_core.sync import SyncEngine

sys.path.insert(0, str(Path(__file__).parent))
import memory_adapter
from memory_adapter import MemorySource

AT = "2026-03-20T10:00:00+00:00"


def old_store(path: Path) -> None:
    """A store as the version before the lifecycle left it: flags one per administration."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for version in range(1, ALERT_LIFECYCLE_SCHEMA):
        for stmt in MIGRATIONS[version]:
            conn.execute(stmt)
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
        (str(ALERT_LIFECYCLE_SCHEMA - 1),),
    )
    admins = {
        # N1: no change at sessions 3 and 4 (the old store had a checkpoint flag on each)
        "n1": ("N1", 1, 15.0),
        "n2": ("N1", 2, 15.5),
        "n3": ("N1", 3, 16.0),
        "n4": ("N1", 4, 16.5),
        # R1: deteriorated at session 2, recovered at 3 (its flag was resolved)
        "r1": ("R1", 1, 20.0),
        "r2": ("R1", 2, 14.0),
        "r3": ("R1", 3, 26.0),
        # K1: deteriorated and still is (acknowledged on its latest session)
        "k1": ("K1", 1, 20.0),
        "k2": ("K1", 2, 14.0),
    }
    for key, (client, week, total) in admins.items():
        day = dt.date(2026, 3, 2) + dt.timedelta(weeks=week - 1)
        conn.execute(
            "INSERT INTO administrations (source, source_key, namespace, client_id, measure, "
            "administered_at, local_date, date_only, total, items, clinician_id, episode_id, "
            "rater, age, session_hint, extra, hash, updated_at) VALUES "
            "(?, ?, ?, ?, 'ORS', ?, ?, 1, ?, NULL, 'T1', NULL, 'client', NULL, NULL, NULL, ?, ?)",
            (
                "mem",
                key,
                "mem",
                client,
                f"{day.isoformat()}T00:00:00+00:00",
                day.isoformat(),
                total,
                f"h-{key}",
                AT,
            ),
        )
    flags = [
        (1, "n3", "N1", "ors.checkpoint", "acknowledged"),
        (2, "n4", "N1", "ors.checkpoint", "acknowledged"),
        (3, "r2", "R1", "ors.reliable_deterioration", "resolved"),
        (4, "k2", "K1", "ors.reliable_deterioration", "acknowledged"),
        (5, "n4", "N1", "srs.missing", "open"),
    ]
    for fid, key, client, rule, state in flags:
        conn.execute(
            "INSERT INTO flags (id, source, source_key, namespace, client_id, rule_id, "
            "rule_version, severity, message, inputs, state, raised_at, updated_at) VALUES "
            "(?, 'mem', ?, 'mem', ?, ?, 1, 'warning', 'old message', '{}', ?, ?, ?)",
            (fid, key, client, rule, state, AT, AT),
        )
    conn.close()


def test_migration_keeps_ids_and_acknowledgements_and_the_next_sync_merges(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fit.sqlite3"
    old_store(path)
    store = Store.open(path)
    try:
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
        rows = {a["id"]: a for a in store.list_flags("all")}
        assert {i: r["state"] for i, r in rows.items()} == {
            1: "acknowledged",
            2: "acknowledged",
            3: "superseded",
            4: "acknowledged",
            5: "open",
        }
        assert all(rows[i]["acknowledged_at"] == AT for i in (1, 2, 4))
        assert rows[3]["closed_at"] == AT and rows[3]["close_reason"] == "superseded"
        assert [e["event"] for e in store.alert(1)["history"]] == ["raised", "acknowledged"]

        # the next sync (nothing new at the source) rescores the clients with old alerts
        remote = MemorySource()
        memory_adapter.SOURCES["migrated"] = remote
        config = config_from_mapping(
            {
                "store": {"path": str(path)},
                "sync": {"timezone": "UTC"},
                "sources": {"mem": {"adapter": "memory", "remote": "migrated"}},
            }
        )
        now = dt.datetime(2026, 3, 24, 12, tzinfo=dt.UTC)
        SyncEngine(config, load_plugins(extra=[memory_adapter]), store, clock=lambda: now).run()
        after = {a["id"]: a for a in store.list_flags("all")}
        # N1's two checkpoint rows were one condition: the latest is the alert, still
        # acknowledged; the older one was superseded by it, its acknowledgement kept
        assert after[2]["state"] == "acknowledged" and after[2]["session"] == 4
        assert (after[2]["first_session"], after[2]["episode_id"]) == (3, "auto-2026-03-02")
        assert after[1]["state"] == "superseded" and after[1]["acknowledged_at"] == AT
        # K1 still deteriorated: same alert, same acknowledgement, the message of today
        assert after[4]["state"] == "acknowledged" and after[4]["message"] != "old message"
        assert after[3]["state"] == "superseded"
        # no acknowledgement was lost, no duplicate alert was raised for old conditions
        acked = {i for i, a in after.items() if a["acknowledged_at"]}
        assert acked == {1, 2, 4}
        current = store.list_flags("current")
        assert sorted((a["client_id"], a["rule_id"]) for a in current) == [
            ("K1", "ors.reliable_deterioration"),
            ("K1", "srs.missing"),
            ("N1", "ors.checkpoint"),
            ("N1", "srs.missing"),
            ("R1", "srs.missing"),
        ]
        assert (
            next(a for a in current if a["client_id"] == "N1" and "srs" in a["rule_id"])["id"] == 5
        )
    finally:
        store.close()
