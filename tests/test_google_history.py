"""Unit tests: the mapping history of a form, `fit google inspect`'s measure evidence, and the
error texts for refused scopes and grants. No network (``responses`` for HTTP)."""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
import tomllib
from pathlib import Path
from typing import Any

import google.auth.exceptions
import pytest
import requests
import responses

from fit_adapters.google_forms.client import GoogleApi, Timing, grant_error
from fit_adapters.google_forms.formdef import parse_form
from fit_adapters.google_forms.history import Epoch, FormHistory, Spec, review
from fit_adapters.google_forms.mapping import form_from_json, resolve
from fit_adapters.google_forms.options import Connection, GoogleOptions
from fit_adapters.google_forms.proposal import decide_measure, propose
from fit_adapters.google_forms.records import response_records
from fit_core.errors import ConfigError

sys.path.insert(0, str(Path(__file__).parent))
from fakes.google_fake import FakeClock, scope_error

T = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def q(qid: str, title: str, **kind: Any) -> dict[str, Any]:
    return {
        "itemId": "i" + qid,
        "title": title,
        "questionItem": {"question": {"questionId": qid, **kind}},
    }


def scale(low: int = 0, high: int = 10) -> dict[str, Any]:
    sq: dict[str, Any] = {"high": high}
    if low:
        sq["low"] = low
    return {"scaleQuestion": sq}


def form_doc(title: str = "Check-in", low: int = 0, *, titles: tuple[str, ...] = ()) -> dict:
    names = titles or ("Individually", "Interpersonally", "Socially", "Overall")
    return {
        "info": {"title": title},
        "items": [
            q("0000c1d0", "Client code", textQuestion={}),
            q("0000d1d0", "Session date", dateQuestion={}),
            *(q(f"000000a{i + 1}", t, **scale(low)) for i, t in enumerate(names)),
        ],
    }


def mapping(**over: Any) -> Any:
    form = {
        "form_id": "form0000001",
        "client_id": "Client code",
        "measures": {
            "ORS": {"q1": "000000a1", "q2": "000000a2", "q3": "000000a3", "q4": "000000a4"}
        },
        **over,
    }
    return GoogleOptions.load({"spreadsheet_id": "book0000001", "forms": [form]}, "c").forms[0]


# --- the history ------------------------------------------------------------------------------


def history_of(doc: dict[str, Any]) -> FormHistory:
    found = review(mapping(), parse_form("form0000001", doc), None, "c")
    return found.first_epoch(T.isoformat())


def test_a_history_round_trips_and_picks_the_epoch_in_force_when_answered() -> None:
    h = history_of(form_doc())
    resolved = h.latest.mapping
    assert form_from_json(json.loads(json.dumps(resolved.to_json()))) == resolved
    assert h.latest.questions["000000a1"] == Spec("scale", 0, 10)

    found = review(mapping(), parse_form("form0000001", form_doc(low=1)), h, "c")
    assert found.changed[0] == (
        "measures.ORS.q1 (question 000000a1) was a 0-10 scale, is now a 1-10 scale"
    )
    assert found.differs and not found.stopped and found.current is not None
    newer = h.with_epoch(Epoch(T, found.current, dict(found.specs), T.isoformat()))
    back = FormHistory.from_json("form0000001", newer.to_json())
    assert back == newer and len(back.epochs) == 2
    before, after = T - dt.timedelta(seconds=1), T + dt.timedelta(microseconds=1)
    assert back.epoch_for(before).mapping.measures[0].items[0][1] == "range:0:10"
    assert back.epoch_for(T).mapping.measures[0].items[0][1] == "range:0:10"  # "after" is strict
    assert back.epoch_for(after).mapping.measures[0].items[0][1] == "range:1:10"
    assert back.epoch_for(None) is back.latest
    # a new epoch after the newest answer read needs no re-read; one before it does
    h.newest_read = T
    assert h.with_epoch(Epoch(T, found.current, {}, "")).fingerprint == h.fingerprint
    assert h.with_epoch(Epoch(None, found.current, {}, "")).fingerprint != h.fingerprint


