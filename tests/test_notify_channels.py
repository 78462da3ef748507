"""The built-in channels against real servers on loopback: e-mail over SMTP (STARTTLS, implicit
TLS, a private CA, logins, refusals) and webhooks (the documented JSON, Slack and Teams formats,
headers, secrets, failures)."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fakes import smtp_fake as sf
from fakes import webhook_fake as wf
from fakes.smtp_fake import SmtpFake, free_port

from fit_core.errors import ConfigError
from fit_core.notify.channel import ChannelContext, DeliveryError, Message
from fit_core.notify.email import EmailNotifier, EmailOptions
from fit_core.notify.render import message_of
from fit_core.notify.webhook import WebhookNotifier, WebhookOptions

smtp_fake = sf.smtp_fake  # the fixtures
webhook_fake = wf.webhook_fake

CONTENT = {
    "route": "clinicians", "kind": "immediate",
    "recipient": {"key": "clinician:T01", "words": "clinician T01", "clinician_id": "T01"},
    "addresses": ["t01@clinic.example", "t01@home.example"],
    "created_at": "2026-01-06T06:30:00+00:00", "local_time": "2026-01-06 07:30",
    "timezone": "Europe/Berlin", "since": None,
    "new": [{
        "alert_id": 7, "client": "P-AAAAA-BBBBB", "rule_id": "srs.drop",
        "title": "Alliance dropped", "severity": "warning",
        "message": "Alliance fell 2 points.", "session": 3, "first_session": 3,
        "date": "2026-01-05", "report": None, "record": None,
    }],
    "ended": [], "open": 1, "caseload": "https://fit.clinic.example/caseload-T01.html",
    "detail": "minimal", "client_label": "pseudonym", "copyright": ["ORS ©", "SRS ©"],
}  # fmt: skip


def message(**change: Any) -> Message:
    return message_of({**CONTENT, **change}, "f" * 32)


def ctx(options: dict[str, Any], secrets: dict[str, str] | None = None, name: str = "mail") -> Any:
    secrets = secrets or {}

    def secret(key: str) -> str:
        if key not in secrets:
            raise ConfigError(f"secret {key!r} for source 'notify_{name}' is not set")
        return secrets[key]

    return ChannelContext(name, options, secret, secrets.get)


def mailer(smtp: SmtpFake, **extra: Any) -> EmailNotifier:
    raw = {"host": "127.0.0.1", "port": smtp.port, "security": smtp.security,
           "from": "FIT alerts <fit-alerts@clinic.example>", "cafile": str(smtp.cafile),
           "timeout": 5, **extra}  # fmt: skip
    if smtp.user and "username" not in raw:
        raw["username"] = smtp.user
    options = EmailOptions().load(raw)
    return EmailNotifier(ctx(options, {"password": smtp.password}))


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_mail_goes_out_over_tls_with_a_login(smtp_fake: Any, security: str) -> None:
    smtp = smtp_fake(security=security)
    n = mailer(smtp)
    n.check()  # connects and logs in, sends nothing
    n.send(message())
    n.send(message(route="again"))  # the same connection carries the next message
    n.close()
    assert smtp.logins == [smtp.user] * 2 and len(smtp.accepted) == 2
    got = smtp.accepted[0]
    assert got.mail_from == "fit-alerts@clinic.example"
    assert got.rcpt_tos == ["t01@clinic.example", "t01@home.example"]
    msg = got.message
    assert msg["Message-ID"] == f"<{'f' * 32}@clinic.example>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Subject"] == "[FIT] 1 new alert · clinician T01"
    assert msg.get_content_type() == "multipart/alternative"
    parts = got.parts()
    assert "Alliance fell 2 points." in parts["text/plain"]
    assert "Alliance fell 2 points." in parts["text/html"]
    assert '<a href="https://fit.clinic.example/caseload-T01.html">' in parts["text/html"]


def test_an_untrusted_certificate_is_refused(smtp_fake: Any) -> None:
    smtp = smtp_fake()
    options = EmailOptions().load(
        {"host": "127.0.0.1", "port": smtp.port, "from": "fit@clinic.example", "timeout": 5}
    )
    n = EmailNotifier(ctx(options))
    with pytest.raises(DeliveryError) as exc:
        n.send(message())
    assert "cannot be trusted" in exc.value.message and exc.value.channel_down
    assert smtp.arrived == []


def test_a_refused_login_names_the_secret_and_never_the_password(smtp_fake: Any) -> None:
    smtp = smtp_fake()
    options = EmailOptions().load(
        {"host": "127.0.0.1", "port": smtp.port, "from": "fit@clinic.example", "timeout": 5,
         "username": smtp.user, "cafile": str(smtp.cafile)}
    )  # fmt: skip
    n = EmailNotifier(ctx(options, {"password": "not-the-password"}))
    with pytest.raises(ConfigError) as exc:
        n.send(message())
    assert "refused the login" in exc.value.message and "535" in exc.value.message
    assert "fit keys set notify_mail password" in str(exc.value.hint)
    assert "not-the-password" not in str(exc.value)
    missing = EmailNotifier(ctx(options))
    with pytest.raises(ConfigError, match="secret 'password'"):
        missing.check()


def test_starttls_is_required_when_asked_for(smtp_fake: Any) -> None:
    smtp = smtp_fake(security="none", user=None)
    options = EmailOptions().load(
        {"host": "127.0.0.1", "port": smtp.port, "from": "fit@clinic.example", "timeout": 5}
    )
    with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
        EmailNotifier(ctx(options)).send(message())
    assert smtp.arrived == []


def test_refused_recipients(smtp_fake: Any, caplog: pytest.LogCaptureFixture) -> None:
    smtp = smtp_fake()
    smtp.reject_rcpt = {"t01@home.example"}
    n = mailer(smtp)
    with caplog.at_level(logging.WARNING):
        n.send(message())
    assert smtp.accepted[0].rcpt_tos == ["t01@clinic.example"]
    assert "refused 1 of 2 addresses (t01@home.example)" in caplog.text
    smtp.reject_rcpt = {"t01@clinic.example", "t01@home.example"}
    with pytest.raises(DeliveryError, match="refused every recipient \\(550\\)") as exc:
        n.send(message())
    assert not exc.value.maybe_delivered
    n.close()


def test_a_server_that_is_not_there(tmp_path: Path) -> None:
    options = EmailOptions().load(
        {"host": "127.0.0.1", "port": free_port(), "from": "fit@clinic.example", "timeout": 5}
    )
    with pytest.raises(DeliveryError) as exc:
        EmailNotifier(ctx(options)).send(message())
    assert "connection refused" in exc.value.message
    assert exc.value.channel_down and not exc.value.maybe_delivered


# --- webhooks ----------------------------------------------------------------------------------


def hook(url: str | None, secrets: dict[str, str] | None = None, **extra: Any) -> WebhookNotifier:
    raw = {"timeout": 5, **extra}
    if url:
        raw["url"] = url
    return WebhookNotifier(ctx(WebhookOptions().load(raw), secrets, name="chat"))


def test_the_json_payload_and_its_headers(webhook_fake: Any) -> None:
    server = webhook_fake()
    n = hook(server.url, {"token": "t0ken-abc"})
    n.send(message())
    (hit,) = server.accepted
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["idempotency-key"] == "f" * 32
    assert hit.headers["authorization"] == "Bearer t0ken-abc"
    assert hit.headers["user-agent"].startswith("fit-sync/")
    body = hit.json
    assert {k: body[k] for k in ("type", "version", "id", "kind", "route")} == {
        "type": "fit.alerts", "version": 1, "id": "f" * 32, "kind": "immediate",
        "route": "clinicians",
    }  # fmt: skip
    assert body["recipient"] == {"key": "clinician:T01", "clinician_id": "T01"}
    (item,) = body["new"]
    assert item["alert_id"] == 7 and item["client"] == "P-AAAAA-BBBBB"
    assert item["severity"] == "warning" and item["date"] == "2026-01-05"
    assert body["ended"] == [] and body["open"] == 1 and body["text"].startswith("New FIT alerts")
    assert body["copyright"] == ["ORS ©", "SRS ©"]


@pytest.mark.parametrize("fmt", ["slack", "teams"])
def test_chat_formats_are_taken_by_the_chat_tools(webhook_fake: Any, fmt: str) -> None:
    server = webhook_fake(flavour=fmt)
    n = hook(server.url, format=fmt)
    n.send(message())  # a 400 from the flavoured server would raise
    (hit,) = server.accepted
    if fmt == "slack":
        assert set(hit.json) == {"text"} and "Alliance fell 2 points." in hit.json["text"]
    else:
        card = hit.json["attachments"][0]["content"]
        texts = " ".join(b["text"] for b in card["body"])
        assert card["type"] == "AdaptiveCard" and "Alliance fell 2 points." in texts
    if fmt == "teams":  # the documented JSON is not a card: Teams refuses it
        wrong = webhook_fake(flavour=fmt)
        with pytest.raises(DeliveryError, match="answered 400"):
            hook(wrong.url, format="json").send(message())


def test_the_url_may_be_a_secret(webhook_fake: Any) -> None:
    server = webhook_fake()
    hook(None, {"url": server.url}).send(message())
    assert len(server.accepted) == 1
    with pytest.raises(ConfigError) as exc:
        hook(None).send(message())
    assert "fit keys set notify_chat url" in str(exc.value.hint)
    with pytest.raises(ConfigError, match="must be https"):
        hook(None, {"url": "http://chat.example/x"}).send(message())


def test_webhook_failures_say_whether_the_message_may_have_arrived(webhook_fake: Any) -> None:
    server = webhook_fake(status=503)
    with pytest.raises(DeliveryError) as exc:
        hook(server.url).send(message())
    assert "answered 503" in exc.value.message and not exc.value.maybe_delivered
    server = webhook_fake(hang=True)
    with pytest.raises(DeliveryError) as exc:
        hook(server.url, timeout=1).send(message())
    assert exc.value.maybe_delivered  # it arrived; the answer did not
    assert len(server.hits) == 1
    with pytest.raises(DeliveryError) as exc:
        hook(f"http://127.0.0.1:{free_port()}/x").send(message())
    assert exc.value.channel_down and not exc.value.maybe_delivered


def test_created_at_is_the_mail_date(smtp_fake: Any) -> None:
    smtp = smtp_fake()
    mailer(smtp).send(message())
    assert smtp.accepted[0].message["Date"].datetime == dt.datetime(
        2026, 1, 6, 6, 30, tzinfo=dt.UTC
    )
