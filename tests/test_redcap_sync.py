"""End to end through the sync engine against the loopback fake REDCap (synthetic data only).

A longitudinal project with repeating ORS/SRS instruments and a repeating event syncs, its
scores land on the right event and instance; two re-syncs push nothing and the second makes at
most 3 requests; requests keep the throttle's spacing; and each failure (403, 429, out of
memory, 302, bad CA, malformed token, HTML 404, Analysis/Cleanup) gives its exit code and a
clear message without losing anything already synced.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from fakes import redcap_fake as rf
from fakes.redcap_fake import (
    FOLLOWUP,
    INTAKE,
    SESSION,
    TOKEN,
    RedcapFake,
    accepted,
    clinic_project,
    score_key,
    self_signed_context,
    source_options,
)

from fit_adapters.redcap import bookmark as redcap_bookmark
from fit_adapters.redcap.adapter import RedcapAdapter
from fit_core.adapter import Adapter
from fit_core.config import config_from_mapping
from fit_core.errors import ConfigError
from fit_core.hookspecs import hookimpl
from fit_core.plugins import load_plugins
from fit_core.rules import builtin as builtin_rules
from fit_core.store import Store
from fit_core.sync import SourceResult, SyncEngine

redcap_fake = rf.redcap_fake  # the fixture
SOURCE = "clinic_redcap"


def make_engine(tmp_path: Path, options: Mapping[str, Any], *, token: str = TOKEN) -> SyncEngine:
    """A SyncEngine with one REDCap source and a store under ``tmp_path``."""

    class Shim:
        @staticmethod
        @hookimpl
        def fit_register_adapters(register: Callable[[type[Adapter]], None]) -> None:
            register(RedcapAdapter)

    config = config_from_mapping(
        {
            "store": {"path": str(tmp_path / "fit.sqlite3")},
            "sync": {"timezone": "America/Chicago"},
            "sources": {SOURCE: {"adapter": "redcap", **options}},
        }
    )
    registry = load_plugins(extra=[builtin_rules, Shim], entry_points=False)

    def secret(source: str, key: str) -> str:
        if key == "token":
            return token
        raise ConfigError(f"no secret {key}")

    return SyncEngine(config, registry, Store.open(config.store_path), secret=secret)


def run(engine: SyncEngine) -> SourceResult:
    return engine.run().sources[0]


def gaps(fake: RedcapFake, since: float = 0.0) -> list[float]:
    times = [h.at for h in fake.hits if h.at >= since]
    return [b - a for a, b in itertools.pairwise(times)]


def admin_count(engine: SyncEngine) -> int:
    return sum(1 for _ in engine.store.iter_administrations(SOURCE))


# --- the whole loop ------------------------------------------------------------------------------


def test_longitudinal_repeating_project_syncs_then_two_resyncs(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    fake = redcap_fake(clinic_project(200, seed=3))
    project = fake.project
    expected = accepted(project)
    surveys_before = {k: dict(v) for k, v in project.form_rows("ors").items()}
    engine = make_engine(tmp_path, source_options(fake))
    try:
        first = run(engine)
        assert first.status == "ok", first.error
        assert first.pushed == len(expected) > 1000
        for (record, key, form), items in expected.items():
            row = project.data[record][score_key(key, form)]
            assert row[f"fit_{form}_total"] == f"{round(sum(items) / 10, 1):.1f}"
            assert row[f"fit_{form}_session"].isdigit()
            assert row[f"fit_{form}_flags"]  # "none" or rule ids: never blank
            if form == "ors":
                assert row["fit_ors_status"] == "none"  # no trajectory model configured
        keys = {k for _, k in rf.scores_state(project)}
        assert {k[0] for k in keys} == {INTAKE, SESSION, FOLLOWUP}
        assert any(k[1] == "fit_scores" and k[2] == 1 for k in keys)  # repeating instrument
        assert any(k[0] == FOLLOWUP and k[1] == "" and k[2] for k in keys)  # repeating event
        scored = {(r, k) for (r, k, f) in expected for k in [score_key(k, f)]}
        assert set(rf.scores_state(project)) == scored  # nothing for unverified/unfinished
        assert project.form_rows("ors") == surveys_before  # the surveys are never touched
        intake = project.data["1001"][(INTAKE, "", None)]
        assert intake["fit_ors_session"] == "1"

        second = run(engine)  # sees our imports again (they changed the records' times)
        assert second.status == "ok", second.error
        assert second.pulled > 0 and second.pushed == 0 and second.new == second.changed == 0

        mark = time.monotonic()
        third = run(engine)
        assert third.status == "ok", third.error
        assert third.pushed == 0 and third.pulled == 0
        # metadata, the changed ids, and the logging export of deleted records (the project
        # info was read by the first sync and is kept for a day)
        assert len(fake.api_hits(mark)) <= 3, [(h.content, h.since) for h in fake.hits[-5:]]
        assert min(gaps(fake)) >= 1 / 200
    finally:
        engine.store.close()


def test_default_throttle_spaces_requests_half_a_second(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    fake = redcap_fake(clinic_project(5, seed=5))
    options = source_options(fake)
    del options["throttle"]  # the default: 2 requests a second
    engine = make_engine(tmp_path, options)
    try:
        adapter = RedcapAdapter(rf_context(tmp_path, options))
        adapter.check()  # project info and metadata
        adapter.client().form_event_mapping()
        adapter.close()
    finally:
        engine.store.close()
    assert len(fake.hits) == 3
    assert min(gaps(fake)) >= 0.5


def rf_context(tmp_path: Path, options: Mapping[str, Any]) -> Any:
    from fit_core.testing import make_context

    return make_context(
        SOURCE,
        options,
        tmp_path,
        adapter=RedcapAdapter,
        timezone="America/Chicago",
        secrets={"token": TOKEN},
    )


# --- failures: exit code, message, nothing lost ----------------------------------------------


def test_403_is_a_config_error_with_a_rights_hint(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    fake = redcap_fake(clinic_project(10), token="F" * 32)
    engine = make_engine(tmp_path, source_options(fake))
    try:
        result = run(engine)
    finally:
        engine.store.close()
    assert result.status == "failed" and result.exit_code == 3
    assert "403" in (result.error or "") and "API Export" in (result.error or "")
    assert TOKEN not in (result.error or "")
    assert [h.status for h in fake.hits] == [403]


def test_429_stops_at_once_and_nothing_synced_is_lost(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redcap_bookmark, "SETTLE", 0.0)  # no wait before the re-sync: speed only
    fake = redcap_fake(clinic_project(40, seed=11))
    engine = make_engine(tmp_path, source_options(fake, batch_size=10))
    try:
        assert run(engine).status == "ok"
        stored = admin_count(engine)
        bookmark = engine.store.bookmark(SOURCE)
        # an outside change: a new ORS for record 1002, then the server's limit is near
        fake.project.put(
            "1002",
            {
                "ors_1": 10,
                "ors_2": 20,
                "ors_3": 30,
                "ors_4": 40,
                "ors_complete": 2,
                "ors_timestamp": "2024-05-02 10:00:00",
            },
            event=SESSION,
            repeat_instrument="ors",
            instance=9,
            modified=fake.now_local(),
        )
        fake.hit_limit = len(fake.hits) + 3  # project, metadata and the ids pass; batch 1: 429
        result = run(engine)
        assert result.status == "failed" and result.exit_code == 1
        assert "429" in (result.error or "") and "banned" in (result.error or "")
        assert "administrator" in (result.error or "")
        assert [h.status for h in fake.hits].count(429) == 1 and fake.hits[-1].status == 429
        assert admin_count(engine) == stored and engine.store.bookmark(SOURCE) == bookmark
        # the administrator lifts the ban: the next run picks the change up
        fake.banned, fake.hit_limit = False, 600
        fake._recent.clear()
        after = run(engine)
        assert after.status == "ok", after.error
        assert after.pushed == 1
        assert (
            fake.project.value(
                "1002", "fit_ors_total", event=SESSION, repeat_instrument="fit_scores", instance=9
            )
            == "10.0"
        )
    finally:
        engine.store.close()


def test_out_of_memory_halves_the_batches_and_goes_on(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    fake = redcap_fake(clinic_project(40, seed=2), memory_limit=2000, import_memory_limit=800)
    engine = make_engine(tmp_path, source_options(fake, batch_size=40, push_batch_size=500))
    try:
        result = run(engine)
    finally:
        engine.store.close()
    assert result.status == "ok", result.error
    assert result.pushed == len(accepted(fake.project))
    statuses = [h.status for h in fake.hits]
    assert statuses.count(500) >= 2  # one export, one import
    exports = [
        h
        for h in fake.hits
        if h.content == "record" and h.action == "export" and h.status == 200 and h.since is None
    ]
    assert exports[0].records == 40  # the ids: cheap
    assert {h.records for h in exports[1:]} <= {10, 20}  # 40 failed, then halves
    imports = [h for h in fake.hits if h.action == "import" and h.status == 200]
    assert len(imports) > 1


def test_redirect_is_reported_never_followed(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    fake = redcap_fake(clinic_project(5), redirect_to="https://redcap.example.org/redcap/api/")
    engine = make_engine(tmp_path, source_options(fake))
    try:
        result = run(engine)
    finally:
        engine.store.close()
    assert result.status == "failed" and result.exit_code == 3
    assert "https://redcap.example.org/redcap/api/" in (result.error or "")
    assert "redirect" in (result.error or "")
    assert [(h.method, h.status) for h in fake.hits] == [("POST", 302)]


def test_bad_ca_is_a_config_error_and_a_ca_bundle_fixes_it(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    context, cert = self_signed_context(tmp_path)
    fake = redcap_fake(clinic_project(5), tls=context)
    engine = make_engine(tmp_path, source_options(fake))
    try:
        result = run(engine)
    finally:
        engine.store.close()
    assert result.status == "failed" and result.exit_code == 3
    assert "TLS certificate" in (result.error or "") and "verify" in (result.error or "")
    assert fake.hits == []
    good = make_engine(tmp_path / "b", source_options(fake, verify=str(cert)))
    try:
        assert run(good).status == "ok"
    finally:
        good.store.close()


def test_malformed_token_fails_before_any_request(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    fake = redcap_fake(clinic_project(5))
    engine = make_engine(tmp_path, source_options(fake), token=TOKEN.lower())
    try:
        result = run(engine)
    finally:
        engine.store.close()
    assert result.status == "failed" and result.exit_code == 3
    assert "does not look like a REDCap API token" in (result.error or "")
    assert "lowercase" in (result.error or "") and TOKEN.lower() not in (result.error or "")
    assert fake.hits == []


def test_html_404_page_means_the_url_is_wrong(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    fake = redcap_fake(clinic_project(5))
    engine = make_engine(tmp_path, source_options(fake, url=fake.url.replace("/api/", "/redcap/")))
    try:
        result = run(engine)
    finally:
        engine.store.close()
    assert result.status == "failed" and result.exit_code == 3
    assert "probably not the REDCap API endpoint" in (result.error or "")
    assert "/api/" in (result.error or "")


def test_cleanup_status_refuses_imports_and_nothing_is_lost(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    fake = redcap_fake(clinic_project(20, seed=4))
    fake.project.cleanup_status = True
    engine = make_engine(tmp_path, source_options(fake))
    try:
        result = run(engine)
        assert result.status == "failed" and result.exit_code == 3
        assert "Analysis/Cleanup" in (result.error or "")
        assert engine.store.bookmark(SOURCE) is None
        pending = engine.store.pending_count(SOURCE)
        assert pending == len(accepted(fake.project))
        fake.project.cleanup_status = False
        after = run(engine)
        assert after.status == "ok" and after.pushed == pending
    finally:
        engine.store.close()


def test_scoring_instrument_not_repeating_is_named(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    project = clinic_project(10, seed=8)
    project.repeating_forms.discard((SESSION, "fit_scores"))
    fake = redcap_fake(project)
    engine = make_engine(tmp_path, source_options(fake))
    try:
        result = run(engine)
    finally:
        engine.store.close()
    assert result.status == "failed" and result.exit_code == 3
    assert "is a repeating instrument on event session_arm_1 but fit_scores is not" in (
        result.error or ""
    )


@pytest.mark.parametrize("instance_as_text", [False, True])
def test_classic_project_with_text_instances(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake], instance_as_text: bool
) -> None:
    fake = redcap_fake(
        clinic_project(30, seed=6, longitudinal=False), instance_as_text=instance_as_text
    )
    engine = make_engine(tmp_path, source_options(fake))
    try:
        result = run(engine)
    finally:
        engine.store.close()
    assert result.status == "ok", result.error
    expected = accepted(fake.project)
    assert result.pushed == len(expected)
    for (record, key, form), items in expected.items():
        assert fake.project.data[record][score_key(key, form)][f"fit_{form}_total"] == (
            f"{round(sum(items) / 10, 1):.1f}"
        )