def test_review_tells_gone_changed_and_remapped_apart() -> None:
    h = history_of(form_doc())
    doc = form_doc()
    doc["items"] = [i for i in doc["items"] if i["itemId"] != "i000000a3"]
    gone = review(mapping(), parse_form("form0000001", doc), h, "c")
    assert gone.stopped and not gone.differs and gone.current is None
    assert gone.gone == ["measures.ORS.q3 (question 000000a3)"]

    same = review(mapping(), parse_form("form0000001", form_doc()), h, "c")
    assert not (same.stopped or same.differs)
    edited = mapping(
        measures={"ORS": {"q1": "000000a2", "q2": "000000a1", "q3": "000000a3", "q4": "000000a4"}},
        administered_at={"title": "Session date"},
        rater="parent",
    )
    remapped = review(edited, parse_form("form0000001", form_doc()), h, "c")
    assert remapped.remapped == [
        "measures.ORS.q1: question 000000a1 → question 000000a2",
        "measures.ORS.q2: question 000000a2 → question 000000a1",
        "administered_at: createTime → question 0000d1d0",
        "rater: client → parent",
    ]
    with pytest.raises(ConfigError, match="no question with questionId"):
        review(mapping(client_id={"id": "nope0000"}), parse_form("form0000001", doc), None, "c")


def test_an_explicit_scale_must_agree_with_the_form() -> None:
    explicit = mapping(
        measures={
            "ORS": {
                "q1": "000000a1",
                "q2": "000000a2",
                "q3": "000000a3",
                "q4": "000000a4",
                "scale": "range:0:10",
            }
        }
    )
    resolve(explicit, parse_form("form0000001", form_doc()), "c")
    with pytest.raises(ConfigError) as exc:
        resolve(explicit, parse_form("form0000001", form_doc(low=1)), "c")
    assert (
        "measures.ORS.q1: the mapping says range:0:10 but question 000000a1 is a 1-10 scale "
        "on the form now"
    ) in str(exc.value)


def test_the_session_date_question_or_else_the_first_submission_dates_a_response() -> None:
    form = resolve(
        mapping(administered_at={"title": "Session date"}), parse_form("f", form_doc()), "c"
    )

    def response(**answers: str) -> dict[str, Any]:
        return {
            "responseId": "R1",
            "createTime": "2025-01-06T09:00:00Z",
            "lastSubmittedTime": "2025-02-20T10:00:00Z",
            "answers": {
                k: {"questionId": k, "textAnswers": {"answers": [{"value": v}]}}
                for k, v in answers.items()
            },
        }

    (dated,) = response_records(response(**{"0000d1d0": "2025-01-05"}), form)
    assert dated.data["administered_at"] == "2025-01-05"  # type: ignore[union-attr]
    (fallback,) = response_records(response(), form)
    assert fallback.data["administered_at"] == "2025-01-06T09:00:00+00:00"  # type: ignore[union-attr]


# --- inspect: the measure from the evidence ---------------------------------------------------


