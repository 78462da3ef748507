"""A source's `namespace` changed after its first syncs: the rows read again under the new
namespace take everything of theirs with them, so an erasure there reaches the scores file, and
what the old namespace still holds is found by the erasure too.

Through the real CLI on a CSV source (a CSV source reads a file again when it changed).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fit_cli.main import cli

ROWS = (
    "client_id,administered_at,measure,q1,q2,q3,q4,clinician_id,session\n"
    "g0001,2025-03-03T10:00:00Z,ORS,5,5,5,5,T1,\n"
    "g0001,2025-03-10T10:00:00Z,ORS,6,6,6,6,T1,\n"
)


def write_config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "fit.toml"
    config.write_text(
        f"""
[store]
path = "fit.sqlite3"

[sync]
timezone = "UTC"

[sources.forms]
adapter = "csv"
path = "admins.csv"
scores_path = "scores.csv"
{extra}
""",
        encoding="utf-8",
    )
    return config


def fit(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def clients(tmp_path: Path) -> list[tuple[str, str]]:
    with open(tmp_path / "scores.csv", encoding="utf-8-sig", newline="") as f:
        return [(row["client_id"], row["session"]) for row in csv.DictReader(f)]


def setup(tmp_path: Path) -> Path:
    (tmp_path / "admins.csv").write_text(ROWS, encoding="utf-8")
    config = write_config(tmp_path)
    assert fit(config, "sync").exit_code == 0
    assert clients(tmp_path) == [("G0001", "1"), ("G0001", "2")]
    return config


def stored_rows(tmp_path: Path, config: Path, namespace: str) -> int:
    out = tmp_path / f"export-{namespace}"
    result = fit(config, "client", "export", "G0001", "--namespace", namespace, "--out", str(out))
    if result.exit_code != 0:
        return 0
    data = json.loads((out / "client.json").read_text(encoding="utf-8"))
    return len(data["store"]["administrations"])


def test_a_client_erased_after_a_namespace_change_leaves_the_scores_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scores file is rebuilt from the outbox: its rows must follow their client into the
    new namespace even when their payload did not change, or an erasure there misses them."""
    monkeypatch.setenv("FIT_PRIVACY_HASH_KEY", "namespace-test-key")
    config = setup(tmp_path)
    write_config(tmp_path, 'namespace = "north"')
    # the export is written again (one more session): the whole file is read under "north"
    with open(tmp_path / "admins.csv", "a", encoding="utf-8") as f:
        f.write("g0001,2025-03-17T10:00:00Z,ORS,7,7,7,7,T1,\n")
    assert fit(config, "sync").exit_code == 0
    assert stored_rows(tmp_path, config, "north") == 3
    erased = fit(config, "client", "erase", "G0001", "--namespace", "north", "--yes")
    assert erased.exit_code == 0, erased.output
    assert fit(config, "sync").exit_code == 0
    assert clients(tmp_path) == []
    assert stored_rows(tmp_path, config, "forms") == 0
    # what the old namespace still holds (the typed spelling) is found and erased too
    left = fit(config, "client", "erase", "G0001", "--yes")
    assert left.exit_code == 0, left.output
    assert "namespace forms" in left.output
    gone = CliRunner().invoke(cli, ["--config", str(config), "client", "erase", "G0001", "--yes"])
    assert gone.exit_code == 3 and "no client" in gone.output
