"""Score rows never mix two sessions: the scoring instrument holds one row per session.

Checked over the fake's state, the way a clinician reads the scoring instrument in REDCap. The
projects skip SRS sessions, so instance n of the SRS is often another day than instance n of
the ORS (the old layout paired them). Synthetic data only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes import redcap_fake as rf
from fakes.redcap_fake import (
    INTAKE,
    SESSION,
    TOKEN,
    RedcapFake,
    accepted,
    clinic_project,
    source_options,
)
from redcap_harness import SOURCE, make_engine, mixed_rows, paired_rows_would_mix, run

redcap_fake = rf.redcap_fake  # the fixture
FIT = [sys.executable, "-m", "fit_cli"]


def test_no_score_row_mixes_dates_after_a_full_sync_of_5000_records(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    project = clinic_project(5000, seed=31, skip_srs=0.3)
    assert paired_rows_would_mix(project) > 1000  # what pairing instance n with n would do
    fake = redcap_fake(project, hit_limit=100_000)
    engine = make_engine(tmp_path, source_options(fake))
    try:
        result = run(engine)
        assert result.status == "ok", result.error
        assert result.pushed == len(accepted(project))
    finally:
        engine.store.close()
    assert mixed_rows(project) == []
    rows = rf.scores_state(project)
    statuses = {project.data[record][key].get("fit_scores_complete") for record, key in rows}
    assert statuses == {"2"}  # Complete (green in REDCap), not Incomplete (red)
    srs_only = [v for v in rows.values() if "fit_srs_total" in v and "fit_ors_total" not in v]
    assert srs_only  # an SRS whose session's ORS is unverified still gets its own row


def legacy_rows(project: rf.FakeProject) -> int:
    """Write what the old layout wrote: fit_scores #n holds ORS #n and SRS #n, no date."""
    n = 0
    for record, rows in list(project.data.items()):
        for (event, ri, instance), row in list(rows.items()):
            if ri not in ("ors", "srs") or row.get(f"{ri}_complete") != "2":
                continue
            total = sum(int(row[f"{ri}_{i}"]) for i in range(1, 5)) / 10
            project.put(
                record,
                {f"fit_{ri}_total": f"{total:.1f}", f"fit_{ri}_session": instance},
                event=event,
                repeat_instrument="fit_scores",
                instance=instance,
            )
            n += 1
    return n


