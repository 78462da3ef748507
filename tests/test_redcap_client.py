"""The REDCap HTTP client with `responses`: request encoding, error mapping, retries, throttle."""

from __future__ import annotations

import itertools
import json
import logging
import random
from urllib.parse import parse_qsl

import pytest
import requests
import responses

from fit_adapters.redcap.client import (
    BadRequestConfig,
    BadRequestSource,
    RedcapClient,
    ServerOutOfMemory,
    php_array,
    sanitize_error,
)
from fit_adapters.redcap.gate import Gate, make_throttle
from fit_core.errors import ConfigError, SourceError, SourceUnavailable

URL = "https://redcap.example.test/api/"
TOKEN = "0123456789ABCDEF0123456789ABCDEF"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client(**kw: object) -> RedcapClient:
    clock = FakeClock()
    options: dict[str, object] = {
        "source": "clinic",
        "gate": Gate(),
        "clock": clock,
        "sleep": clock.sleep,
        "rng": random.Random(1),
        "rate": 2.0,
    }
    options.update(kw)
    return RedcapClient(URL, TOKEN, **options)  # type: ignore[arg-type]


def body(call: responses.Call) -> list[tuple[str, str]]:
    raw = call.request.body
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return parse_qsl(text, keep_blank_values=True)


# --- encoding --------------------------------------------------------------------------------


def test_php_array_encoding() -> None:
    assert php_array("fields", ["a", "b"]) == [("fields[0]", "a"), ("fields[1]", "b")]


@responses.activate
def test_export_body_is_form_encoded_with_indexed_arrays_and_json_formats() -> None:
    responses.post(URL, json=[{"record_id": "1"}])
    rows = client().export_records(
        fields=["record_id", "ors_1"], records=["1", "2"], since="2025-01-15 05:55:00"
    )
    assert rows == [{"record_id": "1"}]
    call = responses.calls[0]
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    pairs = body(call)
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), "a repeated key: PHP would keep only the last"
    got = dict(pairs)
    assert got["fields[0]"] == "record_id" and got["fields[1]"] == "ors_1"
    assert got["records[0]"] == "1" and got["records[1]"] == "2"
    assert "fields" not in got and "records" not in got
    assert got["format"] == "json" and got["returnFormat"] == "json"
    assert got["content"] == "record" and got["action"] == "export" and got["type"] == "flat"
    assert got["rawOrLabel"] == "raw" and got["exportSurveyFields"] == "true"
    assert got["dateRangeBegin"] == "2025-01-15 05:55:00"
    assert got["token"] == TOKEN
    assert call.request.method == "POST"


@responses.activate
def test_import_sends_normal_overwrite_and_asks_for_ids() -> None:
    responses.post(URL, json=["1", "2"])
    ids = client().import_records([{"record_id": "1", "x": "1"}, {"record_id": "2", "x": ""}])
    assert ids == ["1", "2"]
    got = dict(body(responses.calls[0]))
    assert got["overwriteBehavior"] == "normal" and got["returnContent"] == "ids"
    assert got["action"] == "import" and json.loads(got["data"])[1] == {"record_id": "2", "x": ""}


# --- errors ----------------------------------------------------------------------------------


@responses.activate
def test_403_is_a_config_error_with_an_api_rights_hint_and_no_token() -> None:
    responses.post(URL, status=403, json={"error": "You do not have permissions to use the API"})
    with pytest.raises(ConfigError) as info:
        client().project()
    assert "403" in str(info.value) and "API Export" in str(info.value)
    assert TOKEN not in str(info.value)


@responses.activate
def test_403_on_import_hints_at_import_rights_and_cleanup_status() -> None:
    responses.post(URL, status=403, json={"error": "project in Analysis/Cleanup status"})
    with pytest.raises(ConfigError) as info:
        client().import_records([{"record_id": "1"}])
    assert "Import/Update" in str(info.value) and "Analysis/Cleanup" in str(info.value)


@responses.activate
def test_html_404_page_says_the_url_is_probably_wrong() -> None:
    responses.post(
        URL, status=404, body="<!DOCTYPE html><html>Not Found</html>", content_type="text/html"
    )
    with pytest.raises(ConfigError) as info:
        client().project()
    assert "probably not the REDCap API endpoint" in info.value.message
    assert "/api/" in (info.value.hint or "")


@responses.activate
def test_html_page_with_200_is_also_a_wrong_url() -> None:
    responses.post(
        URL, status=200, body="<html><body>Log in</body></html>", content_type="text/html"
    )
    with pytest.raises(ConfigError, match="probably not the REDCap API"):
        client().metadata()


@responses.activate
def test_redirect_is_never_followed_and_names_the_new_location() -> None:
    responses.post(URL, status=302, headers={"Location": "https://new.example.test/api/?x=1"})
    with pytest.raises(ConfigError) as info:
        client().project()
    assert "https://new.example.test/api/" in info.value.message
    assert len(responses.calls) == 1


@responses.activate
def test_429_is_never_retried_and_says_the_ip_may_be_banned() -> None:
    responses.post(URL, status=429, body="Too many requests", content_type="text/plain")
    c = client()
    with pytest.raises(SourceError) as info:
        c.project()
    assert len(responses.calls) == 1
    assert "banned" in info.value.message and "administrator" in (info.value.hint or "")
    assert info.value.exit_code == 1


