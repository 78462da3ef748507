"""Hardening beyond the corpus: forged log lines, lock paths, config warnings, value forms."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fit_cli.main import cli
from fit_core import inputs
from fit_core.errors import ConfigError, LockedError
from fit_core.lock import SyncLock, lock_path
from fit_core.logsafe import SafeFormatter, escape_controls, key_ref
from fit_core.validation import parse_when

FIT = [sys.executable, "-m", "fit_cli"]
FORGED = "\nERROR fit_core.sync: source clinic: all records deleted\x1b[2K\x1b[31m"


# --- log injection --------------------------------------------------------------------------


def test_text_from_outside_cannot_forge_a_log_or_error_line(tmp_path: Path) -> None:
    """A path (any text a message quotes) with a line break and ANSI codes stays on its line."""
    cfg = tmp_path / "fit.toml"
    bad = str(tmp_path / f"exports{FORGED}").replace("\\", "\\\\").replace("\n", "\\n")
    bad = bad.replace("\x1b", "\\u001b")
    cfg.write_text(
        f'[store]\npath = "{tmp_path / "fit.sqlite3"}"\n[sync]\ntimezone = "UTC"\n'
        f'[sources.clinic]\nadapter = "csv"\npath = "{bad}"\n'
        f'scores_path = "{tmp_path / "o.csv"}"\n',
        encoding="utf-8",
    )
    res = subprocess.run(
        [*FIT, "--config", str(cfg), "-v", "sync"],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=120,
        check=False,
    )
    assert res.returncode == 3
    assert "\x1b" not in res.stderr
    for line in res.stderr.splitlines():
        assert not line.startswith("ERROR fit_core.sync: source clinic: all records"), line
    assert "exports\\nERROR fit_core.sync" in res.stderr  # shown, escaped, on its own line


def test_the_formatter_escapes_messages_and_indents_tracebacks() -> None:
    record = logging.LogRecord(
        "fit", logging.WARNING, __file__, 1, "record %s", ("C1" + FORGED,), None
    )
    out = SafeFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert out.count("\n") == 0 and "\\x1b[2K" in out and "\\nERROR" in out
    try:
        raise ValueError("boom" + FORGED)
    except ValueError:
        record = logging.LogRecord("fit", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    lines = SafeFormatter("%(levelname)s %(name)s: %(message)s").format(record).splitlines()
    assert lines[0] == "ERROR fit: failed"
    assert all(line.startswith("  | ") for line in lines[1:])
    assert "\x1b" not in "\n".join(lines)


def test_escape_controls_keeps_printable_text_and_shows_the_rest() -> None:
    assert escape_controls("Bé01 漢 ok") == "Bé01 漢 ok"
    assert escape_controls("a\tb\x00c\u202ed\u200be") == "a\\tb\\x00c\\u202ed\\u200be"
    assert key_ref("nk:C1|2025-03-03|ORS|client") == key_ref("nk:C1|2025-03-03|ORS|client")
    assert len(key_ref("x")) == 8 and key_ref("x") != key_ref("y")
    assert key_ref("bad \udcff") != ""  # keys that are not valid text still get a reference


# --- locks ----------------------------------------------------------------------------------


def test_a_store_reached_through_a_symlinked_folder_shares_its_lock(tmp_path: Path) -> None:
    real = tmp_path / "data"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert lock_path(tmp_path / "link" / "fit.sqlite3") == lock_path(real / "fit.sqlite3")
    with SyncLock(real / "fit.sqlite3"), pytest.raises(LockedError):
        SyncLock(tmp_path / "link" / "fit.sqlite3").acquire()


def test_a_planted_lock_link_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    Path(f"{tmp_path / 'fit.sqlite3'}.lock").symlink_to(victim)
    with pytest.raises(ConfigError, match="symbolic link"):
        SyncLock(tmp_path / "fit.sqlite3").acquire()
    assert victim.read_text() == "keep me"
    os.link(victim, f"{tmp_path / 'other.sqlite3'}.lock")
    with pytest.raises(ConfigError, match="hard link"):
        SyncLock(tmp_path / "other.sqlite3").acquire()
    assert victim.read_text() == "keep me"


def test_a_lock_is_released_and_taken_again(tmp_path: Path) -> None:
    store = tmp_path / "fit.sqlite3"
    with SyncLock(store):
        pass
    with SyncLock(store):
        assert Path(f"{store}.lock").read_text().strip() == str(os.getpid())


# --- config warnings ------------------------------------------------------------------------


def _config(folder: Path) -> Path:
    (folder / "in.csv").write_text(
        "client_id,administered_at,measure,total\nC1,2025-03-03,ORS,20\n"
    )
    cfg = folder / "fit.toml"
    cfg.write_text(
        f'[store]\npath = "{folder / "store" / "fit.sqlite3"}"\n[sync]\ntimezone = "UTC"\n'
        f'[sources.clinic]\nadapter = "csv"\npath = "{folder / "in.csv"}"\n'
        f'scores_path = "{folder / "o.csv"}"\n',
        encoding="utf-8",
    )
    return cfg


def test_world_writable_config_and_store_folder_are_warned_about(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    quiet = CliRunner().invoke(cli, ["--config", str(cfg), "sync"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    cfg.chmod(0o666)
    (tmp_path / "store").chmod(0o777)
    res = CliRunner().invoke(cli, ["--config", str(cfg), "sync"])
    assert res.exit_code == 0
    assert f"the config file {cfg} is writable by every user" in res.stderr
    assert f"the store's folder {tmp_path / 'store'} is writable by every user" in res.stderr


def test_a_sticky_world_writable_config_folder_is_fine(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    cfg = _config(shared)
    shared.chmod(0o1777)
    (shared / "store").mkdir(mode=0o700, exist_ok=True)
    (shared / "store").chmod(0o700)
    res = CliRunner().invoke(cli, ["--config", str(cfg), "sync"])
    assert res.exit_code == 0 and "writable by every user" not in res.stderr


# --- value forms ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7", 7.0),
        ("7.5", 7.5),
        ("7,5", 7.5),
        (".5", 0.5),
        ("-1", -1.0),
        (" 3 ", 3.0),
        ("5.", 5.0),
        ("", None),
        ("  ", None),
        (None, None),
        (3, 3.0),
        (2.5, 2.5),
        ("1,00", 1.0),
        ("0,125", 0.125),
    ],
)
def test_accepted_number_forms(text: object, value: float | None) -> None:
    assert inputs.parse_number(text) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1,000", inputs.AMBIGUOUS),
        ("12,500", inputs.AMBIGUOUS),
        ("1,000,000", inputs.AMBIGUOUS),
        ("1e1", inputs.EXPONENT),
        ("2.4E-1", inputs.EXPONENT),
        ("٥", inputs.OTHER_DIGITS),
        ("５", inputs.OTHER_DIGITS),
        ("nan", inputs.NOT_A_NUMBER),
        ("inf", inputs.NOT_A_NUMBER),
        ("1_0", inputs.NOT_A_NUMBER),
        ("1.000,5", inputs.NOT_A_NUMBER),
        (float("nan"), inputs.NOT_A_NUMBER),
        (True, inputs.NOT_A_NUMBER),
        (10**400, inputs.TOO_LARGE),
        ("9" * 400, inputs.TOO_LARGE),
    ],
)
def test_refused_number_forms_say_why_without_the_value(text: object, reason: str) -> None:
    with pytest.raises(ValueError) as err:
        inputs.parse_number(text)
    assert str(err.value) == reason


def test_identifier_form() -> None:
    assert inputs.id_problem("C-001 (North)") is None
    assert inputs.id_problem("Bé01漢") is None
    assert inputs.id_problem("x" * 128) is None
    for bad in ("x" * 129, "a\nb", "a\x00", "a\x1b[31m", "a\u202eb", "a\u200bb", "a\u00a0b"):
        assert inputs.id_problem(bad) is not None


def test_dates_outside_the_window_and_overflowing_dates_are_field_errors() -> None:
    latest = inputs.latest_date(dt.date(2026, 1, 1))
    assert inputs.date_problem(dt.date(1990, 1, 1), latest) is None
    assert inputs.date_problem(dt.date(2026, 1, 2), latest) is None
    assert inputs.date_problem(dt.date(1989, 12, 31), latest) == inputs.TOO_EARLY
    assert inputs.date_problem(dt.date(2026, 1, 3), latest) == inputs.TOO_LATE
    for text, reason in (
        ("0001-01-01T00:00:00+01:00", inputs.TOO_EARLY),
        ("9999-12-31T23:00:00-05:00", inputs.TOO_LATE),
    ):
        with pytest.raises(ValueError, match=re.escape(reason)):
            parse_when(text, dt.UTC)
