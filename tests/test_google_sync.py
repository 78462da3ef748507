"""End to end: `fit sync`'s engine with the google_forms adapter against the loopback fake."""

from __future__ import annotations

import datetime as dt
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fit_adapters.google_forms.adapter import GoogleFormsAdapter
from fit_adapters.google_forms.client import Timing
from fit_adapters.google_forms.sheet import COLUMNS
from fit_core.adapter import Adapter
from fit_core.config import config_from_mapping
from fit_core.errors import ConfigError, ExitCode
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

BOOK = "scoresBook0001"
EMAIL = "fit-sync@clinic-test.iam.gserviceaccount.com"
T0 = dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def fake() -> Iterator[GoogleFake]:
    with GoogleFake.running() as f:
        f.add_spreadsheet(BOOK)
        yield f


def add_form(
    fake: GoogleFake, form_id: str, measures: list[str], n: int = 0, **kw: Any
) -> FormLayout:
    doc, layout = measure_form(form_id, measures)
    fake.add_form(form_id, doc)
    if n:
        populate(fake, layout, n, **kw)
    return layout


def form_options(layout: FormLayout, **extra: Any) -> dict[str, Any]:
    """A form's mapping: items by questionId, client and clinician by title."""
    return {
        "form_id": layout.form_id,
        "client_id": "Client code",
        "clinician": "Clinician",
        "measures": {
            m: dict(zip(("q1", "q2", "q3", "q4"), ids, strict=True))
            for m, ids in layout.items.items()
        },
        **extra,
    }


class Sync:
    """An engine over one google_forms source, with a store that survives between runs."""

    def __init__(
        self,
        tmp_path: Path,
        fake: GoogleFake,
        forms: list[dict[str, Any]],
        *,
        push_batch_size: int | None = None,
        **options: Any,
    ) -> None:
        self.clock = FakeClock()
        timing = Timing(clock=self.clock.clock, sleep=self.clock.sleep, rng=random.Random(7))

        class Fast(GoogleFormsAdapter):
            pass

        Fast.timing = timing

        class Shim:
            @staticmethod
            @hookimpl
            def fit_register_adapters(register: Callable[[type[Adapter]], None]) -> None:
                register(Fast)

        sync: dict[str, Any] = {"timezone": "UTC"}
        if push_batch_size:
            sync["push_batch_size"] = push_batch_size
        source = {
            "adapter": "google_forms",
            **fake.endpoints(),
            "spreadsheet_id": BOOK,
            "forms": forms,
            **options,
        }
        self.config = config_from_mapping(
            {
                "store": {"path": str(tmp_path / "fit.sqlite3")},
                "sync": sync,
                "sources": {"gforms": source},
            }
        )
        self.registry = load_plugins(extra=[builtin_rules, Shim], entry_points=False)
        self.email = EMAIL

    def secret(self, source: str, key: str) -> str:
        if key == "service_account":
            return service_account_json(self.email)
        raise ConfigError(f"no {key}")

    def run(self, **kw: Any) -> RunSummary:
        store = Store.open(self.config.store_path)
        # the synthetic responses date from January 2025: judge their alerts as of then (by
        # now their episodes have ended and their alerts are closed)
        settings = self.config.settings.with_(as_of=dt.date(2025, 1, 10))
        try:
            return SyncEngine(
                self.config, self.registry, store, secret=self.secret, settings=settings
            ).run(**kw)
        finally:
            store.close()


def rows(fake: GoogleFake) -> list[dict[str, Any]]:
    return fake.table(BOOK, "Scores")


def assert_one_row_per_key(fake: GoogleFake, expected: set[str]) -> None:
    keys = Counter(str(r["response_id"]) for r in rows(fake))
    assert [k for k, n in keys.items() if n > 1] == [], "duplicate rows"
    assert set(keys) == expected


def all_response_ids(fake: GoogleFake) -> set[str]:
    return {rid for form in fake.forms.values() for rid in form.responses}


# --- the "must show" ------------------------------------------------------------------


