"""Large projects on a REDCap server that runs out of memory: every export is split until it fits.

The fake counts its memory the way the issue describes a real server failing: in rows as well as
cells, so even the query of the record ids alone (one row per record, event and repeat
instance) runs out. Synthetic data only.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fakes import redcap_fake as rf
from fakes.redcap_fake import FakeProject, RedcapFake, accepted, clinic_project, source_options
from redcap_harness import make_engine, mixed_rows, run

from fit_adapters.redcap.exports import Exporter, IdHints, Slice

redcap_fake = rf.redcap_fake  # the fixture


def id_queries(fake: RedcapFake, since: int = 0) -> list[rf.Hit]:
    """Exports of the record id alone (the changed-records query and its parts)."""
    return [
        h
        for h in fake.hits[since:]
        if h.content == "record"
        and h.action == "export"
        and h.keys.count("fields[0]") == 1
        and "fields[1]" not in h.keys
        and "records[0]" not in h.keys
    ]


def test_ten_thousand_records_with_a_5000_row_limit_sync_fully_and_idle_in_3_requests(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    project = clinic_project(10_000, seed=21, max_sessions=2, modified=None)
    rows = sum(len(r) for r in project.data.values())
    assert rows > 2 * 5000  # the id query alone is far too big
    expected = accepted(project)
    fake = redcap_fake(project, row_limit=5000, hit_limit=100_000)
    engine = make_engine(tmp_path, source_options(fake))
    try:
        first = run(engine)
        assert first.status == "ok", first.error
        assert first.pushed == len(expected) and first.quarantined == 0
        failed = [h for h in id_queries(fake) if h.status == 500]
        assert failed and failed[0].since is None  # the plain query ran out of memory ...
        assert all(h.rows is None or h.rows <= 5000 for h in fake.hits)  # ... and its parts fit
        assert mixed_rows(project) == []  # every score is in the row of its session
        assert len(rf.scores_state(project)) > 10_000

        second = run(engine)  # reads our own imports again, split the same way
        assert second.status == "ok", second.error
        assert second.pushed == 0 and second.new == second.changed == 0

        mark = time.monotonic()
        third = run(engine)
        assert third.status == "ok", third.error
        assert third.pulled == 0 and third.pushed == 0
        # project, metadata, the changed ids, and the logging export of deleted records
        assert len(fake.api_hits(mark)) <= 3, [(h.content, h.since) for h in fake.api_hits(mark)]
    finally:
        engine.store.close()


def test_changes_all_in_one_second_are_split_by_event_then_by_record_id(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    # every record changed in the same second (a bulk import): time cannot split it; the
    # intake event alone is too big too, so the ids the small follow-up event lists show that
    # the record ids are whole numbers, and the rest is split by id range
    project = clinic_project(1500, seed=22, max_sessions=2)
    assert len(set(project.modified.values())) == 1
    fake = redcap_fake(project, row_limit=1200, hit_limit=100_000)
    engine = make_engine(tmp_path, source_options(fake))
    try:
        result = run(engine)
        assert result.status == "ok", result.error
        assert result.pushed == len(accepted(project))
        logic = [h for h in id_queries(fake) if h.logic and h.status == 200]
        assert logic and all("[record_id] " in (h.logic or "") for h in logic)
        assert {h.events for h in id_queries(fake) if h.status == 200 and h.events}
    finally:
        engine.store.close()


def test_ids_that_are_not_numbers_in_a_too_dense_window_stop_with_what_to_do(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    project = clinic_project(300, seed=23, max_sessions=3)
    for record in list(project.data):  # text ids, all changed in one second
        rows = project.data.pop(record)
        for row in rows.values():
            row["record_id"] = f"C-{record}"
        project.data[f"C-{record}"] = rows
        project.modified[f"C-{record}"] = project.modified.pop(record)
    fake = redcap_fake(project, row_limit=200)
    engine = make_engine(tmp_path, source_options(fake))
    try:
        result = run(engine)
    finally:
        engine.store.close()
    assert result.status == "failed" and result.exit_code == 1
    assert "runs out of server memory listing the records changed" in (result.error or "")
    assert "memory_limit" in (result.error or "") and "whole numbers" in (result.error or "")
    # halving a year and a half of time down to that second takes about 25 steps, no more
    assert fake.hits[-1].status == 500 and len(fake.hits) < 100


def test_a_record_too_big_alone_is_read_one_event_at_a_time(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    project = clinic_project(6, seed=24, max_sessions=5)
    fake = redcap_fake(project, memory_limit=200)  # cells: a busy record is bigger (~250)
    engine = make_engine(tmp_path, source_options(fake, batch_size=6))
    try:
        result = run(engine)
    finally:
        engine.store.close()
    assert result.status == "ok", result.error
    assert result.pushed == len(accepted(project))
    by_event = [h for h in fake.hits if h.events and "records[0]" in h.keys and h.status == 200]
    assert by_event and all(len(h.events) == 1 for h in by_event)


def test_a_data_dictionary_too_big_is_read_instrument_by_instrument(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    project = clinic_project(4, seed=25, max_sessions=1)
    fake = redcap_fake(project, row_limit=14)  # the dictionary has 22 fields
    engine = make_engine(tmp_path, source_options(fake, batch_size=1))
    try:
        result = run(engine)
    finally:
        engine.store.close()
    assert result.status == "ok", result.error
    meta = [h for h in fake.hits if h.content == "metadata"]
    assert meta[0].status == 500 and all(h.status == 200 for h in meta[1:])
    assert any("forms[0]" in h.keys for h in meta[1:])
    assert [h.content for h in fake.hits if h.content == "instrument"] == ["instrument"]


def test_a_server_that_ignores_filter_logic_is_not_trusted(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rf, "compile_logic", lambda text: ((lambda row: True), set()))
    project = clinic_project(300, seed=26, max_sessions=3)
    fake = redcap_fake(project, row_limit=400)
    engine = make_engine(tmp_path, source_options(fake))
    try:
        result = run(engine)
    finally:
        engine.store.close()
    assert result.status == "failed" and result.exit_code == 1
    assert "ignores the filterLogic" in (result.error or "")
    assert len(fake.hits) < 100


# --- the splitting, as pure steps ------------------------------------------------------------


class _NoClient:
    pass


def exporter(hints: IdHints | None = None, events: tuple[str, ...] = ("a", "b")) -> Exporter:
    e = Exporter(
        _NoClient(),  # type: ignore[arg-type]
        source="s",
        id_field="record_id",
        batch_size=10,
        events=lambda: list(events),
        now=lambda: dt.datetime(2025, 1, 15, 12, 0, 0),
        created=dt.datetime(2024, 1, 2, 9, 0, 0),
        hints=hints,
    )
    e._logic_ok = True  # no server here to ask
    return e


def test_slices_cover_their_parent_with_overlapping_edges() -> None:
    e = exporter()
    top = e.split(Slice())
    assert [(s.begin, s.end) for s in top] == [
        (None, dt.datetime(2024, 1, 1, 9, 0, 1)),
        (dt.datetime(2024, 1, 1, 9, 0, 0), dt.datetime(2025, 1, 15, 12, 0, 1)),
        (dt.datetime(2025, 1, 15, 12, 0, 0), None),
    ]
    a, b = e.split(top[1])
    assert a.begin == top[1].begin and b.end == top[1].end and a.end and b.begin
    assert a.end > b.begin  # the edge second is in both
    tiny = Slice(dt.datetime(2025, 1, 1), dt.datetime(2025, 1, 1, 0, 0, 2))
    assert [s.event for s in e.split(tiny)] == ["a", "b"]  # too short for time: by event
    assert e.split(Slice(tiny.begin, tiny.end, "a")) == []  # nothing known of the ids


def test_id_ranges_only_once_ids_are_whole_numbers() -> None:
    hints = IdHints()
    hints.see(["1001", "1500", "2000"])
    e = exporter(hints)
    parts = e.split(Slice(event="a"))
    assert [p.ids for p in parts] == [(None, 1001), (1001, 1501), (1501, 2001), (2001, None)]
    assert parts[1].logic("record_id") == "[record_id] >= 1001 and [record_id] < 1501"
    assert e.split(Slice(event="a", ids=(2001, None)))[0].ids == (2001, 5002)
    hints.see(["C-7"])
    assert not hints.numeric and e.split(Slice(event="a")) == []
    zero = IdHints()
    zero.see(["007"])  # a leading zero: REDCap would compare it as text
    assert zero.numeric is False


def test_a_project_without_events_or_creation_time_cannot_be_split_without_ids() -> None:
    e = Exporter(
        _NoClient(),  # type: ignore[arg-type]
        source="s",
        id_field="record_id",
        batch_size=10,
        events=lambda: [],
        now=lambda: dt.datetime(2025, 1, 15, 12, 0, 0),
    )
    assert e.split(Slice()) == []


def project_rows(project: FakeProject) -> int:
    return sum(len(r) for r in project.data.values())