def test_rows_of_the_old_paired_layout_are_migrated(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    project = clinic_project(300, seed=32, skip_srs=0.4)
    assert legacy_rows(project) > 0
    assert mixed_rows(project)  # the old rows mix sessions (and have no date)
    fake = redcap_fake(project)
    engine = make_engine(tmp_path, source_options(fake))
    try:
        assert run(engine).status == "ok"
    finally:
        engine.store.close()
    assert mixed_rows(project) == []


def test_an_upgrade_rewrites_every_row_once(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    project = clinic_project(200, seed=33, skip_srs=0.4)
    fake = redcap_fake(project)
    engine = make_engine(tmp_path, source_options(fake))
    try:
        assert run(engine).status == "ok"
        # as if an older version had synced: its bookmark has no layout, its rows were paired
        mark = json.loads(engine.store.bookmark(SOURCE) or "{}")
        engine.store.save_bookmark(SOURCE, json.dumps({"since": mark["since"]}))
        for record in project.data:
            for key in [k for k in project.data[record] if k[1] == "fit_scores"]:
                del project.data[record][key]
        legacy_rows(project)
        assert mixed_rows(project)
        upgraded = run(engine)
        assert upgraded.status == "ok", upgraded.error
        assert upgraded.pushed == len(accepted(project))  # every row written again, once
        assert mixed_rows(project) == []
        assert json.loads(engine.store.bookmark(SOURCE) or "{}")["layout"] == 2
        again = run(engine)
        assert again.status == "ok" and again.pushed == 0
    finally:
        engine.store.close()


def test_scores_complete_sets_the_scoring_instruments_status(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    project = clinic_project(10, seed=34)
    fake = redcap_fake(project)
    engine = make_engine(tmp_path, source_options(fake, scores_complete=1))
    try:
        assert run(engine).status == "ok"
    finally:
        engine.store.close()
    rows = rf.scores_state(project)
    statuses = {project.data[record][key].get("fit_scores_complete") for record, key in rows}
    assert statuses == {"1"}


def test_rows_redcap_already_holds_are_not_written_again_and_gone_records_not_recreated(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    project = clinic_project(30, seed=35)
    fake = redcap_fake(project)
    engine = make_engine(tmp_path, source_options(fake))
    try:
        assert run(engine).status == "ok"
        del project.data["1004"]  # deleted in REDCap
        engine.store.mark_all_pending(SOURCE)  # e.g. a store restored from a backup
        before = len(fake.hits)
        result = run(engine)
        imports = [h for h in fake.hits[before:] if h.action == "import"]
        assert imports == []  # every row is already there: nothing written
        assert "1004" not in project.data  # and no empty record created for the deleted one
        assert result.status == "partial" and result.push_rejected > 0
    finally:
        engine.store.close()


def test_a_record_redcap_refuses_does_not_stop_the_others(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = clinic_project(20, seed=36)
    fake = redcap_fake(project)
    plan = rf.RedcapFake._plan

    def refuse_1007(self: RedcapFake, row: Any, errors: list[str], unknown: list[str]) -> Any:
        if str(row.get("record_id")) == "1007":
            errors.append('"1007","fit_ors_total","","This record is locked"')
            return None
        return plan(self, row, errors, unknown)

    monkeypatch.setattr(rf.RedcapFake, "_plan", refuse_1007)
    engine = make_engine(tmp_path, source_options(fake))
    try:
        result = run(engine)
    finally:
        engine.store.close()
    assert result.status == "partial" and result.push_rejected > 0
    written = {record for record, _ in rf.scores_state(project)}
    assert "1007" not in written and len(written) >= 15


# --- an existing scoring instrument with other names --------------------------------------------


def test_inspect_maps_an_existing_scoring_instrument_and_the_proposal_syncs(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    project = clinic_project(40, seed=37, scoring="session", skip_srs=0.3)
    fake = redcap_fake(project)
    base = (
        f'[store]\npath = "{tmp_path / "fit.sqlite3"}"\n[sync]\ntimezone = "America/Chicago"\n'
        f'[sources.{SOURCE}]\nadapter = "redcap"\nurl = "{fake.url}"\nthrottle = 200\n'
        'server_timezone = "America/Chicago"\n'
    )
    config = tmp_path / "fit.toml"
    config.write_text(base, encoding="utf-8")
    env = {**os.environ, "FIT_CLINIC_REDCAP_TOKEN": TOKEN}
    inspect = subprocess.run(
        [*FIT, "--config", str(config), "redcap", "inspect", SOURCE],
        capture_output=True,
        text=True,
        env=env,
    )
    assert inspect.returncode == 0, inspect.stderr
    proposal = inspect.stdout.split("# Proposed mapping", 1)[1].split("\n", 1)[1]
    guesses = [line for line in proposal.splitlines() if line and not line.startswith(("#", "["))]
    assert guesses and all("# check" in line for line in guesses)
    assert 'session = "fit_session"' in proposal and 'flags = "fit_flags"' in proposal
    assert 'total = "fit_srs_total"' in proposal and 'status = "fit_status"' in proposal
    config.write_text(base + inspect.stdout, encoding="utf-8")
    check = subprocess.run(
        [*FIT, "--config", str(config), "check", "--source", SOURCE],
        capture_output=True,
        text=True,
        env=env,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    sync = subprocess.run(
        [*FIT, "--config", str(config), "sync"], capture_output=True, text=True, env=env
    )
    assert sync.returncode == 0, sync.stderr
    rows = rf.scores_state(project)
    assert rows and all(v.get("fit_session") for v in rows.values())
    both = [v for v in rows.values() if "fit_ors_total" in v and "fit_srs_total" in v]
    assert both
    for values in rows.values():  # one session per row: the flags say whose they are
        for part in values.get("fit_flags", "none").split("; "):
            assert part == "none" or part.startswith(("ORS: ", "SRS: "))
    intake = project.data["1001"][(INTAKE, "", None)]
    assert intake["fit_session"] == "1" and intake["fit_status"] == "none"
    session_rows = [k for k in rows if k[1][0] == SESSION]
    assert session_rows and all(k[1][1] == "fit_scores" for k in session_rows)
