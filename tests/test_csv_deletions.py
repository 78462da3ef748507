"""CSV sources: rows removed from a snapshot file are deleted here and at the target, and the
guard against a cut-short, emptied or missing file holds (synthetic data only)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fit_cli.main import cli
from fit_core.config import config_from_mapping, load_config
from fit_core.plugins import load_plugins
from fit_core.store import Store
from fit_core.sync import SyncEngine

HEADER = "client_id,administered_at,measure,q1,q2,q3,q4,total\n"


def rows(client: str, n: int, start: int = 1, total: float = 20.0) -> str:
    return "".join(f"{client},2025-03-{start + i:02d},ORS,,,,,{total + i}\n" for i in range(n))


def config_file(tmp_path: Path, **extra: object) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    text = (
        f'[store]\npath = "{tmp_path / "fit.sqlite3"}"\n[sync]\ntimezone = "UTC"\n'
        f'[sources.clinic]\nadapter = "csv"\npath = "{inbox}"\n'
        f'scores_path = "{tmp_path / "scores.csv"}"\n'
    )
    for k, v in extra.items():
        text += f"{k} = {json.dumps(v)}\n"
    cfg = tmp_path / "fit.toml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


def sync(cfg: Path):
    config = load_config(cfg)
    store = Store.open(config.store_path)
    try:
        return SyncEngine(config, load_plugins(), store).run()
    finally:
        store.close()


def stored(tmp_path: Path) -> dict[str, tuple[str, str]]:
    store = Store.open(tmp_path / "fit.sqlite3")
    try:
        return {
            k: (ns, cid)
            for k, ns, cid in store.conn.execute(
                "SELECT source_key, namespace, client_id FROM administrations"
            )
        }
    finally:
        store.close()


def scores(tmp_path: Path) -> dict[str, dict[str, str]]:
    with (tmp_path / "scores.csv").open(encoding="utf-8-sig", newline="") as f:
        return {r["source_key"]: r for r in csv.DictReader(f)}


def test_a_row_removed_from_the_export_is_deleted_and_the_client_rescored(tmp_path: Path) -> None:
    cfg = config_file(tmp_path)
    export = tmp_path / "inbox" / "export.csv"
    export.write_text(HEADER + rows("C1", 3, total=20.0) + rows("C2", 4), encoding="utf-8")
    first = sync(cfg).sources[0]
    assert first.status == "ok" and first.pushed == 7
    intake = "nk:C1|2025-03-01|ORS|client"
    assert scores(tmp_path)["nk:C1|2025-03-03|ORS|client"]["change_from_intake"] == "2"

    # the intake is deleted at the source: the next session becomes the intake
    export.write_text(HEADER + rows("C1", 2, start=2, total=21.0) + rows("C2", 4), "utf-8")
    second = sync(cfg).sources[0]
    assert second.status == "ok" and second.deleted == 1 and second.removed_at_target == 1
    assert intake not in stored(tmp_path)
    after = scores(tmp_path)
    assert intake not in after and len(after) == 6
    assert after["nk:C1|2025-03-02|ORS|client"]["session"] == "1"
    assert after["nk:C1|2025-03-03|ORS|client"]["change_from_intake"] == "1"

    third = sync(cfg).sources[0]
    assert third.deleted == 0 and third.pulled == 0 and third.pushed == 0


def test_a_row_moved_to_another_file_is_not_deleted(tmp_path: Path) -> None:
    cfg = config_file(tmp_path)
    inbox = tmp_path / "inbox"
    (inbox / "a.csv").write_text(HEADER + rows("C1", 4), encoding="utf-8")
    (inbox / "b.csv").write_text(HEADER + rows("C2", 3), encoding="utf-8")
    sync(cfg)
    # one row of a.csv now lives in c.csv; b.csv is unchanged (skipped, but its keys count)
    lines = (inbox / "a.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (inbox / "a.csv").write_text("".join(lines[:-1]), encoding="utf-8")
    (inbox / "c.csv").write_text(HEADER + lines[-1], encoding="utf-8")
    result = sync(cfg).sources[0]
    assert result.status == "ok" and result.deleted == 0
    assert len(stored(tmp_path)) == 7 and len(scores(tmp_path)) == 7


def test_a_deleted_bad_row_leaves_the_quarantine(tmp_path: Path) -> None:
    cfg = config_file(tmp_path)
    export = tmp_path / "inbox" / "export.csv"
    bad = "C3,2025-03-01,ORS,,,,,55\n"
    export.write_text(HEADER + rows("C1", 4) + bad, encoding="utf-8")
    assert sync(cfg).sources[0].quarantined == 1
    export.write_text(HEADER + rows("C1", 4), encoding="utf-8")
    result = sync(cfg).sources[0]
    assert result.status == "ok" and result.quarantined == 0
    store = Store.open(tmp_path / "fit.sqlite3")
    try:
        assert store.quarantined("clinic") == []
    finally:
        store.close()


@pytest.mark.parametrize(
    "damage",
    ["header only", "empty", "cut short", "missing"],
)
def test_a_shrunk_or_missing_file_is_refused_until_accepted(tmp_path: Path, damage: str) -> None:
    cfg = config_file(tmp_path)
    export = tmp_path / "inbox" / "export.csv"
    full = HEADER + rows("C1", 10) + rows("C2", 10, total=15.0)
    export.write_text(full, encoding="utf-8")
    (tmp_path / "inbox" / "other.csv").write_text(HEADER + rows("C9", 2), encoding="utf-8")
    assert sync(cfg).sources[0].pushed == 22
    before = (tmp_path / "scores.csv").read_bytes()
    if damage == "header only":
        export.write_text(HEADER, encoding="utf-8")
    elif damage == "empty":
        export.write_bytes(b"")
    elif damage == "cut short":  # a download that stopped in the middle of a row
        export.write_text(full[: len(full) // 3], encoding="utf-8")
    else:
        export.unlink()
    for _ in range(2):  # refused again and again, not only once
        result = sync(cfg).sources[0]
        assert result.status == "partial" and result.deleted == 0
        assert len(stored(tmp_path)) == 22
        assert (tmp_path / "scores.csv").read_bytes() == before
    store = Store.open(tmp_path / "fit.sqlite3")
    try:
        (entry,) = [q for q in store.quarantined("clinic") if q["source_key"] == "export.csv:file"]
    finally:
        store.close()
    assert "fit csv accept clinic" in entry["reasons"]["file"]

    res = CliRunner().invoke(cli, ["--config", str(cfg), "csv", "accept", "clinic"])
    assert res.exit_code == 0, res.output
    result = sync(cfg).sources[0]
    kept = {"header only": 2, "empty": 2, "missing": 2}.get(damage)
    if damage == "empty":
        # an empty file has no header: it is reported as such, and stops the deletions
        assert result.status == "partial" and len(stored(tmp_path)) == 22
        return
    if kept is None:  # cut short: what is left of it is read, the rest deleted
        assert result.deleted > 0 and len(stored(tmp_path)) < 22
    else:
        assert result.deleted == 20 and len(stored(tmp_path)) == kept
        assert set(scores(tmp_path)) == set(stored(tmp_path))
    assert result.status in ("ok", "partial")
    # the acceptance served once: a later shrink is refused again
    store = Store.open(tmp_path / "fit.sqlite3")
    try:
        assert not store.state_value("clinic", "accepted")
    finally:
        store.close()


def test_max_shrink_is_a_setting(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, max_shrink=0.9)
    export = tmp_path / "inbox" / "export.csv"
    export.write_text(HEADER + rows("C1", 10), encoding="utf-8")
    sync(cfg)
    export.write_text(HEADER + rows("C1", 2), encoding="utf-8")  # 80% fewer: allowed at 0.9
    result = sync(cfg).sources[0]
    assert result.status == "ok" and result.deleted == 8


def test_a_file_that_cannot_be_read_completely_deletes_nothing(tmp_path: Path) -> None:
    cfg = config_file(tmp_path)
    export = tmp_path / "inbox" / "export.csv"
    export.write_text(HEADER + rows("C1", 10), encoding="utf-8")
    sync(cfg)
    # a few rows fewer, and a header the adapter cannot read: none of its keys are known
    export.write_text(HEADER.replace("client_id", "client") + rows("C1", 8), encoding="utf-8")
    result = sync(cfg).sources[0]
    assert result.status == "partial" and result.deleted == 0
    assert len(stored(tmp_path)) == 10


def test_max_shrink_must_be_a_share() -> None:
    from fit_core.errors import ConfigError
    from fit_core.sync import SyncEngine as _Engine  # noqa: F401 - the engine validates options

    config = config_from_mapping(
        {"sources": {"c": {"adapter": "csv", "path": "x", "scores_path": "y", "max_shrink": 2}}}
    )
    from fit_core.config import check_sources

    with pytest.raises(ConfigError, match="max_shrink"):
        check_sources(config, load_plugins())
