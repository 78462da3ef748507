"""Erasing a client reaches notifications and caseload pages: the ledger forgets the client,
an unconfirmed message that mentions them is never sent, and the caseload pages are written
again without them — also pages written to another folder (synthetic data only)."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fakes import webhook_fake as wf
from notify_clinic import NotifyClinic, day, hook_channel

from fit_core.erasure import PrivacyJob, erase_client, survey_client
from fit_core.errors import ConfigError
from fit_core.reports.caseload_files import MANIFEST
from fit_core.reports.caseload_write import regenerate, write_caseload

webhook_fake = wf.webhook_fake  # the fixture


def secret(source: str, key: str) -> str:
    if (source, key) == ("privacy", "hash_key"):
        return "notify-privacy-test-key"
    raise ConfigError(f"no secret {key!r} for {source!r}")


def job(c: NotifyClinic, client: str, dry_run: bool = False) -> PrivacyJob:
    return PrivacyJob(c.store, c.config, c.registry, secret, "mem", client, dry_run=dry_run)


@pytest.fixture
def clinic(tmp_path: Path, webhook_fake: Any) -> Any:
    hook = webhook_fake()
    notify = {
        "channels": {"hook": hook_channel(hook, timeout=1)},
        "routes": {
            "each": {"channel": "hook", "to": "clinician", "when": "immediate"},
            "all": {"channel": "hook", "when": "immediate"},
        },
    }
    c = NotifyClinic(tmp_path, notify, reports={"caseload_dir": str(tmp_path / "caseload")})
    c.seed()
    now = dt.datetime.combine(day(1), dt.time(19), tzinfo=dt.UTC)
    c.at(now)
    c.sync()
    # the per-clinician route goes out; the one for everyone never gets its answer
    assert c.deliver(routes=["each"]).failed == 0
    hook.hang = True
    assert c.deliver(routes=["all"]).routes[0].failed == 1
    hook.hang = False
    hook.release.set()
    regenerate(c.config, c.registry, c.store, clock=lambda: now)  # the caseload pages
    yield c, hook
    c.close()


def test_erasing_a_client_reaches_the_ledger_and_the_caseload(clinic: Any) -> None:
    c, hook = clinic
    out = c.config.reports.caseload_dir
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    a1_page = out / manifest["clients"]["mem/A1"][0]
    assert a1_page.exists() and 'data-client="A1"' in (out / "caseload-T01.html").read_text()
    survey = {p.place: p.lines for p in survey_client(job(c, "A1")).places}
    assert survey["notification ledger"] == [
        "6 record(s) of alerts told on a route",  # 3 alerts on two routes
        "1 unconfirmed message(s) that mention the client",
    ]
    assert f"the caseload pages in {out} list the client" in survey["caseload pages"]

    report = erase_client(job(c, "A1"))
    lines = {p.place: p.lines for p in report.places}
    assert lines["notification ledger"][0].startswith("removed 6 record(s)")
    assert any("again without the client" in x for x in lines["caseload pages"])
    conn = c.store.conn
    count = "SELECT COUNT(*) FROM notify_ledger WHERE client_id = 'A1'"
    assert conn.execute(count).fetchone()[0] == 0
    kept = "SELECT COUNT(*) FROM notify_messages WHERE content IS NOT NULL"
    assert conn.execute(kept).fetchone()[0] == 0  # the unconfirmed message is dropped
    assert not a1_page.exists()
    assert not (out / "caseload-T01.html").exists()  # A1 was T01's only active client
    for path in out.rglob("*.html"):
        assert 'data-client="A1"' not in path.read_text(encoding="utf-8"), path
    assert "caseload-T01.html" not in (out / "index.html").read_text(encoding="utf-8")
    assert "mem/A1" not in json.loads((out / MANIFEST).read_text(encoding="utf-8"))["clients"]
    # the dropped message is never sent; the other clients' alerts in it are planned again
    hits = len(hook.hits)
    c.deliver(routes=["all"])
    (again,) = hook.hits[hits:]
    assert {i["client"] for i in again.json["new"]} and all(
        i["client"] != "A1" for i in again.json["new"]
    )
    told = sorted(i["alert_id"] for i in again.json["new"])
    assert told == sorted(c.alert_ids("B2") | c.alert_ids("C3"))


def test_caseload_pages_written_elsewhere_are_found_too(clinic: Any, tmp_path: Path) -> None:
    c, _hook = clinic
    other = tmp_path / "handout"
    write_caseload(c.config, c.registry, c.store, other, as_of=day(1))
    t01 = other / "caseload-T01.html"
    assert 'data-client="A1"' in t01.read_text(encoding="utf-8")
    erase_client(job(c, "A1"))
    # the folder is not the configured one: the page that listed the client is gone with it
    assert not t01.exists()
    for path in other.rglob("*.html"):
        text = re.sub(r"P-[A-Z2-7]{5}-[A-Z2-7]{5}", "", path.read_text(encoding="utf-8"))
        assert not re.search(r"\bA1\b", text), path
