"""The fake REDCap behaves as REDCap's documentation says, oddities included (plain requests)."""

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


def export(fake: RedcapFake, token: str = TOKEN, **params: Any) -> list[dict[str, Any]]:
    data = {"token": token, "content": "record", "format": "json", "returnFormat": "json"}
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


def test_memory_runs_out_on_rows_as_well_as_cells(redcap_fake: Start) -> None:
    project = clinic_project(40, seed=2)
    fake = redcap_fake(project, row_limit=100)
    # the record ids alone: few cells, but one row per record, event and repeat instance
    r = post(
        fake,
        {
            "token": TOKEN,
            "content": "record",
            "format": "json",
            "returnFormat": "json",
            "fields[0]": "record_id",
        },
    )
    assert r.status_code == 500 and r.text == OOM_TEXT
    small = export(fake, **{"fields[0]": "record_id", "records[0]": "1001", "records[1]": "1002"})
    assert 0 < len(small) <= 100
    assert fake.hits[-1].rows == len(small)
    # the data dictionary counts the same way
    big = redcap_fake(project, row_limit=10)
    meta = post(big, {"token": TOKEN, "content": "metadata", "format": "json"})
    assert meta.status_code == 500
    forms = post(
        big,
        {
            "token": TOKEN,
            "content": "metadata",
            "format": "json",
            "returnFormat": "json",
            "forms[0]": "ors",
        },
    )
    assert forms.status_code == 200 and {f["form_name"] for f in forms.json()} == {"ors"}
    names = post(big, {"token": TOKEN, "content": "instrument", "format": "json"}).json()
    assert [n["instrument_name"] for n in names] == ["demographics", "ors", "srs", "fit_scores"]


def test_filter_logic_selects_records_and_bad_logic_is_400(redcap_fake: Start) -> None:
    fake = redcap_fake(clinic_project(30, seed=4))
    rows = export(
        fake,
        **{"fields[0]": "record_id", "filterLogic": "[record_id] >= 1010 and [record_id] < 1013"},
    )
    assert {r["record_id"] for r in rows} == {"1010", "1011", "1012"}
    rows = export(
        fake, **{"fields[0]": "record_id", "filterLogic": "[record_id] = '1001' or (1 = 2)"}
    )
    assert {r["record_id"] for r in rows} == {"1001"}
    for bad in ("[record_id] >", "sum([age]) > 3", "[nope] = 1"):
        r = post(
            fake,
            {
                "token": TOKEN,
                "content": "record",
                "format": "json",
                "returnFormat": "json",
                "filterLogic": bad,
            },
        )
        assert r.status_code == 400, bad


def test_date_range_end_and_events_narrow_an_export(redcap_fake: Start) -> None:
    project = clinic_project(5, seed=3, modified=None)  # each record changed at its last survey
    fake = redcap_fake(project)
    times = sorted(project.modified.values())
    assert len(set(times)) > 1
    cut = times[2].strftime("%Y-%m-%d %H:%M:%S")
    rows = export(fake, **{"fields[0]": "record_id", "dateRangeEnd": cut})
    assert {r["record_id"] for r in rows} == {
        r for r, m in project.modified.items() if m <= times[2]
    }
    rows = export(fake, **{"fields[0]": "record_id", "events[0]": INTAKE})
    assert {r["redcap_event_name"] for r in rows} == {INTAKE} and len(rows) == 5


def test_a_data_access_group_token_sees_and_writes_only_its_group(redcap_fake: Start) -> None:
    project = clinic_project(6, seed=5)
    project.dags = {"north": "North clinic", "south": "South clinic"}
    project.record_dag = {r: ("north" if int(r) % 2 else "south") for r in project.data}
    north = "A" * 32
    fake = redcap_fake(project, dag_tokens={north: "north"})
    everyone = export(fake, **{"fields[0]": "record_id", "exportDataAccessGroups": "true"})
    assert {r["redcap_data_access_group"] for r in everyone} == {"north", "south"}
    mine = export(fake, token=north, **{"fields[0]": "record_id", "exportDataAccessGroups": "true"})
    assert {r["record_id"] for r in mine} == {"1001", "1003", "1005"}
    assert "redcap_data_access_group" not in mine[0]  # not exported to a user in a group
    base = {
        "token": north,
        "content": "record",
        "action": "import",
        "format": "json",
        "returnFormat": "json",
        "returnContent": "ids",
    }
    theirs = [{"record_id": "1002", "redcap_event_name": INTAKE, "fit_ors_total": "12.0"}]
    r = post(fake, {**base, "data": json.dumps(theirs)})
    assert r.status_code == 400 and "Data Access Group" in r.json()["error"]
    assert project.value("1002", "fit_ors_total", event=INTAKE) == ""
    new = [{"record_id": "2001", "redcap_event_name": INTAKE, "age": "40"}]
    assert post(fake, {**base, "data": json.dumps(new)}).json() == ["2001"]
    assert project.record_dag["2001"] == "north"
    groups = post(fake, {"token": TOKEN, "content": "dag", "format": "json"}).json()
    assert {g["unique_group_name"] for g in groups} == {"north", "south"}


def test_skipped_srs_shift_the_srs_instances(redcap_fake: Start) -> None:
    project = clinic_project(200, seed=6, skip_srs=0.3)
    shifted = 0
    for rows in project.data.values():
        for (event, ri, n), values in rows.items():
            if ri != "srs" or values.get("srs_timestamp") in (None, NOT_COMPLETED):
                continue
            ors = rows.get((event, "ors", n), {}).get("ors_timestamp", "")
            if ors[:10] != values["srs_timestamp"][:10]:
                shifted += 1
    assert shifted > 20  # instance n of srs is often not the session of instance n of ors


def test_session_layout_of_an_existing_scoring_instrument() -> None:
    names = [f.name for f in clinic_project(1, scoring="session").fields if f.form == "fit_scores"]
    assert names == list(rf.SESSION_LAYOUT)
    legacy = [f.name for f in clinic_project(1, scoring="legacy").fields if f.form == "fit_scores"]
    assert "fit_date" not in legacy and "fit_ors_total" in legacy
