"""The parts of notifications on their own: the [notify] config (strict, secrets refused),
digest times across zones and daylight-saving changes, the ledger's migration and what it
forgets about a client, and the rendering of a message."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fit_core.config import config_from_mapping
from fit_core.errors import ConfigError, FitError
from fit_core.notify.config import RouteConfig, check_notify, notify_from_mapping
from fit_core.notify.schedule import is_quiet, last_slot, next_slot, slot_due
from fit_core.plugins import load_plugins
from fit_core.store import MIGRATIONS, SCHEMA_VERSION, Store

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.UTC


def notify(**routes: Any) -> dict[str, Any]:
    return {
        "clinicians": {"T01": "t01@clinic.example"},
        "channels": {
            "mail": {"type": "email", "host": "smtp.clinic.example", "from": "fit@clinic.example"},
            "chat": {"type": "webhook", "url": "https://chat.example/hook"},
        },
        "routes": routes or {"r": {"channel": "mail", "to": "clinician", "at": ["07:30"]}},
    }


def error(raw: dict[str, Any]) -> str:
    with pytest.raises(FitError) as exc:
        check_notify(notify_from_mapping(raw), load_plugins())
    return f"{exc.value.message} | {exc.value.hint}"


# --- config ------------------------------------------------------------------------------------


def test_a_valid_config_loads_with_its_defaults() -> None:
    n = notify_from_mapping(notify())
    route = n.routes["r"]
    assert route.when == "digest" and route.at == (dt.time(7, 30),)
    assert route.detail == "minimal" and route.client_label == "pseudonym"
    assert route.ended is True and route.enabled
    options = check_notify(n, load_plugins())
    assert options["mail"]["security"] == "starttls" and options["chat"]["format"] == "json"
    immediate = notify_from_mapping(notify(x={"channel": "chat", "when": "immediate"}))
    assert immediate.routes["x"].ended is False  # an immediate route tells new alerts only


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"routes": {"r": {"channel": "mail", "to": "clinician", "at": "7:30", "severity": []}}},
         "unknown key 'severity' in [notify.routes.r]"),
        ({"extra": 1}, "unknown key 'extra' in [notify]"),
        ({"routes": {"r": {"channel": "nope"}}}, "channel 'nope' is not defined"),
        ({"routes": {"r": {"channel": "mail", "to": "clinician"}}}, "is a digest without times"),
        ({"routes": {"r": {"channel": "mail", "at": ["25:00"]}}}, "'25:00' is not a time of day"),
        ({"routes": {"r": {"channel": "mail", "when": "immediate", "quiet_days": ["someday"]}}},
         "'someday' is neither a weekday nor a date"),
        ({"routes": {"r": {"channel": "mail", "when": "immediate", "severities": ["red"]}}},
         "'red' is not a severity"),
        ({"clinicians": {"T01": "anna at clinic"}}, "is not an e-mail address"),
        ({"routes": {"r": {"channel": "mail", "when": "immediate",
                           "quiet_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}}},
         "names every weekday"),
        ({"routes": {"r": {"channel": "mail", "when": "immediate", "to": ["a@b.example"],
                           "fallback": ["c@d.example"]}}}, "fallback only applies"),
    ],
)  # fmt: skip
def test_the_config_is_strict_and_names_the_key(change: dict[str, Any], words: str) -> None:
    raw = {**notify(), **change}
    with pytest.raises(ConfigError, match=None) as exc:
        config_from_mapping({"notify": raw})
    assert words in str(exc.value)


def test_secrets_never_live_in_the_config() -> None:
    raw = notify()
    raw["channels"]["mail"]["password"] = "hunter2"
    with pytest.raises(ConfigError) as exc:
        notify_from_mapping(raw)
    assert "secrets never live in the config file" in exc.value.message
    assert "fit keys set notify_mail password" in str(exc.value.hint)
    assert "FIT_NOTIFY_MAIL_PASSWORD" in str(exc.value.hint)
    assert "notify_mail.password" in str(exc.value.hint)


def test_channel_options_are_checked_by_their_notifier() -> None:
    raw = notify()
    raw["channels"]["mail"]["port"] = "smtp"
    assert "[notify.channels.mail] port: Not a valid integer." in error(raw)
    raw = notify()
    raw["channels"]["mail"]["security"] = "none"
    raw["channels"]["mail"]["username"] = "fit"
    assert "would send the password in clear" in error(raw)
    raw = notify()
    raw["channels"]["chat"]["url"] = "http://chat.example/hook"
    assert "must be https://" in error(raw)
    raw = notify()
    raw["channels"]["chat"]["colour"] = "blue"
    assert "[notify.channels.chat] colour: unknown key" in error(raw)
    raw = notify()
    raw["channels"]["mail"]["type"] = "pager"
    assert "no notification channel type named 'pager' (installed: email, webhook)" in error(raw)


def test_routes_are_checked_against_their_channel() -> None:
    assert "has no recipients" in error(
        notify(r={"channel": "mail", "when": "immediate"})
    )  # e-mail needs addresses
    assert "the webhook channel has no addresses" in error(
        notify(r={"channel": "chat", "when": "immediate", "to": ["a@b.example"]})
    )
    raw = notify(r={"channel": "mail", "when": "immediate", "to": "clinician"})
    raw["clinicians"] = {}
    assert "[notify.clinicians] is empty" in error(raw)


def test_the_whole_config_file_accepts_notify_and_reports(tmp_path: Path) -> None:
    config = config_from_mapping(
        {"notify": notify(), "reports": {"caseload_dir": "pages", "caseload_stale_days": 14}},
        path=tmp_path / "config.toml",
    )
    assert config.reports.caseload_dir == tmp_path / "pages"
    assert config.reports.caseload_stale_days == 14 and not config.reports.caseload_pseudonym
    with pytest.raises(ConfigError, match="unknown key 'caseload' in \\[reports\\]"):
        config_from_mapping({"reports": {"caseload": "x"}})


# --- schedule ----------------------------------------------------------------------------------


def route(at: tuple[str, ...] = ("07:30",), quiet: tuple[str, ...] = ()) -> RouteConfig:
    raw = notify(r={"channel": "mail", "to": "clinician", "at": list(at),
                    "quiet_days": list(quiet)})  # fmt: skip
    return notify_from_mapping(raw).routes["r"]


def local(y: int, m: int, d: int, hh: int, mm: int = 0, tz: Any = BERLIN) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=tz).astimezone(UTC)


def test_a_digest_slot_is_the_wall_clock_time_across_daylight_saving_changes() -> None:
    r = route()
    # the night clocks spring forward (30 March 2025) and the one they fall back (26 October)
    for day in (29, 30, 31):
        slot = last_slot(r, local(2025, 3, day, 9), BERLIN)
        assert slot is not None and slot.astimezone(BERLIN).time() == dt.time(7, 30)
    assert last_slot(r, local(2025, 3, 31, 9), BERLIN) == dt.datetime(2025, 3, 31, 5, 30,
                                                                     tzinfo=UTC)  # fmt: skip
    assert last_slot(r, local(2025, 10, 27, 9), BERLIN) == dt.datetime(2025, 10, 27, 6, 30,
                                                                      tzinfo=UTC)  # fmt: skip
    # a time the spring-forward night skips is read after the jump
    night = route(("02:30",))
    slot = last_slot(night, local(2025, 3, 30, 12), BERLIN)
    assert slot is not None and slot.astimezone(BERLIN).hour == 3


def test_a_digest_is_due_once_per_slot_and_catches_up_with_one() -> None:
    r = route(("07:30", "13:00"), quiet=("sat", "sun", "2026-04-06"))
    started = local(2026, 4, 1, 10)  # a Wednesday, 10:00
    due = slot_due(r, local(2026, 4, 1, 12), BERLIN, last_handled=None, started=started)
    assert due is None  # 07:30 was before the route existed
    due = slot_due(r, local(2026, 4, 1, 13, 5), BERLIN, last_handled=None, started=started)
    assert due == local(2026, 4, 1, 13)
    assert slot_due(r, local(2026, 4, 1, 18), BERLIN, last_handled=due, started=started) is None
    # Friday 13:00 handled; Saturday, Sunday and the holiday Monday are quiet
    friday = local(2026, 4, 3, 13)
    assert is_quiet(r, dt.date(2026, 4, 6)) and not is_quiet(r, dt.date(2026, 4, 7))
    assert slot_due(r, local(2026, 4, 6, 14), BERLIN, last_handled=friday, started=started) is None
    assert next_slot(r, local(2026, 4, 3, 14), BERLIN) == local(2026, 4, 7, 7, 30)
    # back after a long weekend off: one digest, for the latest slot
    back = slot_due(r, local(2026, 4, 8, 15), BERLIN, last_handled=friday, started=started)
    assert back == local(2026, 4, 8, 13)


def test_digest_times_are_clinic_time_not_the_machines() -> None:
    r = route()
    tokyo, chicago = ZoneInfo("Asia/Tokyo"), ZoneInfo("America/Chicago")
    now = dt.datetime(2026, 1, 15, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo, 18:00 in Chicago
    assert last_slot(r, now, tokyo) == local(2026, 1, 15, 7, 30, tz=tokyo)
    assert last_slot(r, now, chicago) == local(2026, 1, 14, 7, 30, tz=chicago)


# --- the ledger in the store ---------------------------------------------------------------------


def test_the_ledger_migration_comes_on_top_of_an_existing_store(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for v in range(1, SCHEMA_VERSION):
        for stmt in MIGRATIONS[v]:
            conn.execute(stmt)
    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION - 1),))
    conn.commit()
    conn.close()
    store = Store.open(path)
    try:
        tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
        assert {"notify_messages", "notify_ledger", "notify_routes"} <= tables
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
    finally:
        store.close()


def test_forget_client_removes_what_the_ledger_holds_about_one_client(tmp_path: Path) -> None:
    from fit_core.notify.ledger import Ledger, OutgoingItem, Planned, forget_client

    store = Store.open(tmp_path / "fit.sqlite3")
    ledger = Ledger(store)
    now = dt.datetime(2026, 1, 1, tzinfo=UTC)
    sent = Planned(
        "r",
        "all",
        "immediate",
        {"new": []},
        (OutgoingItem(1, "new", "ns", "A"), OutgoingItem(2, "new", "ns", "B")),
        "m1",
    )
    pending = Planned(
        "r",
        "all",
        "immediate",
        {"new": [{"client": "A"}]},
        (OutgoingItem(3, "new", "ns", "A"), OutgoingItem(4, "new", "ns", "B")),
        "m2",
    )
    ids = ledger.record_intent([sent, pending], now)
    ledger.confirm(ids[0], now)
    assert forget_client(store, "ns", "A") == 2
    rows = store.conn.execute("SELECT alert_id FROM notify_ledger ORDER BY 1").fetchall()
    assert rows == [(2,)]  # B's told alert stays; B's pending one is released to be planned again
    (msg,) = [m for m in ledger.messages() if m.message_id == "m2"]
    assert msg.state == "failed" and msg.content is None and not msg.retry
    assert ledger.unconfirmed() == []
    store.close()


# --- rendering ---------------------------------------------------------------------------------


def test_a_message_is_escaped_and_names_no_client_in_its_subject() -> None:
    from fit_core.notify.render import message_of

    item = {
        "alert_id": 7, "client": "P-AAAAA-BBBBB", "rule_id": "x.rule", "title": "<b>Odd</b>",
        "severity": "warning", "message": "Score <script>alert(1)</script> & more",
        "session": 3, "first_session": 2, "date": "2026-01-05", "report": None,
        "record": None,
    }  # fmt: skip
    content = {
        "route": "r", "kind": "digest",
        "recipient": {"key": "clinician:T01", "words": "clinician T01", "clinician_id": "T01"},
        "addresses": ["t01@clinic.example"], "created_at": "2026-01-06T06:30:00+00:00",
        "local_time": "2026-01-06 07:30", "timezone": "Europe/Berlin", "since": None,
        "new": [item], "ended": [], "open": 1, "caseload": None, "detail": "minimal",
        "client_label": "pseudonym", "copyright": ["ORS ©", "SRS ©"],
    }  # fmt: skip
    msg = message_of(content, "0" * 32)
    assert msg.subject == "digest: 1 new alert · clinician T01"
    assert "P-AAAAA" not in msg.subject
    assert "<script>" not in msg.html and "&lt;script&gt;" in msg.html
    assert "&lt;b&gt;Odd&lt;/b&gt;" in msg.html
    assert "sessions 2–3 on 5 Jan 2026 (alert #7)" in msg.text
    assert msg.payload["new"][0]["alert_id"] == 7 and msg.payload["id"] == "0" * 32
