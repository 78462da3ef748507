"""`fit check` says what will bite later: an unset clinic time zone (cron may see another zone
than the shell, and a change applies only to records read after it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fit_cli.main import cli


def check(tmp_path: Path, sync_table: str) -> str:
    (tmp_path / "in").mkdir(exist_ok=True)
    config = tmp_path / "fit.toml"
    config.write_text(
        f'[store]\npath = "fit.sqlite3"\n\n{sync_table}\n'
        '[sources.forms]\nadapter = "csv"\npath = "in"\nscores_path = "scores.csv"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "check"])
    assert result.exit_code == 0, result.output
    return result.output


def test_an_unset_time_zone_is_named_with_the_zone_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/Chicago")
    out = check(tmp_path, "")
    assert "[sync] timezone is not set" in out and "America/Chicago" in out


def test_a_set_time_zone_needs_no_note(tmp_path: Path) -> None:
    out = check(tmp_path, '[sync]\ntimezone = "Europe/Berlin"\n')
    assert "timezone" not in out
