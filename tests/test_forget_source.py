"""A source renamed or taken out of the config: what the store holds of it is named at every sync
and by `fit check` (its clients would otherwise keep being scored and alerted with it), and
`fit store forget` removes it, after which the next sync rescores those clients.

Through the real CLI on CSV sources, as an IT person would rename a source.
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
# the old source's file: a client who stopped coming in March (a dropout alert candidate)
OLD = HEADER + "".join(
    f"B{i},2025-03-{d:02d}T10:00:00Z,ORS,4,4,4,4,T2,\n" for i in range(1, 4) for d in (3, 10)
)
NEW = HEADER + "A1,2025-03-03T10:00:00Z,ORS,5,5,5,5,T1,\nA1,2025-03-10T10:00:00Z,ORS,6,6,6,6,T1,\n"


def write_config(tmp_path: Path, names: dict[str, str]) -> Path:
    config = tmp_path / "fit.toml"
    text = '[store]\npath = "fit.sqlite3"\n\n[sync]\ntimezone = "UTC"\n'
    for name, path in names.items():
        text += (
            f'\n[sources.{name}]\nadapter = "csv"\nnamespace = "clinic"\npath = "{path}"\n'
            f'scores_path = "{name}-scores.csv"\n'
        )
    config.write_text(text, encoding="utf-8")
    return config


def fit(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def clients(config: Path) -> int:
    """How many clients the agency statistics count."""
    result = fit(config, "stats", "--json")
    assert result.exit_code == 0, result.output
    (whole,) = [g for g in json.loads(result.output) if g["by"] == "all"]
    return int(whole["n_clients"])


def setup(tmp_path: Path) -> Path:
    (tmp_path / "old.csv").write_text(OLD, encoding="utf-8")
    (tmp_path / "new.csv").write_text(NEW, encoding="utf-8")
    config = write_config(tmp_path, {"paper": "old.csv", "forms": "new.csv"})
    assert fit(config, "sync").exit_code == 0
    return config


def test_a_source_taken_out_is_named_until_forgotten_and_then_its_clients_go(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = setup(tmp_path)
    assert clients(config) == 4
    write_config(tmp_path, {"forms": "new.csv"})  # the paper source is retired

    with caplog.at_level(logging.WARNING):
        result = fit(config, "sync")
    assert result.exit_code == 0
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("source 'paper'" in m and "fit store forget paper" in m for m in warned), warned
    assert clients(config) == 4  # still counted: the warning is why

    check = fit(config, "check")
    assert check.exit_code == 1
    assert "source 'paper', which is not in the config" in check.output

    dry = fit(config, "store", "forget", "paper", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "administrations 6" in dry.output and "nothing changed" in dry.output
    assert clients(config) == 4

    done = fit(config, "store", "forget", "paper")
    assert done.exit_code == 0, done.output
    assert "administrations 6" in done.output
    again = fit(config, "sync", "-v")
    assert again.exit_code == 0, again.output
    assert "clients rescored 3" in again.output
    assert clients(config) == 1
    assert fit(config, "check").exit_code == 0
    alerts = fit(config, "alerts", "--json")
    assert all(a["client_id"] == "A1" for a in json.loads(alerts.output))
    assert "forget source paper" in fit(config, "audit").output
    # forgetting again has nothing to do
    assert "nothing to do" in fit(config, "store", "forget", "paper").output


def test_a_renamed_source_is_read_again_and_the_old_name_forgotten(tmp_path: Path) -> None:
    config = setup(tmp_path)
    before = (tmp_path / "forms-scores.csv").read_text(encoding="utf-8")
    write_config(tmp_path, {"paper": "old.csv", "web": "new.csv"})  # forms renamed to web
    assert fit(config, "sync").exit_code == 0
    assert fit(config, "check").exit_code == 1
    assert fit(config, "store", "forget", "forms").exit_code == 0
    assert fit(config, "sync").exit_code == 0
    assert fit(config, "check").exit_code == 0
    with open(tmp_path / "web-scores.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["client_id"], r["session"]) for r in rows] == [("A1", "1"), ("A1", "2")]
    assert (tmp_path / "web-scores.csv").read_text(encoding="utf-8") == before


def test_a_source_in_the_config_is_never_forgotten(tmp_path: Path) -> None:
    config = setup(tmp_path)
    result = CliRunner().invoke(cli, ["--config", str(config), "store", "forget", "forms"])
    assert result.exit_code == 2
    assert "is in the config" in result.output
    assert clients(config) == 4


def test_a_switched_off_source_keeps_its_data_without_a_warning(tmp_path: Path) -> None:
    config = setup(tmp_path)
    text = config.read_text(encoding="utf-8").replace(
        "[sources.paper]\n", "[sources.paper]\nenabled = false\n"
    )
    config.write_text(text, encoding="utf-8")
    assert fit(config, "check").exit_code == 0
    assert clients(config) == 4