def test_two_forms_sync_one_row_per_response_then_resync_is_cheap(
    tmp_path: Path, fake: GoogleFake
) -> None:
    ors = add_form(fake, "orsForm00001", ["ORS"], 300, seed=1, clients=50)
    srs = add_form(fake, "srsForm00001", ["SRS"], 300, seed=2, clients=50)
    sync = Sync(tmp_path, fake, [form_options(ors), form_options(srs)])

    first = sync.run()
    src = first.sources[0]
    assert (src.status, src.new, src.pushed, src.quarantined) == ("ok", 600, 600, 0), src.error
    assert_one_row_per_key(fake, all_response_ids(fake))
    grid = fake.tab(BOOK, "Scores") or []
    assert grid[0] == list(COLUMNS)
    table = rows(fake)
    assert all(isinstance(r["total"], float | int) for r in table)
    assert {r["measure"] for r in table} == {"ORS", "SRS"}
    assert any(r["flags"] for r in table), "some synthetic clients should raise flags"
    flagged = next(r for r in table if r["flags"])
    assert flagged["flag_message"] and isinstance(flagged["flags"], str)
    assert fake.count("forms.responses.list") == 2  # 300 each fit one page
    assert fake.count("values.append") == 1 and len(fake.writes()) == 3  # tab, header, append

    fake.calls.clear()
    second = sync.run()
    assert (second.sources[0].pushed, second.sources[0].new) == (0, 0)
    lists = fake.ops("forms.responses.list")
    assert sorted(c.path for c in lists) == [
        "/v1/forms/orsForm00001/responses",
        "/v1/forms/srsForm00001/responses",
    ]
    assert all(c.params["filter"].startswith("timestamp >= ") for c in lists)
    assert fake.writes() == [], "a re-sync without new responses wrote to the sheet"


def test_an_edited_response_updates_its_row(tmp_path: Path, fake: GoogleFake) -> None:
    ors = add_form(fake, "orsForm00001", ["ORS"], 40, seed=3, clients=10)
    sync = Sync(tmp_path, fake, [form_options(ors)])
    sync.run()
    rid = next(iter(fake.forms["orsForm00001"].responses))
    before = {r["response_id"]: r for r in rows(fake)}[rid]
    q = ors.items["ORS"]
    fake.edit_response(
        "orsForm00001",
        rid,
        {q[0]: "1", q[1]: "1", q[2]: "1", q[3]: "2"},
        submitted=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5),
    )
    fake.calls.clear()

    summary = sync.run()
    assert (summary.sources[0].changed, summary.sources[0].new) == (1, 0)
    after = {r["response_id"]: r for r in rows(fake)}
    assert len(rows(fake)) == 40 and after[rid]["total"] == 5.0 != before["total"]
    assert fake.count("values.append") == 0 and fake.count("values.batchUpdate") == 1
    # the edit also moved the high-water mark: the next run lists from there and skips it
    fake.calls.clear()
    assert sync.run().sources[0].pulled == 0


def test_a_formula_like_answer_is_stored_as_text(tmp_path: Path, fake: GoogleFake) -> None:
    ors = add_form(fake, "orsForm00001", ["ORS"])
    text = '=HYPERLINK("http://example.invalid/x","open me")'
    q = ors.items["ORS"]
    fake.add_response(
        "orsForm00001", {ors.client: text, q[0]: "5", q[1]: "6", q[2]: "7", q[3]: "8"}, submitted=T0
    )
    Sync(tmp_path, fake, [form_options(ors)]).run()
    (row,) = rows(fake)
    # stored as text, not run as a formula (the code itself is case-folded like every code)
    assert row["client_id"] == text.upper() and type(row["client_id"]) is str
    for call in fake.writes():
        if call.op == "values.append":
            assert call.params["valueInputOption"] == "RAW"
        elif call.op == "values.batchUpdate":
            assert call.body["valueInputOption"] == "RAW"


