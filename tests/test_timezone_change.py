"""A clinic that corrects `[sync] timezone` after months of syncs: every stored session takes
its date in the new zone, every source is read again (times without an offset are clinic-local
times, so their instant moves), every client is rescored once, and the next sync is idle.

Through the real CLI on CSV sources, as an IT person would change the setting.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fit_cli.main import cli

HEADER = "client_id,administered_at,measure,q1,q2,q3,q4,clinician_id,session\n"
# 23:30 UTC on 3 March is already 4 March in Tokyo (UTC+9); a time without an offset is
# clinic-local time; a date alone is a clinic-local date in any zone
ROWS = (
    "A1,2025-03-03T23:30:00Z,ORS,5,5,5,5,T1,\n"
    "A1,2025-03-03T23:40:00Z,SRS,9,9,9,9,T1,\n"
    "A1,2025-03-10T23:30:00Z,ORS,6,6,6,6,T1,\n"
    "A2,2025-03-03T23:30:00,ORS,5,5,5,5,T1,\n"
    "A3,2025-03-03,ORS,5,5,5,5,T1,\n"
)


def write_config(tmp_path: Path, zone: str, *, second_enabled: bool = True) -> Path:
    config = tmp_path / "fit.toml"
    config.write_text(
        f"""
[store]
path = "fit.sqlite3"

[sync]
timezone = "{zone}"

[sources.first]
adapter = "csv"
path = "first.csv"
scores_path = "first-scores.csv"

[sources.second]
adapter = "csv"
path = "second.csv"
scores_path = "second-scores.csv"
enabled = {"true" if second_enabled else "false"}
""",
        encoding="utf-8",
    )
    return config


def fit(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def scores(tmp_path: Path, name: str = "first") -> dict[str, dict[str, str]]:
    with open(tmp_path / f"{name}-scores.csv", encoding="utf-8-sig", newline="") as f:
        return {
            row["client_id"] + " " + row["measure"] + " " + row["session"]: row
            for row in csv.DictReader(f)
        }


def stored(tmp_path: Path, config: Path, client: str) -> list[dict[str, object]]:
    out = tmp_path / f"export-{client}-{len(list(tmp_path.glob('export-*')))}"
    result = fit(config, "client", "export", client, "--out", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads((out / "client.json").read_text(encoding="utf-8"))
    return sorted(data["store"]["administrations"], key=lambda r: str(r["source_key"]))


def setup(tmp_path: Path) -> Path:
    (tmp_path / "first.csv").write_text(HEADER + ROWS, encoding="utf-8")
    (tmp_path / "second.csv").write_text(
        HEADER + "B1,2025-03-03T23:30:00Z,ORS,5,5,5,5,T2,\n", encoding="utf-8"
    )
    config = write_config(tmp_path, "UTC")
    assert fit(config, "sync").exit_code == 0
    return config


def test_a_new_clinic_time_zone_redates_every_session_and_the_next_sync_is_idle(
    tmp_path: Path,
) -> None:
    config = setup(tmp_path)
    before = scores(tmp_path)
    assert before["A1 ORS 1"]["episode_id"] == "auto-2025-03-03"
    assert before["A2 ORS 1"]["administered_at"] == "2025-03-03T23:30:00Z"

    write_config(tmp_path, "Asia/Tokyo")
    result = fit(config, "sync", "-v")
    assert result.exit_code == 0, result.output
    assert "scoring changed (timezone)" in result.output
    after = scores(tmp_path)
    # an instant keeps its time and takes the Tokyo date: the episode starts on 4 March
    assert {after[k]["episode_id"] for k in ("A1 ORS 1", "A1 SRS 1", "A1 ORS 2")} == {
        "auto-2025-03-04"
    }
    assert after["A1 ORS 1"]["administered_at"] == "2025-03-03T23:30:00Z"
    # a time without an offset was 23:30 at the clinic: read again, it is 23:30 in Tokyo
    assert after["A2 ORS 1"]["administered_at"] == "2025-03-03T14:30:00Z"
    assert after["A2 ORS 1"]["episode_id"] == "auto-2025-03-03"
    # a date alone stays that date
    assert after["A3 ORS 1"]["episode_id"] == "auto-2025-03-03"
    a3 = stored(tmp_path, config, "A3")
    assert [r["local_date"] for r in a3] == ["2025-03-03"]
    assert [r["administered_at"] for r in a3] == ["2025-03-02T15:00:00+00:00"]  # Tokyo midnight

    again = fit(config, "sync", "-v")
    assert again.exit_code == 0, again.output
    assert "scoring changed" not in again.output
    assert "pulled 0" in again.output and "clients rescored 0" in again.output
    assert scores(tmp_path) == after


def test_rows_no_source_reads_again_are_redated_in_the_store_too(tmp_path: Path) -> None:
    """A source switched off keeps its rows in the store: they take the new zone's dates as
    well, so the clinic's statistics never mix two zones."""
    config = setup(tmp_path)
    assert [r["local_date"] for r in stored(tmp_path, config, "B1")] == ["2025-03-03"]
    write_config(tmp_path, "Asia/Tokyo", second_enabled=False)
    result = fit(config, "sync", "-v")
    assert result.exit_code == 0, result.output
    assert [r["local_date"] for r in stored(tmp_path, config, "B1")] == ["2025-03-04"]
    # switched on again, its scores file catches up without reading anything twice
    write_config(tmp_path, "Asia/Tokyo")
    result = fit(config, "sync", "-v")
    assert result.exit_code == 0, result.output
    assert scores(tmp_path, "second")["B1 ORS 1"]["episode_id"] == "auto-2025-03-04"


def test_the_same_zone_changes_nothing(tmp_path: Path) -> None:
    config = setup(tmp_path)
    before = (tmp_path / "first-scores.csv").read_bytes()
    write_config(tmp_path, "UTC")
    result = fit(config, "sync", "-v")
    assert result.exit_code == 0, result.output
    assert "scoring changed" not in result.output and "pulled 0" in result.output
    assert (tmp_path / "first-scores.csv").read_bytes() == before


def test_a_zone_changed_back_and_forth_ends_where_a_fresh_store_would(tmp_path: Path) -> None:
    config = setup(tmp_path)
    for zone in ("Asia/Tokyo", "America/Los_Angeles", "Asia/Tokyo"):
        write_config(tmp_path, zone)
        assert fit(config, "sync").exit_code == 0
    moved = scores(tmp_path)

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("first.csv", "second.csv"):
        (fresh / name).write_bytes((tmp_path / name).read_bytes())
    fresh_config = write_config(fresh, "Asia/Tokyo")
    assert fit(fresh_config, "sync").exit_code == 0
    assert scores(fresh) == moved


def test_an_unset_zone_that_differs_between_runs_is_named_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without `[sync] timezone` the machine's zone is used; cron often runs with another TZ
    than a login shell, so the difference is a warning that says what to set."""
    (tmp_path / "first.csv").write_text(HEADER + ROWS, encoding="utf-8")
    (tmp_path / "second.csv").write_text(HEADER, encoding="utf-8")
    config = write_config(tmp_path, "UTC")
    config.write_text(config.read_text(encoding="utf-8").replace('timezone = "UTC"', ""))
    monkeypatch.setenv("TZ", "UTC")
    assert fit(config, "sync").exit_code == 0
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    with caplog.at_level(logging.WARNING):
        result = fit(config, "sync")
    assert result.exit_code == 0
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("set [sync] timezone" in m and "Asia/Tokyo" in m for m in warned), warned
    assert scores(tmp_path)["A1 ORS 1"]["episode_id"] == "auto-2025-03-04"
