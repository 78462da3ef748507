"""SimplePractice bridge: dates and times of exports.

A "Start Time" column is the appointment's time; numeric dates are read month first or day
first as each file's unambiguous dates say, and a file whose dates allow both readings, or
that mixes them, is refused whole (``date_order`` decides). A DD/MM export is read right
everywhere (status report, billing report, client list) or refused whole, never half.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fit_adapters.simplepractice.values import (
    ValueProblem,
    day_first,
    order_evidence,
    parse_time,
    parse_when,
)
from fit_core.errors import ExitCode

sys.path.insert(0, str(Path(__file__).parent / "data" / "simplepractice"))
import sp_synthetic as syn
from sp_clinic import BILLING, CLIENTS, STATUS, Clinic

TZ = ZoneInfo(syn.TIMEZONE)


def test_order_evidence_of_one_cell() -> None:
    assert order_evidence("03/25/2026 10:00") == "MDY"
    assert order_evidence("25/03/2026") == "DMY"
    assert order_evidence("03/04/2026") == "either"
    assert order_evidence("04/04/2026") is None  # the same either way
    assert order_evidence("2026-03-04") is None and order_evidence("13/13/2026") is None
    assert order_evidence(dt.datetime(2026, 3, 4)) is None  # an Excel date knows its order


def test_day_first_formats_read_day_first() -> None:
    from fit_adapters.simplepractice.values import DEFAULT_DATE_FORMATS

    dmy = day_first(DEFAULT_DATE_FORMATS)
    assert parse_when("04/03/2026 14:30", dmy) == (dt.datetime(2026, 3, 4, 14, 30), True)
    assert parse_when("25/03/2026 2:30 PM", dmy) == (dt.datetime(2026, 3, 25, 14, 30), True)
    assert parse_when("04/03/2026", DEFAULT_DATE_FORMATS)[0] == dt.datetime(2026, 4, 3)
    assert parse_when("04/03/2026 00:00", dmy) == (dt.datetime(2026, 3, 4), True)
    assert parse_when("4/3/2026 12:15 AM", DEFAULT_DATE_FORMATS)[0] == dt.datetime(
        2026, 4, 3, 0, 15
    )
    with pytest.raises(ValueProblem):
        parse_when("31/02/2026", dmy)


def test_time_cells_and_ranges() -> None:
    assert parse_time("10:00 AM") == dt.time(10, 0)
    assert parse_time("2:30 PM - 3:20 PM") == dt.time(14, 30)
    assert parse_time("14:30 – 15:20") == dt.time(14, 30)
    assert parse_time("") is None
    assert parse_time("12:05 AM") == dt.time(0, 5) and parse_time("12:30 pm") == dt.time(12, 30)
    assert parse_time("09:15:30") == dt.time(9, 15, 30) and parse_time("2 PM") == dt.time(14)
    for bad in ("25:00", "13:00 PM", "noon"):
        with pytest.raises(ValueProblem):
            parse_time(bad)


@pytest.fixture
def us(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Clinic:
    clinic = Clinic(tmp_path / "us", monkeypatch)
    clinic.link()
    assert clinic.fit("sync").exit_code == 0
    return clinic


def test_start_time_is_the_appointment_time(us: Clinic) -> None:
    stored = us.appointments()
    assert len(stored) == len(us.p.appointments)
    expected = {a.starts.replace(tzinfo=TZ).astimezone(dt.UTC) for a in us.p.appointments}
    assert {starts for starts, _, _ in stored.values()} == expected
    # 10:00 AM, not midnight
    assert any(s.astimezone(TZ).time() == dt.time(10) for s, _, _ in stored.values())
    assert all(s.astimezone(TZ).time() != dt.time(0) for s, _, _ in stored.values())


def test_a_dd_mm_practice_is_read_right_everywhere(
    us: Clinic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eu = Clinic(tmp_path / "eu", monkeypatch, day_first=True)
    eu.link()
    res = eu.fit("sync")
    assert res.exit_code == 0, res.output
    # the same appointments (keys, times, statuses, codes) and dates of birth as month first
    assert eu.appointments() == us.appointments()
    assert eu.births() == us.births() == {c.client_id: c.born for c in eu.p.clients}


def test_a_dd_mm_file_whose_dates_all_read_both_ways_is_refused_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clinic = Clinic(tmp_path, monkeypatch, day_first=True)
    clinic.link()
    # the first twelve days of each month only: every date reads both ways
    kept = [
        line
        for line in (clinic.exports / STATUS).read_text(encoding="utf-8").splitlines()
        if not line[:2].isdigit() or int(line[:2]) <= 12
    ]
    (clinic.exports / STATUS).write_text("\n".join(kept) + "\n", encoding="utf-8")
    (clinic.exports / BILLING).unlink()
    res = clinic.fit("sync")
    assert res.exit_code == ExitCode.PARTIAL
    assert STATUS in res.stderr and "date_order" in res.stderr
    assert clinic.attendance() == {}  # nothing half read
    # the source says the order: read, day first
    clinic2 = Clinic(tmp_path / "dmy", monkeypatch, day_first=True, date_order="DMY")
    clinic2.link()
    (clinic2.exports / STATUS).write_text("\n".join(kept) + "\n", encoding="utf-8")
    (clinic2.exports / BILLING).unlink()
    res = clinic2.fit("sync")
    assert res.exit_code == 0, res.output
    got = clinic2.appointments()
    assert got and all(s.astimezone(TZ).day <= 12 for s, _, _ in got.values())
    assert len(got) == len(kept) - 3  # the title, the blank line and the header


def test_a_file_mixing_both_orders_is_refused_whole(
    us: Clinic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = us.attendance()
    lines = (us.exports / STATUS).read_text(encoding="utf-8").splitlines()
    eu = Clinic(tmp_path / "eu", monkeypatch, day_first=True)
    eu_lines = (eu.exports / STATUS).read_text(encoding="utf-8").splitlines()
    half = len(lines) // 2  # the first half month first, the rest day first
    (us.exports / STATUS).write_text("\n".join(lines[:half] + eu_lines[half:]) + "\n")
    res = us.fit("sync")
    assert res.exit_code == ExitCode.PARTIAL
    assert "dates in two orders" in res.stderr and STATUS in res.stderr
    assert us.attendance() == good  # nothing read from it, nothing dropped


def test_date_order_setting_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clinic = Clinic(tmp_path, monkeypatch, date_order="YMD")
    res = clinic.fit("sync")
    assert res.exit_code == ExitCode.CONFIG and "date_order" in res.stderr
    clinic = Clinic(tmp_path / "b", monkeypatch, date_order="DMY", date_formats=["%d/%m/%Y %H:%M"])
    res = clinic.fit("check")
    assert res.exit_code == ExitCode.CONFIG and "date_order" in res.output


def test_a_dd_mm_client_list_beside_us_reports_is_read_day_first(
    us: Clinic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syn.write_practice_clients(us.exports / CLIENTS, us.p, day_first=True)
    res = us.fit("sync")
    assert res.exit_code == 0, res.output
    assert us.births() == {c.client_id: c.born for c in us.p.clients}
