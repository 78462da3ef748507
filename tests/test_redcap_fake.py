"""The fake REDCap behaves as INTEGRATIONS.md says, oddities included (plain `requests` calls)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import requests
from fakes import redcap_fake as rf
from fakes.redcap_fake import (
    INTAKE,
    NOT_COMPLETED,
    OOM_TEXT,
    SESSION,
    TOKEN,
    FakeField,
    FakeProject,
    RedcapFake,
    clinic_project,
    php_parse,
)

redcap_fake = rf.redcap_fake  # the fixture
Start = Callable[..., RedcapFake]


def post(fake: RedcapFake, data: Any, **kw: Any) -> requests.Response:
    return requests.post(fake.url, data=data, timeout=10, **kw)


def export(fake: RedcapFake, **params: Any) -> list[dict[str, Any]]:
    data = {"token": TOKEN, "content": "record", "format": "json", "returnFormat": "json"}
    data.update(params)
    r = post(fake, data)
    assert r.status_code == 200, r.text
    return r.json()


def test_php_array_semantics() -> None:
    assert php_parse("fields[0]=a&fields[1]=b") == {"fields": ["a", "b"]}
    assert php_parse("fields=a&fields=b") == {"fields": "b"}
    assert php_parse("fields[]=a&fields[]=b&x=1") == {"fields": ["a", "b"], "x": "1"}


def test_repeated_keys_keep_only_the_last_value(redcap_fake: Start) -> None:
    fake = redcap_fake(clinic_project(2))
    base = {"token": TOKEN, "content": "record", "format": "json", "returnFormat": "json"}
    # what `requests` does with a list: fields=age&fields=clinician -> PHP keeps "clinician"
    naive = post(fake, {**base, "fields": ["age", "clinician"]}).json()
    assert "clinician" in naive[0] and "age" not in naive[0]
    indexed = post(fake, {**base, "fields[0]": "age", "fields[1]": "clinician"}).json()
    assert "age" in indexed[0] and "clinician" in indexed[0]
    commas = post(fake, {**base, "fields": "age,clinician"}).json()
    assert "age" in commas[0] and "clinician" in commas[0]


def test_post_only_and_html_404(redcap_fake: Start) -> None:
    fake = redcap_fake(clinic_project(1))
    assert requests.get(fake.url, timeout=10).status_code == 501
    wrong = requests.post(fake.url.replace("/api/", "/redcap/"), data={"token": TOKEN}, timeout=10)
    assert wrong.status_code == 404 and wrong.text.startswith("<!DOCTYPE html>")


def test_bad_token_is_403_and_errors_follow_return_format(redcap_fake: Start) -> None:
    fake = redcap_fake(clinic_project(1))
    xml = post(fake, {"token": "F" * 32, "content": "project"})
    assert xml.status_code == 403 and "<error>" in xml.text
    as_json = post(fake, {"token": "F" * 32, "content": "project", "returnFormat": "json"})
    assert as_json.status_code == 403 and "error" in as_json.json()
    body_json = requests.post(fake.url, json={"token": TOKEN, "content": "project"}, timeout=10)
    assert body_json.status_code == 403  # JSON bodies are not read: no token


def test_ban_is_permanent_and_plain_text(redcap_fake: Start) -> None:
    fake = redcap_fake(clinic_project(1), hit_limit=3)
    data = {"token": TOKEN, "content": "version"}
    assert [post(fake, data).status_code for _ in range(3)] == [200, 200, 200]
    banned = post(fake, data)
    assert banned.status_code == 429 and banned.headers["Content-Type"].startswith("text/plain")
    assert post(fake, data).status_code == 429 and fake.banned


def test_rows_instances_survey_fields_and_gray_status(redcap_fake: Start) -> None:
    project = clinic_project(1, seed=3, max_sessions=0)
    project.put(
        "1001",
        {"srs_1": 50, "srs_timestamp": NOT_COMPLETED, "srs_complete": 0},
        event=SESSION,
        repeat_instrument="srs",
        instance=1,
    )
    fake = redcap_fake(project)
    rows = export(
        fake,
        **{
            "fields[0]": "record_id",
            "fields[1]": "srs_1",
            "fields[2]": "srs_complete",
            "fields[3]": "ors_complete",
            "exportSurveyFields": "true",
        },
    )
    intake = next(r for r in rows if r["redcap_event_name"] == INTAKE)
    assert intake["redcap_repeat_instance"] == "" and intake["redcap_repeat_instrument"] == ""
    assert "redcap_survey_identifier" in intake and intake["srs_timestamp"]
    srs = next(r for r in rows if r["redcap_repeat_instrument"] == "srs")
    assert srs["redcap_repeat_instance"] == 1 and srs["srs_timestamp"] == NOT_COMPLETED
    assert srs["ors_complete"] == ""  # not this row's instrument
    assert list(intake)[:4] == [
        "record_id",
        "redcap_event_name",
        "redcap_repeat_instrument",
        "redcap_repeat_instance",
    ]
    text = redcap_fake(project, instance_as_text=True)
    srs = next(
        r for r in export(text, **{"fields[0]": "srs_1"}) if r["redcap_repeat_instrument"] == "srs"
    )
    assert srs["redcap_repeat_instance"] == "1"


def test_date_range_is_server_local(redcap_fake: Start) -> None:
    project = clinic_project(3)
    project.modified["1002"] = dt.datetime(2024, 7, 1, 12, 0, 0)
    fake = redcap_fake(project)
    rows = export(fake, **{"fields[0]": "record_id", "dateRangeBegin": "2024-07-01 12:00:00"})
    assert {r["record_id"] for r in rows} == {"1002"}
    rows = export(fake, **{"fields[0]": "record_id", "dateRangeEnd": "2024-06-30 00:00:00"})
    assert {r["record_id"] for r in rows} == {"1001", "1003"}
    bad = post(
        fake,
        {
            "token": TOKEN,
            "content": "record",
            "format": "json",
            "returnFormat": "json",
            "dateRangeBegin": "yesterday",
        },
    )
    assert bad.status_code == 400


def test_import_normal_never_erases_and_counts_records(redcap_fake: Start) -> None:
    fake = redcap_fake(clinic_project(2))
    key = (INTAKE, "", None)
    rows = [
        {
            "record_id": "1001",
            "redcap_event_name": INTAKE,
            "fit_ors_total": "20.5",
            "fit_ors_flags": "x",
        }
    ]
    base = {
        "token": TOKEN,
        "content": "record",
        "action": "import",
        "format": "json",
        "returnFormat": "json",
    }
    r = post(fake, {**base, "data": json.dumps(rows)})
    assert r.json() == {"count": 1}
    before = fake.project.modified["1001"]
    blank = [{"record_id": "1001", "redcap_event_name": INTAKE, "fit_ors_flags": ""}]
    r = post(fake, {**base, "data": json.dumps(blank), "returnContent": "ids"})
    assert r.json() == ["1001"]
    assert fake.project.data["1001"][key]["fit_ors_flags"] == "x"
    assert fake.project.modified["1001"] == before  # nothing changed: no new modification time
    post(fake, {**base, "data": json.dumps(blank), "overwriteBehavior": "overwrite"})
    assert fake.project.data["1001"][key]["fit_ors_flags"] == ""


def test_import_errors_are_400_lines(redcap_fake: Start) -> None:
    fake = redcap_fake(clinic_project(1))
    rows = [
        {"record_id": "1001", "redcap_event_name": INTAKE, "fit_ors_status": "purple"},
        {"record_id": "1001", "redcap_event_name": SESSION, "fit_ors_total": "3"},
        {"record_id": "1001", "redcap_event_name": INTAKE, "nope": "1"},
    ]
    r = post(
        fake,
        {
            "token": TOKEN,
            "content": "record",
            "action": "import",
            "format": "json",
            "returnFormat": "json",
            "data": json.dumps(rows),
        },
    )
    assert r.status_code == 400
    lines = r.json()["error"].split("\n")
    assert lines[0].startswith("The following fields were not found") and "nope" in lines[0]
    assert any('"fit_ors_status","purple"' in line for line in lines)
    assert any("repeating instrument" in line for line in lines)


def test_memory_limit_redirect_and_metadata_calls(redcap_fake: Start) -> None:
    fake = redcap_fake(clinic_project(10), memory_limit=50)
    r = post(fake, {"token": TOKEN, "content": "record", "format": "json", "returnFormat": "json"})
    assert r.status_code == 500 and r.text == OOM_TEXT
    moved = redcap_fake(clinic_project(1), redirect_to="https://elsewhere.test/api/")
    r = requests.post(moved.url, data={"token": TOKEN}, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "https://elsewhere.test/api/"
    classic = redcap_fake(FakeProject([FakeField("record_id", "demo")]))
    for content in ("formEventMapping", "repeatingFormsEvents"):
        r = post(
            classic, {"token": TOKEN, "content": content, "format": "json", "returnFormat": "json"}
        )
        assert r.status_code == 400 and "error" in r.json()
    r = post(
        fake,
        {
            "token": TOKEN,
            "content": "repeatingFormsEvents",
            "format": "json",
            "returnFormat": "json",
        },
    )
    assert {"event_name": SESSION, "form_name": "ors", "custom_form_label": ""} in r.json()
