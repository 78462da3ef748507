"""Alerts reach people: routing, once per route, digests on time, failures kept and retried,
minimum necessary content — against a real SMTP server (aiosmtpd) and a real HTTP server on
loopback, with the store filled by the real sync engine and "now" injected."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fakes import smtp_fake as sf
from fakes import webhook_fake as wf
from fakes.smtp_fake import SmtpFake
from fakes.webhook_fake import WebhookFake
from notify_clinic import ITEM_VALUES, NAME, NotifyClinic, day, hook_channel, mail_channel, row

smtp_fake = sf.smtp_fake  # the fixtures
webhook_fake = wf.webhook_fake

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(d: dt.date, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime.combine(d, dt.time(hh, mm), tzinfo=BERLIN)


def mail_ids(msg: Any) -> list[int]:
    """The alert numbers a message lists as new (its plain-text part)."""
    text = msg.parts()["text/plain"]
    head = text.split("No longer open:")[0]
    return sorted(int(n) for n in re.findall(r"\(alert #(\d+)\)", head))


def ended_ids(msg: Any) -> list[int]:
    text = msg.parts()["text/plain"]
    if "No longer open:" not in text:
        return []
    tail = text.split("No longer open:")[1]
    return sorted(int(n) for n in re.findall(r"\(alert #(\d+)\)", tail))


def by_rcpt(messages: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for m in messages:
        out.setdefault(",".join(sorted(m.rcpt_tos)), []).append(m)
    return out


@pytest.fixture
def servers(smtp_fake: Any, webhook_fake: Any) -> tuple[SmtpFake, WebhookFake]:
    return smtp_fake(), webhook_fake()


def routing_config(smtp: SmtpFake, hook: WebhookFake, **clin: Any) -> dict[str, Any]:
    return {
        "clinicians": {"T01": ["t01@clinic.example"], "T02": "t02@clinic.example"},
        "channels": {"mail": mail_channel(smtp), "hook": hook_channel(hook)},
        "routes": {
            "clinicians": {
                "channel": "mail",
                "to": "clinician",
                "fallback": ["frontdesk@clinic.example"],
                "when": "immediate",
                **clin,
            },
            "supervisor": {
                "channel": "mail",
                "to": ["supervision@clinic.example"],
                "severities": ["alert"],
                "when": "immediate",
            },
            "team": {
                "channel": "hook",
                "rules": ["srs.below_cutoff", "srs.drop"],
                "when": "immediate",
            },
        },
    }


@pytest.fixture
def clinic(tmp_path: Path, servers: tuple[SmtpFake, WebhookFake]) -> Iterator[NotifyClinic]:
    smtp, hook = servers
    c = NotifyClinic(tmp_path, routing_config(smtp, hook))
    c.seed()
    c.at(berlin(day(1), 19))
    c.sync()
    yield c
    c.close()


def test_each_alert_goes_to_its_clinician_the_supervisor_and_the_team(
    clinic: NotifyClinic, servers: tuple[SmtpFake, WebhookFake]
) -> None:
    smtp, hook = servers
    report = clinic.deliver()
    assert report.failed == 0
    a1, b2, c3 = (clinic.alert_ids(c) for c in ("A1", "B2", "C3"))
    mail = by_rcpt(smtp.accepted)
    # one message per recipient: each clinician their own clients' alerts
    assert [mail_ids(m) for m in mail["t01@clinic.example"]] == [sorted(a1)]
    assert [mail_ids(m) for m in mail["t02@clinic.example"]] == [sorted(b2)]
    # a client whose records name no clinician: the route's fallback
    assert [mail_ids(m) for m in mail["frontdesk@clinic.example"]] == [sorted(c3)]
    # the supervisor: severity "alert" only, from every clinician
    severe = {a["id"] for a in clinic.store.list_flags("open") if a["severity"] == "alert"}
    assert [mail_ids(m) for m in mail["supervision@clinic.example"]] == [sorted(severe)]
    # the team's chat: the alliance rules only, as one JSON message
    (hit,) = hook.accepted
    alliance = {
        a["id"]
        for a in clinic.store.list_flags("open")
        if a["rule_id"] in ("srs.below_cutoff", "srs.drop")
    }
    assert sorted(i["alert_id"] for i in hit.json["new"]) == sorted(alliance)
    assert hit.json["type"] == "fit.alerts" and hit.json["version"] == 1
    assert hit.key == hit.json["id"]  # the idempotency key is the message id
    by_route = {r.route: r for r in report.routes}
    assert by_route["clinicians"].sent == 3 and by_route["clinicians"].alerts == 6


def test_an_alert_is_told_once_per_route_also_when_carried_forward(
    clinic: NotifyClinic, servers: tuple[SmtpFake, WebhookFake]
) -> None:
    smtp, hook = servers
    clinic.deliver()
    first_mail, first_hooks = len(smtp.accepted), len(hook.accepted)
    assert first_mail == 4 and first_hooks == 1
    deterioration = next(
        a["id"]
        for a in clinic.store.list_flags("open", client="A1")
        if a["rule_id"] == "ors.reliable_deterioration"
    )
    # another session: A1 is still deteriorated (the same alert, carried to week 2)
    clinic.put("a1-o2", row("A1", 2, "ORS", total=13.5, clinician="T01"))
    clinic.put("a1-s2", row("A1", 2, "SRS", total=33, clinician="T01"))
    clinic.at(berlin(day(2), 19))
    clinic.sync()
    carried = clinic.store.alert(deterioration)
    assert carried is not None and carried["state"] == "open" and carried["session"] == 3
    clinic.deliver()
    clinic.deliver()
    new_mail = smtp.accepted[first_mail:]
    # nothing about the carried alert; only what is really new (or ended) since
    assert all(deterioration not in mail_ids(m) for m in new_mail)
    assert all(h.json["new"] == [] or h.json["ended"] for h in hook.accepted[first_hooks:])
    told = [i for m in smtp.accepted for i in mail_ids(m) if "t01" in m.rcpt_tos[0]]
    assert len(told) == len(set(told))


def test_digest_waits_for_its_clinic_time_and_tells_what_changed(
    tmp_path: Path, servers: tuple[SmtpFake, WebhookFake]
) -> None:
    smtp, hook = servers
    clinic = NotifyClinic(
        tmp_path,
        routing_config(smtp, hook, when="digest", at=["07:30"], quiet_days=["sun"]),
    )
    clinic.seed()
    monday = day(2)  # 2026-03-16
    tuesday = monday + dt.timedelta(days=1)
    clinic.at(berlin(monday, 6, 50))
    clinic.sync()
    digest = [m for m in smtp.accepted if "supervision" not in m.rcpt_tos[0]]
    assert not digest
    report = clinic.deliver()
    clinic_route = next(r for r in report.routes if r.route == "clinicians")
    assert clinic_route.sent == 0 and clinic_route.held == "next digest at 2026-03-16 07:30"
    assert [m.rcpt_tos for m in smtp.accepted] == [["supervision@clinic.example"]]  # immediate

    clinic.at(berlin(monday, 7, 29))
    clinic.deliver()
    assert len(smtp.accepted) == 1
    clinic.at(berlin(monday, 7, 31))
    clinic.deliver()
    digests = by_rcpt(smtp.accepted[1:])
    assert sorted(digests) == [
        "frontdesk@clinic.example",
        "t01@clinic.example",
        "t02@clinic.example",
    ]
    assert all(len(v) == 1 for v in digests.values())  # one message per recipient
    t01 = digests["t01@clinic.example"][0]
    assert mail_ids(t01) == sorted(clinic.alert_ids("A1"))
    assert t01.message["Subject"].startswith("[FIT] digest: 3 new alerts")
    assert "2026-03-16 07:31 (Europe/Berlin)" in t01.parts()["text/plain"]
    clinic.at(berlin(monday, 9))
    clinic.deliver()
    assert len(smtp.accepted) == 4  # the slot is handled: no second digest today

    # Monday evening: A1's alliance recovers (the two alliance alerts are superseded) and B2
    # deteriorates (a new alert)
    before = clinic.alert_ids("A1")
    clinic.put("a1-s2", row("A1", 2, "SRS", total=39, clinician="T01"))
    clinic.put("b2-o2", row("B2", 2, "ORS", total=12, clinician="T02"))
    clinic.at(berlin(monday, 20))
    clinic.sync()
    superseded = before - clinic.alert_ids("A1")
    assert len(superseded) == 2
    clinic.deliver()
    sent = len(smtp.accepted)
    assert sent == 4 + 1  # only the supervisor's immediate route told the new alert
    clinic.at(berlin(tuesday, 7, 45))
    clinic.deliver()
    tue = by_rcpt(smtp.accepted[sent:])
    assert sorted(tue) == ["t01@clinic.example", "t02@clinic.example"]
    (t01,) = tue["t01@clinic.example"]
    assert mail_ids(t01) == [] and ended_ids(t01) == sorted(superseded)
    assert "Superseded: " in t01.parts()["text/plain"]
    (t02,) = tue["t02@clinic.example"]
    assert mail_ids(t02) == sorted(clinic.alert_ids("B2") - {a for a in mail_ids(
        digests["t02@clinic.example"][0])})  # fmt: skip
    clinic.close()


def test_quiet_days_and_downtime_give_one_digest_later(
    tmp_path: Path, servers: tuple[SmtpFake, WebhookFake]
) -> None:
    smtp, hook = servers
    notify = routing_config(
        smtp, hook, when="digest", at=["07:30", "13:00"], quiet_days=["sat", "sun"]
    )
    del notify["routes"]["supervisor"], notify["routes"]["team"]
    clinic = NotifyClinic(tmp_path, notify, timezone="America/Chicago")
    clinic.seed()
    chicago = ZoneInfo("America/Chicago")
    friday = day(1) + dt.timedelta(days=4)  # 2026-03-13
    clinic.at(dt.datetime.combine(friday, dt.time(14), tzinfo=chicago))
    clinic.sync()  # the route is first seen now: nothing before 14:00 is owed
    clinic.deliver()
    assert smtp.accepted == []
    # the weekend is quiet; the machine is also off from Saturday to Tuesday noon
    clinic.at(dt.datetime.combine(friday + dt.timedelta(days=1), dt.time(8), tzinfo=chicago))
    clinic.deliver()
    assert smtp.accepted == []
    tuesday = friday + dt.timedelta(days=4)
    clinic.at(dt.datetime.combine(tuesday, dt.time(12), tzinfo=chicago))
    clinic.deliver()
    # one digest per recipient for Monday 07:30, 13:00 and Tuesday 07:30 together
    assert sorted(len(v) for v in by_rcpt(smtp.accepted).values()) == [1, 1, 1]
    clinic.deliver()
    assert len(smtp.accepted) == 3
    clinic.close()


def test_failing_mail_server_recovers_and_nothing_is_lost_or_doubled(
    clinic: NotifyClinic, servers: tuple[SmtpFake, WebhookFake]
) -> None:
    smtp, _hook = servers
    smtp.data_reply = "451 4.3.0 mail system busy, try again"
    report = clinic.deliver()
    clinicians = next(r for r in report.routes if r.route == "clinicians")
    assert clinicians.failed == 3 and clinicians.sent == 0
    assert "(451)" in clinicians.errors[0]
    assert smtp.accepted == []
    # down altogether: refused connections; the channel is tried once, not once per message
    smtp.stop()
    report = clinic.deliver()
    errors = [e for r in report.routes if r.route != "team" for e in r.errors]
    assert errors and all("connection refused" in e or "not tried" in e for e in errors)
    # back
    smtp.data_reply = None
    smtp.start()
    report = clinic.deliver()
    assert report.failed == 0
    told = by_rcpt(smtp.accepted)
    assert [mail_ids(m) for m in told["t01@clinic.example"]] == [sorted(clinic.alert_ids("A1"))]
    assert len(smtp.accepted) == 4
    clinic.deliver()
    assert len(smtp.accepted) == 4
    from fit_core.notify.ledger import Ledger

    assert Ledger(clinic.store).problems() == []


def test_failing_webhook_recovers(
    clinic: NotifyClinic, servers: tuple[SmtpFake, WebhookFake]
) -> None:
    _smtp, hook = servers
    hook.status = 503
    report = clinic.deliver()
    team = next(r for r in report.routes if r.route == "team")
    assert team.failed == 1 and "503" in team.errors[0]
    hook.status = None
    clinic.deliver()
    assert len(hook.accepted) == 1 and len(hook.hits) == 2
    assert hook.hits[0].key != hook.hits[1].key  # a refused message is planned afresh
    clinic.deliver()
    assert len(hook.hits) == 2


def test_an_address_added_later_gets_the_alerts_still_open(
    tmp_path: Path, servers: tuple[SmtpFake, WebhookFake]
) -> None:
    smtp, hook = servers
    notify = routing_config(smtp, hook)
    del notify["routes"]["clinicians"]["fallback"]
    del notify["clinicians"]["T02"]
    clinic = NotifyClinic(tmp_path, notify)
    clinic.seed()
    clinic.at(berlin(day(1), 19))
    clinic.sync()
    report = clinic.deliver()
    route = next(r for r in report.routes if r.route == "clinicians")
    assert route.unrouted == {"T02": 2, "": 1}
    from fit_core.aftersync import delivery_notes

    assert any("no address for clinician T02" in n for n in delivery_notes(report))
    notify["clinicians"]["T02"] = "t02@clinic.example"
    clinic.reconfigure(notify)
    clinic.deliver()
    t02 = by_rcpt(smtp.accepted)["t02@clinic.example"]
    assert [mail_ids(m) for m in t02] == [sorted(clinic.alert_ids("B2"))]
    clinic.close()


def test_no_item_values_names_or_ids_in_any_message(
    tmp_path: Path, servers: tuple[SmtpFake, WebhookFake], webhook_fake: Any
) -> None:
    smtp, hook = servers
    slack, teams = webhook_fake(flavour="slack"), webhook_fake(flavour="teams")
    notify = routing_config(smtp, hook)
    notify["channels"]["slack"] = hook_channel(slack, format="slack")
    notify["channels"]["teams"] = hook_channel(teams, format="teams")
    notify["routes"]["team"].pop("rules")
    notify["routes"]["scores"] = {
        "channel": "mail", "to": ["research@clinic.example"], "detail": "scores",
        "when": "immediate",
    }  # fmt: skip
    notify["routes"]["slack"] = {"channel": "slack", "when": "immediate", "to": "clinician"}
    notify["routes"]["teams"] = {"channel": "teams", "when": "immediate"}
    clinic = NotifyClinic(tmp_path, notify)
    clinic.seed()
    clinic.at(berlin(day(1), 19))
    clinic.sync()
    report = clinic.deliver()
    assert report.failed == 0, report.as_dict()
    texts = [m.everything() for m in smtp.accepted]
    texts += [h.body.decode() for h in hook.hits + slack.hits + teams.hits]
    assert len(smtp.accepted) == 5 and len(texts) == 5 + 1 + 3 + 1
    everything = "\n".join(texts)
    for value in ITEM_VALUES:
        assert not re.search(rf"(?<![\d.]){re.escape(value)}(?!\d)", everything), value
    assert NAME not in everything and "Muster" not in everything
    # the rule that quotes an item value is told by its description instead
    low_item = next(a for a in clinic.store.list_flags("open") if a["rule_id"] == "srs.low_item")
    assert "8.37" in low_item["message"]
    assert "Item values are not sent in messages" in everything
    # pseudonyms by default: the clinic's client codes are not in the messages
    plain = re.sub(r"P-[A-Z2-7]{5}-[A-Z2-7]{5}", "P-…", everything)  # may hold "A1" by chance
    for client in ("A1", "B2", "C3"):
        assert not re.search(rf"\b{client}\b", plain)
    assert re.search(r"client P-[A-Z2-7]{5}-[A-Z2-7]{5}", everything)
    # scores only where asked for, with the copyright lines wherever alerts are listed
    scores = by_rcpt(smtp.accepted)["research@clinic.example"][0].parts()["text/plain"]
    assert "Scores: latest ORS 14 (−6.0 since intake); latest SRS 33" in scores
    assert all("Scores:" not in m.parts()["text/plain"] for m in smtp.accepted if m is not None
               and "research" not in m.rcpt_tos[0])  # fmt: skip
    for text in texts:
        assert "ORS © 2000 Scott D. Miller and Barry L. Duncan." in text
    assert all(h.json["text"] for h in slack.hits)
    clinic.close()


def test_client_ids_and_records_only_with_an_explicit_setting(
    tmp_path: Path, servers: tuple[SmtpFake, WebhookFake]
) -> None:
    smtp, hook = servers
    notify = routing_config(smtp, hook, client_label="id")
    clinic = NotifyClinic(tmp_path, notify, reports={"caseload_dir": "caseload"})
    clinic.seed()
    clinic.at(berlin(day(1), 19))
    clinic.sync()
    clinic.deliver()
    t01 = by_rcpt(smtp.accepted)["t01@clinic.example"][0].parts()["text/plain"]
    assert "client A1," in t01 and "record a1-o1 in mem" in t01
    # where to look: the client's page in the caseload folder, named by pseudonym
    assert re.search(r"caseload/clients/P-[A-Z2-7]{5}-[A-Z2-7]{5}\.html", t01)
    assert str(tmp_path / "caseload" / "caseload-T01.html") in t01
    supervisor = by_rcpt(smtp.accepted)["supervision@clinic.example"][0].parts()["text/plain"]
    assert "client A1" not in supervisor and "record " not in supervisor
    clinic.close()


def test_preview_shows_the_next_digest_without_sending_or_recording(
    tmp_path: Path, servers: tuple[SmtpFake, WebhookFake]
) -> None:
    smtp, hook = servers
    clinic = NotifyClinic(tmp_path, routing_config(smtp, hook, when="digest", at=["07:30"]))
    clinic.seed()
    clinic.at(berlin(day(1), 19))
    clinic.sync()
    clinic.deliver()  # as `fit sync` does: the immediate routes go, the digest waits
    smtp.accepted.clear()
    hook.accepted.clear()
    count = "SELECT COUNT(*) FROM notify_messages"
    before = clinic.store.conn.execute(count).fetchone()[0]
    previews = {p.route.name: p for p in clinic.dispatcher().preview()}
    digest = previews["clinicians"]
    assert not digest.due_now and digest.when.startswith("held: next digest at")
    planned = {m.recipient: m for m in digest.plan.messages}
    assert sorted(planned) == ["clinician:T01", "clinician:T02", "fallback"]
    ids = sorted(i["alert_id"] for i in planned["clinician:T01"].content["new"])
    assert smtp.accepted == [] and hook.accepted == []
    assert clinic.store.conn.execute(count).fetchone()[0] == before
    clinic.at(berlin(day(1) + dt.timedelta(days=1), 7, 30))
    clinic.deliver()
    assert mail_ids(by_rcpt(smtp.accepted)["t01@clinic.example"][0]) == ids
    clinic.close()


def test_skip_starts_a_route_without_its_backlog(
    clinic: NotifyClinic, servers: tuple[SmtpFake, WebhookFake]
) -> None:
    _smtp, hook = servers
    assert clinic.dispatcher().skip("team") == 3
    clinic.deliver(routes=["team"])
    assert hook.hits == []
    clinic.put("b2-s2", row("B2", 2, "SRS", total=30, clinician="T02"))
    clinic.at(berlin(day(2), 19))
    clinic.sync()
    clinic.deliver(routes=["team"])
    (hit,) = hook.accepted
    assert {i["rule_id"] for i in hit.json["new"]} == {"srs.below_cutoff"}
    assert hit.json["ended"] == []  # the skipped alerts were never told, so neither is their end


def test_the_password_comes_from_a_systemd_credential(
    clinic: NotifyClinic,
    servers: tuple[SmtpFake, WebhookFake],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fit_core.secrets import SecretStore

    smtp, _hook = servers
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "notify_mail.password").write_text(smtp.password + "\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    clinic.secrets = SecretStore()
    report = clinic.deliver(routes=["supervisor"])
    assert report.failed == 0 and smtp.logins == [smtp.user]
    # a wrong password is a failure that names the secret to fix, and is retried
    (creds / "notify_mail.password").write_text("wrong\n", encoding="utf-8")
    clinic.put("c3-o2", row("C3", 2, "ORS", total=14))
    clinic.at(berlin(day(2), 19))
    clinic.sync()
    report = clinic.deliver(routes=["clinicians"])
    (route,) = report.routes
    assert route.failed and "refused the login" in route.errors[0]
    assert "wrong" not in json.dumps(report.as_dict())


def test_a_failed_digest_is_retried_at_the_next_run_not_the_next_day(
    tmp_path: Path, servers: tuple[SmtpFake, WebhookFake]
) -> None:
    smtp, hook = servers
    notify = routing_config(smtp, hook, when="digest", at=["07:30"])
    del notify["routes"]["supervisor"], notify["routes"]["team"]
    clinic = NotifyClinic(tmp_path, notify)
    clinic.seed()
    monday = day(2)
    clinic.at(berlin(monday, 6))
    clinic.sync()
    clinic.deliver()
    smtp.data_reply = "451 4.4.5 insufficient system storage"
    clinic.at(berlin(monday, 7, 35))
    assert clinic.deliver().failed == 3
    smtp.data_reply = None
    clinic.at(berlin(monday, 7, 50))  # between digest times: the failed digests go now
    report = clinic.deliver()
    assert report.routes[0].sent == 3 and len(smtp.accepted) == 3
    clinic.at(berlin(monday, 8, 5))
    clinic.deliver()
    assert len(smtp.accepted) == 3  # and once only
    clinic.close()


def test_an_immediate_route_holds_its_messages_on_a_quiet_day(
    tmp_path: Path, servers: tuple[SmtpFake, WebhookFake]
) -> None:
    smtp, hook = servers
    notify = routing_config(smtp, hook, quiet_days=["sun"])
    clinic = NotifyClinic(tmp_path, notify)
    clinic.seed()
    sunday = day(1) + dt.timedelta(days=6)
    clinic.at(berlin(sunday, 10))
    clinic.sync()
    report = clinic.deliver()
    held = next(r for r in report.routes if r.route == "clinicians")
    assert held.sent == 0 and held.held == "a quiet day"
    assert all("t0" not in m.rcpt_tos[0] for m in smtp.accepted)  # the other routes went
    clinic.at(berlin(sunday + dt.timedelta(days=1), 0, 5))
    clinic.deliver()
    assert sorted(m.rcpt_tos[0] for m in smtp.accepted if "t0" in m.rcpt_tos[0]) == [
        "t01@clinic.example",
        "t02@clinic.example",
    ]
    clinic.close()


def test_a_config_that_cannot_work_is_a_note_after_the_sync(tmp_path: Path) -> None:
    from fit_core.aftersync import after_sync

    notify = {
        "channels": {"pager": {"type": "pager"}},
        "routes": {"r": {"channel": "pager", "when": "immediate"}},
    }
    clinic = NotifyClinic(tmp_path, notify)
    clinic.seed()
    clinic.at(berlin(day(1), 19))
    assert clinic.sync().exit_code == 0
    notes = after_sync(clinic.config, clinic.registry, clinic.store, secrets=clinic.secrets)
    assert notes == [
        "notifications not sent: no notification channel type named 'pager' "
        "(installed: email, webhook)"
    ]
    clinic.close()
