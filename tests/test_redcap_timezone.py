"""server_timezone: a wrong one fails loudly within one sync after a write; a right one misses no
edit, even one made a second after a sync.

The fake's clock runs in its own timezone (``dateRangeBegin`` is compared with each record's
last change in the server's local time). Synthetic data only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes import redcap_fake as rf
from fakes.redcap_fake import SESSION, TOKEN, RedcapFake, clinic_project, source_options
from redcap_harness import SOURCE, make_engine, run

from fit_adapters.redcap import bookmark as redcap_bookmark
from fit_adapters.redcap.bookmark import EVIDENCE_KEY
from fit_adapters.redcap.zonecheck import utc_offset_text, zones_with_offset

redcap_fake = rf.redcap_fake  # the fixture
FIT = [sys.executable, "-m", "fit_cli"]


@pytest.fixture(autouse=True)
def _quick_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redcap_bookmark, "SETTLE", 0.0)  # back-to-back syncs: speed only


def new_ors(fake: RedcapFake, record: str, instance: int, level: int = 30) -> None:
    """A clinician's edit: a new ORS session on ``record``, saved now (server time)."""
    fake.project.put(
        record,
        {
            **{f"ors_{i}": level for i in range(1, 5)},
            "ors_complete": 2,
            "ors_timestamp": fake.now_local().strftime("%Y-%m-%d %H:%M:%S"),
        },
        event=SESSION,
        repeat_instrument="ors",
        instance=instance,
        modified=fake.now_local(),
    )


def ors_total(fake: RedcapFake, record: str, day: str) -> str:
    """The ORS total in the scoring row of ``day`` on the session event of ``record``."""
    for (event, ri, _n), row in fake.project.data[record].items():
        if event == SESSION and ri == "fit_scores" and row.get("fit_date") == day:
            return row.get("fit_ors_total", "")
    return ""


def evidence(engine: Any) -> dict[str, Any]:
    """Our last imports, as the adapter keeps them in the source's state."""
    return json.loads(engine.store.state_value(SOURCE, EVIDENCE_KEY) or "{}")


def options(fake: RedcapFake, **extra: Any) -> dict[str, Any]:
    out = source_options(fake, **extra)
    if extra.get("server_timezone") is None:
        out.pop("server_timezone")  # unset: the clinic timezone is assumed
    return out


def test_a_wrong_zone_fails_loudly_within_one_sync_after_a_write(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    # the server is 5 hours west of UTC; server_timezone unset, so the clinic's UTC is assumed
    fake = redcap_fake(clinic_project(30, seed=41), tz="America/Bogota")
    engine = make_engine(tmp_path, options(fake), timezone="UTC")
    try:
        first = run(engine)
        assert first.status == "ok" and first.pushed > 0
        bookmark = engine.store.bookmark(SOURCE)
        for n, record in enumerate(("1002", "1005", "1009", "1011")):  # four edits
            new_ors(fake, record, 20 + n)
        second = run(engine)
        assert second.status == "failed" and second.exit_code == 3
        error = second.error or ""
        assert "server_timezone" in error and "UTC-05:00" in error, error
        assert "America/Bogota" in error and "edits are being missed" in error
        assert engine.store.bookmark(SOURCE) == bookmark  # never moved on a wrong window
        again = run(engine)  # it keeps failing until the zone is fixed
        assert again.status == "failed" and again.exit_code == 3
    finally:
        engine.store.close()
    fixed = make_engine(tmp_path, options(fake, server_timezone="America/Bogota"), timezone="UTC")
    try:
        after = run(fixed)
        assert after.status == "ok", after.error
        assert after.pulled > 0
    finally:
        fixed.store.close()
    today = dt.datetime.now(dt.UTC).date().isoformat()  # the clinic's (UTC) date
    for record in ("1002", "1005", "1009", "1011"):  # none of the four edits was lost
        assert ors_total(fake, record, today) == "12.0"


def test_fit_check_names_a_wrong_zone(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    fake = redcap_fake(clinic_project(10, seed=42), tz="America/Bogota")
    config = tmp_path / "fit.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "fit.sqlite3"}"\n[sync]\ntimezone = "UTC"\n'
        f'[sources.{SOURCE}]\nadapter = "redcap"\nurl = "{fake.url}"\nthrottle = 200\n'
        f"[sources.{SOURCE}.instruments.ors]\n"
        'measure = "ORS"\nitems = ["ors_1", "ors_2", "ors_3", "ors_4"]\n'
        f"[sources.{SOURCE}.instruments.srs]\n"
        'measure = "SRS"\nitems = ["srs_1", "srs_2", "srs_3", "srs_4"]\n',
        encoding="utf-8",
    )
    env = {**os.environ, "FIT_CLINIC_REDCAP_TOKEN": TOKEN}

    def fit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*FIT, "--config", str(config), *args], capture_output=True, text=True, env=env
        )

    assert fit("check").returncode == 0  # nothing written yet: nothing to tell by
    assert fit("sync").returncode == 0
    check = fit("check", "--source", SOURCE)
    assert check.returncode == 3, check.stdout + check.stderr
    assert "UTC-05:00" in check.stdout and "server_timezone" in check.stdout
    text = config.read_text(encoding="utf-8").replace(
        "throttle = 200\n", 'throttle = 200\nserver_timezone = "America/Bogota"\n'
    )
    config.write_text(text, encoding="utf-8")
    ok = fit("check", "--source", SOURCE)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"source {SOURCE} (redcap): ok" in ok.stdout