def test_quota_429s_in_the_middle_of_a_push_leave_no_duplicates(
    tmp_path: Path, fake: GoogleFake
) -> None:
    ors = add_form(fake, "orsForm00001", ["ORS"], 300, seed=4, clients=60)
    sync = Sync(tmp_path, fake, [form_options(ors)], push_batch_size=50)
    # the 2nd append is applied but its answer is a 429 (lost); the 3rd is refused outright;
    # the 4th is applied and the connection drops; a batchUpdate and a key read hit quota too
    fake.inject("values.append", 429, after=1, apply=True, retry_after="7")
    fake.inject("values.append", 429, after=2)
    fake.inject("values.append", 0, after=4, apply=True)
    fake.inject("values.append", 503, after=6, times=2)
    fake.inject("values.get", 429, after=1)

    summary = sync.run()
    src = summary.sources[0]
    assert (src.status, src.pushed) == ("ok", 300), src.error
    assert_one_row_per_key(fake, all_response_ids(fake))
    assert 7.0 in sync.clock.sleeps, "Retry-After was not honoured"
    statuses = Counter(c.status for c in fake.ops("values.append"))
    assert statuses[429] == 2 and statuses[0] == 1 and statuses[503] == 2

    fake.calls.clear()
    assert sync.run().sources[0].pushed == 0 and fake.writes() == []


def test_quota_that_outlasts_the_retry_budget_fails_the_run_then_recovers(
    tmp_path: Path, fake: GoogleFake
) -> None:
    ors = add_form(fake, "orsForm00001", ["ORS"], 120, seed=5, clients=30)
    sync = Sync(tmp_path, fake, [form_options(ors)], push_batch_size=40, max_retry_seconds=30)
    fault = fake.inject("values.append", 429, after=1, times=100)
    first = sync.run()
    src = first.sources[0]
    assert src.status == "failed" and first.exit_code == ExitCode.PARTIAL
    assert "quota" in (src.error or "") and not src.bookmark_saved
    assert 0 < src.pushed < 120
    assert_one_row_per_key(fake, {r["response_id"] for r in rows(fake)})

    fault.times = 0
    second = sync.run()
    assert second.sources[0].status == "ok"
    assert_one_row_per_key(fake, all_response_ids(fake))


def test_sheets_calls_stay_within_the_per_minute_budget(tmp_path: Path, fake: GoogleFake) -> None:
    ors = add_form(fake, "orsForm00001", ["ORS"], 60, seed=6, clients=20)
    sync = Sync(tmp_path, fake, [form_options(ors)], push_batch_size=10, sheets_calls_per_minute=4)
    assert sync.run().sources[0].pushed == 60
    sheets = [c for c in fake.calls if c.path.startswith("/v4/")]
    assert len(sheets) == 9  # read, addSheet, header, six appends
    assert sum(1 for s in sync.clock.sleeps if s > 1) >= 1  # the throttle waited for the window


# --- mapping variants -------------------------------------------------------------------------


def test_one_form_with_ors_and_srs_sections(tmp_path: Path, fake: GoogleFake) -> None:
    both = add_form(fake, "bothForm0001", ["ORS", "SRS"])
    o, s = both.items["ORS"], both.items["SRS"]
    full = fake.add_response(
        "bothForm0001",
        {both.client: "C1", **dict.fromkeys(o, "4"), **dict.fromkeys(s, "9")},
        submitted=T0,
    )
    ors_only = fake.add_response(
        "bothForm0001",
        {both.client: "C2", **dict.fromkeys(o, "3")},
        submitted=T0 + dt.timedelta(hours=1),
    )
    summary = Sync(tmp_path, fake, [form_options(both)]).run()
    assert summary.sources[0].status == "ok" and summary.sources[0].quarantined == 0
    got = {(r["response_id"], r["measure"]): r["total"] for r in rows(fake)}
    assert got == {
        (f"{full}:ORS", "ORS"): 16.0,
        (f"{full}:SRS", "SRS"): 36.0,
        (f"{ors_only}:ORS", "ORS"): 12.0,
    }


