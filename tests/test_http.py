"""The shared HTTP helpers: retry policy, Retry-After, throttle, no silent redirects."""

from __future__ import annotations

import random

import pytest
import requests
import responses

from fit_core.http import RetryPolicy, Throttle, make_session, retry_after_seconds, send

URL = "https://api.example.test/v1/x"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


@responses.activate
def test_retries_listed_statuses_with_backoff_and_retry_after() -> None:
    responses.get(URL, status=429, headers={"Retry-After": "3"})
    responses.get(URL, status=503)
    responses.get(URL, status=200, json={"ok": True})
    clock = FakeClock()
    policy = RetryPolicy(statuses=frozenset({429, 503}), backoff_base=1, backoff_cap=32)
    r = send(
        make_session(),
        "GET",
        URL,
        policy=policy,
        sleep=clock.sleep,
        clock=clock,
        rng=random.Random(1),
    )
    assert r.status_code == 200 and len(responses.calls) == 3
    assert clock.sleeps[0] == 3 and 0 <= clock.sleeps[1] <= 2


@responses.activate
def test_statuses_not_listed_are_returned_at_once() -> None:
    responses.post(URL, status=429, body="banned")
    r = send(make_session(), "POST", URL, policy=RetryPolicy(statuses=frozenset({503})))
    assert r.status_code == 429 and len(responses.calls) == 1


@responses.activate
def test_gives_up_within_max_elapsed() -> None:
    for _ in range(10):
        responses.get(URL, status=503)
    clock = FakeClock()
    policy = RetryPolicy(
        statuses=frozenset({503}), max_attempts=10, backoff_base=8, backoff_cap=60, max_elapsed=20
    )
    r = send(
        make_session(),
        "GET",
        URL,
        policy=policy,
        sleep=clock.sleep,
        clock=clock,
        rng=random.Random(3),
    )
    assert r.status_code == 503 and clock.now <= 20


@responses.activate
def test_connection_errors_retry_only_when_allowed() -> None:
    responses.get(URL, body=requests.ConnectionError("down"))
    with pytest.raises(requests.ConnectionError):
        send(make_session(), "GET", URL, policy=RetryPolicy(connection_errors=False))
    assert len(responses.calls) == 1


@responses.activate
def test_post_redirects_are_not_followed() -> None:
    responses.post(URL, status=302, headers={"Location": "https://elsewhere.test/api/"})
    r = send(make_session(), "POST", URL)
    assert r.status_code == 302 and r.headers["Location"].startswith("https://elsewhere")


def test_throttle_spaces_requests() -> None:
    clock = FakeClock()
    t = Throttle(0.5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        t.wait()
    assert clock.now == pytest.approx(2.0)


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@responses.activate
def test_tls_errors_are_never_retried() -> None:
    responses.get(URL, body=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(requests.exceptions.SSLError):
        send(make_session(), "GET", URL, policy=RetryPolicy(connection_errors=True))
    assert len(responses.calls) == 1


def test_a_configured_ca_bundle_beats_the_environment(monkeypatch) -> None:
    seen = {}

    class Recorder(requests.Session):
        def request(self, method, url, **kwargs):  # type: ignore[override]
            seen.update(kwargs)
            raise requests.exceptions.SSLError("stop")

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    session = Recorder()
    session.verify = "/srv/clinic-ca.pem"
    with pytest.raises(requests.exceptions.SSLError):
        send(session, "GET", URL)
    assert seen["verify"] == "/srv/clinic-ca.pem"
