"""What a target has not confirmed, and the scores-file lines kept beside the outbox rows.

- a store from before the ``outbox_pending`` table keeps, through the migration, its outbox
  rows and exactly the rows each target had not confirmed; afterwards every write to the
  outbox keeps the table in step (a new row or a changed hash is unconfirmed, the same hash
  is not, a row that goes takes its entry along);
- a snapshot push streams the lines stored beside the payloads: the scores file is byte for
  byte the one rendered from the payloads, and a row stored without a line (an older version,
  a source whose adapter was not loaded) is rendered from its payload.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from fit_adapters.csv.writer import write_score_lines
from fit_core import sync as sync_module
from fit_core.config import config_from_mapping
from fit_core.plugins import load_plugins
from fit_core.scores_csv import line_of_payload
from fit_core.store import MIGRATIONS, OUTBOX_PENDING_SCHEMA, SCHEMA_VERSION, Store
from fit_core.sync import SyncEngine
from fit_core.synthetic import generate_rows, write_csv

OUTBOX = (
    "INSERT INTO outbox (source, source_key, namespace, client_id, payload, extra, hash, "
    "updated_at, pending) VALUES (?, ?, 'ns', 'C1', ?, NULL, ?, 'T', ?)"
)


def store_before_the_pending_table(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for version in range(1, OUTBOX_PENDING_SCHEMA):
        for stmt in MIGRATIONS[version]:
            conn.execute(stmt)
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
        (str(OUTBOX_PENDING_SCHEMA - 1),),
    )
    for source, key, pending in [
        ("a", "k1", 1),
        ("a", "k2", 0),
        ("a", "k3", 1),
        ("b", "k1", 0),
        ("b", "k9", 1),
    ]:
        conn.execute(OUTBOX, (source, key, f'{{"source_key":"{key}"}}', f"h-{key}", pending))
    conn.close()


def test_the_migration_keeps_what_each_target_has_not_confirmed(tmp_path: Path) -> None:
    path = tmp_path / "fit.sqlite3"
    store_before_the_pending_table(path)
    store = Store.open(path)
    try:
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
        assert (store.pending_count("a"), store.pending_count("b")) == (2, 1)
        # every row kept as it was; the old flag column is gone (nothing would keep it true)
        columns = [r[1] for r in store.conn.execute("PRAGMA table_info(outbox)")]
        assert "pending" not in columns and "line" in columns
        kept = store.conn.execute(
            "SELECT source, source_key, payload, hash FROM outbox ORDER BY 1, 2"
        ).fetchall()
        assert kept == [
            (s, k, f'{{"source_key":"{k}"}}', f"h-{k}")
            for s, k in [("a", "k1"), ("a", "k2"), ("a", "k3"), ("b", "k1"), ("b", "k9")]
        ]
        assert [[i.source_key for i in b] for b in store.pending("a", 1)] == [["k1"], ["k3"]]
        assert [i.source_key for b in store.pending("b", 10) for i in b] == ["k9"]
        # confirmed by hash: k1 as pushed, k3 with a hash it no longer has
        with store.transaction():
            store.mark_pushed("a", [("k1", "h-k1"), ("k3", "old")], "T2")
        assert [i.source_key for b in store.pending("a", 10) for i in b] == ["k3"]

        def write(key: str, h: str) -> None:
            with store.transaction():
                store.write_outbox_rows([("a", key, "ns", "C1", "{}", None, h, "T3")])

        write("k1", "h-k1")  # the same hash: still confirmed
        write("k2", "h-new")  # a changed hash: unconfirmed again
        write("k4", "h-k4")  # a new row
        assert [i.source_key for b in store.pending("a", 10) for i in b] == ["k2", "k3", "k4"]
        with store.transaction():
            store.remove_outbox("a", ["k3"])
        assert store.pending_count("a") == 2
        assert store.removed_count("a") == 1
        with store.transaction():
            store.mark_all_pushed("a", "T4")
        assert (store.pending_count("a"), store.removed_count("a")) == (0, 0)
        ledger = dict(
            store.conn.execute("SELECT source_key, hash FROM push_ledger WHERE source = 'a'")
        )
        assert ledger == {"k1": "h-k1", "k2": "h-new", "k4": "h-k4"}
        with store.transaction():
            assert store.mark_all_pending("a") == 3
        assert store.pending_count("a") == 3 and store.pending_count("b") == 1
    finally:
        store.close()


def test_a_row_follows_its_client_to_another_namespace_and_stays_confirmed(
    tmp_path: Path,
) -> None:
    """A source's namespace changed and the payload did not: the row moves (erasure and export
    find it there), keeps its line, and is not pushed again."""
    store = Store.open(tmp_path / "fit.sqlite3")
    try:
        row = ("a", "k1", "north", "C1", "{}", None, "h1", "T1", "line-1\r\n")
        with store.transaction():
            store.write_outbox_rows([row])
            store.mark_all_pushed("a", "T1")
        assert store.pending_count("a") == 0
        with store.transaction():
            moved = store.write_outbox_rows([("a", "k1", "south", "C1", "{}", None, "h1", "T2")])
        assert moved == 1
        assert store.pending_count("a") == 0
        assert store.conn.execute(
            "SELECT namespace, line FROM outbox WHERE source = 'a' AND source_key = 'k1'"
        ).fetchone() == ("south", None)  # no line given: the push renders it from the payload
        assert list(store.snapshot_lines("a")) == [line_of_payload({})]
        with store.transaction():
            store.write_outbox_rows([("a", "k1", "south", "C1", "{}", None, "h2", "T3")])
        assert store.pending_count("a") == 1  # a changed payload is pushed again
    finally:
        store.close()


def synced_clinic(workdir: Path, n: int = 3000) -> tuple[Store, Path]:
    workdir.mkdir(exist_ok=True)
    rows = list(generate_rows(n, seed=5))
    admins = workdir / "admins.csv"
    write_csv(admins, rows)
    scores = workdir / "scores.csv"
    config = config_from_mapping(
        {
            "store": {"path": str(workdir / "fit.sqlite3")},
            "sync": {"timezone": "America/Chicago"},
            "sources": {
                "clinic": {"adapter": "csv", "path": str(admins), "scores_path": str(scores)}
            },
        }
    )
    store = Store.open(config.store_path)
    now = dt.datetime(2025, 6, 1, 18, tzinfo=dt.UTC)
    assert SyncEngine(config, load_plugins(), store, clock=lambda: now).run().exit_code == 0
    return store, scores


def test_the_scores_file_of_the_stored_lines_is_the_file_of_the_payloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scores-file source keeps each row's line and no payload JSON; a store written before
    lines were kept (payloads, no lines) pushes the same file, and so does a mix of both."""
    store, scores = synced_clinic(tmp_path / "lines")
    monkeypatch.setattr(sync_module, "wants_lines", lambda _cls: False)
    old, old_scores = synced_clinic(tmp_path / "payloads")
    try:
        counts = store.conn.execute(
            "SELECT COUNT(*), COUNT(line), SUM(payload = '') FROM outbox WHERE source = 'clinic'"
        ).fetchone()
        assert counts[0] > 2000 and counts[1] == counts[0] == counts[2]  # lines, no payloads
        assert (
            old.conn.execute(
                "SELECT COUNT(line), MIN(length(payload)) FROM outbox WHERE source = 'clinic'"
            ).fetchone()[0]
            == 0
        )
        synced = scores.read_bytes()
        assert old_scores.read_bytes() == synced  # rendered from the payloads
        # rows stored with a line and rows stored with a payload only, in one source
        lined = dict(
            store.conn.execute("SELECT source_key, line FROM outbox WHERE source = 'clinic'")
        )
        with old.transaction():
            old.conn.executemany(
                "UPDATE outbox SET payload = '', line = ? WHERE source = 'clinic' "
                "AND source_key = ? AND rowid % 3 = 0",
                [(line, key) for key, line in lined.items()],
            )
        mixed = tmp_path / "mixed.csv"
        write_score_lines(mixed, old.snapshot_lines("clinic"), "utf-8-sig")
        assert mixed.read_bytes() == synced
    finally:
        store.close()
        old.close()


