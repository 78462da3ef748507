"""google_forms: responses deleted at Google (no longer listed) and measures cleared in an edit
leave the store and the Scores tab; the full listing runs every ``deletion_check_hours``."""

from __future__ import annotations

import datetime as dt
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fit_adapters.google_forms.adapter import GoogleFormsAdapter
from fit_adapters.google_forms.client import Timing
from fit_core.adapter import Adapter
from fit_core.config import config_from_mapping
from fit_core.errors import ConfigError
from fit_core.hookspecs import hookimpl
from fit_core.plugins import load_plugins
from fit_core.rules import builtin as builtin_rules
from fit_core.store import Store
from fit_core.sync import RunSummary, SyncEngine

sys.path.insert(0, str(Path(__file__).parent))
from fakes.google_fake import (
    FakeClock,
    FormLayout,
    GoogleFake,
    measure_form,
    populate,
    service_account_json,
)

EMAIL = "fit-sync@clinic-test.iam.gserviceaccount.com"
BOOK = "scoresBook0001"
NOW = dt.datetime(2025, 2, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def fake() -> Iterator[GoogleFake]:
    with GoogleFake.running() as f:
        f.add_spreadsheet(BOOK)
        yield f


class Sync:
    """An engine over one google_forms source whose clock the test moves."""

    def __init__(self, tmp_path: Path, fake: GoogleFake, layout: FormLayout, **options: Any):
        clock = FakeClock()

        class Fast(GoogleFormsAdapter):
            timing = Timing(clock=clock.clock, sleep=clock.sleep, rng=random.Random(3))

        class Shim:
            @staticmethod
            @hookimpl
            def fit_register_adapters(register: Callable[[type[Adapter]], None]) -> None:
                register(Fast)

        form = {
            "form_id": layout.form_id,
            "client_id": "Client code",
            "clinician": "Clinician",
            "measures": {
                m: dict(zip(("q1", "q2", "q3", "q4"), ids, strict=True))
                for m, ids in layout.items.items()
            },
        }
        self.config = config_from_mapping(
            {
                "store": {"path": str(tmp_path / "fit.sqlite3")},
                "sync": {"timezone": "UTC"},
                "sources": {
                    "gforms": {
                        "adapter": "google_forms",
                        **fake.endpoints(),
                        "spreadsheet_id": BOOK,
                        "forms": [form],
                        **options,
                    }
                },
            }
        )
        self.registry = load_plugins(extra=[builtin_rules, Shim], entry_points=False)
        self.now = NOW

    def secret(self, source: str, key: str) -> str:
        if key == "service_account":
            return service_account_json(EMAIL)
        raise ConfigError(f"no {key}")

    def run(self, hours: float = 1) -> RunSummary:
        self.now += dt.timedelta(hours=hours)
        store = Store.open(self.config.store_path)
        try:
            return SyncEngine(
                self.config, self.registry, store, secret=self.secret, clock=lambda: self.now
            ).run()
        finally:
            store.close()

    def stored(self) -> dict[str, tuple[str, str]]:
        store = Store.open(self.config.store_path)
        try:
            return {
                k: (ns, cid)
                for k, ns, cid in store.conn.execute(
                    "SELECT source_key, namespace, client_id FROM administrations"
                )
            }
        finally:
            store.close()


def sheet_keys(fake: GoogleFake) -> list[str]:
    return [str(r["response_id"]) for r in fake.table(BOOK, "Scores")]


def test_a_deleted_response_goes_at_the_next_deletion_check(
    tmp_path: Path, fake: GoogleFake
) -> None:
    doc, layout = measure_form("orsForm00001", ["ORS"])
    fake.add_form(layout.form_id, doc)
    populate(fake, layout, 30, seed=5, clients=5)
    sync = Sync(tmp_path, fake, layout)
    first = sync.run().sources[0]
    assert first.status == "ok" and first.pushed == 30
    form = fake.forms[layout.form_id]
    rids = sorted(form.responses, key=lambda r: form.responses[r]["lastSubmittedTime"])
    gone = rids[len(rids) // 2]  # from the middle: not at the bookmark's edge
    client = sync.stored()[gone]
    fake.delete_response(layout.form_id, gone)

    # an hour later: the incremental listing cannot see a deletion, and the check is not due
    fake.calls.clear()
    soon = sync.run(hours=1)
    assert soon.sources[0].deleted == 0 and gone in sync.stored()
    assert all("filter" in c.params for c in fake.ops("forms.responses.list"))

    # a day after the first full listing: every response is listed, the deleted one is gone
    fake.calls.clear()
    later = sync.run(hours=23)
    src = later.sources[0]
    assert src.status == "ok" and src.deleted == 1 and src.removed_at_target == 1
    assert [c for c in fake.ops("forms.responses.list") if "filter" not in c.params]
    assert gone not in sync.stored() and client in later.rescored
    keys = sheet_keys(fake)
    assert gone not in keys and sorted(keys) == sorted(set(rids) - {gone})
    assert len(keys) == len(set(keys)) == 29

    again = sync.run(hours=1).sources[0]
    assert again.deleted == 0 and again.pushed == 0


def test_deletion_check_hours_zero_checks_every_sync(tmp_path: Path, fake: GoogleFake) -> None:
    doc, layout = measure_form("orsForm00001", ["ORS"])
    fake.add_form(layout.form_id, doc)
    populate(fake, layout, 10, seed=6, clients=3)
    sync = Sync(tmp_path, fake, layout, deletion_check_hours=0)
    sync.run()
    rid = next(iter(fake.forms[layout.form_id].responses))
    fake.delete_response(layout.form_id, rid)
    result = sync.run(hours=0.1).sources[0]
    assert result.deleted == 1 and rid not in sheet_keys(fake)


def test_a_measure_cleared_in_an_edit_leaves_its_row(tmp_path: Path, fake: GoogleFake) -> None:
    doc, layout = measure_form("bothForm0001", ["ORS", "SRS"])
    fake.add_form(layout.form_id, doc)
    populate(fake, layout, 8, seed=7, clients=2)
    sync = Sync(tmp_path, fake, layout)
    sync.run()
    rid = next(iter(fake.forms[layout.form_id].responses))
    assert f"{rid}:SRS" in sheet_keys(fake)
    fake.edit_response(
        layout.form_id,
        rid,
        dict.fromkeys(layout.items["SRS"]),
        submitted=sync.now + dt.timedelta(minutes=30),
    )
    result = sync.run(hours=1).sources[0]
    assert result.deleted == 1
    keys = sheet_keys(fake)
    assert f"{rid}:SRS" not in keys and f"{rid}:ORS" in keys
    assert f"{rid}:SRS" not in sync.stored()


def test_no_deletion_check_while_a_form_is_stopped(tmp_path: Path, fake: GoogleFake) -> None:
    doc, layout = measure_form("orsForm00001", ["ORS"])
    fake.add_form(layout.form_id, doc)
    populate(fake, layout, 10, seed=8, clients=3)
    sync = Sync(tmp_path, fake, layout, deletion_check_hours=0)
    sync.run()
    fake.delete_question(layout.form_id, layout.items["ORS"][2])
    result = sync.run().sources[0]
    assert result.status == "partial" and result.deleted == 0
    assert len(sync.stored()) == 10 and len(sheet_keys(fake)) == 10


def test_a_lost_answer_to_a_row_deletion_never_deletes_other_rows(
    tmp_path: Path, fake: GoogleFake
) -> None:
    doc, layout = measure_form("orsForm00001", ["ORS"])
    fake.add_form(layout.form_id, doc)
    populate(fake, layout, 12, seed=9, clients=3)
    sync = Sync(tmp_path, fake, layout, deletion_check_hours=0)
    sync.run()
    form = fake.forms[layout.form_id]
    doomed = sorted(form.responses)[:3]
    for rid in doomed:
        fake.delete_response(layout.form_id, rid)
    # the deletion is carried out, but its answer is lost: retrying blindly would delete 3 more
    fake.inject("spreadsheets.batchUpdate", 503, apply=True)
    result = sync.run().sources[0]
    assert result.deleted == 3 and result.removed_at_target == 3
    assert sorted(sheet_keys(fake)) == sorted(set(form.responses))
    assert len(sheet_keys(fake)) == 9
