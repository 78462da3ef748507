"""Data Access Groups: a token limited to a group sees only that group's records and its writes
stay inside the group; a multi-site project is one source per group token, or one source with
site_from_dag. Synthetic data only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fakes import redcap_fake as rf
from fakes.redcap_fake import TOKEN, RedcapFake, accepted, clinic_project, source_options
from redcap_harness import SOURCE, make_engine, run

from fit_adapters.redcap import bookmark as redcap_bookmark

redcap_fake = rf.redcap_fake  # the fixture
NORTH, SOUTH = "A" * 32, "B" * 32


@pytest.fixture(autouse=True)
def _quick_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redcap_bookmark, "SETTLE", 0.0)  # back-to-back syncs: speed only


def grouped(n: int, seed: int) -> rf.FakeProject:
    project = clinic_project(n, seed=seed)
    project.dags = {"north": "North clinic", "south": "South clinic"}
    project.record_dag = {r: "north" if int(r) % 2 else "south" for r in project.data}
    return project


def scored_records(project: rf.FakeProject) -> set[str]:
    return {record for record, _ in rf.scores_state(project)}


def test_one_source_per_group_token_sees_and_writes_only_its_group(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    project = grouped(30, seed=51)
    fake = redcap_fake(project, dag_tokens={NORTH: "north", SOUTH: "south"})
    north_only = {r for r, g in project.record_dag.items() if g == "north"}
    engine = make_engine(
        tmp_path,
        {},
        sources={
            "north": (source_options(fake, site="north", namespace="clinic"), NORTH),
            "south": (source_options(fake, site="south", namespace="clinic"), SOUTH),
        },
    )
    try:
        north = run(engine, "north")
        assert north.status == "ok", north.error
        admins = list(engine.store.iter_administrations("north"))
        assert {a.client_id for a in admins} <= north_only
        assert {a.site for a in admins} == {"north"}
        south = list(engine.store.iter_administrations("south"))
        assert {a.site for a in south} == {"south"} and not {
            a.client_id for a in south
        } & north_only
        assert scored_records(project) == {r for r, _, _ in accepted(project)}
    finally:
        engine.store.close()


def test_a_record_moved_to_another_group_is_not_written_by_the_old_groups_source(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    project = grouped(20, seed=52)
    fake = redcap_fake(project, dag_tokens={NORTH: "north"})
    engine = make_engine(tmp_path, source_options(fake, site="north"), token=NORTH)
    try:
        assert run(engine).status == "ok"
        project.record_dag["1003"] = "south"  # moved to the other site
        for rows in project.data.values():
            for row in rows.values():
                row.pop("fit_ors_total", None)  # something to write again
        engine.store.mark_all_pending(SOURCE)
        imports_before = len([h for h in fake.hits if h.action == "import"])
        result = run(engine)
        assert result.status == "partial" and result.push_rejected > 0
        assert all(h.status == 200 for h in fake.hits if h.action == "import")
        assert len([h for h in fake.hits if h.action == "import"]) > imports_before
        rows = rf.scores_state(project)
        assert not any("fit_ors_total" in v for (r, _), v in rows.items() if r == "1003")
        assert any("fit_ors_total" in v for (r, _), v in rows.items() if r == "1001")
    finally:
        engine.store.close()


def test_site_from_dag_with_a_full_token(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    project = grouped(16, seed=53)
    fake = redcap_fake(project)
    engine = make_engine(tmp_path, source_options(fake, site_from_dag=True))
    try:
        result = run(engine)
        assert result.status == "ok", result.error
        sites = {a.client_id: a.site for a in engine.store.iter_administrations(SOURCE)}
    finally:
        engine.store.close()
    assert sites and all(sites[r] == project.record_dag[r] for r in sites)
    exports = [h for h in fake.hits if "exportDataAccessGroups" in h.keys and h.records]
    assert exports


def test_site_from_dag_with_a_group_token_says_to_set_site(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    fake = redcap_fake(grouped(8, seed=54), dag_tokens={NORTH: "north"})
    engine = make_engine(tmp_path, source_options(fake, site_from_dag=True), token=NORTH)
    try:
        result = run(engine)
    finally:
        engine.store.close()
    assert result.status == "failed" and result.exit_code == 3
    assert "Data Access Group" in (result.error or "") and 'site = "' in (result.error or "")


def test_the_full_token_still_sees_every_group(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    project = grouped(12, seed=55)
    fake = redcap_fake(project, dag_tokens={NORTH: "north"})
    engine = make_engine(tmp_path, source_options(fake), token=TOKEN)
    try:
        assert run(engine).status == "ok"
    finally:
        engine.store.close()
    assert scored_records(project) == {r for r, _, _ in accepted(project)}
