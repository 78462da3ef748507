"""Root options after the sub-command (`fit sync -v`) and a closed output pipe (`| head`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fit_cli.main import EXIT_PIPE, cli, hoist_global_options


def _hoist(args: list[str]) -> list[str]:
    with click.Context(cli) as ctx:
        return hoist_global_options(cli, ctx, args)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["sync", "-v"], ["-v", "sync"]),
        (["sync", "-vv", "--dry-run"], ["-vv", "sync", "--dry-run"]),
        (["sync", "--config", "c.toml", "-q"], ["--config", "c.toml", "-q", "sync"]),
        (["sync", "--config=c.toml"], ["--config=c.toml", "sync"]),
        (["-v", "sync", "--source", "a"], ["-v", "sync", "--source", "a"]),
        (["alerts", "ack", "7", "-v"], ["-v", "alerts", "ack", "7"]),
        # the values of the sub-command's own options are never taken for root options
        (["sync", "--source", "-v"], ["sync", "--source", "-v"]),
        # nothing after `--` moves
        (["score", "--", "-v"], ["score", "--", "-v"]),
        # an unknown command is left for click to report
        (["nosuch", "-v"], ["nosuch", "-v"]),
    ],
)
def test_root_options_after_the_subcommand_move_in_front(
    given: list[str], expected: list[str]
) -> None:
    assert _hoist(given) == expected


def test_sync_dash_v_after_the_command_prints_the_summary(tmp_path: Path) -> None:
    rows = tmp_path / "in.csv"
    rows.write_text(
        "client_id,administered_at,measure,q1,q2,q3,q4,total\nA,2026-01-05,ORS,5,5,5,5,\n",
        encoding="utf-8",
    )
    cfg = tmp_path / "fit.toml"
    cfg.write_text(
        f'[store]\npath = "{tmp_path / "s.sqlite3"}"\n[sync]\ntimezone = "UTC"\n'
        f'[sources.lab]\nadapter = "csv"\npath = "{rows}"\n'
        f'scores_path = "{tmp_path / "scores.csv"}"\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    res = runner.invoke(cli, ["sync", "-v", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "lab: ok; pulled 1" in res.output
    quiet = runner.invoke(cli, ["sync", "--config", str(cfg)])
    assert quiet.exit_code == 0 and quiet.output == ""


def test_a_closed_pipe_ends_quietly_like_other_unix_tools(tmp_path: Path) -> None:
    big = tmp_path / "in.csv"
    lines = ["client_id,administered_at,measure,q1,q2,q3,q4,total"]
    lines += [f"C{i:05d},2026-01-05,ORS,5,5,5,5," for i in range(3000)]
    big.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fit_cli", "score", str(big), "--timezone", "UTC"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()  # read one line, then go away, as `head -1` does
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == EXIT_PIPE
    assert "Traceback" not in err and "internal error" not in err and "Broken" not in err


def test_a_commands_help_names_the_root_options_it_accepts() -> None:
    for args in (["sync", "--help"], ["alerts", "ack", "--help"], ["report", "client", "--help"]):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 0, res.output
        assert "-v/-vv" in res.output and "--config PATH" in res.output, args
