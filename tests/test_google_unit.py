"""Unit tests of the google_forms adapter: options, mapping, records, bookmark, and (with
``responses``) request building, token minting and error mapping. No network, no waiting."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from responses import matchers

from fit_adapters.google_forms.adapter import GoogleFormsAdapter
from fit_adapters.google_forms.auth import (
    authorized_session,
    load_identity,
    oauth_identity,
    service_account_identity,
    token_identity,
)
from fit_adapters.google_forms.bookmark import FormMark, FormTracker, dump_bookmark, load_bookmark
from fit_adapters.google_forms.client import GoogleApi, Timing, WindowThrottle
from fit_adapters.google_forms.formdef import parse_form
from fit_adapters.google_forms.mapping import resolve
from fit_adapters.google_forms.options import (
    Connection,
    GoogleFormsSchema,
    GoogleOptions,
    QuestionRef,
)
from fit_adapters.google_forms.records import response_records
from fit_adapters.google_forms.sheet import ScoresSheet, cell, column_letter, quote_tab, score_row
from fit_adapters.google_forms.timestamps import format_filter_time, parse_rfc3339
from fit_core.errors import ConfigError, SourceError, SourceUnavailable
from fit_core.models import OutboxItem, Record, RecordError
from fit_core.testing import make_context

sys.path.insert(0, str(Path(__file__).parent))
from fakes.google_fake import FakeClock, service_account_json

FORMS = "https://forms.googleapis.com"
SHEETS = "https://sheets.googleapis.com"
TOKEN = "https://oauth2.googleapis.com/token"
EMAIL = "unit@clinic-test.iam.gserviceaccount.com"
RUN = dt.datetime(2025, 1, 15, 12, 0, tzinfo=dt.UTC)


def q(qid: str, title: str, **kind: Any) -> dict[str, Any]:
    return {
        "itemId": "i" + qid,
        "title": title,
        "questionItem": {"question": {"questionId": qid, **kind}},
    }


SCALE = {"scaleQuestion": {"high": 10}}  # proto3 JSON leaves low = 0 out
FORM_DOC = {
    "formId": "form0000001",
    "info": {"title": "Check-in"},
    "items": [
        q("0000c1d0", "Client code", textQuestion={}),
        q(
            "0000c2d0",
            "Clinician",
            choiceQuestion={"type": "RADIO", "options": [{"value": "A"}, {"value": "B"}]},
        ),
        {"itemId": "p1", "title": "ORS", "pageBreakItem": {}},
        q("000000a1", "Individually", **SCALE),
        q("000000a2", "Interpersonally", **SCALE),
        q("000000a3", "Socially", **SCALE),
        q("000000a4", "Overall", **SCALE),
        {"itemId": "p2", "title": "SRS", "pageBreakItem": {}},
        q("000000b1", "Relationship", scaleQuestion={"low": 1, "high": 5}),
        q("000000b2", "Goals", ratingQuestion={"ratingScaleLevel": 5, "iconType": "STAR"}),
        q(
            "000000b3",
            "Approach",
            choiceQuestion={"type": "RADIO", "options": [{"value": str(i)} for i in range(1, 6)]},
        ),
        {
            "itemId": "g1",
            "title": "Overall grid",
            "questionGroupItem": {
                "grid": {
                    "columns": {
                        "type": "RADIO",
                        "options": [{"value": str(i)} for i in range(1, 6)],
                    }
                },
                "questions": [
                    {"questionId": "000000b4", "rowQuestion": {"title": "Session overall"}}
                ],
            },
        },
        q("0000d1d0", "Session date", dateQuestion={"includeYear": True}),
    ],
}


def options(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "spreadsheet_id": "book0000001",
        "forms": [
            {
                "form_id": "form0000001",
                "client_id": "Client code",
                "measures": {
                    "ORS": {"q1": "000000a1", "q2": "000000a2", "q3": "000000a3", "q4": "000000a4"}
                },
            }
        ],
    }
    base.update(over)
    return base


def fast_timing() -> tuple[Timing, FakeClock]:
    clock = FakeClock()
    return Timing(clock=clock.clock, sleep=clock.sleep, rng=random.Random(1)), clock


def api(**conn: Any) -> tuple[GoogleApi, FakeClock]:
    timing, clock = fast_timing()
    loaded = Connection.load(conn, "unit")
    session = requests.Session()  # error mapping alone: no token refresh on a 401
    session.headers["Authorization"] = "Bearer x"
    return GoogleApi(session, loaded, source="unit", account=EMAIL, timing=timing), clock


def _text(body: object) -> str:
    """A recorded request body as text."""
    if isinstance(body, bytes):
        return body.decode()
    return body if isinstance(body, str) else ""


def error(code: int, status: str, message: str = "m") -> dict[str, Any]:
    return {"error": {"code": code, "status": status, "message": message}}


# --- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (options(spreadsheet="x"), "spreadsheet: unknown key"),
        (options(forms=[{**options()["forms"][0], "clients": "x"}]), "forms.0.clients"),
        (
            options(
                forms=[
                    {
                        **options()["forms"][0],
                        "measures": {"ORS": {"q1": "a", "q2": "b", "q5": "c"}},
                    }
                ]
            ),
            "q5",
        ),
        (
            options(forms=[{**options()["forms"][0], "measures": {"ORS": {"q1": "a"}}}]),
            "map all four items q1-q4",
        ),
        (
            options(
                forms=[
                    {
                        **options()["forms"][0],
                        "form_id": "https://docs.google.com/forms/d/1AbCdEfGhIjK/edit",
                    }
                ]
            ),
            "'1AbCdEfGhIjK'",
        ),
        (
            options(
                forms=[
                    {
                        **options()["forms"][0],
                        "form_id": "https://docs.google.com/forms/d/e/1FAIpQLSx/viewform",
                    }
                ]
            ),
            "responder link",
        ),
        (options(forms_endpoint="http://proxy.example.org"), "use https"),
        (options(page_size=9000), "page_size"),
        (options(forms=[]), "at least one form"),
        (options(forms=[options()["forms"][0], options()["forms"][0]]), "listed twice"),
        (options(scores_tab="a/b"), "scores_tab"),
    ],
)
def test_options_errors_name_the_key(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError) as exc:
        GoogleOptions.load(raw, "clinic")
    assert named in str(exc.value) and "[sources.clinic]" in str(exc.value)


def test_options_defaults_and_reload_is_stable() -> None:
    loaded = GoogleFormsSchema().load(options(forms_endpoint="http://127.0.0.1:8080/"))
    assert GoogleFormsSchema().load(loaded) == loaded  # the engine loads, then the adapter again
    o = GoogleOptions.load(loaded, "clinic")
    assert o.scores_tab == "Scores" and o.overlap == dt.timedelta(seconds=300)
    assert o.connection.forms_endpoint == "http://127.0.0.1:8080"
    assert o.connection.sheets_endpoint == SHEETS and o.connection.token_uri == TOKEN
    assert (o.connection.sheets_calls_per_minute, o.page_size) == (60, 1000)
    form = o.forms[0]
    assert form.administered_at == "createTime" and form.rater == "client"
    assert form.measures[0].items[0] == QuestionRef(ref="000000a1")


# --- the form and the mapping -----------------------------------------------------------------


def test_parse_form_reads_scales_sections_and_grid_rows() -> None:
    form = parse_form("form0000001", FORM_DOC)
    by = form.by_id()
    assert (by["000000a1"].kind, by["000000a1"].auto_scale) == ("scale", "range:0:10")
    assert by["000000a1"].section == "ORS" and by["000000b1"].section == "SRS"
    assert by["000000b1"].auto_scale == "range:1:5"
    assert by["000000b2"].auto_scale == "range:1:5"  # a 5-star rating
    assert by["000000b3"].auto_scale == "range:1:5"  # a choice of whole numbers
    assert (by["000000b4"].kind, by["000000b4"].title) == ("grid-row", "Session overall")
    assert by["0000c2d0"].auto_scale is None and by["0000d1d0"].kind == "date"


def resolved(**form_over: Any) -> Any:
    raw = options()
    raw["forms"][0].update(form_over)
    o = GoogleOptions.load(raw, "clinic")
    return resolve(o.forms[0], parse_form("form0000001", FORM_DOC), "clinic")


def test_resolve_by_id_or_exact_title_ids_win() -> None:
    doc = json.loads(json.dumps(FORM_DOC))
    doc["items"].append(q("0000e1e0", "000000a2", textQuestion={}))  # a title equal to an id
    o = GoogleOptions.load(
        options(
            forms=[
                {
                    "form_id": "form0000001",
                    "client_id": {"title": "Client code"},
                    "measures": {
                        "ORS": {
                            "q1": " Individually ",
                            "q2": "000000a2",
                            "q3": {"id": "000000a3", "title": "Overall"},
                            "q4": {"title": "Overall", "scale": "points"},
                        }
                    },
                }
            ]
        ),
        "c",
    )
    r = resolve(o.forms[0], parse_form("form0000001", doc), "c")
    assert r.client_id == "0000c1d0"
    assert r.measures[0].items == (
        ("000000a1", "range:0:10"),
        ("000000a2", "range:0:10"),
        ("000000a3", "range:0:10"),
        ("000000a4", "points"),
    )
    assert r.measures[0].shared_scale is None


def test_resolve_reports_every_problem_with_ids() -> None:
    doc = json.loads(json.dumps(FORM_DOC))
    doc["items"].append(q("0000f1f0", "Socially", **SCALE))
    o = GoogleOptions.load(
        options(
            forms=[
                {
                    "form_id": "form0000001",
                    "client_id": "Nope",
                    "measures": {
                        "ORS": {
                            "q1": "000000a1",
                            "q2": {"id": "ffffffff"},
                            "q3": "Socially",
                            "q4": "0000d1d0",
                        }
                    },
                }
            ]
        ),
        "c",
    )
    with pytest.raises(ConfigError) as exc:
        resolve(o.forms[0], parse_form("form0000001", doc), "c")
    text = str(exc.value)
    assert "measures.ORS.q2: no question with questionId 'ffffffff'" in text
    assert "000000a3, 0000f1f0" in text  # the ambiguous title lists its ids
    assert "measures.ORS.q4: the date question" in text and "client_id" in text
    assert "fit google inspect c" in text


# --- records ----------------------------------------------------------------------------------


def answers(**values: str | None) -> dict[str, Any]:
    return {
        k: {"questionId": k, "textAnswers": {"answers": [{"value": v}]}}
        for k, v in values.items()
        if v is not None
    }


def test_records_keep_strings_zero_and_missing() -> None:
    form = resolved()
    resp = {
        "responseId": "R1",
        "createTime": "2025-01-06T09:00:01.123456789Z",
        "lastSubmittedTime": "2025-02-10T10:00:00Z",  # edited later: the date stays
        "answers": answers(
            **{"0000c1d0": " C7 ", "000000a1": "0", "000000a2": "", "000000a3": "10"}
        ),
    }
    (rec,) = list(response_records(resp, form))
    assert isinstance(rec, Record) and rec.source_key == "R1"
    assert rec.data["client_id"] == "C7" and rec.scale == "range:0:10"
    assert [rec.data[k] for k in ("q1", "q2", "q3", "q4")] == ["0", None, "10", None]
    assert rec.data["administered_at"] == "2025-01-06T09:00:01.123456+00:00"
    assert rec.extra == {"form_id": "form0000001", "response_id": "R1"}
    assert rec.location == "form form0000001 response R1"


def test_several_measures_per_form_key_by_measure_and_skip_unanswered() -> None:
    form = resolved(
        measures={
            "ORS": {"q1": "000000a1", "q2": "000000a2", "q3": "000000a3", "q4": "000000a4"},
            "SRS": {"q1": "000000b1", "q2": "000000b2", "q3": "000000b3", "q4": "000000b4"},
        }
    )
    resp = {
        "responseId": "R2",
        "lastSubmittedTime": "2025-01-06T09:00:00Z",
        "answers": answers(**{"000000a1": "1", "000000a2": "2", "000000a3": "3", "000000a4": "4"}),
    }
    assert [r.source_key for r in response_records(resp, form)] == ["R2:ORS"]


def test_items_on_different_scales_become_fractions() -> None:
    doc = json.loads(json.dumps(FORM_DOC))
    doc["items"].append(q("000000b5", "Approach, typed", textQuestion={}))
    raw = options()
    raw["forms"][0]["measures"] = {
        "SRS": {
            "q1": "000000a1",
            "q2": "000000b1",
            "q3": "000000b2",
            "q4": {"id": "000000b5", "scale": "points"},
        }
    }
    form = resolve(GoogleOptions.load(raw, "c").forms[0], parse_form("form0000001", doc), "c")
    resp = {
        "responseId": "R3",
        "lastSubmittedTime": "2025-01-06T09:00:00Z",
        "answers": answers(**{"000000a1": "5", "000000b1": "1", "000000b2": "5", "000000b5": "x"}),
    }
    (err,) = list(response_records(resp, form))
    assert isinstance(err, RecordError) and err.reasons == {"q4": "not a number"}
    resp["answers"] = answers(
        **{"000000a1": "5", "000000b1": "1", "000000b2": "5", "000000b5": "7"}
    )
    (rec,) = list(response_records(resp, form))
    assert isinstance(rec, Record) and rec.scale == "range:0:1"
    assert [rec.data[k] for k in ("q1", "q2", "q3", "q4")] == [0.5, 0.0, 1.0, 0.7]


def test_timestamps() -> None:
    assert parse_rfc3339("2025-01-06T09:00:00.5Z") == dt.datetime(
        2025, 1, 6, 9, 0, 0, 500000, tzinfo=dt.UTC
    )
    assert parse_rfc3339("2025-01-06") is None and parse_rfc3339(None) is None
    moment = dt.datetime(2025, 1, 6, 10, 0, 0, 999999, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert format_filter_time(moment) == "2025-01-06T09:00:00Z"


# --- bookmark ---------------------------------------------------------------------------------


def test_bookmark_round_trip_and_garbage() -> None:
    mark = FormMark(RUN, {"R1": "2025-01-15T11:59:00Z"}, "abc")
    text = dump_bookmark({"f1": mark})
    assert load_bookmark(text) == {"f1": mark}
    for junk in ("", "nope", "[]", '{"v": 99}', '{"v": 1, "forms": {"f": {}}}'):
        assert load_bookmark(junk) == {}
    assert dump_bookmark({}) is None


def test_tracker_keeps_only_responses_near_the_mark_and_never_moves_back() -> None:
    t = FormTracker(None, "m", RUN, dt.timedelta(minutes=5))
    base = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    for i in range(3000):
        t.saw(f"R{i}", (base + dt.timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    mark = t.mark()
    assert mark is not None and mark.since == base + dt.timedelta(minutes=2994)
    assert sorted(mark.seen) == [f"R{i}" for i in range(2994, 3000)]
    assert len(t._near) < 1100  # pruned while listing
    later = FormTracker(mark, "m", RUN, dt.timedelta(minutes=5))
    later.saw("R1", "2025-01-01T00:01:00Z")  # the newest response was deleted meanwhile
    assert later.mark().since == mark.since  # type: ignore[union-attr]
    assert FormTracker(mark, "m", RUN, dt.timedelta(0)).mark() == mark  # nothing listed


# --- HTTP: request building, retries, errors --------------------------------------------------

LIST = f"{FORMS}/v1/forms/form0000001/responses"


@responses.activate
def test_list_responses_pages_with_the_same_filter() -> None:
    f = "timestamp >= 2025-01-06T09:00:00Z"
    responses.get(
        LIST,
        json={"responses": [{"responseId": "R1"}], "nextPageToken": "t1"},
        match=[matchers.query_param_matcher({"filter": f, "pageSize": "2"})],
    )
    responses.get(
        LIST,
        json={"responses": [{"responseId": "R2"}]},
        match=[matchers.query_param_matcher({"filter": f, "pageSize": "2", "pageToken": "t1"})],
    )
    client, _ = api()
    pages = list(client.list_responses("form0000001", f, 2))
    assert [[r["responseId"] for r in p] for p in pages] == [["R1"], ["R2"]]
    assert all(c.request.headers["Authorization"] == "Bearer x" for c in responses.calls)


@responses.activate
def test_the_filter_is_sent_with_percent_encoded_spaces() -> None:
    responses.get(LIST, json={})
    client, _ = api()
    list(client.list_responses("form0000001", "timestamp >= 2025-01-06T09:00:00Z", 5))
    url = str(responses.calls[0].request.url)
    assert "filter=timestamp%20%3E%3D%202025-01-06T09%3A00%3A00Z" in url and "+" not in url


@responses.activate
def test_an_empty_list_has_no_responses_key() -> None:
    responses.get(LIST, json={})
    client, _ = api()
    assert list(client.list_responses("form0000001", None, 100)) == [[]]
    assert parse_qs(urlsplit(str(responses.calls[0].request.url)).query) == {"pageSize": ["100"]}


@responses.activate
def test_writes_are_raw_and_ranges_encoded() -> None:
    append = f"{SHEETS}/v4/spreadsheets/book0000001/values/%27My%20Scores%27%21A%3AO:append"
    responses.post(
        append,
        json={"updates": {"updatedRange": "'My Scores'!A2:O2"}},
        match=[
            matchers.query_param_matcher(
                {"valueInputOption": "RAW", "includeValuesInResponse": "false"}
            )
        ],
    )
    responses.post(f"{SHEETS}/v4/spreadsheets/book0000001/values:batchUpdate", json={})
    client, _ = api()
    result, failed = client.append_once("book0000001", "'My Scores'!A:O", [["=1+1", 2]])
    assert failed is None and result is not None
    assert json.loads(_text(responses.calls[0].request.body)) == {
        "majorDimension": "ROWS",
        "values": [["=1+1", 2]],
    }
    client.batch_update_values("book0000001", [{"range": "A1", "values": [["x"]]}])
    assert json.loads(_text(responses.calls[1].request.body))["valueInputOption"] == "RAW"


@responses.activate
def test_429_is_retried_honouring_retry_after() -> None:
    url = f"{FORMS}/v1/forms/form0000001"
    responses.get(
        url, status=429, headers={"Retry-After": "5"}, json=error(429, "RESOURCE_EXHAUSTED")
    )
    responses.get(url, status=503, json=error(503, "UNAVAILABLE"))
    responses.get(url, json={"formId": "form0000001"})
    client, clock = api()
    assert client.get_form("form0000001")["formId"] == "form0000001"
    assert clock.sleeps[0] == 5.0 and len(clock.sleeps) == 2 and clock.sleeps[1] <= 2.0


@responses.activate
def test_retries_are_bounded_in_time() -> None:
    url = f"{FORMS}/v1/forms/form0000001"
    responses.get(url, status=503, json=error(503, "UNAVAILABLE"))
    client, clock = api(max_retry_seconds=60)
    with pytest.raises(SourceUnavailable, match="kept answering HTTP 503"):
        client.get_form("form0000001")
    assert sum(clock.sleeps) <= 60 and len(responses.calls) > 2
    responses.replace(responses.GET, url, status=429, json=error(429, "RESOURCE_EXHAUSTED"))
    with pytest.raises(SourceError, match="quota is still exhausted"):
        client.get_form("form0000001")


@responses.activate
def test_connection_errors_are_retried_then_unavailable() -> None:
    url = f"{FORMS}/v1/forms/form0000001"
    responses.get(url, body=requests.ConnectionError("refused"))
    client, clock = api(max_retry_seconds=20)
    with pytest.raises(SourceUnavailable, match="cannot reach Google"):
        client.get_form("form0000001")
    assert len(responses.calls) > 1 and clock.sleeps


@pytest.mark.parametrize(
    ("code", "status", "message", "kind", "says"),
    [
        (401, "UNAUTHENTICATED", "bad", ConfigError, "fit keys set unit service_account"),
        (
            403,
            "PERMISSION_DENIED",
            "The caller does not have permission",
            ConfigError,
            f"share the form and the spreadsheet with {EMAIL}",
        ),
        (
            403,
            "PERMISSION_DENIED",
            "Google Forms API has not been used in project 1 before or it is disabled",
            ConfigError,
            "enable the Google Forms API",
        ),
        (404, "NOT_FOUND", "Requested entity was not found.", ConfigError, "check the id"),
        (400, "INVALID_ARGUMENT", "Invalid filter", SourceError, "Invalid filter"),
    ],
)
@responses.activate
def test_errors_are_not_retried_and_say_what_to_fix(
    code: int, status: str, message: str, kind: type[Exception], says: str
) -> None:
    responses.get(f"{FORMS}/v1/forms/form0000001", status=code, json=error(code, status, message))
    client, clock = api()
    with pytest.raises(kind) as exc:
        client.get_form("form0000001")
    assert says in str(exc.value) and "form form0000001" in str(exc.value)
    assert len(responses.calls) == 1 and clock.sleeps == []


@responses.activate
def test_missing_tab_and_empty_values() -> None:
    base = f"{SHEETS}/v4/spreadsheets/book0000001/values/"
    responses.get(
        base + "Scores%21A%3AA",
        status=400,
        json=error(400, "INVALID_ARGUMENT", "Unable to parse range: Scores!A:A"),
    )
    responses.get(base + "Other%21A%3AA", json={"range": "Other!A1:A1000"})
    client, _ = api()
    assert client.get_values("book0000001", "Scores!A:A", "Scores") is None
    assert client.get_values("book0000001", "Other!A:A", "Other") == []


@responses.activate
def test_a_missing_tab_answered_otherwise_is_checked_against_the_tab_list() -> None:
    values = f"{SHEETS}/v4/spreadsheets/book0000001/values/Scores%21A%3AA"
    book = f"{SHEETS}/v4/spreadsheets/book0000001"
    responses.get(values, status=404, json=error(404, "NOT_FOUND"))
    responses.get(book, json={"sheets": [{"properties": {"title": "Sheet1"}}]})
    client, _ = api()
    assert client.get_values("book0000001", "Scores!A:A", "Scores") is None
    responses.replace(responses.GET, book, status=404, json=error(404, "NOT_FOUND"))
    with pytest.raises(ConfigError, match="was not found"):
        client.get_values("book0000001", "Scores!A:A", "Scores")


# --- credentials ------------------------------------------------------------------------------


@responses.activate
def test_service_account_token_minted_at_the_token_uri_setting() -> None:
    responses.post("http://127.0.0.1:9/token", json={"access_token": "ya29.t", "expires_in": 60})
    responses.get(f"{FORMS}/v1/forms/f1", json={"formId": "f1"})
    identity = service_account_identity(
        service_account_json(EMAIL), "unit", "http://127.0.0.1:9/token"
    )
    assert identity.account == EMAIL
    loaded = Connection.load({}, "unit")
    client = GoogleApi(
        authorized_session(identity),
        loaded,
        source="unit",
        account=identity.account,
        timing=fast_timing()[0],
    )
    client.get_form("f1")
    grant = parse_qs(_text(responses.calls[0].request.body))
    assert grant["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    assert responses.calls[1].request.headers["Authorization"] == "Bearer ya29.t"
    assert "fit-sync/" in responses.calls[1].request.headers["User-Agent"]


@responses.activate
def test_a_refused_grant_is_a_config_error() -> None:
    responses.post(
        TOKEN,
        status=400,
        json={"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
    )
    identity = service_account_identity(service_account_json(EMAIL), "unit", TOKEN)
    client = GoogleApi(
        authorized_session(identity),
        Connection.load({}, "unit"),
        source="unit",
        account=EMAIL,
        timing=fast_timing()[0],
    )
    with pytest.raises(ConfigError, match="refused the credentials"):
        client.get_form("f1")


@responses.activate
def test_oauth_refresh_token_grant() -> None:
    responses.post(TOKEN, json={"access_token": "ya29.u", "expires_in": 60})
    responses.get(f"{FORMS}/v1/forms/f1", json={"formId": "f1"})
    text = json.dumps(
        {
            "type": "authorized_user",
            "client_id": "cid",
            "client_secret": "cs",
            "refresh_token": "rt",
        }
    )
    identity = oauth_identity(text, "unit", TOKEN)
    GoogleApi(
        authorized_session(identity),
        Connection.load({}, "unit"),
        source="unit",
        account=identity.account,
        timing=fast_timing()[0],
    ).get_form("f1")
    grant = parse_qs(_text(responses.calls[0].request.body))
    assert grant["grant_type"] == ["refresh_token"] and grant["refresh_token"] == ["rt"]


def test_identity_lookup_and_bad_secrets() -> None:
    def secrets(known: dict[str, str]) -> Any:
        def get(key: str) -> str:
            if key not in known:
                raise ConfigError(f"no {key}")
            return known[key]

        return get

    oauth = json.dumps({"client_id": "a", "client_secret": "b", "refresh_token": "c"})
    assert load_identity(secrets({"oauth": oauth}), "s", "auto", TOKEN).kind == "oauth"
    with pytest.raises(ConfigError, match="fit keys set s service_account --from-file"):
        load_identity(secrets({}), "s", "auto", TOKEN)
    with pytest.raises(ConfigError, match="not a JSON object") as exc:
        load_identity(
            secrets({"service_account": "-----BEGIN PRIVATE KEY----- abc"}),
            "s",
            "service_account",
            TOKEN,
        )
    assert "BEGIN" not in str(exc.value)
    broken = json.dumps({"type": "service_account", "client_email": "x", "private_key": "nope"})
    with pytest.raises(ConfigError, match="not a usable service-account key") as exc:
        load_identity(secrets({"service_account": broken}), "s", "auto", TOKEN)
    assert "nope" not in str(exc.value)


# --- throttle and sheet helpers ---------------------------------------------------------------


def test_window_throttle_waits_only_when_the_minute_is_spent() -> None:
    clock = FakeClock(now=0.0)
    throttle = WindowThrottle(0.0, clock=clock.clock, sleep=clock.sleep, limit=3)
    for _ in range(3):
        throttle.wait()
    assert clock.sleeps == []
    throttle.wait()
    assert clock.sleeps == [60.0]
    clock.now += 61
    throttle.wait()
    assert clock.sleeps == [60.0]


def test_rows_and_ranges() -> None:
    assert [column_letter(n) for n in (1, 15, 26, 27)] == ["A", "O", "Z", "AA"]
    assert quote_tab("Scores") == "Scores" and quote_tab("It's") == "'It''s'"
    assert [cell(v) for v in (None, True, 2.5, ["a", "b"], "=x")] == ["", True, 2.5, "a, b", "=x"]
    item = OutboxItem(
        "s", "R1:ORS", {"client_id": "C1", "total": 12.0, "flags": []}, "h", {"form_id": "f1"}
    )
    row = score_row(item)
    assert row[:4] == ["R1:ORS", "f1", "", "C1"] and row[8] == 12.0 and row[13] == ""
    sheet = ScoresSheet(api()[0], "book0000001", "Scores", fast_timing()[0])
    ranges = sheet._ranges([(5, ["e"]), (2, ["b"]), (3, ["c"]), (9, ["i"])])
    assert [r["range"] for r in ranges] == ["Scores!A2:O3", "Scores!A5:O5", "Scores!A9:O9"]


@responses.activate
def test_pull_logs_ids_never_answers(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    responses.get(f"{FORMS}/v1/forms/form0000001", json=FORM_DOC)
    responses.get(
        LIST,
        json={
            "responses": [
                {
                    "responseId": "R9",
                    "lastSubmittedTime": "2025-01-06T09:00:00Z",
                    "answers": answers(
                        **{"0000c1d0": "Jane-Doe-4711", "000000a1": "7", "000000a2": "x"}
                    ),
                }
            ]
        },
    )
    ctx = make_context("unit", options(), tmp_path, adapter=GoogleFormsAdapter)
    adapter = GoogleFormsAdapter(ctx, identity=token_identity("x"), timing=fast_timing()[0])
    with caplog.at_level(logging.DEBUG):
        items = list(adapter.pull(None))
    assert [i.source_key for i in items] == ["R9"]
    assert "Jane-Doe-4711" not in caplog.text and "form0000001" in caplog.text
    assert adapter.next_bookmark() is not None
    adapter.close()
