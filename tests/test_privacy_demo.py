"""Export, then erase, a client of the demo clinic (synthetic): the export holds every row the
store had for them; after the erasure nothing of them is left in the store file, its WAL, the
scores file or the report files, and the next sync does not bring them back."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fit_cli.demo import run_demo
from fit_cli.main import cli
from fit_core.client_export import client_rows
from fit_core.store import Store

KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FIT_PRIVACY_HASH_KEY", KEY)
    run_demo(tmp_path)
    return tmp_path


def fit(demo: Path, *args: str) -> Any:
    res = CliRunner().invoke(cli, ["--config", str(demo / "config.toml"), *args])
    return res


def planted_client(demo: Path) -> str:
    """The client whose rows the demo copied into its planted bad rows (so the client has
    quarantine entries too), checked not to be part of another client's id."""
    store = Store.open(demo / "fit.sqlite3")
    try:
        ids = {cid for (cid,) in store.conn.execute("SELECT client_id FROM administrations")}
        raws = [json.loads(q[0]) for q in store.conn.execute("SELECT raw FROM quarantine")]
    finally:
        store.close()
    (cid,) = {r["client_id"] for r in raws if r.get("client_id") in ids}
    assert not [other for other in ids if cid in other and other != cid]
    return cid


def files_holding(paths: list[Path], needle: bytes) -> list[str]:
    return [str(p) for p in paths if p.is_file() and needle in p.read_bytes()]


def test_export_then_erase_a_demo_client(demo: Path) -> None:
    cid = planted_client(demo)
    reports = demo / "reports"
    res = fit(demo, "report", "client", cid, "--out", str(reports))
    assert res.exit_code == 0, res.output
    assert list(reports.iterdir())

    # --- export ---------------------------------------------------------------------------
    store = Store.open(demo / "fit.sqlite3")
    try:
        before = client_rows(store, "demo_csv", cid)
    finally:
        store.close()
    assert before["administrations"] and before["flags"] and before["quarantine"]
    assert before["outbox"] and before["push_ledger"] and before["flag_events"]
    res = fit(demo, "client", "export", cid, "--out", str(demo / "export"))
    assert res.exit_code == 0, res.output
    export = demo / "export"
    assert stat.S_IMODE(export.stat().st_mode) == 0o700
    for p in export.rglob("*"):
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))
    doc = json.loads((export / "client.json").read_text(encoding="utf-8"))
    assert json.loads(json.dumps(before, default=str)) == doc["store"], "a stored row is missing"
    assert len(doc["scores"]) == len(before["administrations"])
    assert {a["id"] for a in doc["alerts"]} == {f["id"] for f in before["flags"]}
    assert all("history" in a for a in doc["alerts"])
    names = {p.name for p in export.iterdir()}
    assert {"scores.csv", "alerts.csv", "alert_events.csv", "README.txt"} <= names
    assert any(n.startswith("report-") and n.endswith(".html") for n in names)
    assert cid.encode() in (export / "scores.csv").read_bytes()

    # --- erase ----------------------------------------------------------------------------
    dry = fit(demo, "client", "erase", cid, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would be erased" in dry.output and "target demo_csv" in dry.output
    assert files_holding([demo / "scores.csv"], cid.encode()), "a dry run changed the target"
    res = fit(demo, "client", "erase", cid, "--yes")
    assert res.exit_code == 0, res.output
    for place in ("store:", "target demo_csv:", "report files:"):
        assert place in res.output, res.output
    assert "demo_csv: " in res.output and "record(s)" in res.output  # where to delete next

    def leftovers() -> list[str]:
        places = [
            demo / "fit.sqlite3",
            Path(f"{demo / 'fit.sqlite3'}-wal"),
            Path(f"{demo / 'fit.sqlite3'}-shm"),
            demo / "scores.csv",
            *reports.rglob("*"),
        ]
        return files_holding(places, cid.encode())

    assert leftovers() == []
    assert list(reports.iterdir()) == []

    # --- the source still holds them: the next sync refuses them and says so ---------------
    source = demo / "admins.csv"
    source.write_text(source.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    res = fit(demo, "sync", "--json")
    summary = json.loads(res.stdout)
    (src,) = summary["sources"]
    # its good rows and its bad rows (the planted ones) alike: nothing is stored, not even
    # in the quarantine
    held = len(before["administrations"]) + len(before["quarantine"])
    assert src["refused"] == held and src["new"] == 0 and src["quarantined"] == 0
    assert any("erased" in p for p in src["problems"])
    assert leftovers() == []
    store = Store.open(demo / "fit.sqlite3")
    try:
        assert client_rows(store, "demo_csv", cid)["administrations"] == []
        actions = [e["action"] for e in store.audit_entries()]
    finally:
        store.close()
    assert {"report", "export", "erase", "push"} <= set(actions)

    # readmitted (the client came back): the next read of the source brings them in again
    res = fit(demo, "client", "readmit", cid, "--namespace", "demo_csv")
    assert res.exit_code == 0, res.output
    source.write_text(source.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    src = json.loads(fit(demo, "sync", "--json").stdout)["sources"][0]
    assert src["new"] == len(before["administrations"]) and src["refused"] == 0


def test_erase_needs_the_privacy_key_and_changes_nothing_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_demo(tmp_path)
    store = Store.open(tmp_path / "fit.sqlite3")
    try:
        cid = store.conn.execute("SELECT client_id FROM administrations LIMIT 1").fetchone()[0]
        n = store.count("administrations")
    finally:
        store.close()
    res = CliRunner().invoke(
        cli, ["--config", str(tmp_path / "config.toml"), "client", "erase", cid, "--yes"]
    )
    assert res.exit_code == 3 and "privacy key" in res.output
    store = Store.open(tmp_path / "fit.sqlite3")
    try:
        assert store.count("administrations") == n
    finally:
        store.close()


def test_export_as_an_archive_is_private(demo: Path) -> None:
    cid = planted_client(demo)
    target = demo / "client.zip"
    res = fit(demo, "client", "export", cid, "--archive", "--out", str(target))
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with zipfile.ZipFile(target) as z:
        assert "client.json" in z.namelist()
        doc = json.loads(z.read("client.json"))
    assert doc["client"] == {"namespace": "demo_csv", "client_id": cid}
    res = fit(demo, "client", "export", cid, "--archive", "--out", str(target))
    assert res.exit_code == 3  # never overwritten


@pytest.mark.parametrize("archive", [True, False])
def test_an_export_into_a_missing_folder_is_a_clear_error(demo: Path, archive: bool) -> None:
    cid = planted_client(demo)
    target = demo / "no-such-folder" / ("client.zip" if archive else "client")
    res = fit(
        demo, "client", "export", cid, *(["--archive"] if archive else []), "--out", str(target)
    )
    assert res.exit_code == 3, res.output
    assert f"the folder {target.parent} does not exist" in res.output
    assert not target.parent.exists()


def test_a_changed_privacy_key_stops_the_sync(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = planted_client(demo)
    assert fit(demo, "client", "erase", cid, "--yes").exit_code == 0
    monkeypatch.setenv("FIT_PRIVACY_HASH_KEY", "another-key")
    res = fit(demo, "sync")
    assert res.exit_code == 3 and "privacy key" in res.output
    monkeypatch.delenv("FIT_PRIVACY_HASH_KEY")
    res = fit(demo, "sync")
    assert res.exit_code == 3 and "privacy key" in res.output
