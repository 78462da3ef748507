"""Retention ([privacy] retain_after_end): ended episodes past the period are purged at each
sync, from the store and the target, and do not come back from the source (synthetic data)."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from fit_cli.main import cli
from fit_core.config import load_config
from fit_core.errors import ConfigError
from fit_core.models import Administration, Appointment
from fit_core.plugins import load_plugins
from fit_core.retention import expired_episodes, parse_retention
from fit_core.settings import Settings
from fit_core.store import Store
from fit_core.sync import SyncEngine

KEY = "retention-test-privacy-key"
NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
HEADER = "client_id,administered_at,measure,total\n"
# A: an episode in 2015 and one in 2025; B: one episode in 2016; C: one in 2024
ROWS = (
    "A1,2015-01-05,ORS,18\nA1,2015-01-12,ORS,22\nA1,2015-01-19,ORS,26\n"
    "A1,2025-05-01,ORS,15\nA1,2025-05-08,ORS,17\n"
    "B2,2016-03-01,ORS,20\nB2,2016-03-08,ORS,24\n"
    "C3,2024-01-10,ORS,19\nC3,2024-01-17,ORS,23\n"
)


def test_periods_parse_and_count_back_by_the_calendar() -> None:
    assert parse_retention("off") is None and parse_retention(None) is None
    seven = parse_retention("7y")
    assert seven is not None and seven.cutoff(dt.date(2025, 6, 1)) == dt.date(2018, 6, 1)
    leap = parse_retention("1y")
    assert leap is not None and leap.cutoff(dt.date(2024, 2, 29)) == dt.date(2023, 2, 28)
    months = parse_retention("18m")
    assert months is not None and months.cutoff(dt.date(2025, 3, 31)) == dt.date(2023, 9, 30)
    weeks = parse_retention(" 2 W ")
    assert weeks is not None and weeks.cutoff(dt.date(2025, 1, 15)) == dt.date(2025, 1, 1)
    for bad in ("7", "seven years", "0y", 7, "7 years"):
        with pytest.raises(ConfigError, match="retain_after_end"):
            parse_retention(bad)


def admin(key: str, day: dt.date, total: float = 20.0) -> Administration:
    return Administration(
        "s",
        key,
        "ns",
        "A1",
        "ORS",
        dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC),
        day,
        True,
        total,
    )


def test_only_ended_episodes_past_the_period_expire() -> None:
    retention = parse_retention("1y")
    assert retention is not None
    settings = Settings()
    old = [admin("a", dt.date(2020, 1, 1)), admin("b", dt.date(2020, 1, 8))]
    new = [admin("c", dt.date(2024, 12, 1))]
    expired = expired_episodes(old + new, [], dt.date(2025, 6, 1), settings, retention)
    assert [e.keys for e in expired] == [(("s", "a"), ("s", "b"))]
    assert not expired[0].whole_client
    # ended (gap) on 2020-04-08: not past one year on 2021-04-07, past on 2021-04-08
    assert expired_episodes(old, [], dt.date(2021, 4, 7), settings, retention) == []
    (whole,) = expired_episodes(old, [], dt.date(2021, 4, 8), settings, retention)
    assert whole.whole_client and whole.ended_on == dt.date(2020, 4, 8)
    # a booked appointment keeps the latest episode open, whatever its age
    booked = Appointment(
        "sp",
        "x",
        "ns",
        "A1",
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        dt.date(2026, 1, 1),
        "scheduled",
    )
    weeks = parse_retention("2w")
    assert weeks is not None
    as_of = dt.date(2025, 12, 1)
    assert expired_episodes(new, [], as_of, settings, weeks)
    assert expired_episodes(new, [booked], as_of, settings, weeks) == []


def setup(tmp_path: Path, **privacy: str) -> Path:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "export.csv").write_text(HEADER + ROWS, encoding="utf-8")
    table = "".join(f'{k} = "{v}"\n' for k, v in privacy.items())
    cfg = tmp_path / "fit.toml"
    cfg.write_text(
        f'[store]\npath = "{tmp_path / "fit.sqlite3"}"\n[sync]\ntimezone = "UTC"\n'
        f"[privacy]\n{table}"
        f'[sources.clinic]\nadapter = "csv"\npath = "{tmp_path / "in"}"\n'
        f'scores_path = "{tmp_path / "scores.csv"}"\n',
        encoding="utf-8",
    )
    return cfg


def secret(source: str, key: str) -> str:
    if (source, key) == ("privacy", "hash_key"):
        return KEY
    raise ConfigError(f"no secret {key} of {source}")


def sync(cfg: Path, *, dry_run: bool = False, now: dt.datetime = NOW):
    config = load_config(cfg)
    store = Store.open(config.store_path)
    try:
        return SyncEngine(config, load_plugins(), store, secret=secret, clock=lambda: now).run(
            dry_run=dry_run
        )
    finally:
        store.close()


def clients_stored(tmp_path: Path) -> dict[str, int]:
    store = Store.open(tmp_path / "fit.sqlite3")
    try:
        return dict(
            store.conn.execute(
                "SELECT client_id, count(*) FROM administrations GROUP BY client_id"
            ).fetchall()
        )
    finally:
        store.close()


def score_clients(tmp_path: Path) -> list[str]:
    with (tmp_path / "scores.csv").open(encoding="utf-8-sig", newline="") as f:
        return sorted(r["client_id"] for r in csv.DictReader(f))


def test_a_sync_purges_expired_episodes_everywhere_and_they_stay_out(tmp_path: Path) -> None:
    cfg = setup(tmp_path, retain_after_end="7y")
    dry = sync(cfg, dry_run=True)
    assert dry.purged == 5 and clients_stored(tmp_path) == {"A1": 5, "B2": 2, "C3": 2}

    summary = sync(cfg)
    src = summary.sources[0]
    assert summary.purged == 5 and summary.purged_episodes == 2, summary
    assert src.status == "ok", src.problems
    # A1 keeps its 2025 episode, rescored on its own; B2 is gone; C3 ended too recently
    assert clients_stored(tmp_path) == {"A1": 2, "C3": 2}
    assert score_clients(tmp_path) == ["A1", "A1", "C3", "C3"]
    with (tmp_path / "scores.csv").open(encoding="utf-8-sig", newline="") as f:
        a1 = [r for r in csv.DictReader(f) if r["client_id"] == "A1"]
    assert sorted(r["session"] for r in a1) == ["1", "2"]

    # the export still holds the rows: read again, they are refused quietly (not a problem)
    export = tmp_path / "in" / "export.csv"
    export.write_text(export.read_text(encoding="utf-8") + "C3,2024-01-24,ORS,25\n", "utf-8")
    again = sync(cfg).sources[0]
    assert again.refused == 5 and again.new == 1 and again.status == "ok", again.problems
    assert clients_stored(tmp_path) == {"A1": 2, "C3": 3}

    store = Store.open(tmp_path / "fit.sqlite3")
    try:
        (purge,) = [e for e in store.audit_entries() if e["action"] == "purge"]
        text = str(store.audit_entries())
    finally:
        store.close()
    assert purge["counts"] == {"records": 5, "episodes": 2} and len(purge["subjects"]) == 2
    assert "A1" not in text and "B2" not in text


def test_fit_purge_dry_run_shows_what_would_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = setup(tmp_path, retain_after_end="7y")
    monkeypatch.setenv("FIT_PRIVACY_HASH_KEY", KEY)
    res = CliRunner().invoke(cli, ["--config", str(cfg), "sync"])
    assert res.exit_code == 0, res.output
    # everything of 2015-2016 went at that sync (today is long after): nothing is left to go
    res = CliRunner().invoke(cli, ["--config", str(cfg), "purge", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "would purge 0 record(s)" in res.stdout


def test_fit_purge_lists_episodes_and_purges_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = setup(tmp_path)
    monkeypatch.setenv("FIT_PRIVACY_HASH_KEY", KEY)
    assert CliRunner().invoke(cli, ["--config", str(cfg), "sync"]).exit_code == 0
    text = cfg.read_text(encoding="utf-8").replace(
        "[privacy]\n", '[privacy]\nretain_after_end = "7y"\n'
    )
    cfg.write_text(text, encoding="utf-8")
    res = CliRunner().invoke(cli, ["--config", str(cfg), "purge", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "would purge 5 record(s) of 2 episode(s)" in res.stdout
    assert "client B2 (clinic)" in res.stdout and "(the whole client)" in res.stdout
    assert clients_stored(tmp_path)["B2"] == 2
    res = CliRunner().invoke(cli, ["--config", str(cfg), "purge"])
    assert res.exit_code == 0, res.output
    assert "purged 5 record(s)" in res.stdout and "target clinic:" in res.stdout
    assert "B2" not in score_clients(tmp_path)
    assert "B2" not in clients_stored(tmp_path)


def test_retention_without_the_privacy_key_stops_the_sync(tmp_path: Path) -> None:
    cfg = setup(tmp_path, retain_after_end="7y")
    res = CliRunner().invoke(cli, ["--config", str(cfg), "sync"])
    assert res.exit_code == 3 and "privacy key" in res.output
    assert not (tmp_path / "scores.csv").exists()


def test_no_retention_purge_command_says_so(tmp_path: Path) -> None:
    cfg = setup(tmp_path)
    assert CliRunner().invoke(cli, ["--config", str(cfg), "sync"]).exit_code == 0
    res = CliRunner().invoke(cli, ["--config", str(cfg), "purge", "--dry-run"])
    assert res.exit_code == 3 and "retain_after_end" in res.output
