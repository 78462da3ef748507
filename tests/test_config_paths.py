"""Every relative path in the config is taken from the config file's folder, not the cwd."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from fit_cli.main import cli
from fit_core.config import adapter_options, load_config
from fit_core.plugins import load_plugins

ROWS = "client_id,administered_at,measure,q1,q2,q3,q4,total\nA,2026-01-05,ORS,5,5,5,5,\n"


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    folder = tmp_path / "conf"
    (folder / "exports").mkdir(parents=True)
    (folder / "exports" / "admins.csv").write_text(ROWS, encoding="utf-8")
    (folder / "fit.toml").write_text(
        '[store]\npath = "state/fit.sqlite3"\n[sync]\ntimezone = "UTC"\n'
        '[sources.lab]\nadapter = "csv"\npath = "exports/admins.csv"\n'
        'scores_path = "out/scores.csv"\n',
        encoding="utf-8",
    )
    return folder


def test_a_sync_from_another_directory_finds_every_file_next_to_the_config(
    conf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # cron starts in $HOME
    (conf / "out").mkdir()
    res = CliRunner().invoke(cli, ["--config", str(conf / "fit.toml"), "sync"])
    assert res.exit_code == 0, res.output
    assert (conf / "out" / "scores.csv").read_text(encoding="utf-8").count("\n") == 2
    assert (conf / "state" / "fit.sqlite3").exists()
    assert not any(elsewhere.iterdir())


def test_a_relative_config_path_is_taken_from_where_fit_was_started(
    conf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(conf.parent)
    config = load_config("conf/fit.toml")
    options = adapter_options(config.sources["lab"], load_plugins().adapter("csv"))
    assert options["path"] == str(conf / "exports" / "admins.csv")
    assert Path(options["scores_path"]).is_absolute()
    assert config.store_path == conf / "state" / "fit.sqlite3"


def test_an_error_about_a_missing_file_shows_the_resolved_path(
    conf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (conf / "exports" / "admins.csv").unlink()
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["--config", str(conf / "fit.toml"), "sync"])
    assert res.exit_code != 0
    assert str(conf / "exports" / "admins.csv") in res.output


def test_simplepractice_and_redcap_paths_are_relative_to_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "ca.pem").write_text("not read here\n", encoding="utf-8")
    (folder / "fit.toml").write_text(
        '[sources.sp]\nadapter = "simplepractice"\npath = "exports"\noutbox = "notes"\n'
        'mapping_file = "links.csv"\nnamespace_target = "lab"\n'
        '[sources.rc]\nadapter = "redcap"\nurl = "https://redcap.example.org/api/"\n'
        'verify = "ca.pem"\n'
        '[sources.rc.instruments.ors]\nmeasure = "ORS"\nitems = ["a", "b", "c", "d"]\n'
        '[sources.rc.fields]\nclient_id = "record_id"\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    config = load_config(folder / "fit.toml")
    registry = load_plugins()
    sp = adapter_options(config.sources["sp"], registry.adapter("simplepractice"))
    assert sp["path"] == str(folder / "exports")
    assert sp["outbox"] == str(folder / "notes")
    assert sp["mapping_file"] == str(folder / "links.csv")
    rc = adapter_options(config.sources["rc"], registry.adapter("redcap"))
    assert rc["verify"] == str(folder / "ca.pem")


def test_demo_keep_with_a_relative_folder_keeps_private_files_in_that_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["demo", "--keep", "demo/k1"])
    assert res.exit_code == 0, res.output
    kept = tmp_path / "demo" / "k1"
    names = {p.name for p in kept.iterdir()}
    assert {"config.toml", "admins.csv", "scores.csv", "fit.sqlite3"} <= names
    assert not (kept / "demo").exists()
    for path in kept.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    # the kept config works from anywhere
    monkeypatch.chdir(os.sep)
    again = CliRunner().invoke(cli, ["--config", str(kept / "config.toml"), "sync"])
    assert again.exit_code in (0, 1), again.output