def proposal_of(doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    text = propose(parse_form("form0000001", doc), "c")
    return text, tomllib.loads(text)["sources"]["c"]["forms"][0]


def test_an_ors_form_titled_session_proposes_ors() -> None:
    titles = tuple(f"ORS {i} — {d}" for i, d in enumerate(["Me", "Family", "Work", "All"], 1))
    text, parsed = proposal_of(form_doc("Session feedback", titles=titles))
    assert list(parsed["measures"]) == ["ORS"]
    assert "measure from the question titles" in text
    # every guess says # check: the measure, the client id and the date question
    guesses = [line for line in text.splitlines() if line.startswith(("[", "client_id", "admin"))]
    assert guesses and all("# check" in line for line in guesses[1:])
    assert parsed["administered_at"] == {"id": "0000d1d0"}


def test_domain_labels_outweigh_a_vague_form_title() -> None:
    _text, parsed = proposal_of(form_doc("Session check-in"))  # Individually, Socially, ...
    assert list(parsed["measures"]) == ["ORS"]


def test_disagreeing_evidence_is_not_proposed() -> None:
    doc = form_doc("Weekly", titles=("ORS 1", "ORS 2", "ORS 3", "ORS 4"))
    doc["items"].insert(2, {"itemId": "p1", "title": "SRS", "pageBreakItem": {}})
    text, parsed = proposal_of(doc)
    assert "measures" not in parsed
    assert "# check: not proposed: the evidence disagrees" in text
    assert "the question titles say ORS" in text and "the section title 'SRS' say SRS" in text
    mixed = form_doc(titles=("ORS 1", "ORS 2", "SRS 3", "SRS 4"))
    assert "the question titles name different measures (ORS, SRS)" in proposal_of(mixed)[0]


def test_without_evidence_the_order_decides_and_says_so() -> None:
    group = parse_form("f", form_doc(titles=("A", "B", "C", "D"))).questions[2:]
    verdict = decide_measure(group, "Weekly", [])
    assert (verdict.measure, verdict.basis) == ("ORS", "the order of the groups only")
    assert decide_measure(group, "Session feedback", []).measure == "SRS"  # weak, still # check
    assert decide_measure(group, "Weekly", ["ORS"]).measure == "SRS"


# --- errors that name their real cause --------------------------------------------------------


def api(kind: str) -> GoogleApi:
    clock = FakeClock()
    session = requests.Session()
    session.headers["Authorization"] = "Bearer x"
    return GoogleApi(
        session,
        Connection.load({}, "unit"),
        source="unit",
        account="someone@example.org",
        timing=Timing(clock.clock, clock.sleep, random.Random(1)),
        kind=kind,
    )


@pytest.mark.parametrize(
    ("op", "url", "scope"),
    [
        ("forms.get", "https://forms.googleapis.com/v1/forms/f1", "auth/forms.body.readonly"),
        (
            "values.get",
            "https://sheets.googleapis.com/v4/spreadsheets/b1/values/Scores%21A%3AA",
            "auth/spreadsheets",
        ),
    ],
)
@responses.activate
def test_a_403_for_scopes_names_the_scope_not_sharing(op: str, url: str, scope: str) -> None:
    err = scope_error(op, ("x",))  # Google's own body and header for a missing scope
    responses.get(url, status=403, json=err.body(), headers=err.headers)
    client = api("oauth")
    with pytest.raises(ConfigError) as exc:
        if op == "forms.get":
            client.get_form("f1")
        else:
            client.get_values("b1", "Scores!A:A", "Scores")
    text = str(exc.value)
    assert f"lacks the OAuth scope https://www.googleapis.com/{scope}" in text
    assert "consent" in text and "fit keys set unit oauth" in text
    assert "share the form" not in text


@pytest.mark.parametrize(
    ("kind", "body", "says", "never"),
    [
        (
            "oauth",
            {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
            ["refresh token", "consent", "fit keys set s oauth", "Testing"],
            ["service account", "key.json"],
        ),
        (
            "service_account",
            {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
            ["deleted or disabled", "fit keys set s service_account --from-file key.json"],
            ["refresh token"],
        ),
        (
            "service_account",
            {
                "error": "invalid_grant",
                "error_description": "Invalid JWT: Token must be a short-lived token (60 "
                "minutes) and in a reasonable timeframe. Check your iat and exp values.",
            },
            ["clock"],
            ["key.json"],
        ),
        (
            "oauth",
            {"error": "invalid_scope", "error_description": "Bad Request"},
            ["scopes", "forms.responses.readonly", "fit keys set s oauth"],
            ["service account"],
        ),
    ],
)
def test_a_refused_grant_is_explained_for_the_credential_in_use(
    kind: str, body: dict[str, str], says: list[str], never: list[str]
) -> None:
    exc = google.auth.exceptions.RefreshError(f"{body['error']}: x", body)  # as google-auth does
    text = str(grant_error(exc, kind, "s", "someone@example.org"))
    assert all(s in text for s in says), text
    assert not any(n in text for n in never), text
    assert "('" not in text and "{'" not in text and body["error"] in text
