"""The life of a Google Forms source, through `fit`: the form changes after setup, responses get
edited, clients type their codes differently, credentials lack scopes. All against the loopback
fake (tests/fakes/google_fake.py), with the real CLI and a config file."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from fit_cli.main import cli
from fit_core.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from fakes.google_fake import (
    FORMS_SCOPE,
    RESPONSES_SCOPE,
    FormLayout,
    GoogleFake,
    measure_form,
    populate,
    service_account_json,
)

BOOK = "scoresBook0001"
EMAIL = "fit-sync@clinic-test.iam.gserviceaccount.com"
T0 = dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def toml(value: Any) -> str:
    """A TOML value (inline tables and arrays; JSON strings are TOML strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + " }"
    return "[ " + ", ".join(toml(v) for v in value) + " ]"


def form_options(layout: FormLayout, scale: str | None = None, **extra: Any) -> dict[str, Any]:
    measures: dict[str, Any] = {}
    for m, ids in layout.items.items():
        measures[m] = dict(zip(("q1", "q2", "q3", "q4"), ids, strict=True))
        if scale:
            measures[m]["scale"] = scale
    return {
        "form_id": layout.form_id,
        "client_id": "Client code",
        "clinician": {"id": layout.clinician},
        "measures": measures,
        **extra,
    }


class Clinic:
    """A config file with one google_forms source, a store, and `fit` run in-process."""

    def __init__(self, tmp_path: Path, fake: GoogleFake, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path = tmp_path
        self.fake = fake
        self.path = tmp_path / "fit.toml"
        monkeypatch.setenv("FIT_GFORMS_SERVICE_ACCOUNT", service_account_json(EMAIL))
        self.monkeypatch = monkeypatch

    def write(self, forms: list[dict[str, Any]], **options: Any) -> None:
        source = {
            "adapter": "google_forms",
            **self.fake.endpoints(),
            "spreadsheet_id": BOOK,
            **options,
            "forms": forms,
        }
        lines = [
            "[store]",
            f"path = {toml(str(self.tmp_path / 'fit.sqlite3'))}",
            "[sync]",
            'timezone = "UTC"',
            "[sources.gforms]",
            *(f"{k} = {toml(v)}" for k, v in source.items()),
        ]
        self.path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def fit(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, ["--config", str(self.path), *args], input=input)

    def sync(self) -> tuple[int, dict[str, Any], str]:
        """`fit sync --json`: exit code, the gforms source's summary, stderr."""
        res = self.fit("sync", "--json")
        doc = json.loads(res.stdout)
        (src,) = doc["sources"]
        return res.exit_code, src, res.stderr


@pytest.fixture
def fake() -> Iterator[GoogleFake]:
    with GoogleFake.running() as f:
        f.add_spreadsheet(BOOK)
        yield f


@pytest.fixture
def clinic(tmp_path: Path, fake: GoogleFake, monkeypatch: pytest.MonkeyPatch) -> Clinic:
    return Clinic(tmp_path, fake, monkeypatch)


def add_form(fake: GoogleFake, form_id: str, measures: list[str], **kw: Any) -> FormLayout:
    doc, layout = measure_form(form_id, measures, **kw)
    fake.add_form(form_id, doc)
    return layout


def rows(fake: GoogleFake) -> dict[str, dict[str, Any]]:
    return {str(r["response_id"]): r for r in fake.table(BOOK, "Scores")}


def answer(layout: FormLayout, client: str, values: tuple[str, ...], measure: str = "ORS") -> dict:
    return {layout.client: client, **dict(zip(layout.items[measure], values, strict=True))}


# --- 1. a scale changed after setup -----------------------------------------------------------


def two_forms_then_a_scale_change(clinic: Clinic, scale: str | None) -> tuple[Any, ...]:
    fake = clinic.fake
    ors = add_form(fake, "orsForm00001", ["ORS"])
    srs = add_form(fake, "srsForm00001", ["SRS"])
    populate(fake, ors, 60, seed=11, clients=12, start=T0)
    populate(fake, srs, 60, seed=12, clients=12, start=T0)
    clinic.write([form_options(ors, scale), form_options(srs, scale)])
    code, src, err = clinic.sync()
    assert code == 0 and src["pushed"] == 120, err
    before = rows(fake)
    for q in ors.items["ORS"]:  # the owner edits the four scales from 0-10 to 1-10
        fake.set_scale("orsForm00001", q, 1, 10)
    later = T0 + 30 * DAY
    new_ors = fake.add_response(
        "orsForm00001", answer(ors, "G0001", ("1", "10", "10", "10")), submitted=later
    )
    fake.add_response("srsForm00001", answer(srs, "G0001", ("9",) * 4, "SRS"), submitted=later)
    return ors, srs, before, new_ors


@pytest.mark.parametrize("scale", [None, "range:0:10"], ids=["auto", "explicit"])
def test_a_scale_change_stops_the_source_with_nothing_written(
    clinic: Clinic, scale: str | None
) -> None:
    ors, _srs, before, _new = two_forms_then_a_scale_change(clinic, scale)
    fake = clinic.fake
    fake.calls.clear()

    code, src, err = clinic.sync()
    assert code == 3 and src["status"] == "failed"
    q1 = ors.items["ORS"][0]
    assert f"measures.ORS.q1 (question {q1}) was a 0-10 scale, is now a 1-10 scale" in src["error"]
    assert "fit google remap gforms" in src["error"] and "orsForm00001" in src["error"]
    assert fake.writes() == [], "a changed scale must write nothing to the sheet"
    assert fake.count("forms.responses.list") == 0, "nothing is read either"
    assert rows(fake) == before, "no past total may change"
    assert "error: source gforms" in err

    check = clinic.fit("check")
    assert check.exit_code == 3 and "is now a 1-10 scale" in check.stdout, check.output


def test_remap_previews_then_reads_new_answers_on_the_new_scale_and_keeps_past_totals(
    clinic: Clinic,
) -> None:
    ors, _srs, before, new_ors = two_forms_then_a_scale_change(clinic, None)
    fake = clinic.fake
    q1 = ors.items["ORS"][0]

    preview = clinic.fit("google", "remap", "gforms", "--dry-run")
    assert preview.exit_code == 0, preview.output
    out = preview.stdout
    assert f"measures.ORS.q1 (question {q1}) was a 0-10 scale, is now a 1-10 scale" in out
    assert "measures.ORS.q1: scale range:0:10 → range:1:10" in out
    assert "answers last submitted after" in out and "do not change" in out
    assert "form srsForm00001" in out and "nothing to change" in out
    assert "dry run: nothing was changed" in out
    assert clinic.sync()[0] == 3, "a preview changes nothing"

    declined = clinic.fit("google", "remap", "gforms", input="n\n")
    assert declined.exit_code != 0 and clinic.sync()[0] == 3

    applied = clinic.fit("google", "remap", "gforms", "--yes")
    assert applied.exit_code == 0, applied.output
    assert "form orsForm00001: the new mapping is in force" in applied.stdout

    fake.calls.clear()
    code, src, err = clinic.sync()
    assert (code, src["status"], src["new"], src["quarantined"]) == (0, "ok", 2, 0), err
    after = rows(fake)
    assert {k: after[k] for k in before} == before, "no past total may change"
    assert after[new_ors]["total"] == 30.0  # 1, 10, 10, 10 on 1-10: 0 + 10 + 10 + 10
    assert fake.count("values.batchUpdate") == 0  # old rows untouched; the two new appended
    assert clinic.sync()[1]["pulled"] == 0

    # even read again from the start (a lost bookmark), each answer keeps the scale it was
    # given on: 0-10 before the change, 1-10 after
    store = Store.open(clinic.tmp_path / "fit.sqlite3")
    try:
        store.save_bookmark("gforms", None)
    finally:
        store.close()
    fake.calls.clear()
    code, src, err = clinic.sync()
    assert (code, src["pulled"], src["changed"]) == (0, 122, 0), err
    assert rows(fake) == after and fake.writes() == []


def test_an_explicit_scale_must_be_edited_before_remap(clinic: Clinic) -> None:
    ors, srs, before, new_ors = two_forms_then_a_scale_change(clinic, "range:0:10")
    blocked = clinic.fit("google", "remap", "gforms", "--yes")
    assert blocked.exit_code == 3 and "edit it first" in blocked.stdout
    assert "the mapping says range:0:10" not in blocked.stderr  # no raw resolver dump

    clinic.write([form_options(ors, "range:1:10"), form_options(srs, "range:0:10")])
    assert clinic.fit("google", "remap", "gforms", "--yes").exit_code == 0
    code, _src, err = clinic.sync()
    assert code == 0, err
    after = rows(clinic.fake)
    assert {k: after[k] for k in before} == before and after[new_ors]["total"] == 30.0


def test_a_config_edit_needs_remap_and_from_start_rereads_everything(clinic: Clinic) -> None:
    fake = clinic.fake
    ors = add_form(fake, "orsForm00001", ["ORS"])
    populate(fake, ors, 20, seed=3, clients=5, start=T0)
    options = form_options(ors)
    clinic.write([options])
    assert clinic.sync()[0] == 0
    before = rows(fake)

    a, b = ors.items["ORS"][:2]  # the items were mapped in the wrong order from the start
    options["measures"]["ORS"].update(q1=b, q2=a)
    clinic.write([options])
    fake.calls.clear()
    code, src, _err = clinic.sync()
    assert code == 3 and f"measures.ORS.q1: question {a} → question {b}" in src["error"]
    assert fake.writes() == [] and rows(fake) == before

    preview = clinic.fit("google", "remap", "gforms", "--from-start", "--dry-run")
    assert "read every response of the form, from the start" in preview.stdout
    assert clinic.fit("google", "remap", "gforms", "--from-start", "--yes").exit_code == 0
    code, src, err = clinic.sync()
    assert code == 0 and src["pulled"] == 20, err  # read again with the corrected mapping
    assert {k: r["total"] for k, r in rows(fake).items()} == {
        k: r["total"] for k, r in before.items()
    }  # a swap of two items leaves totals as they were


# --- 6. a question deleted from one of two forms ----------------------------------------------


def test_a_deleted_question_stops_only_its_form(clinic: Clinic) -> None:
    fake = clinic.fake
    ors = add_form(fake, "orsForm00001", ["ORS"])
    srs = add_form(fake, "srsForm00001", ["SRS"])
    populate(fake, ors, 12, seed=5, clients=4, start=T0)
    populate(fake, srs, 12, seed=6, clients=4, start=T0)
    clinic.write([form_options(ors), form_options(srs)])
    assert clinic.sync()[0] == 0
    before = rows(fake)

    q1, q2, q3, q4 = ors.items["ORS"]
    fake.delete_question("orsForm00001", q3)  # and a new question takes its place
    fake.add_question(
        "orsForm00001",
        {
            "itemId": "inew",
            "title": "Socially (new)",
            "questionItem": {"question": {"questionId": "0000abcd", "scaleQuestion": {"high": 10}}},
        },
    )
    later = T0 + 20 * DAY
    new_ors = fake.add_response(
        "orsForm00001",
        {ors.client: "G0002", q1: "5", q2: "5", "0000abcd": "5", q4: "5"},
        submitted=later,
    )
    new_srs = fake.add_response(
        "srsForm00001", answer(srs, "G0002", ("9",) * 4, "SRS"), submitted=later
    )
    fake.calls.clear()

    code, src, err = clinic.sync()
    assert code == 1 and src["status"] == "partial"
    (problem,) = src["problems"]
    assert "form orsForm00001 was not synced" in problem
    assert f"measures.ORS.q3 (question {q3}) no longer on the form" in problem
    assert f"warning: source gforms: {problem}" in err
    assert new_srs in rows(fake) and new_ors not in rows(fake), "the healthy form still syncs"
    assert {c.path for c in fake.ops("forms.responses.list")} == {
        "/v1/forms/srsForm00001/responses"
    }
    check = clinic.fit("check")
    assert check.exit_code == 1 and "PARTIAL" in check.stdout

    # map the new question, remap, and the form's responses since then are read
    options = form_options(ors)
    options["measures"]["ORS"]["q3"] = "0000abcd"
    clinic.write([options, form_options(srs)])
    remap = clinic.fit("google", "remap", "gforms", "--form", "orsForm00001", "--yes")
    assert remap.exit_code == 0, remap.output
    assert "no longer on the form" in remap.stdout and f"question {q3} → question 0000abcd" in (
        remap.stdout
    )
    code, src, err = clinic.sync()
    assert code == 0, err
    after = rows(fake)
    assert after[new_ors]["total"] == 20.0
    assert {k: after[k] for k in before} == before


# --- 2. an edited response keeps its date, session and flags -----------------------------------


def test_an_edited_response_keeps_its_date_session_and_flags(clinic: Clinic) -> None:
    fake = clinic.fake
    ors = add_form(fake, "orsForm00001", ["ORS"])
    first = fake.add_response("orsForm00001", answer(ors, "D1", ("8", "8", "7", "7")), submitted=T0)
    second = fake.add_response(
        "orsForm00001", answer(ors, "D1", ("5", "5", "5", "5")), submitted=T0 + 7 * DAY
    )
    for week in (2, 3, 4):
        fake.add_response(
            "orsForm00001", answer(ors, "D1", ("6", "6", "6", "6")), submitted=T0 + 7 * week * DAY
        )
    clinic.write([form_options(ors)])
    # alerts are about now: judge them while the episode is open (the data are from 2025)
    import fit_core.sync

    clinic.monkeypatch.setattr(fit_core.sync, "utc_now", lambda: T0 + 41 * DAY)
    assert clinic.sync()[0] == 0
    before = rows(fake)
    assert before[second]["session"] == 2
    # 30 → 20 → 24 ×3: still reliably deteriorated, an alert on the latest session only
    latest = max(before, key=lambda k: before[k]["session"])
    assert "ors.reliable_deterioration" in before[latest]["flags"]
    assert before[second]["flags"] == ""

    # weeks later the client opens their edit link and changes one answer
    fake.edit_response("orsForm00001", second, {ors.items["ORS"][3]: "6"}, submitted=T0 + 40 * DAY)
    code, src, err = clinic.sync()
    assert code == 0 and src["changed"] == 1, err
    after = rows(fake)
    assert after[second]["total"] == 21.0 != before[second]["total"]  # the answers changed
    for column in ("administered_at", "session", "flags", "episode_id", "client_id"):
        assert after[second][column] == before[second][column], column
    assert after[latest]["flags"] == before[latest]["flags"]
    assert [after[k]["session"] for k in after] == [before[k]["session"] for k in before]
    assert after[first] == before[first]


# --- 4. codes typed differently are one client ------------------------------------------------


def test_codes_in_mixed_case_are_one_client_and_merges_are_reported(clinic: Clinic) -> None:
    fake = clinic.fake
    ors = add_form(fake, "orsForm00001", ["ORS"])
    keys = [
        fake.add_response(
            "orsForm00001", answer(ors, code, ("5", "5", "5", "5")), submitted=T0 + n * 7 * DAY
        )
        for n, code in enumerate(["AB12", "ab12", " Ab12 ", "AB12"])
    ]
    clinic.write([form_options(ors)])
    first = clinic.fit("-v", "sync")
    assert first.exit_code == 0, first.output
    table = rows(fake)
    assert [table[k]["client_id"] for k in keys] == ["AB12"] * 4
    assert [table[k]["session"] for k in keys] == [1, 2, 3, 4]
    assert "client codes typed in more than one way, merged into one client: 1" in first.stdout
    assert "AB12: 'AB12', 'Ab12', 'ab12'" in first.stdout
    verbose = clinic.fit("-v", "sync")
    assert verbose.exit_code == 0 and "merged" not in verbose.stdout  # nothing new this time

    # a spelling not seen before, months later: reported once, on stderr (cron mails it)
    fake.add_response(
        "orsForm00001", answer(ors, "aB12", ("6", "6", "6", "6")), submitted=T0 + 90 * DAY
    )
    plain = clinic.fit("sync")
    assert plain.exit_code == 0
    assert "note: source gforms: 1 client code(s) arrived in a new spelling" in plain.stderr
    assert "aB12" not in plain.stderr  # the codes are listed by -v / --json, not in the note
    assert [r["session"] for r in rows(fake).values()] == [1, 2, 3, 4, 5]


def test_a_source_can_keep_case(clinic: Clinic) -> None:
    fake = clinic.fake
    ors = add_form(fake, "orsForm00001", ["ORS"])
    for n, code in enumerate(["ab12", "AB12"]):
        fake.add_response(
            "orsForm00001", answer(ors, code, ("5", "5", "5", "5")), submitted=T0 + n * DAY
        )
    clinic.write([form_options(ors)], client_id_case="keep")
    assert clinic.sync()[0] == 0
    assert sorted(r["client_id"] for r in rows(fake).values()) == ["AB12", "ab12"]
    assert [r["session"] for r in rows(fake).values()] == [1, 1]


# --- 5. errors that name their real cause -----------------------------------------------------


def oauth_secret(refresh_token: str) -> str:
    return json.dumps(
        {
            "type": "authorized_user",
            "client_id": "cid.apps.googleusercontent.com",
            "client_secret": "not-a-real-secret",
            "refresh_token": refresh_token,
            "account": "clinic.admin@example.org",
        }
    )


def test_a_token_without_the_sheets_scope_says_so_not_share(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = clinic.fake
    ors = add_form(fake, "orsForm00001", ["ORS"])
    populate(fake, ors, 3, start=T0)
    fake.refresh_tokens["rt-forms-only"] = "clinic.admin@example.org"
    fake.granted["rt-forms-only"] = {FORMS_SCOPE, RESPONSES_SCOPE}  # consent without Sheets
    monkeypatch.delenv("FIT_GFORMS_SERVICE_ACCOUNT")
    monkeypatch.setenv("FIT_GFORMS_OAUTH", oauth_secret("rt-forms-only"))
    clinic.write([form_options(ors)], auth="oauth")

    code, src, _err = clinic.sync()
    error = src["error"]
    assert code == 3 and "https://www.googleapis.com/auth/spreadsheets" in error
    assert "lacks the OAuth scope" in error and "consent" in error
    assert "fit keys set gforms oauth" in error and "share the form" not in error
    assert fake.writes() == []
    sheets = [c for c in fake.calls if c.op == "values.get"]
    assert sheets and sheets[0].status == 403


def test_a_revoked_refresh_token_talks_about_consent_not_keys(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = clinic.fake
    ors = add_form(fake, "orsForm00001", ["ORS"])
    fake.refresh_tokens["rt-old"] = "clinic.admin@example.org"
    fake.revoked.add("clinic.admin@example.org")
    monkeypatch.delenv("FIT_GFORMS_SERVICE_ACCOUNT")
    monkeypatch.setenv("FIT_GFORMS_OAUTH", oauth_secret("rt-old"))
    clinic.write([form_options(ors)], auth="oauth")

    code, src, _err = clinic.sync()
    error = src["error"]
    assert code == 3 and "refresh token" in error and "Token has been expired or revoked" in error
    assert "consent" in error and "fit keys set gforms oauth" in error
    assert "service account" not in error and "key.json" not in error
    assert "('" not in error and "{'" not in error, "no raw Python tuple or dict"


def test_a_deleted_service_account_key_says_to_store_a_new_key(clinic: Clinic) -> None:
    fake = clinic.fake
    ors = add_form(fake, "orsForm00001", ["ORS"])
    fake.revoked.add(EMAIL)
    clinic.write([form_options(ors)])
    code, src, _err = clinic.sync()
    error = src["error"]
    assert code == 3 and "Invalid JWT Signature" in error and "deleted or disabled" in error
    assert "fit keys set gforms service_account --from-file key.json" in error
    assert "('" not in error and "{'" not in error


def test_an_unreadable_mapping_history_is_named_and_remap_from_start_repairs_it(
    clinic: Clinic,
) -> None:
    fake = clinic.fake
    ors = add_form(fake, "orsForm00001", ["ORS"])
    populate(fake, ors, 8, seed=9, clients=3, start=T0)
    clinic.write([form_options(ors)])
    assert clinic.sync()[0] == 0
    before = rows(fake)
    store = Store.open(clinic.tmp_path / "fit.sqlite3")
    try:
        store.set_state_value("gforms", "form:orsForm00001", "{not json")
    finally:
        store.close()

    code, src, _err = clinic.sync()
    assert code == 3 and "history of form orsForm00001 is unreadable" in src["error"]
    assert "fit google remap gforms --form orsForm00001 --from-start" in src["error"]
    assert clinic.fit("google", "remap", "gforms").exit_code == 3  # only --from-start repairs
    repaired = clinic.fit("google", "remap", "gforms", "--from-start", "--yes")
    assert repaired.exit_code == 0 and "cannot be read" in repaired.stdout, repaired.output
    code, src, err = clinic.sync()
    assert (code, src["pulled"], src["changed"]) == (0, 8, 0), err
    assert rows(fake) == before