def test_missing_answers_are_missing_and_zero_is_a_score(tmp_path: Path, fake: GoogleFake) -> None:
    ors = add_form(fake, "orsForm00001", ["ORS"])
    q = ors.items["ORS"]
    zeros = fake.add_response(
        "orsForm00001", {ors.client: "C1", **dict.fromkeys(q, "0")}, submitted=T0
    )
    gap = fake.add_response(
        "orsForm00001",
        {ors.client: "C1", q[0]: "5", q[2]: "5", q[3]: "5"},
        submitted=T0 + dt.timedelta(days=7),
    )
    sync = Sync(tmp_path, fake, [form_options(ors)])
    summary = sync.run()
    assert summary.sources[0].status == "partial" and summary.sources[0].quarantined == 1
    store = Store.open(sync.config.store_path)
    try:
        (bad,) = store.quarantined("gforms")
    finally:
        store.close()
    assert bad["source_key"] == gap and "q2" in bad["reasons"]
    assert [(r["response_id"], r["total"]) for r in rows(fake)] == [(zeros, 0)]


def test_a_date_question_can_be_the_administration_time(tmp_path: Path, fake: GoogleFake) -> None:
    ors = add_form(fake, "orsForm00001", ["ORS"])
    q = ors.items["ORS"]
    fake.add_response(
        "orsForm00001",
        {ors.client: "C1", ors.date: "2024-12-30", **dict.fromkeys(q, "5")},
        submitted=T0,
    )
    opts = form_options(ors, administered_at={"title": "Session date"})
    Sync(tmp_path, fake, [opts]).run()
    assert [r["administered_at"] for r in rows(fake)] == ["2024-12-30"]


def test_items_on_a_one_to_five_scale_are_converted(tmp_path: Path, fake: GoogleFake) -> None:
    doc, layout = measure_form("likertForm01", ["SRS"], low=1, high=5)
    fake.add_form("likertForm01", doc)
    q = layout.items["SRS"]
    fake.add_response(
        "likertForm01",
        {layout.client: "C1", q[0]: "1", q[1]: "5", q[2]: "3", q[3]: "5"},
        submitted=T0,
    )
    Sync(tmp_path, fake, [form_options(layout)]).run()
    assert [r["total"] for r in rows(fake)] == [25.0]  # 0 + 10 + 5 + 10


# --- errors that say what to fix --------------------------------------------------------------


def test_a_form_not_shared_names_the_service_account(tmp_path: Path, fake: GoogleFake) -> None:
    ors = add_form(fake, "orsForm00001", ["ORS"], 3)
    fake.denied.add("orsForm00001")
    summary = Sync(tmp_path, fake, [form_options(ors)]).run()
    src = summary.sources[0]
    assert summary.exit_code == ExitCode.CONFIG and src.status == "failed"
    assert EMAIL in (src.error or "") and "share the form and the spreadsheet" in (src.error or "")
    assert fake.count("forms.get") == 1  # 403 is not retried


def test_a_wrong_spreadsheet_id_is_a_config_error(tmp_path: Path, fake: GoogleFake) -> None:
    ors = add_form(fake, "orsForm00001", ["ORS"], 3)
    summary = Sync(tmp_path, fake, [form_options(ors)], spreadsheet_id="noSuchBook01").run()
    assert summary.exit_code == ExitCode.CONFIG
    assert "was not found" in (summary.sources[0].error or "")


def test_an_unknown_question_id_is_named(tmp_path: Path, fake: GoogleFake) -> None:
    ors = add_form(fake, "orsForm00001", ["ORS"], 3)
    opts = form_options(ors)
    opts["measures"]["ORS"]["q3"] = "deadbeef"
    summary = Sync(tmp_path, fake, [opts]).run()
    assert summary.exit_code == ExitCode.CONFIG
    assert "measures.ORS.q3" in (summary.sources[0].error or "")
    assert fake.count("forms.responses.list") == 0


def test_a_revoked_key_is_a_config_error(tmp_path: Path, fake: GoogleFake) -> None:
    ors = add_form(fake, "orsForm00001", ["ORS"], 3)
    fake.revoked.add(EMAIL)
    summary = Sync(tmp_path, fake, [form_options(ors)]).run()
    assert summary.exit_code == ExitCode.CONFIG
    assert "refused the credentials" in (summary.sources[0].error or "")