def test_a_scores_file_source_that_changes_adapter_pushes_full_payloads(tmp_path: Path) -> None:
    """Rows of a scores-file source keep their lines only; when the source's adapter becomes
    one that pushes payloads, its clients are scored again and the target gets every payload
    with its values typed, as if the source had always had that adapter."""
    import memory_adapter

    rows = list(generate_rows(300, seed=6))
    write_csv(tmp_path / "admins.csv", rows)
    csv_source = {
        "adapter": "csv",
        "path": str(tmp_path / "admins.csv"),
        "scores_path": str(tmp_path / "scores.csv"),
    }
    store_path = str(tmp_path / "fit.sqlite3")
    now = dt.datetime(2025, 6, 1, 18, tzinfo=dt.UTC)
    registry = load_plugins(extra=[memory_adapter])
    config = config_from_mapping({"store": {"path": store_path}, "sources": {"clinic": csv_source}})
    store = Store.open(store_path)
    try:
        assert SyncEngine(config, registry, store, clock=lambda: now).run().exit_code == 0
        assert store.line_only_clients("clinic")
        # (the CSV adapter's bookmark means nothing to another adapter)
        store.conn.execute("DELETE FROM bookmarks WHERE source = 'clinic'")
        remote = memory_adapter.MemorySource()
        memory_adapter.SOURCES["switched"] = remote
        config = config_from_mapping(
            {
                "store": {"path": store_path},
                "sources": {"clinic": {"adapter": "memory", "remote": "switched"}},
            }
        )
        summary = SyncEngine(config, registry, store, clock=lambda: now).run()
        assert summary.exit_code == 0
        assert store.line_only_clients("clinic") == set()
        assert len(remote.target) == len(rows)
        payload = remote.target[rows[0]["source_key"]]
        assert isinstance(payload["total"], float) and isinstance(payload["session"], int)
        again = SyncEngine(config, registry, store, clock=lambda: now).run()
        assert again.clients_rescored == 0  # done once
    finally:
        store.close()
