"""REDCap: records deleted in the project are found through its logging (or, without the
Logging right, a list of every record id), leave the store within one sync, and their scores
leave the scoring instrument; an erased client's scores are blanked (synthetic data only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.redcap_fake import RedcapFake, clinic_project, scores_state, source_options
from redcap_harness import SOURCE, make_engine, run

from fit_adapters.redcap import bookmark as redcap_bookmark
from fit_core.erasure import PrivacyJob, erase_client
from fit_core.errors import ConfigError


@pytest.fixture(autouse=True)
def _no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redcap_bookmark, "SETTLE", 0.0)  # back-to-back syncs: speed only


def stored_records(engine) -> dict[str, int]:
    out: dict[str, int] = {}
    for (key,) in engine.store.conn.execute(
        "SELECT source_key FROM administrations WHERE source = ?", (SOURCE,)
    ):
        record = key.split("|", 1)[0]
        out[record] = out.get(record, 0) + 1
    return out


def scored_records(fake: RedcapFake) -> set[str]:
    return {record for record, _key in scores_state(fake.project)}


def test_a_deleted_record_is_found_in_the_logging_and_goes_in_one_sync(tmp_path: Path) -> None:
    with RedcapFake(clinic_project(8, seed=3)) as fake:
        engine = make_engine(tmp_path, source_options(fake))
        try:
            first = run(engine)
            assert first.status == "ok", first.error
            before = stored_records(engine)
            record = sorted(before)[2]
            assert record in scored_records(fake)
            fake.delete_record(record)

            summary = engine.run()
            src = {s.name: s for s in summary.sources}[SOURCE]
            assert src.status == "ok", src.error
            assert src.deleted == before[record]
            assert record not in stored_records(engine)
            assert (SOURCE, record) in summary.rescored  # the client id is the record id
            logs = [h for h in fake.hits if h.content == "log"]
            assert logs and "beginTime" in logs[-1].keys
            # the scores went with the record; the other records keep theirs
            assert record not in scored_records(fake)
            assert scored_records(fake) == set(before) - {record}

            again = run(engine)
            assert again.deleted == 0 and again.removed_at_target == 0
        finally:
            engine.store.close()


def test_without_the_logging_right_every_record_id_is_listed_on_schedule(
    tmp_path: Path,
) -> None:
    with RedcapFake(clinic_project(8, seed=4), rights={"logging": False}) as fake:
        engine = make_engine(tmp_path, source_options(fake))
        try:
            run(engine)
            record = sorted(stored_records(engine))[0]
            fake.delete_record(record)
            # the logging is refused; a list of every record id is due only once a day
            soon = run(engine)
            assert soon.status == "ok" and soon.deleted == 0
            assert record in stored_records(engine)
            assert engine.store.state_value(SOURCE, "logging_refused")
        finally:
            engine.store.close()
        engine = make_engine(tmp_path, source_options(fake, deletion_check_hours=0))
        try:
            fake.hits.clear()
            now = run(engine)
            assert now.status == "ok" and now.deleted > 0
            assert record not in stored_records(engine)
            listing = [h for h in fake.hits if h.content == "record" and h.since is None]
            assert listing, "every record id was listed"
        finally:
            engine.store.close()


def test_a_renamed_record_leaves_its_old_name_at_the_next_id_check_with_the_logging_right(
    tmp_path: Path,
) -> None:
    """REDCap logs a rename as an update of the new name, never as a deletion: the logging
    alone would keep the old name's sessions forever (one client counted twice, alerts on a
    record that no longer exists). The list of every record id finds it."""
    with RedcapFake(clinic_project(8, seed=5)) as fake:
        engine = make_engine(tmp_path, source_options(fake))
        try:
            run(engine)
            before = stored_records(engine)
            old = sorted(before)[1]
            fake.rename_record(old, "R-900")
            # within the day: the new name is read, the logging lists no deletion
            soon = run(engine)
            assert soon.status == "ok", soon.error
            assert "R-900" in stored_records(engine)
            assert old in stored_records(engine)
        finally:
            engine.store.close()
        engine = make_engine(tmp_path, source_options(fake, deletion_check_hours=0))
        try:
            fake.hits.clear()
            checked = run(engine)
            assert checked.status == "ok", checked.error
            assert checked.deleted == before[old]
            after = stored_records(engine)
            assert old not in after and after["R-900"] == before[old]
            assert [h for h in fake.hits if h.content == "log"], "the logging was read too"
            assert [h for h in fake.hits if h.content == "record" and h.since is None]
            assert scored_records(fake) == (set(before) - {old}) | {"R-900"}
        finally:
            engine.store.close()


def test_an_erased_client_leaves_the_scoring_instrument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with RedcapFake(clinic_project(6, seed=5)) as fake:
        engine = make_engine(tmp_path, source_options(fake))
        try:
            run(engine)
            record = sorted(stored_records(engine))[1]
            assert record in scored_records(fake)
            secret = engine.secret

            def with_key(source: str, key: str) -> str:
                if (source, key) == ("privacy", "hash_key"):
                    return "redcap-erase-test-key"
                return secret(source, key)

            job = PrivacyJob(engine.store, engine.config, engine.registry, with_key, SOURCE, record)
            report = erase_client(job)
            assert not report.incomplete, report.places
            lines = {p.place: p.lines for p in report.places}[f"target {SOURCE}"]
            assert any("removed from fit_scores" in x for x in lines), lines
            assert record not in scored_records(fake)  # blanked, the survey data untouched
            assert fake.project.data[record], "the record itself is the clinic's to delete"
            with pytest.raises(ConfigError, match="privacy key"):
                erase_client(
                    PrivacyJob(engine.store, engine.config, engine.registry, secret, SOURCE, "x")
                )
        finally:
            engine.store.close()
