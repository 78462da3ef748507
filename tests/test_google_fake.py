"""The loopback Google fake behaves as the real APIs do, data changing over time included."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

sys.path.insert(0, str(Path(__file__).parent))
from fakes import google_fake as fake_module
from fakes.google_fake import FORMS_SCOPE, RESPONSES_SCOPE, Formula, GoogleFake, measure_form

google_fake = fake_module.google_fake  # the fixture the fake module ships, used below

T0 = dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def fake() -> Iterator[GoogleFake]:
    with GoogleFake.running() as f:
        f.tokens["tok"] = "tester@example.org"
        doc, layout = measure_form("formA000001", ["ORS"])
        f.add_form("formA000001", doc)
        for i in range(5):
            f.add_response(
                "formA000001",
                {layout.client: f"C{i}", layout.items["ORS"][0]: "0", layout.items["ORS"][1]: None},
                submitted=T0 + dt.timedelta(minutes=i),
            )
        f.add_spreadsheet("book0000001", ["Sheet1", "Scores"])
        yield f


def get(fake: GoogleFake, path: str, token: str = "tok", **params: Any) -> requests.Response:
    return requests.get(
        fake.url + path, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )


def post(fake: GoogleFake, path: str, body: Any, **params: Any) -> requests.Response:
    return requests.post(
        fake.url + path,
        params=params,
        json=body,
        headers={"Authorization": "Bearer tok"},
        timeout=5,
    )


LIST = "/v1/forms/formA000001/responses"


def test_answers_are_strings_and_unanswered_questions_absent(fake: GoogleFake) -> None:
    doc = get(fake, LIST).json()
    first = doc["responses"][0]
    assert all(
        isinstance(a["textAnswers"]["answers"][0]["value"], str) for a in first["answers"].values()
    )
    assert len(first["answers"]) == 2  # the None answer is absent, "0" is kept
    assert "nextPageToken" not in doc


def test_filter_supports_only_timestamp_greater(fake: GoogleFake) -> None:
    at = "2025-01-06T09:02:00Z"
    assert len(get(fake, LIST, filter=f"timestamp >= {at}").json()["responses"]) == 3
    assert len(get(fake, LIST, filter=f"timestamp > {at}").json()["responses"]) == 2
    bad = get(fake, LIST, filter=f"timestamp < {at}")
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    late = get(fake, LIST, filter="timestamp >= 2030-01-01T00:00:00Z")
    assert late.status_code == 200 and "responses" not in late.json()  # empty: no key at all


def test_page_tokens_are_tied_to_their_filter(fake: GoogleFake) -> None:
    f = "timestamp >= 2025-01-01T00:00:00Z"
    page1 = get(fake, LIST, filter=f, pageSize=2).json()
    token = page1["nextPageToken"]
    page2 = get(fake, LIST, filter=f, pageSize=2, pageToken=token).json()
    assert {r["responseId"] for r in page1["responses"]}.isdisjoint(
        r["responseId"] for r in page2["responses"]
    )
    other = get(fake, LIST, filter="timestamp > 2025-01-01T00:00:00Z", pageSize=2, pageToken=token)
    assert other.status_code == 400


def test_auth_sharing_and_missing_things(fake: GoogleFake) -> None:
    assert get(fake, LIST, token="nope").json()["error"]["status"] == "UNAUTHENTICATED"
    fake.denied.add("formA000001")
    assert get(fake, LIST).json()["error"] == {
        "code": 403,
        "message": "The caller does not have permission",
        "status": "PERMISSION_DENIED",
    }
    assert get(fake, "/v1/forms/nope0000000").status_code == 404
    missing = get(fake, "/v4/spreadsheets/book0000001/values/Nope!A:A")
    assert missing.status_code == 400 and "Unable to parse range" in missing.text


def test_raw_keeps_formulas_as_text_user_entered_runs_them(fake: GoogleFake) -> None:
    text = '=HYPERLINK("http://example.org","x")'
    for option in ("RAW", "USER_ENTERED"):
        r = post(
            fake,
            "/v4/spreadsheets/book0000001/values/Scores!A1:append",
            {"values": [[option, text, "7"]]},
            valueInputOption=option,
        )
        assert r.status_code == 200, r.text
    raw, typed = fake.tab("book0000001", "Scores") or []
    assert raw == ["RAW", text, "7"] and isinstance(raw[1], str)
    assert typed == ["USER_ENTERED", Formula(text), 7]
    shown = get(fake, "/v4/spreadsheets/book0000001/values/Scores!A:C").json()["values"]
    assert shown == [["RAW", text, "7"], ["USER_ENTERED", "x", "7"]]
    assert (
        post(
            fake, "/v4/spreadsheets/book0000001/values/Scores!A1:append", {"values": [["x"]]}
        ).status_code
        == 400
    )  # valueInputOption is required


def test_injected_quota_error_has_googles_body_and_may_apply(fake: GoogleFake) -> None:
    fake.inject("values.append", 429, apply=True, retry_after="3")
    r = post(
        fake,
        "/v4/spreadsheets/book0000001/values/Scores!A1:append",
        {"values": [["k1"]]},
        valueInputOption="RAW",
    )
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    assert r.json()["error"]["code"] == 429
    assert r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert fake.tab("book0000001", "Scores") == [["k1"]]  # applied, though the answer was 429
    assert [c.status for c in fake.ops("values.append")] == [429]


def test_batch_update_writes_fixed_ranges(fake: GoogleFake) -> None:
    body = {
        "valueInputOption": "RAW",
        "data": [
            {"range": "Scores!A1:B2", "values": [["h1", "h2"], ["a", 1.5]]},
            {"range": "'Scores'!A4", "values": [["z"]]},
        ],
    }
    assert post(fake, "/v4/spreadsheets/book0000001/values:batchUpdate", body).status_code == 200
    assert fake.tab("book0000001", "Scores") == [["h1", "h2"], ["a", 1.5], [], ["z"]]
    over = {
        "valueInputOption": "RAW",
        "data": [{"range": "Scores!A1:A1", "values": [["a"], ["b"]]}],
    }
    assert post(fake, "/v4/spreadsheets/book0000001/values:batchUpdate", over).status_code == 400


def test_the_shipped_fixture_serves_on_loopback(google_fake: GoogleFake) -> None:
    assert google_fake.url.startswith("http://127.0.0.1:")
    assert google_fake.token_uri == google_fake.url + "/token"
    r = requests.post(
        google_fake.token_uri,
        data={"grant_type": "refresh_token", "refresh_token": "unknown"},
        timeout=5,
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


# --- data that changes over time --------------------------------------------------------------


def items_of(fake: GoogleFake) -> dict[str, dict[str, Any]]:
    doc = get(fake, "/v1/forms/formA000001").json()
    return {
        i["questionItem"]["question"]["questionId"]: i["questionItem"]["question"]
        for i in doc["items"]
        if "questionItem" in i
    }


def test_a_form_edited_after_setup_shows_only_its_current_state(fake: GoogleFake) -> None:
    before = get(fake, "/v1/forms/formA000001").json()
    answers_before = get(fake, LIST).json()["responses"]
    q1, q2, _q3, _q4 = (q for q, v in items_of(fake).items() if "scaleQuestion" in v)
    fake.set_scale("formA000001", q1, 1, 10)
    fake.delete_question("formA000001", q2)
    fake.add_question(
        "formA000001",
        {"itemId": "inew", "title": "New", "questionItem": {"question": {"questionId": "0new"}}},
    )
    after = get(fake, "/v1/forms/formA000001").json()
    now = items_of(fake)
    assert now[q1]["scaleQuestion"]["low"] == 1 and q2 not in now and "0new" in now
    assert after["revisionId"] != before["revisionId"]
    assert get(fake, LIST).json()["responses"] == answers_before  # answers keep their values
    fake.set_scale("formA000001", q1, 0, 10)
    assert "low" not in items_of(fake)[q1]["scaleQuestion"]  # proto3 leaves a 0 out


def test_an_edit_keeps_create_time_and_a_deleted_response_is_no_longer_listed(
    fake: GoogleFake,
) -> None:
    first, second = get(fake, LIST).json()["responses"][:2]
    fake.edit_response("formA000001", first["responseId"], {}, submitted=T0 + dt.timedelta(days=9))
    fake.delete_response("formA000001", second["responseId"])
    listed = {r["responseId"]: r for r in get(fake, LIST).json()["responses"]}
    edited = listed[first["responseId"]]
    assert edited["createTime"] == first["createTime"]
    assert edited["lastSubmittedTime"] == "2025-01-15T09:00:00.000000Z"
    assert second["responseId"] not in listed and len(listed) == 4


def token(fake: GoogleFake, **form: str) -> requests.Response:
    return requests.post(fake.token_uri, data=form, timeout=5)


def test_a_token_without_the_scope_gets_googles_403(fake: GoogleFake) -> None:
    fake.refresh_tokens["rt"] = "user@example.org"
    fake.granted["rt"] = {FORMS_SCOPE}
    minted = token(fake, grant_type="refresh_token", refresh_token="rt").json()
    assert minted["scope"] == FORMS_SCOPE  # no scope asked: the consented ones
    access = minted["access_token"]
    assert get(fake, "/v1/forms/formA000001", token=access).status_code == 200
    denied = get(fake, LIST, token=access)
    assert denied.status_code == 403
    err = denied.json()["error"]
    assert err["status"] == "PERMISSION_DENIED"
    assert err["message"] == "Request had insufficient authentication scopes."
    assert err["errors"][0]["reason"] == "insufficientPermissions"
    (info,) = err["details"]
    assert info["reason"] == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
    assert info["metadata"]["service"] == "forms.googleapis.com"
    assert 'error="insufficient_scope"' in denied.headers["WWW-Authenticate"]
    assert RESPONSES_SCOPE in denied.headers["WWW-Authenticate"]
    more = token(fake, grant_type="refresh_token", refresh_token="rt", scope=RESPONSES_SCOPE)
    assert more.status_code == 400 and more.json()["error"] == "invalid_scope"


def test_refused_grants_say_what_google_says(fake: GoogleFake) -> None:
    fake.refresh_tokens["rt"] = "user@example.org"
    fake.revoked.add("user@example.org")
    r = token(fake, grant_type="refresh_token", refresh_token="rt")
    assert r.status_code == 400 and r.json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }
    odd = token(fake, grant_type="password")
    assert odd.status_code == 400 and odd.json()["error"] == "unsupported_grant_type"
