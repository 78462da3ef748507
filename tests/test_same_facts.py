"""Every view uses the same facts: the report, `fit alerts --json` and `fit score` read a client
the way the sync scored it (practice data included), and never disagree with the store."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fit_cli.main import cli
from fit_core.config import config_from_mapping
from fit_core.models import ClientInfo
from fit_core.plugins import load_plugins
from fit_core.store import Store
from fit_core.sync import SyncEngine

sys.path.insert(0, str(Path(__file__).parent))
import memory_adapter
from memory_adapter import MemorySource

STAMP = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_an_adolescents_report_shows_the_adolescent_cutoff_from_practice_data(
    tmp_path: Path,
) -> None:
    pytest.importorskip("jinja2")
    from fit_core.reports.source import ClientReportSource

    remote = MemorySource()
    memory_adapter.SOURCES["teen"] = remote
    for week, total in enumerate((20, 24, 26.5)):
        day = dt.date(2026, 3, 2) + dt.timedelta(weeks=week)
        row = {"client_id": "A15", "administered_at": day.isoformat(), "measure": "ORS"}
        remote.put(f"o{week}", {**row, "total": str(total)}, STAMP)
    # the age is not in the scores: only the practice system knows the date of birth (15)
    remote.context.append(ClientInfo("mem", "mem", "A15", dt.date(2010, 6, 1), "T4", "active"))
    config = config_from_mapping(
        {
            "store": {"path": str(tmp_path / "fit.sqlite3")},
            "sync": {"timezone": "UTC"},
            "sources": {"mem": {"adapter": "memory", "remote": "teen"}},
        }
    )
    registry = load_plugins(extra=[memory_adapter])
    store = Store.open(config.store_path)
    try:
        now = dt.datetime(2026, 3, 17, tzinfo=dt.UTC)
        SyncEngine(config, registry, store, clock=lambda: now).run()
        # scoring used 28 (26.5 is still clinical for a 15-year-old): no recovery
        assert remote.target["o2"]["rc_class"] == "improved" and remote.target["o2"]["clinical"]
        source = ClientReportSource(
            store=store,
            measures=registry.measures,
            settings=config.settings.with_(as_of=now.date()),
            model=None,
            namespaces=["mem"],
            rule_titles={},
        )
        (page,) = source.pages("A15")
        assert page.ors is not None
        assert [c.label for c in page.ors.cutoffs] == ["Clinical cutoff 28 (adolescent)"]
        assert page.clinician_id == "T4"
        alerts = store.list_flags("all", client="A15")
        assert alerts and {a["clinician_id"] for a in alerts} == {"T4"}
    finally:
        store.close()


SCORES = """client_id,administered_at,measure,q1,q2,q3,q4,total,clinician_id,site
P1,2026-01-05,ORS,3.75,3.75,3.75,3.75,,T1,North
P1,2026-01-05,SRS,9,9,9,8.5,,T1,North
P1,2026-01-12,ORS,,,,,16,T1,North
P1,2026-01-12,SRS,,,,,35.5,T1,North
P1,2026-01-19,ORS,,,,,17,T1,North
P1,2026-01-19,SRS,,,,,35.5,T1,North
P2,2026-01-06,ORS,,,,,15,T2,South
P2,2026-01-13,ORS,,,,,20,T2,South
P3,2026-01-07,ORS,,,,,30,T2,South
P3,2026-01-14,ORS,,,,,24.5,T2,South
"""


def _read_scores(path: Path) -> dict[str, dict[str, str]]:
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    return {r["source_key"]: r for r in rows}


def test_fit_score_and_the_store_never_disagree_even_after_a_settings_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fit_core.sync

    monkeypatch.setattr(
        fit_core.sync, "utc_now", lambda: dt.datetime(2026, 1, 20, 12, tzinfo=dt.UTC)
    )
    data = tmp_path / "in.csv"
    data.write_text(SCORES, encoding="utf-8")
    cfg = tmp_path / "c.toml"
    head = (
        f'[store]\npath = "{tmp_path / "s.sqlite3"}"\n[sync]\ntimezone = "UTC"\n'
        f'[sources.clinic]\nadapter = "csv"\npath = "{data}"\n'
        f'scores_path = "{tmp_path / "out.csv"}"\n'
    )
    runner = CliRunner()

    def compare(expect_line: str | None = None) -> list[str]:
        synced = runner.invoke(cli, ["--config", str(cfg), "-v", "sync"])
        assert synced.exit_code == 0
        if expect_line is not None:
            assert expect_line in synced.stdout
        stored = _read_scores(tmp_path / "out.csv")
        res = runner.invoke(
            cli, ["--config", str(cfg), "score", str(data), "--json", "--as-of", "2026-01-20"]
        )
        assert res.exit_code == 0, res.output
        scored = {r["source_key"]: r for r in json.loads(res.stdout)}
        assert set(stored) == set(scored)
        open_rules = []
        for key, row in scored.items():
            flags = [f["rule_id"] for f in row["flags"]]
            assert stored[key]["flags"] == ";".join(flags), key
            assert stored[key]["rc_class"] == (row["rc_class"] or ""), key
            assert float(stored[key]["total"]) == row["total"], key
            open_rules += flags
        return sorted(open_rules)

    cfg.write_text(head, encoding="utf-8")
    others = ["ors.reliable_deterioration", "srs.missing", "srs.missing"]  # P3; P2 and P3
    assert compare() == sorted(["ors.checkpoint", "srs.below_cutoff", *others])
    # the clinic changes its rules; no new data: the store follows, and still agrees
    cfg.write_text(head + '[rules]\nsrs_cutoff = 35\ndisabled = ["ors.checkpoint"]\n')
    changed = "scoring changed (settings, rules): every client rescored with the current settings"
    assert compare(changed) == others
    alerts = json.loads(
        runner.invoke(cli, ["--config", str(cfg), "alerts", "--state", "all", "--json"]).stdout
    )
    assert {(a["rule_id"], a["state"], a["clinician_id"], a["site"]) for a in alerts} >= {
        ("ors.checkpoint", "closed", "T1", "North"),
        ("srs.below_cutoff", "superseded", "T1", "North"),
    }
    sync = runner.invoke(cli, ["--config", str(cfg), "sync", "--json"])
    assert json.loads(sync.stdout)["settings_changed"] == []


def test_items_of_3_75_score_15_in_fit_score(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text(SCORES, encoding="utf-8")
    res = CliRunner().invoke(cli, ["score", str(data), "--json", "--as-of", "2026-01-20"])
    rows = json.loads(res.stdout)
    first = next(r for r in rows if r["client_id"] == "P1" and r["measure"] == "ORS")
    assert first["total"] == 15.0 and first["items"] == [3.75, 3.75, 3.75, 3.75]
    p2 = [r for r in rows if r["client_id"] == "P2"]
    assert p2[-1]["change_from_intake"] == 5.0 and p2[-1]["rc_class"] == "improved"
