"""The audit log: append-only, every push, export, erasure, purge, acknowledgement and report,
with time, OS user and keyed hashes (never ids or values); its JSON-lines copy (synthetic data)."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from fit_cli.demo import run_demo
from fit_cli.main import cli
from fit_core.audit import os_user
from fit_core.store import Store

KEY = "audit-test-privacy-key"


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    run_demo(tmp_path)
    monkeypatch.setenv("FIT_PRIVACY_HASH_KEY", KEY)
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + f'\n[privacy]\naudit_log = "{tmp_path / "log" / "audit.jsonl"}"\n',
        encoding="utf-8",
    )
    return tmp_path


def fit(demo: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(demo / "config.toml"), *args])


def test_the_audit_log_is_append_only(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "fit.sqlite3")
    try:
        store.append_audit("2025-01-01T00:00:00+00:00", "me", "push", "x", {"rows": 1}, None, None)
        for sql in ("UPDATE audit_log SET action = 'erase'", "DELETE FROM audit_log"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                store.conn.execute(sql)
        assert len(store.audit_entries()) == 1
    finally:
        store.close()


def test_actions_are_logged_with_user_counts_and_hashes_only(demo: Path) -> None:
    store = Store.open(demo / "fit.sqlite3")
    try:
        cid = store.conn.execute("SELECT client_id FROM administrations LIMIT 1").fetchone()[0]
        flag = store.list_flags("open")[0]
    finally:
        store.close()
    # the demo's own syncs ran before [privacy] was added: their pushes are in the table
    assert fit(demo, "alerts", "ack", str(flag["id"])).exit_code == 0
    assert fit(demo, "report", "client", flag["client_id"], "--out", str(demo / "r")).exit_code == 0
    assert fit(demo, "client", "export", cid, "--out", str(demo / "x")).exit_code == 0
    assert fit(demo, "client", "erase", cid, "--yes").exit_code == 0

    res = fit(demo, "audit", "--json")
    assert res.exit_code == 0, res.output
    entries = json.loads(res.stdout)
    actions = [e["action"] for e in entries]
    assert actions[0] == "push" and actions[-4:] == ["acknowledge", "report", "export", "erase"]
    push = entries[0]
    assert push["target"].startswith("demo_csv: ") and push["counts"]["rows_written"] == 526
    assert all(e["os_user"] == os_user() and e["at"].endswith("+00:00") for e in entries)
    ack, report, export, erase = entries[-4:]
    assert report["target"] == "client" and report["counts"]["clients"] == 1
    assert ack["target"] == f"alert #{flag['id']} {flag['rule_id']}" and len(ack["subjects"]) == 1
    assert export["subjects"] == erase["subjects"] and len(erase["subjects"][0]) == 32
    text = json.dumps(entries)
    assert cid not in text and flag["client_id"] not in text

    # the clinic's log collector gets the same entries, one JSON object a line, file 0600
    log = demo / "log" / "audit.jsonl"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [e["action"] for e in lines] == ["acknowledge", "report", "export", "erase"]
    assert lines[-1]["subjects"] == erase["subjects"]

    # who touched this client? (with the key); and since a date
    res = fit(demo, "audit", "--client", cid, "--json")
    assert [e["action"] for e in json.loads(res.stdout)] == ["export", "erase"]
    res = fit(demo, "audit", "--since", "2999-01-01")
    assert res.exit_code == 0 and "no audit entries" in res.stdout
    res = fit(demo, "audit")
    assert "erase" in res.stdout and cid not in res.stdout
    assert fit(demo, "audit", "--since", "yesterday").exit_code == 2


def test_a_sync_logs_each_push_with_its_counts(demo: Path) -> None:
    export = demo / "admins.csv"
    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    export.write_text("".join(lines[:1] + lines[3:]), encoding="utf-8")  # two rows deleted
    res = fit(demo, "sync")
    assert res.exit_code == 1, res.output  # the planted bad rows stay quarantined
    store = Store.open(demo / "fit.sqlite3")
    try:
        last = store.audit_entries()[-1]
    finally:
        store.close()
    assert last["action"] == "push" and last["counts"]["rows_removed"] == 2