def test_a_zone_east_of_the_server_reads_times_hours_off_and_fails(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    # the server runs in Tokyo (UTC+9) but server_timezone says Chicago: no edit is missed,
    # but every survey time is read 14 or 15 hours off
    fake = redcap_fake(clinic_project(20, seed=43), tz="Asia/Tokyo")
    engine = make_engine(tmp_path, options(fake, server_timezone="America/Chicago"))
    try:
        assert run(engine).status == "ok"
        second = run(engine)
    finally:
        engine.store.close()
    assert second.status == "failed" and second.exit_code == 3
    assert "UTC+09:00" in (second.error or "") and "Asia/Tokyo" in (second.error or "")
    assert "hours off" in (second.error or "")


def test_the_right_zone_picks_up_an_edit_made_one_second_after_a_sync(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    # server in Chicago, clinic in UTC, server_timezone set right
    fake = redcap_fake(clinic_project(20, seed=44), tz="America/Chicago")
    engine = make_engine(tmp_path, options(fake, server_timezone="America/Chicago"), timezone="UTC")
    try:
        for n, record in enumerate(("1003", "1004", "1006", "1007")):
            result = run(engine)
            assert result.status == "ok", result.error
            time.sleep(1)
            new_ors(fake, record, 30 + n, level=40 + n)
            picked = run(engine)
            assert picked.status == "ok", picked.error
            today = dt.datetime.now(dt.UTC).date().isoformat()  # the clinic's (UTC) date
            assert ors_total(fake, record, today) == f"{(40 + n) * 4 / 10:.1f}", record
        assert run(engine).status == "ok"  # reads our last imports again, and checks them
        mark = json.loads(engine.store.bookmark(SOURCE) or "{}")
        assert mark["zone"] == "America/Chicago" and evidence(engine)["checked"] == mark["zone"]
        idle_from = time.monotonic()
        idle = run(engine)
        # project, metadata, the changed ids, and the logging export of deleted records
        assert idle.pulled == 0 and len(fake.api_hits(idle_from)) <= 3
    finally:
        engine.store.close()


def test_changing_server_timezone_reads_every_record_again(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    fake = redcap_fake(clinic_project(15, seed=45), tz="America/Bogota")  # UTC-5, no DST
    engine = make_engine(tmp_path, options(fake, server_timezone="America/Bogota"))
    try:
        assert run(engine).status == "ok"
        assert run(engine).status == "ok"
        mark = json.loads(engine.store.bookmark(SOURCE) or "{}")
        assert mark["zone"] == "America/Bogota" and evidence(engine)["checked"] == mark["zone"]
    finally:
        engine.store.close()
    same = make_engine(tmp_path, options(fake, server_timezone="America/Lima"))  # also UTC-5
    try:
        before = len(fake.hits)
        result = run(same)  # checked against the new zone, then every record read again
        full = [h for h in fake.hits[before:] if "fields[1]" not in h.keys and h.since is None]
        assert result.status == "ok", result.error
        assert any(h.content == "record" and "records[0]" not in h.keys for h in full)
        assert evidence(same)["checked"] == "America/Lima"
    finally:
        same.store.close()
    moved = make_engine(tmp_path, options(fake, server_timezone="America/Phoenix"))  # UTC-7
    try:
        result = run(moved)
    finally:
        moved.store.close()
    assert result.exit_code == 3 and "UTC-05:00" in (result.error or ""), result.error


def test_offset_texts_and_zone_examples() -> None:
    assert utc_offset_text(dt.timedelta(hours=-5)) == "UTC-05:00"
    assert utc_offset_text(dt.timedelta(hours=5, minutes=30)) == "UTC+05:30"
    winter = dt.datetime(2025, 1, 15, 12, 0, tzinfo=dt.UTC)
    assert "America/Chicago" in zones_with_offset(dt.timedelta(hours=-6), winter)
    assert zones_with_offset(dt.timedelta(hours=-11), winter) == ["Etc/GMT+11"]


def test_one_record_edited_later_or_records_deleted_are_not_a_wrong_zone(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake]
) -> None:
    fake = redcap_fake(clinic_project(40, seed=46), tz="America/Bogota")
    engine = make_engine(tmp_path, options(fake, server_timezone="America/Bogota"))
    try:
        assert run(engine).status == "ok"
        records = evidence(engine)["records"]
        assert len(records) == 5
        # someone edits one of the records we wrote, a few minutes after us
        fake.project.modified[records[0]] = fake.now_local() + dt.timedelta(minutes=3)
        edited = run(engine)
        assert edited.status == "ok", edited.error
        assert run(engine).status == "ok"
        last = evidence(engine)
        for record in last["records"]:  # the records we last wrote are deleted
            del fake.project.data[record]
        engine.store.set_state_value(SOURCE, EVIDENCE_KEY, json.dumps({**last, "checked": ""}))
        gone = run(engine)
        assert gone.status == "ok", gone.error
    finally:
        engine.store.close()