@responses.activate
def test_out_of_memory_500_is_its_own_error_other_500s_are_source_errors() -> None:
    responses.post(
        URL,
        status=500,
        body="REDCap ran out of server memory. The request cannot be processed.",
        content_type="text/plain",
    )
    responses.post(URL, status=500, json={"error": "Something else"})
    c = client()
    with pytest.raises(ServerOutOfMemory):
        c.export_records(fields=["record_id"])
    with pytest.raises(SourceError, match="HTTP 500: Something else"):
        c.export_records(fields=["record_id"])
    assert len(responses.calls) == 2


@responses.activate
def test_400_messages_keep_field_names_and_drop_values() -> None:
    message = (
        '"1001","fit_ors_total","secret-value-12","The value is out of range"\n'
        '"1002","fit_ors_status","purple","The value is not one of the choices"'
    )
    responses.post(URL, status=400, json={"error": message})
    with pytest.raises(BadRequestConfig) as info:
        client().import_records([{"record_id": "1001"}])
    text = str(info.value)
    assert "record 1001, field fit_ors_total: The value is out of range" in text
    assert "secret-value-12" not in text and "purple" not in text
    assert info.value.exit_code == 3


@responses.activate
def test_400_without_field_words_is_a_source_error() -> None:
    responses.post(
        URL, status=400, json={"error": "The data being imported is not formatted correctly"}
    )
    with pytest.raises(BadRequestSource) as info:
        client().import_records([{"record_id": "1"}])
    assert info.value.exit_code == 1


@responses.activate
def test_xml_errors_are_read_too() -> None:
    responses.post(
        URL,
        status=400,
        body='<?xml version="1.0" ?><hash><error>The parameter '
        "&quot;fields&quot; is not valid</error></hash>",
        content_type="text/xml",
    )
    with pytest.raises(BadRequestConfig, match='The parameter "fields" is not valid'):
        client().project()


def test_sanitize_error_limits_lines() -> None:
    text = "\n".join(f'"{i}","f","v{i}xyz","bad"' for i in range(20))
    out = sanitize_error(text)
    assert out.count("record ") == 5 and out.endswith("and 15 more") and "xyz" not in out


@responses.activate
def test_repeating_forms_events_400_means_none() -> None:
    responses.post(
        URL,
        status=400,
        json={"error": "There are no repeated instruments or events in this project"},
    )
    assert client().repeating_forms_events() == []


# --- retries -----------------------------------------------------------------------------------


@responses.activate
def test_gateway_errors_are_retried_with_backoff() -> None:
    responses.post(URL, status=503, body="<html>busy</html>", content_type="text/html")
    responses.post(URL, status=502)
    responses.post(URL, json={"project_id": 7})
    backoffs: list[float] = []
    c = client(backoff_sleep=backoffs.append)
    assert c.project() == {"project_id": 7}
    assert len(responses.calls) == 3 and len(backoffs) == 2
    assert c.requests_sent == 3


@responses.activate
def test_gateway_errors_that_persist_are_unavailable() -> None:
    for _ in range(4):
        responses.post(URL, status=504)
    with pytest.raises(SourceUnavailable) as info:
        client(backoff_sleep=lambda s: None).project()
    assert info.value.exit_code == 4 and len(responses.calls) == 4


@responses.activate
def test_connection_errors_are_retried_then_unavailable() -> None:
    for _ in range(4):
        responses.post(URL, body=requests.ConnectionError("refused"))
    with pytest.raises(SourceUnavailable, match="cannot reach"):
        client(backoff_sleep=lambda s: None).project()
    assert len(responses.calls) == 4


@responses.activate
def test_tls_errors_are_config_errors_and_never_retried() -> None:
    responses.post(
        URL,
        body=requests.exceptions.SSLError(
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local "
            "issuer certificate (_ssl.c:1006)"
        ),
    )
    with pytest.raises(ConfigError) as info:
        client(backoff_sleep=lambda s: None).project()
    assert len(responses.calls) == 1
    assert "certificate verify failed" in info.value.message
    assert "ca-bundle" in (info.value.hint or "")


# --- throttle and logs ---------------------------------------------------------------------------


@responses.activate
def test_throttle_spaces_requests_from_the_end_of_each_response() -> None:
    clock = FakeClock()
    gate = Gate()

    arrivals: list[float] = []

    def slow_response(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        arrivals.append(clock.now)
        clock.now += 0.3  # the server takes 0.3 s to answer
        return 200, {}, '{"project_id": 1}'

    responses.add_callback(responses.POST, URL, callback=slow_response)
    c = RedcapClient(URL, TOKEN, source="s", gate=gate, clock=clock, sleep=clock.sleep, rate=2)
    for _ in range(4):
        c.project()
    # each request arrives >= 1/rate after the previous response ended (0.3 s after it came)
    assert len(arrivals) == 4
    assert all(b - a >= 0.3 + 0.5 for a, b in itertools.pairwise(arrivals))


def test_gate_throttle_is_shared_by_clients_of_one_server() -> None:
    clock = FakeClock()
    gate = Gate()
    first = make_throttle(2, gate, clock=clock, sleep=clock.sleep)
    second = make_throttle(2, gate, clock=clock, sleep=clock.sleep)
    first.wait()
    first.done()
    second.wait()  # a new adapter (the next run) on the same server still waits
    assert clock.sleeps and clock.sleeps[0] == pytest.approx(1.01 / 2)


@responses.activate
def test_no_token_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    responses.post(URL, status=403, json={"error": "no"})
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError):
        client().project()
    assert TOKEN not in caplog.text
