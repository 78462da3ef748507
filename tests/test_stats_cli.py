"""`fit stats` on the synthetic clinic matches an independent numpy computation, and its rates
fall in the published ranges; `fit trajectories fit` on the same data."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fit_cli.main import cli
from fit_core.synthetic import generate_clinic, write_csv


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]]]:
    d = tmp_path_factory.mktemp("clinic")
    rows = list(generate_clinic(800, seed=21))
    write_csv(d / "admins.csv", rows)
    cfg = d / "config.toml"
    cfg.write_text(
        f'[store]\npath = "{d / "fit.sqlite3"}"\n[sync]\ntimezone = "UTC"\n'
        f'[sources.clinic]\nadapter = "csv"\npath = "{d / "admins.csv"}"\n'
        f'scores_path = "{d / "scores.csv"}"\n',
        encoding="utf-8",
    )
    res = CliRunner().invoke(cli, ["--config", str(cfg), "sync"])
    assert res.exit_code == 0, res.output
    return cfg, rows


def independent(rows: list[dict[str, str]]) -> dict[str, float]:
    """Pre-post figures from the raw rows, without any fit_core code."""
    series: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    for r in rows:
        if r["rater"] != "client" or r["measure"] not in ("ORS", "CORS"):
            continue
        total = float(r["total"]) if r["total"] else sum(float(r[f"q{i}"]) for i in range(1, 5))
        series[(r["client_id"], r["episode_id"])].append((r["administered_at"], total))
    pre, post = [], []
    for s in series.values():
        if len(s) >= 2:
            s.sort()
            pre.append(s[0][1])
            post.append(s[-1][1])
    a, b = np.array(pre), np.array(post)
    change = np.round(b - a, 2)
    return {
        "n": len(a),
        "effect_size": float(np.mean(b - a) / np.std(a, ddof=1)),
        "pct_deteriorated": float(np.mean(change <= -5) * 100),
        "pct_reliably_improved": float(np.mean(change >= 5) * 100),
        "pct_no_change": float(np.mean(np.abs(change) < 5) * 100),
    }


def test_stats_match_an_independent_computation(clinic) -> None:
    cfg, rows = clinic
    res = CliRunner().invoke(cli, ["--config", str(cfg), "stats", "--json"])
    assert res.exit_code == 0, res.output
    everyone = json.loads(res.stdout)[0]
    ref = independent(rows)
    assert everyone["group"] == "all"
    assert everyone["n_outcome"] == ref["n"]
    assert everyone["effect_size"] == pytest.approx(ref["effect_size"], abs=1e-3)
    for key in ("pct_deteriorated", "pct_reliably_improved", "pct_no_change"):
        assert everyone[key] == pytest.approx(ref[key], abs=1e-3), key
    # a realistic synthetic clinic lands in the published ranges
    assert 65 <= everyone["pct_reliably_improved"] <= 74
    assert 24 <= everyone["pct_no_change"] <= 35
    assert 2 <= everyone["pct_deteriorated"] <= 11
    assert (
        everyone["effect_size_ci_low"] < everyone["effect_size"] < everyone["effect_size_ci_high"]
    )


def test_stats_by_clinician_marks_small_groups_and_adds_up(clinic) -> None:
    cfg, _ = clinic
    res = CliRunner().invoke(
        cli, ["--config", str(cfg), "stats", "--by", "clinician", "--json", "--min-n", "90"]
    )
    data = json.loads(res.stdout)
    groups = data[1:]
    assert sum(g["n_episodes"] for g in groups) == data[0]["n_episodes"]
    assert any(g["small"] for g in groups) and any(not g["small"] for g in groups)
    csv_out = CliRunner().invoke(cli, ["--config", str(cfg), "stats", "--by", "age_band", "--csv"])
    table = list(csv.DictReader(csv_out.stdout.splitlines()))
    assert {r["group"] for r in table} >= {"all", "adult", "child"}


def test_trajectory_fit_show_and_statuses_after_resync(clinic) -> None:
    cfg, _ = clinic
    runner = CliRunner()
    fitted = runner.invoke(cli, ["--config", str(cfg), "trajectories", "fit", "--json"])
    assert fitted.exit_code == 0, fitted.output
    model = json.loads(fitted.stdout)
    assert model["sessions"] and all(s["n"] >= 30 for s in model["sessions"])
    shown = json.loads(
        runner.invoke(cli, ["--config", str(cfg), "trajectories", "show", "--json"]).stdout
    )
    assert [m["sessions"] for m in shown] == [model["sessions"]]
    assert shown[0]["measures"] == ["ORS"] and shown[0]["raters"] == ["client"]
    assert runner.invoke(cli, ["--config", str(cfg), "sync"]).exit_code == 0
    scores = list(csv.DictReader((cfg.parent / "scores.csv").open(encoding="utf-8-sig")))
    statuses = {r["status"] for r in scores if r["measure"] == "ORS"}
    assert {"grey", "green", "orange", "red"} <= statuses
    refused = runner.invoke(
        cli, ["--config", str(cfg), "trajectories", "fit", "--min-n", "100000", "--dry-run"]
    )
    assert refused.exit_code == 3 and "min" in refused.stderr.lower()
    runner.invoke(cli, ["--config", str(cfg), "trajectories", "clear"])


def test_stats_for_people_is_a_readable_report_with_the_numbers_of_the_json(clinic) -> None:
    cfg, _rows = clinic
    text = CliRunner().invoke(cli, ["--config", str(cfg), "stats", "--by", "clinician"])
    assert text.exit_code == 0, text.output
    raw = json.loads(
        CliRunner()
        .invoke(cli, ["--config", str(cfg), "stats", "--by", "clinician", "--json"])
        .stdout
    )
    out = text.stdout
    # words, not raw keys
    for key in ("n_clients", "pct_reliably_improved", "endings_by_target", "effect_size_ci_low"):
        assert key not in out
    whole = raw[0]
    assert f"clients {whole['n_clients']} " in out
    assert re.search(rf"reliably improved\s+{whole['pct_reliably_improved']:.1f} %", out)
    assert f"effect size {whole['effect_size']:.2f} [" in out
    assert re.search(rf"recovered\s+{whole['n_recovered']}\s+{whole['pct_recovered']:.1f} %", out)
    # one block per group, small groups marked and their effect sizes withheld
    assert out.count("== clinician ") == len(raw) - 1
    small = [g for g in raw if g["small"]]
    assert out.count("small group (fewer episodes than --min-n)") == len(small)
    assert "ORS © 2000 Scott D. Miller and Barry L. Duncan." in out
    # fewer lines than the raw keys (about 80 per group before)
    assert len(out.splitlines()) < 25 * len(raw)
