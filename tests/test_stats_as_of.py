"""A supervisor's figures over time: `--as-of` reproduces a past figure after new data arrive,
each measure keeps its own trajectory model, and outcome populations are labelled."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fit_cli.main import cli
from fit_core.store import Store
from fit_core.synthetic import COLUMNS, DEFAULT_START, generate_clinic, write_csv

AS_OF = DEFAULT_START + dt.timedelta(days=300)


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("clinic")
    write_csv(d / "admins.csv", generate_clinic(900, seed=33))
    cfg = d / "config.toml"
    cfg.write_text(
        f'[store]\npath = "{d / "fit.sqlite3"}"\n[sync]\ntimezone = "UTC"\n'
        f'[sources.clinic]\nadapter = "csv"\npath = "{d / "admins.csv"}"\n'
        f'scores_path = "{d / "scores.csv"}"\n',
        encoding="utf-8",
    )
    assert fit(cfg, "sync").exit_code == 0
    return cfg


def fit(cfg: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(cfg), *args])


def stats(cfg: Path, *args: str) -> list[dict]:
    res = fit(cfg, "stats", "--json", *args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_as_of_reproduces_a_past_figure_after_new_data_arrive(clinic: Path) -> None:
    before = stats(clinic, "--as-of", AS_OF.isoformat(), "--by", "clinician")
    assert before[0]["as_of"] == AS_OF.isoformat()
    # a week later more sessions arrive, dated after the as-of day, for clients seen before it
    path = clinic.parent / "admins.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    early = [r for r in rows if r["administered_at"][:10] <= AS_OF.isoformat()]
    late = []
    for i, r in enumerate(early[:300]):
        when = dt.date.fromisoformat(AS_OF.isoformat()) + dt.timedelta(days=1 + i % 20)
        late.append(
            {
                **r,
                "administered_at": f"{when.isoformat()}T10:00:00+00:00",
                "source_key": f"late-{i}",
                "total": "3.0",
                "q1": "",
                "q2": "",
                "q3": "",
                "q4": "",
            }
        )
    with path.open("a", encoding="utf-8", newline="") as fh:
        csv.DictWriter(fh, fieldnames=list(COLUMNS)).writerows(late)
    assert fit(clinic, "sync").exit_code == 0
    after = stats(clinic, "--as-of", AS_OF.isoformat(), "--by", "clinician")
    assert after == before
    now = stats(clinic, "--by", "clinician")
    assert (
        now[0]["n_outcome"] != before[0]["n_outcome"]
        or now[0]["effect_size"] != (before[0]["effect_size"])
    )


def test_each_measure_keeps_its_own_trajectory_model(clinic: Path) -> None:
    ors = fit(clinic, "trajectories", "fit", "--measure", "ORS", "--json")
    assert ors.exit_code == 0, ors.output
    cors = fit(clinic, "trajectories", "fit", "--measure", "CORS", "--min-n", "5", "--json")
    assert cors.exit_code == 0, cors.output
    shown = json.loads(fit(clinic, "trajectories", "show", "--json").stdout)
    assert sorted(m["measures"][0] for m in shown) == ["CORS", "ORS"]
    assert fit(clinic, "sync").exit_code == 0
    scores = list(csv.DictReader((clinic.parent / "scores.csv").open(encoding="utf-8-sig")))
    for measure in ("ORS", "CORS"):
        statuses = {
            r["status"] for r in scores if r["measure"] == measure and r["rater"] == "client"
        }
        assert {"green", "grey"} <= statuses, measure  # adults and children both have a status
    parent = {r["status"] for r in scores if r["rater"] == "parent" and "ORS" in r["measure"]}
    assert parent == {""}  # no model was fitted on parents' ratings: no colour for them
    # refitting ORS replaces the ORS model only
    again = fit(clinic, "trajectories", "fit", "--measure", "ORS", "--max-session", "8")
    assert again.exit_code == 0, again.output
    shown = json.loads(fit(clinic, "trajectories", "show", "--json").stdout)
    by_measure = {m["measures"][0]: m for m in shown}
    assert set(by_measure) == {"ORS", "CORS"} and by_measure["ORS"]["max_session"] == 8
    assert fit(clinic, "trajectories", "fit", "--measure", "SRS").exit_code == 3
    # a past figure uses the models in force that day: none had been fitted yet
    past = stats(clinic, "--as-of", AS_OF.isoformat())[0]
    assert past["n_severity_adjusted"] == 0 and stats(clinic)[0]["n_severity_adjusted"] > 0
    store = Store.open(clinic.parent / "fit.sqlite3")
    try:
        assert len(store.active_models()) == 2
        assert store.models_as_of("2000-01-01T00:00:00+00:00") == []
    finally:
        store.close()
    cleared = fit(clinic, "trajectories", "clear", "--measure", "CORS")
    assert cleared.exit_code == 0 and cleared.stdout.startswith("1 model")
    shown = json.loads(fit(clinic, "trajectories", "show", "--json").stdout)
    assert [m["measures"] for m in shown] == [["ORS"]]


def test_outcome_figures_say_which_episodes_they_are_of(clinic: Path) -> None:
    # as of a day inside the synthetic clinic's year, when some episodes are still open (today,
    # years later, every one has ended)
    day = AS_OF.isoformat()
    every = stats(clinic, "--as-of", day)[0]
    ended = stats(clinic, "--ended-only", "--as-of", day)[0]
    assert every["outcome_population"] == "all" and ended["outcome_population"] == "ended"
    assert ended["n_outcome"] < every["n_outcome"]
    # closed cases reaching target do not depend on the population asked for
    assert ended["n_closed_outcome"] == every["n_closed_outcome"] == ended["n_outcome"]
    assert ended["pct_closed_reached_target"] == ended["pct_reached_target"]
    # without attendance data there is no dropout figure, only the inferred split
    assert every["pct_dropout"] is None and every["n_ended_attendance"] == 0
    assert set(every["endings"]) == {"dropout", "reached", "not_reached", "unknown"}
    assert every["endings"]["dropout"] == 0
    assert sum(every["endings"].values()) == every["n_ended"]
    # the unknown target (fewer than 2 ORS) is not counted as not reached
    assert every["endings"]["not_reached"] < every["n_unplanned"]
    no_site = fit(clinic, "stats", "--by", "site", "--json")
    assert [r["group"] for r in json.loads(no_site.stdout)] == ["all"]
    assert "no episode has a site" in fit(clinic, "stats", "--by", "site").stderr


def sessions_in(paths: list[str]) -> int:
    """Sessions over a client's pages (each page's header says "N sessions")."""
    total = 0
    for p in paths:
        found = re.search(r"(\d+) sessions?,", Path(p).read_text(encoding="utf-8"))
        assert found
        total += int(found.group(1))
    return total


def test_reports_take_as_of_and_ended_only(clinic: Path, tmp_path: Path) -> None:
    rows = list(csv.DictReader((clinic.parent / "admins.csv").open(encoding="utf-8")))
    day = AS_OF.isoformat()
    before = {r["client_id"] for r in rows if r["administered_at"][:10] <= day}
    after = {r["client_id"] for r in rows if r["administered_at"][:10] > day}
    client = sorted(before & after)[0]
    now = fit(clinic, "report", "client", client, "--out", str(tmp_path / "now"))
    then = fit(clinic, "report", "client", client, "--as-of", day, "--out", str(tmp_path / "then"))
    assert now.exit_code == 0 and then.exit_code == 0, then.output
    assert 0 < sessions_in(then.stdout.split()) < sessions_in(now.stdout.split())
    first = min(r["administered_at"][:10] for r in rows if r["client_id"] == client)
    too_early = (dt.date.fromisoformat(first) - dt.timedelta(days=1)).isoformat()
    none = fit(clinic, "report", "client", client, "--as-of", too_early, "--out", str(tmp_path))
    assert none.exit_code == 3 and "no administrations on or before" in none.output
    res = fit(
        clinic, "report", "clinic", "--ended-only", "--as-of", day, "--srs-items",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    (path,) = res.stdout.split()
    assert Path(path).name == f"fit-clinic-by-clinician-ended-as-of-{day}.html"
    html = Path(path).read_text(encoding="utf-8")
    assert "outcome figures of ended episodes" in html and "Alliance by domain" in html
    assert "Goals and topics" in html  # the SRS domains under their short labels
