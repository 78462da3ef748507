"""`fit notify ...`, and what `fit check`, `fit keys list` and `fit plugins` say about
notifications, run through the real command line against loopback servers."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from fakes import smtp_fake as sf
from fakes import webhook_fake as wf
from fakes.smtp_fake import SmtpFake
from fakes.webhook_fake import WebhookFake
from notify_clinic import write_csv_clinic

from fit_cli.main import cli

smtp_fake = sf.smtp_fake  # the fixtures
webhook_fake = wf.webhook_fake


def fit(cfg: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(cfg), *args], catch_exceptions=False)


@pytest.fixture
def setup(
    tmp_path: Path, smtp_fake: Any, webhook_fake: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, SmtpFake, WebhookFake]:
    smtp, hook = smtp_fake(), webhook_fake()
    monkeypatch.setenv("FIT_NOTIFY_MAIL_PASSWORD", smtp.password)
    cfg = write_csv_clinic(
        tmp_path,
        {
            "mail": {
                "type": "email", "host": "127.0.0.1", "port": smtp.port,
                "username": smtp.user, "from": "fit@clinic.example",
                "cafile": str(smtp.cafile), "timeout": 5,
            },
            "chat": {"type": "webhook", "url": hook.url, "format": "slack", "timeout": 5},
        },
        {
            "clinicians": {"channel": "mail", "to": "clinician", "when": "digest",
                           "at": ["07:30"]},
            "team": {"channel": "chat", "when": "immediate"},
        },
    )  # fmt: skip
    res = fit(cfg, "sync")
    assert res.exit_code == 0, res.output
    return cfg, smtp, hook


def test_preview_prints_the_next_digest_and_sends_nothing(
    setup: tuple[Path, SmtpFake, WebhookFake],
) -> None:
    cfg, smtp, _hook = setup
    res = fit(cfg, "notify", "preview", "--route", "clinicians")
    assert res.exit_code == 0, res.output
    assert "=== route clinicians (held: next digest at" in res.stdout
    assert "--- to clinician T01 <t01@clinic.example>" in res.stdout
    assert "Subject: digest: 6 new alerts · clinician T01" in res.stdout
    # a client's alerts together, the client with an alert first
    text = res.stdout.split("--- to clinician T02")[0]
    clients = re.findall(r"— client (P-[A-Z2-7-]+),", text)
    assert len(clients) == 6 and clients[:3] == [clients[0]] * 3 and clients[3:] == [clients[3]] * 3
    assert smtp.accepted == []
    res = fit(cfg, "notify", "preview", "--json")
    payloads = {p["route"]: p for p in json.loads(res.stdout)}
    assert [m["recipient"]["clinician_id"] for m in payloads["clinicians"]["messages"]] == [
        "T01",
        "T02",
    ]
    assert payloads["team"]["messages"] == []  # the sync told the team already


def test_send_now_status_and_skip(setup: tuple[Path, SmtpFake, WebhookFake]) -> None:
    cfg, smtp, hook = setup
    assert len(hook.accepted) == 1  # `fit sync` delivered the immediate route
    res = fit(cfg, "notify", "status")
    assert res.exit_code == 0, res.output
    assert "route clinicians: email channel mail → each alert's clinician (2 with addresses)" in (
        res.stdout
    )
    clinicians = res.stdout.split("route team")[0]
    assert "waiting: 12 new alert(s), 0 ending(s) not told yet" in clinicians
    res = fit(cfg, "notify", "send", "--now", "--route", "clinicians")
    assert res.exit_code == 0, res.output
    assert "route clinicians: sent 2 message(s) (12 new, 0 ended)" in res.stdout
    assert sorted(m.rcpt_tos[0] for m in smtp.accepted) == [
        "t01@clinic.example",
        "t02@clinic.example",
    ]
    status = json.loads(fit(cfg, "notify", "status", "--json").stdout)
    clin = next(r for r in status if r["route"] == "clinicians")
    assert clin["waiting_new"] == 0 and clin["problems"] == [] and clin["last_sent"]
    res = fit(cfg, "notify", "skip", "team", "--yes")
    assert res.exit_code == 0 and "0 open alert(s) recorded as told" in res.stdout


def test_a_test_message_carries_no_patient_information(
    setup: tuple[Path, SmtpFake, WebhookFake],
) -> None:
    cfg, smtp, hook = setup
    res = fit(cfg, "notify", "test", "clinicians", "--to", "it@clinic.example")
    assert res.exit_code == 0, res.output
    assert "sent a test message to the given addresses (it@clinic.example)" in res.stdout
    (msg,) = smtp.accepted
    assert msg.rcpt_tos == ["it@clinic.example"]
    text = msg.everything()
    assert "test" in msg.message["Subject"] and "no patient information" in text
    assert not re.search(r"K000\d|P-[A-Z2-7]{5}|alert #", text)
    res = fit(cfg, "notify", "test", "clinicians")  # every clinician with an address
    assert res.stdout.count("sent a test message to clinician") == 2
    hook.status = 404
    res = fit(cfg, "notify", "test", "team")
    assert res.exit_code == 1
    assert "test message on route team failed: the webhook at 127.0.0.1 answered 404" in (
        res.stderr
    )


def test_check_keys_and_plugins_know_the_channels(
    setup: tuple[Path, SmtpFake, WebhookFake], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, smtp, _hook = setup
    res = fit(cfg, "check")
    assert res.exit_code == 0, res.output
    assert f"notify channel mail (email, smtp 127.0.0.1:{smtp.port} (starttls)): ok" in res.stdout
    assert "notify channel chat (webhook, webhook 127.0.0.1 (slack)): ok" in res.stdout
    res = fit(cfg, "keys", "list", "--json")
    rows = {r["source"]: r for r in json.loads(res.stdout)}
    mail = rows["notify_mail"]
    assert mail["adapter"] == "email channel"
    assert mail["secrets"][0]["key"] == "password" and mail["secrets"][0]["found"] == "env"
    monkeypatch.delenv("FIT_NOTIFY_MAIL_PASSWORD")
    res = fit(cfg, "check")
    assert res.exit_code == 3
    assert "notify channel mail (email): FAILED: secret 'password' for source 'notify_mail'" in (
        res.stdout
    )
    res = fit(cfg, "plugins")
    assert "notification channels: email, webhook" in res.stdout


def test_without_routes_the_commands_say_how_to_add_one(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[store]\npath = "{tmp_path / "fit.sqlite3"}"\n', encoding="utf-8")
    res = fit(cfg, "notify", "status")
    assert res.exit_code == 3
    assert "no notification routes are configured" in res.stderr
    assert "[notify.routes.NAME]" in res.stderr
