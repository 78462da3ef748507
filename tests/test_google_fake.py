"""The loopback Google fake behaves as INTEGRATIONS.md says the real APIs do."""

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
from fakes.google_fake import Formula, GoogleFake, measure_form

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
