"""The `fit` CLI in-process (click's CliRunner): score, demo, init, check, alerts, help."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from fit_cli.main import cli

HAND_CHECKED = """client_id,administered_at,measure,q1,q2,q3,q4,total,rater
A1,2026-01-05,ORS,5,5,5,5,,client
A1,2026-01-05,SRS,9,9,9,9,,client
A1,2026-01-12,ORS,,,,,15,client
A1,2026-01-12,SRS,9,9,9,8,,client
A1,2026-01-19,ORS,,,,,25,client
A1,2026-01-19,SRS,9,9,9,8.1,,client
B2,2026-01-06,ORS,,,,,25,client
B2,2026-01-13,ORS,,,,,30,client
B2,2026-01-13,SRS,,,,,36,client
C3,2026-01-07,ORS,,,,,12,client
C3,2026-01-07,ORS,,,,,30,parent
C3,2026-01-14,ORS,,,,,17,client
C3,2026-01-14,ORS,,,,,24.9,parent
"""


def score_json(tmp_path: Path, text: str, *extra: str):
    f = tmp_path / "in.csv"
    f.write_text(text, encoding="utf-8")
    res = CliRunner().invoke(
        cli, ["score", str(f), "--json", "--timezone", "UTC", "--as-of", "2026-01-20", *extra]
    )
    return res, (json.loads(res.stdout) if res.stdout.strip() else None)


def test_score_json_hand_checked_totals_sessions_and_flags(tmp_path: Path) -> None:
    res, rows = score_json(tmp_path, HAND_CHECKED)
    assert res.exit_code == 0, res.output
    by = {(r["client_id"], r["administered_at"], r["measure"], r["rater"]): r for r in rows}
    a = [
        by[("A1", d, m, "client")]
        for d in ("2026-01-05", "2026-01-12", "2026-01-19")
        for m in ("ORS", "SRS")
    ]
    assert [r["total"] for r in a] == [20.0, 36.0, 15.0, 35.0, 25.0, 35.1]
    assert [r["session"] for r in a] == [1, 1, 2, 2, 3, 3]
    assert a[0]["rc_class"] == "intake" and a[0]["items"] == [5.0, 5.0, 5.0, 5.0]
    assert a[2]["rc_class"] == "deteriorated" and a[2]["change_from_intake"] == -5.0
    assert a[4]["rc_class"] == "recovered" and a[4]["clinical"] is False
    raised = [[f["rule_id"] for f in r["raised"]] for r in a]
    assert raised == [
        [],
        [],
        ["ors.reliable_deterioration"],
        ["srs.below_cutoff", "srs.drop"],
        [],
        ["srs.below_cutoff"],
    ]  # 35.0 → 35.1 is a rise, not a drop
    # what holds now: only the latest session's verdicts; the earlier ones were superseded
    assert [[f["rule_id"] for f in r["flags"]] for r in a] == [[], [], [], [], [], raised[5]]
    assert [f["state"] for r in a[:4] for f in r["raised"]] == ["superseded"] * 3
    b2_intake = by[("B2", "2026-01-06", "ORS", "client")]
    assert {f["rule_id"]: f["state"] for f in b2_intake["raised"]} == {
        "ors.high_intake": "superseded",  # session 2 is no intake
        "srs.missing": "superseded",  # session 2 has its SRS
    }
    assert b2_intake["flags"] == []
    b2 = by[("B2", "2026-01-13", "ORS", "client")]
    assert b2["intake"] == 25.0 and b2["rc_class"] == "improved"  # 25 is not clinical
    assert by[("B2", "2026-01-13", "SRS", "client")]["flags"] == []  # exactly 36
    c3p = by[("C3", "2026-01-14", "ORS", "parent")]
    assert c3p["session"] == 2 and c3p["intake"] == 30.0 and c3p["rc_class"] == "deteriorated"
    c3 = by[("C3", "2026-01-14", "ORS", "client")]
    assert c3["intake"] == 12.0 and c3["rc_class"] == "improved"
    for r in rows:
        assert r["status"] is None or r["measure"] == "SRS"
        assert set(r) >= {
            "client_id",
            "episode_id",
            "rater",
            "measure",
            "administered_at",
            "session",
            "total",
            "items",
            "clinical",
            "change_from_previous",
            "flags",
        }
        for f in r["flags"]:
            assert set(f) == {"rule_id", "version", "severity", "message"}


def test_score_reports_bad_rows_with_line_and_exits_1(tmp_path: Path) -> None:
    text = HAND_CHECKED + "D4,2026-01-05,ORS,5,12,5,5,,client\nD4,2026-01-32,ORS,,,,,20,client\n"
    res, rows = score_json(tmp_path, text)
    assert res.exit_code == 1
    assert len(rows) == 13
    assert "line 15" in res.stderr and "q2" in res.stderr
    assert "line 16" in res.stderr and "administered_at" in res.stderr
    assert "12" not in res.stderr.replace("line 15", "")


def test_score_duplicate_natural_key_is_reported_for_both_rows(tmp_path: Path) -> None:
    text = HAND_CHECKED + "A1,2026-01-05,ORS,,,,,30,client\n"
    res, rows = score_json(tmp_path, text)
    assert res.exit_code == 1
    assert ("A1", "2026-01-05", "ORS") not in {
        (r["client_id"], r["administered_at"], r["measure"]) for r in rows
    }
    assert "line 2" in res.stderr and "line 15" in res.stderr


def test_score_table_output_shows_copyright(tmp_path: Path) -> None:
    f = tmp_path / "in.csv"
    f.write_text(HAND_CHECKED, encoding="utf-8")
    res = CliRunner().invoke(cli, ["score", str(f), "--timezone", "UTC"])
    assert res.exit_code == 0
    assert "© 2000 Scott D. Miller and Barry L. Duncan" in res.stdout


def test_demo_exits_0_with_a_short_summary() -> None:
    res = CliRunner().invoke(cli, ["demo", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["quarantined"] == data["planted_bad_rows"] == 7
    assert data["scores_rows"] == data["administrations"] > 300
    assert data["open_alerts"] > 0 and data["resync_pushed"] == 0


def test_init_writes_a_private_commented_config_that_loads(tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "config.toml"
    runner = CliRunner()
    res = runner.invoke(cli, ["--config", str(cfg), "init"])
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o600
    from fit_core.config import load_config

    assert "clinic_csv" in load_config(cfg).sources
    again = runner.invoke(cli, ["--config", str(cfg), "init"])
    assert again.exit_code == 3 and "already exists" in again.stderr


def test_config_errors_name_the_key_and_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # configs without [store]: keep the default store in tmp_path, not in the user's data dir
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sync]\ntimezon = "UTC"\n', encoding="utf-8")
    res = CliRunner().invoke(cli, ["--config", str(cfg), "sync"])
    assert res.exit_code == 3 and "timezon" in res.stderr
    cfg.write_text('[sources.x]\nadapter = "csv"\npath = "/nope"\nscores = "a"\n')
    res = CliRunner().invoke(cli, ["--config", str(cfg), "check"])
    assert res.exit_code == 3 and "scores" in res.stdout
    res = CliRunner().invoke(cli, ["--config", str(tmp_path / "missing.toml"), "sync"])
    assert res.exit_code == 3 and " init`" in res.stderr


def test_check_reports_each_source(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text(HAND_CHECKED, encoding="utf-8")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[store]\npath = "{tmp_path / "s.sqlite3"}"\n'
        f'[sources.good]\nadapter = "csv"\npath = "{data}"\nscores_path = "{tmp_path / "o.csv"}"\n'
        f'[sources.bad]\nadapter = "csv"\npath = "{tmp_path / "nope.csv"}"\n'
        f'scores_path = "{tmp_path / "o2.csv"}"\n',
        encoding="utf-8",
    )
    res = CliRunner().invoke(cli, ["--config", str(cfg), "check"])
    assert res.exit_code == 3
    assert "source good (csv): ok" in res.stdout and "source bad (csv): FAILED" in res.stdout


def test_alerts_list_and_ack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    import fit_core.sync

    now = [dt.datetime(2026, 1, 20, 12, tzinfo=dt.UTC)]
    monkeypatch.setattr(fit_core.sync, "utc_now", lambda: now[0])
    data = tmp_path / "in.csv"
    data.write_text(HAND_CHECKED, encoding="utf-8")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[store]\npath = "{tmp_path / "s.sqlite3"}"\n[sync]\ntimezone = "UTC"\n'
        f'[sources.clinic]\nadapter = "csv"\npath = "{data}"\n'
        f'scores_path = "{tmp_path / "o.csv"}"\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    base = ["--config", str(cfg)]
    assert runner.invoke(cli, [*base, "sync"]).exit_code == 0
    alerts = json.loads(runner.invoke(cli, [*base, "alerts", "--json"]).stdout)
    three = {"ors.reliable_deterioration", "srs.below_cutoff", "srs.drop"}
    # what holds now: A1's alliance is still low (35 → 35.1), C3's parent rates 30 → 24.9;
    # A1's deterioration (session 2) was superseded by the recovery at session 3
    assert sorted((a["client_id"], a["rule_id"]) for a in alerts if a["rule_id"] in three) == [
        ("A1", "srs.below_cutoff"),
        ("C3", "ors.reliable_deterioration"),
    ]
    target = next(a for a in alerts if a["rule_id"] == "srs.below_cutoff")
    assert (target["first_session"], target["session"], target["rater"]) == (2, 3, "client")
    # the ID as the list prints it, with its #
    res = runner.invoke(cli, [*base, "alerts", "ack", f"#{target['id']}"])
    assert res.exit_code == 0, res.output
    # a week later A1's alliance is low again: the same alert is carried forward, still
    # acknowledged, and no longer pushed
    now[0] = dt.datetime(2026, 1, 27, 12, tzinfo=dt.UTC)
    (tmp_path / "in.csv").write_text(
        HAND_CHECKED
        + "A1,2026-01-26,ORS,,,,,26,client\nA1,2026-01-26,SRS,9,9,9,8.2,,client\n"
        + "E5,2026-01-26,ORS,,,,,20,client\n"
    )
    assert runner.invoke(cli, [*base, "sync"]).exit_code == 0
    open_ids = {a["id"] for a in json.loads(runner.invoke(cli, [*base, "alerts", "--json"]).stdout)}
    assert target["id"] not in open_ids
    acked = json.loads(
        runner.invoke(cli, [*base, "alerts", "--state", "acknowledged", "--json"]).stdout
    )
    assert [(a["id"], a["session"], a["date"]) for a in acked] == [(target["id"], 4, "2026-01-26")]
    scores = (tmp_path / "o.csv").read_text(encoding="utf-8-sig")
    a1_srs = [ln for ln in scores.splitlines() if ln.startswith("nk:A1|") and "|SRS|" in ln]
    assert len(a1_srs) == 4 and not any("srs." in ln for ln in a1_srs)
    # an ID that names no alert, or is no ID at all, is a bad command line (2)
    unknown = runner.invoke(cli, [*base, "alerts", "ack", "99999"])
    assert unknown.exit_code == 2 and "no alert #99999" in unknown.output
    assert runner.invoke(cli, [*base, "alerts", "show", "seven"]).exit_code == 2
    # the whole history is there: raised at session 3, acknowledged, carried to session 4
    shown = runner.invoke(cli, [*base, "alerts", "show", str(target["id"]), "--json"])
    assert shown.exit_code == 0, shown.output
    history = json.loads(shown.stdout)["history"]
    assert [e["event"] for e in history] == ["raised", "acknowledged", "carried"]


def test_help_lists_exit_codes_and_usage_errors_exit_2() -> None:
    res = CliRunner().invoke(cli, ["--help"])
    assert "5  LOCKED" in res.output and "3  CONFIG" in res.output
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-m", "fit_cli", "sync", "--bogus"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 2


def test_a_secret_in_the_config_is_refused_with_the_command_to_store_it(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sources.lab]\nadapter = "csv"\ntoken = "ABCDEF0123456789ABCDEF0123456789"\n')
    res = CliRunner().invoke(cli, ["--config", str(cfg), "check"])
    assert res.exit_code == 3
    assert "fit keys set lab token" in res.stderr and "ABCDEF" not in res.stderr


def test_stats_by_site_groups_on_the_site_column(tmp_path: Path) -> None:
    rows = ["client_id,administered_at,measure,total,site"]
    for i in range(12):
        site = "North" if i % 3 else "South"
        rows += [f"S{i},2025-01-0{1 + i % 5},ORS,15,{site}", f"S{i},2025-02-1{i % 9},ORS,22,{site}"]
    data = tmp_path / "in.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[store]\npath = "{tmp_path / "s.sqlite3"}"\n[sync]\ntimezone = "UTC"\n'
        f'[sources.clinic]\nadapter = "csv"\npath = "{data}"\n'
        f'scores_path = "{tmp_path / "o.csv"}"\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(cfg), "sync"]).exit_code == 0
    res = runner.invoke(cli, ["--config", str(cfg), "stats", "--by", "site", "--json"])
    groups = {g["group"]: g for g in json.loads(res.stdout)[1:]}
    assert groups["North"]["n_episodes"] == 8 and groups["South"]["n_episodes"] == 4
    assert groups["South"]["small"] is True


def test_rules_show_the_values_each_rule_really_uses(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[store]\npath = "{tmp_path / "s.sqlite3"}"\n[sources.lab]\nadapter = "csv"\n'
        f'path = "{tmp_path / "in.csv"}"\nscores_path = "{tmp_path / "o.csv"}"\n'
        "[rules]\nsrs_cutoff = 35\n",
        encoding="utf-8",
    )
    res = CliRunner().invoke(cli, ["--config", str(cfg), "rules"])
    assert res.exit_code == 0, res.output
    assert "None" not in res.output and "{}" not in res.output
    assert "ors_reliable_change={ORS 5, CORS 5}" in res.output
    assert "cutoffs={ORS adult 25, ORS adolescent 28, CORS 32}" in res.output
    assert "srs_cutoff={SRS 35, CSRS 35, GSRS 35}" in res.output  # the configured value
    rows = json.loads(CliRunner().invoke(cli, ["--config", str(cfg), "rules", "--json"]).stdout)
    drop = next(r for r in rows if r["id"] == "ors.reliable_deterioration")
    assert drop["settings"]["ors_reliable_change"] is None  # as configured: unset
    assert drop["effective"]["ors_reliable_change"] == {"ORS": 5.0, "CORS": 5.0}


def test_the_readme_lists_every_column_of_the_scores_file() -> None:
    import re

    from fit_core.scoring import PUSH_FIELDS

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    match = re.search(
        r"The scores file has one row per administration and these (\d+) columns: `([^`]+)`", readme
    )
    assert match, "the README's scores-file sentence is gone"
    listed = [c.strip() for c in match.group(2).split(",")]
    assert listed == list(PUSH_FIELDS) and int(match.group(1)) == len(PUSH_FIELDS)
