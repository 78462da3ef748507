"""Client codes typed differently are one client: the core's normalisation, for every adapter."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fit_core.config import config_from_mapping
from fit_core.errors import ConfigError, ExitCode
from fit_core.identity import SpellingTracker, normalise_client_id
from fit_core.measures import BUILTIN_MEASURES
from fit_core.models import Appointment, Record
from fit_core.plugins import load_plugins
from fit_core.state import MemoryState, StoreState
from fit_core.store import SCHEMA_VERSION, Store
from fit_core.sync import SyncEngine
from fit_core.validation import Validator

sys.path.insert(0, str(Path(__file__).parent))
import memory_adapter
from memory_adapter import MemoryAdapter, MemorySource

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
MEASURES = {m.key: m for m in BUILTIN_MEASURES}


# --- the normalisation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "fold", "keep"),
    [
        ("G0001", "G0001", "G0001"),
        ("g0001", "G0001", "g0001"),
        ("  G0001\t", "G0001", "G0001"),
        ("ab  12", "AB 12", "ab 12"),
        ("\u00a0g0001\u00a0", "G0001", "g0001"),  # non-breaking spaces
        ("\uff27\uff10\uff10\uff11", "G001", "G001"),  # full-width letters and digits
        ("stra\u00dfe-1", "STRASSE-1", "stra\u00dfe-1"),  # case folding, not just upper()
        ("1001", "1001", "1001"),
    ],
)
def test_codes_are_trimmed_and_case_folded_unless_kept(typed: str, fold: str, keep: str) -> None:
    assert normalise_client_id(typed) == fold
    assert normalise_client_id(typed, keep_case=True) == keep


@given(st.text(max_size=20))
def test_normalising_twice_changes_nothing(text: str) -> None:
    once = normalise_client_id(text)
    assert normalise_client_id(once) == once
    kept = normalise_client_id(text, keep_case=True)
    assert normalise_client_id(kept, keep_case=True) == kept


@given(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=12))
def test_codes_differing_only_in_case_are_one_client(code: str) -> None:
    variants = {code, code.lower(), code.upper(), code.swapcase(), f"  {code} "}
    assert len({normalise_client_id(v) for v in variants}) == 1


def test_the_validator_normalises_every_adapters_records() -> None:
    def record(code: str) -> Record:
        data = {"client_id": code, "administered_at": "2026-03-02", "measure": "ORS"}
        return Record("k", {**data, "total": "20"})

    fold = Validator(MEASURES, "UTC", source="s")
    keep = Validator(MEASURES, "UTC", source="s", keep_case=True)
    assert fold.validate(record(" g0001 ")).client_id == "G0001"  # type: ignore[union-attr]
    assert keep.validate(record(" g0001 ")).client_id == "g0001"  # type: ignore[union-attr]
    assert fold.validate(record("  ")) == {"client_id": "missing"}


def test_the_tracker_reports_a_client_once_when_a_new_spelling_arrives() -> None:
    known: dict[tuple[str, str], set[str]] = {("ns", "G1"): {"G1"}}

    def lookup(triples: Any) -> dict[tuple[str, str], tuple[set[str], set[str]]]:
        out = {}
        for ns, cid, typed in triples:
            have = known.setdefault((ns, cid), set())
            added = {typed} - have
            have.add(typed)
            prev = out.get((ns, cid), (set(), set()))[1]
            out[(ns, cid)] = (set(have), prev | added)
        return out

    tracker = SpellingTracker(lookup)
    assert tracker.note([("ns", "G1", "G1")]) == []  # the spelling stored before: no merge
    assert tracker.note([("ns", "G1", "g1"), ("ns", "G2", "G2")]) == [("ns", "G1")]
    assert tracker.note([("ns", "G1", "g1")]) == []  # reported once
    assert tracker.merged == {("ns", "G1"): {"G1", "g1"}}


# --- config -----------------------------------------------------------------------------------


def test_client_id_case_is_a_checked_source_key_shared_by_a_namespace() -> None:
    def config(**sources: dict[str, Any]) -> Any:
        return config_from_mapping({"sources": sources})

    assert config(a={"adapter": "csv"}).sources["a"].client_id_case == "fold"
    assert config(a={"adapter": "csv", "client_id_case": "keep"}).sources["a"].client_id_case == (
        "keep"
    )
    with pytest.raises(ConfigError, match="client_id_case must be one of 'fold', 'keep'"):
        config(a={"adapter": "csv", "client_id_case": "upper"})
    with pytest.raises(ConfigError, match="share the namespace 'clinic'"):
        config(
            a={"adapter": "csv", "namespace": "clinic"},
            b={"adapter": "csv", "namespace": "clinic", "client_id_case": "keep"},
        )


# --- the engine -------------------------------------------------------------------------------


def ors(client: str, day: int, total: float) -> dict[str, str]:
    return {
        "client_id": client,
        "administered_at": f"2026-03-{day:02d}",
        "measure": "ORS",
        "total": str(total),
    }


@pytest.fixture
def remote() -> Iterator[MemorySource]:
    src = MemorySource()
    memory_adapter.SOURCES["ids"] = src
    yield src
    del memory_adapter.SOURCES["ids"]


def engine(tmp_path: Path, **source: Any) -> tuple[SyncEngine, Store]:
    raw = {
        "store": {"path": str(tmp_path / "fit.sqlite3")},
        "sync": {"timezone": "UTC"},
        "sources": {"mem": {"adapter": "memory", "remote": "ids", **source}},
    }
    config = config_from_mapping(raw)
    store = Store.open(config.store_path)
    eng = SyncEngine(
        config,
        load_plugins(extra=[memory_adapter]),
        store,
        clock=lambda: T0 + dt.timedelta(days=40),
    )
    return eng, store


def test_case_variants_of_a_code_are_one_client_with_one_intake(
    tmp_path: Path, remote: MemorySource
) -> None:
    remote.put("a1", ors("G0001", 2, 20.0), T0)
    remote.put("a2", ors("g0001", 9, 22.0), T0)
    remote.put("a3", ors(" G0001 ", 16, 24.0), T0)
    remote.put("b1", ors("G0002", 2, 30.0), T0)
    eng, store = engine(tmp_path)
    try:
        summary = eng.run()
        src = summary.sources[0]
        assert summary.exit_code == ExitCode.OK and src.merged_clients == 1
        assert src.merged_client_ids == {"G0001": ["G0001", "g0001"]}
        assert [remote.target[k]["session"] for k in ("a1", "a2", "a3")] == [1, 2, 3]
        assert {remote.target[k]["client_id"] for k in ("a1", "a2", "a3")} == {"G0001"}
        assert remote.target["a3"]["change_from_intake"] == 4.0  # one intake, not three

        # months later a new spelling of a known client is a merge again; known ones are not
        remote.put("a4", ors("g0001", 23, 25.0), T0 + dt.timedelta(days=1))
        remote.put("b2", ors("g0002", 9, 31.0), T0 + dt.timedelta(days=1))
        again = eng.run().sources[0]
        assert again.merged_client_ids == {"G0002": ["G0002", "g0002"]}
        assert remote.target["b2"]["session"] == 2
        runs = store.runs(1)[0]["counts"]["sources"]["mem"]
        assert runs["merged_clients"] == 1
    finally:
        store.close()


def test_a_source_may_keep_case(tmp_path: Path, remote: MemorySource) -> None:
    remote.put("a1", ors("ab1", 2, 20.0), T0)
    remote.put("a2", ors("AB1", 9, 22.0), T0)
    eng, store = engine(tmp_path, client_id_case="keep")
    try:
        src = eng.run().sources[0]
    finally:
        store.close()
    assert src.merged_clients == 0
    assert [remote.target[k]["session"] for k in ("a1", "a2")] == [1, 1]  # two clients


def test_practice_data_is_normalised_like_the_namespace(
    tmp_path: Path, remote: MemorySource
) -> None:
    remote.put("a1", ors("C001", 2, 20.0), T0)
    remote.context.append(
        Appointment(
            source="mem",
            source_key="ap1",
            namespace="mem",
            client_id=" c001",
            starts_at=T0,
            local_date=T0.date(),
            status="attended",
        )
    )
    eng, store = engine(tmp_path)
    try:
        eng.run()
        contexts = store.client_contexts([("mem", "C001")])
    finally:
        store.close()
    assert [a.client_id for a in contexts[("mem", "C001")].appointments] == ["C001"]


def test_problems_an_adapter_reports_make_the_source_partial(
    tmp_path: Path, remote: MemorySource, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote.put("a1", ors("C1", 2, 20.0), T0)
    monkeypatch.setattr(MemoryAdapter, "problems", lambda self: ["part B was left out: fix X"])
    eng, store = engine(tmp_path)
    try:
        summary = eng.run()
    finally:
        store.close()
    src = summary.sources[0]
    assert summary.exit_code == ExitCode.PARTIAL and src.status == "partial"
    assert src.problems == ["part B was left out: fix X"] and src.pushed == 1


# --- adapter state ----------------------------------------------------------------------------


def test_adapter_state_lives_in_the_store_and_dry_runs_keep_it_in_memory(
    tmp_path: Path,
) -> None:
    store = Store.open(tmp_path / "fit.sqlite3")
    try:
        assert int(store.conn.execute("SELECT value FROM meta").fetchone()[0]) == SCHEMA_VERSION
        state = StoreState(store, "src")
        assert state.get("k") is None
        state.set("k", "v1")
        dry = StoreState(store, "src", read_only=True)
        dry.set("k", "v2")
        assert (dry.get("k"), StoreState(store, "src").get("k")) == ("v2", "v1")
        assert StoreState(store, "other").get("k") is None
    finally:
        store.close()
    reopened = Store.open(tmp_path / "fit.sqlite3")
    try:
        assert StoreState(reopened, "src").get("k") == "v1"
    finally:
        reopened.close()
    memory = MemoryState()
    memory.set("k", "v")
    assert memory.get("k") == "v"


def test_reports_and_alerts_find_a_client_typed_in_another_case(
    tmp_path: Path, remote: MemorySource
) -> None:
    from click.testing import CliRunner

    from fit_cli.main import cli
    from fit_core.reports.source import find_client

    remote.put("a1", ors("C0001", 2, 20.0), T0)
    remote.put("a2", ors("C0001", 9, 14.5), T0)  # reliable deterioration: an open alert
    eng, store = engine(tmp_path)
    try:
        eng.run()
        namespace, admins = find_client(store, " c0001", ["mem"])
        assert (namespace, {a.client_id for a in admins}) == ("mem", {"C0001"})
    finally:
        store.close()
    cfg = tmp_path / "fit.toml"
    cfg.write_text(
        f'[store]\npath = "{tmp_path / "fit.sqlite3"}"\n'
        '[sources.mem]\nadapter = "memory"\nremote = "ids"\n',
        encoding="utf-8",
    )
    res = CliRunner().invoke(cli, ["--config", str(cfg), "alerts", "--client", "c0001", "--json"])
    assert res.exit_code == 0, res.output
    found = json.loads(res.stdout)
    assert "ors.reliable_deterioration" in {r["rule_id"] for r in found}
    assert {r["client_id"] for r in found} == {"C0001"}


def test_a_full_pull_keeps_client_details_whose_code_it_normalised(
    tmp_path: Path, remote: MemorySource, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fit_core.models import ClientInfo

    monkeypatch.setattr(MemoryAdapter, "pull_mode", "full")
    remote.put("a1", ors("C001", 2, 20.0), T0)
    remote.context.append(
        ClientInfo(
            source="mem", namespace="mem", client_id="c001", date_of_birth=dt.date(1990, 1, 1)
        )
    )
    eng, store = engine(tmp_path)
    try:
        eng.run()
        eng.run()  # the second full pull yields the same details: nothing may be pruned
        info = store.client_contexts([("mem", "C001")])[("mem", "C001")].info
    finally:
        store.close()
    assert info is not None and info.date_of_birth == dt.date(1990, 1, 1)
