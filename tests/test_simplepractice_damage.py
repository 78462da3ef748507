"""SimplePractice bridge: a damaged or partial export never replaces good attendance.

A synthetic practice (40 invented clients, twelve weekly appointments each, a status report
with a separate "Start Time" column, the billing report, a client list) is synced through the
real engine with `fit sync`; then the exports are damaged the ways downloads and hand edits
damage them. Each time the stored attendance must stay as it was, no billing row may turn a
no-show into a session, and the run must exit 1 naming the file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fit_core.errors import ExitCode

sys.path.insert(0, str(Path(__file__).parent / "data" / "simplepractice"))
import sp_synthetic as syn
from sp_clinic import BILLING, CLIENTS, STATUS, WORDS, Clinic


@pytest.fixture
def clinic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Clinic:
    c = Clinic(tmp_path, monkeypatch)
    c.link()
    return c


def expected(p: syn.Practice) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in p.appointments:
        out[WORDS[a.status]] = out.get(WORDS[a.status], 0) + 1
    return out


def counted(attendance: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for status in attendance.values():
        out[status] = out.get(status, 0) + 1
    return out


def test_a_good_practice_syncs_every_appointment_with_its_status(clinic: Clinic) -> None:
    res = clinic.fit("sync")
    assert res.exit_code == 0, res.output
    assert counted(clinic.attendance()) == expected(clinic.p)


# --- damaged exports ----------------------------------------------------------------------------


def _without_status_column(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n", encoding="utf-8")


def _emptied(path: Path) -> None:
    path.write_bytes(b"")


def _header_only(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")


def _dates_in_another_format(path: Path) -> None:
    import datetime as dt
    import re

    def iso(m: re.Match[str]) -> str:
        return dt.date(int(m[3]), int(m[1]), int(m[2])).strftime("%d %b %Y")

    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"(\d\d)/(\d\d)/(\d{4})", iso, text), encoding="utf-8")


def _cut_mid_row(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])


def _cut_at_a_line(path: Path) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[: len(lines) // 2]))


def _removed(path: Path) -> None:
    path.unlink()


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    # damage -> what the message must say about it
    "status column dropped": (_without_status_column, "missing column 'status'"),
    "emptied": (_emptied, "no header row"),
    "header only": (_header_only, "has no rows"),
    "dates in another format": (_dates_in_another_format, "cannot be read"),
    "cut in the middle of a row": (_cut_mid_row, "cut"),
    "cut at a line break": (_cut_at_a_line, "cut short"),
    "removed": (_removed, "no appointment status report"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_status_report_keeps_the_attendance_and_exits_1_naming_the_file(
    clinic: Clinic, damage: str
) -> None:
    assert clinic.fit("sync").exit_code == 0
    good = clinic.attendance()
    assert counted(good) == expected(clinic.p)
    status = clinic.exports / STATUS
    saved = status.read_bytes()
    spoil, says = DAMAGE[damage]
    spoil(status)

    res = clinic.fit("sync")
    assert res.exit_code == ExitCode.PARTIAL, res.output
    assert STATUS in res.stderr and says in res.stderr, res.stderr
    # not one appointment dropped or changed, no billing row turned into a session
    assert clinic.attendance() == good
    entries = clinic.quarantine()
    (refusal,) = [
        q
        for q in entries
        if q["source_key"] in (f"{STATUS}:file", f"{STATUS}:header", "status-report:missing")
    ]
    assert STATUS in refusal["location"] and "kept" in refusal["reasons"]["exports"]

    # nothing changed: the next run still says so
    again = clinic.fit("sync")
    assert again.exit_code == ExitCode.PARTIAL and "still quarantined" in again.stderr
    assert clinic.attendance() == good

    # the export fixed: read again, nothing left in quarantine
    status.write_bytes(saved)
    fixed = clinic.fit("sync")
    assert fixed.exit_code == 0, fixed.output
    assert clinic.attendance() == good and clinic.quarantine() == []


@pytest.mark.parametrize("name", [BILLING, CLIENTS])
def test_a_damaged_billing_report_or_client_list_drops_nothing(clinic: Clinic, name: str) -> None:
    assert clinic.fit("sync").exit_code == 0
    good, born = clinic.appointments(), clinic.births()
    assert len(born) == 40
    _cut_mid_row(clinic.exports / name)
    res = clinic.fit("sync")
    assert res.exit_code == ExitCode.PARTIAL and name in res.stderr and "cut" in res.stderr
    assert clinic.appointments() == good and clinic.births() == born


def test_a_status_report_whose_rows_mostly_fail_is_refused(clinic: Clinic) -> None:
    assert clinic.fit("sync").exit_code == 0
    good = clinic.attendance()
    path = clinic.exports / STATUS
    lines = path.read_text(encoding="utf-8").splitlines()
    # a third of the statuses in a language the bridge does not know
    spoilt = [
        line.replace(",Show", ",Asistió") if n % 3 == 0 else line for n, line in enumerate(lines)
    ]
    path.write_text("\n".join(spoilt) + "\n", encoding="utf-8")
    res = clinic.fit("sync")
    assert res.exit_code == ExitCode.PARTIAL and "rows cannot be read" in res.stderr
    assert clinic.attendance() == good
    refusal = next(q for q in clinic.quarantine() if q["source_key"] == f"{STATUS}:file")
    assert "'Asistió'" in refusal["reasons"]["rows"]
    # one unknown word is a row problem, not a damaged file: the rest is read, and the
    # appointment of that row keeps the status it had
    n = next(n for n, line in enumerate(lines) if line.endswith(",Show") and n > 3)
    one = [line.replace(",Show", ",Asistió") if i == n else line for i, line in enumerate(lines)]
    path.write_text("\n".join(one) + "\n", encoding="utf-8")
    res = clinic.fit("sync")
    assert res.exit_code == ExitCode.PARTIAL
    (entry,) = clinic.quarantine()
    assert entry["location"] == f"{STATUS} line {n + 1}"
    assert "'Asistió'" in entry["reasons"]["status"]
    assert clinic.attendance() == good


def test_a_half_row_at_the_end_is_reported_with_its_line(clinic: Clinic) -> None:
    assert clinic.fit("sync").exit_code == 0
    path = clinic.exports / STATUS
    text = path.read_text(encoding="utf-8")
    cut = text[: text.rindex(",", 0, len(text) - 40)]  # in the last row, before its status
    last_line = cut.count("\n") + 1
    path.write_text(cut, encoding="utf-8")
    res = clinic.fit("sync")
    assert res.exit_code == ExitCode.PARTIAL
    assert f"{STATUS} line {last_line}" in res.stderr
    refusal = next(q for q in clinic.quarantine() if q["source_key"] == f"{STATUS}:file")
    assert refusal["location"] == f"{STATUS} line {last_line}"


def test_a_status_report_without_its_status_column_is_never_read_as_billing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the very first run: no attendance stored yet, and still no billed row becomes a session
    clinic = Clinic(tmp_path, monkeypatch)
    clinic.link()
    _without_status_column(clinic.exports / STATUS)
    res = clinic.fit("sync")
    assert res.exit_code == ExitCode.PARTIAL
    assert STATUS in res.stderr and "missing column 'status'" in res.stderr
    assert clinic.attendance() == {}
    # renamed so its name does not say "status": the header alone still tells
    (clinic.exports / STATUS).rename(clinic.exports / "appointments.csv")
    res = clinic.fit("sync")
    assert "appointments.csv" in res.stderr and "missing column 'status'" in res.stderr
    assert clinic.attendance() == {}


def test_a_shorter_status_report_is_used_once_a_person_accepts_it(clinic: Clinic) -> None:
    assert clinic.fit("sync").exit_code == 0
    good = clinic.attendance()
    _cut_at_a_line(clinic.exports / STATUS)
    res = clinic.fit("sync")
    assert res.exit_code == ExitCode.PARTIAL and "fit exports accept" in res.stderr
    assert clinic.attendance() == good
    accepted = clinic.fit("exports", "accept")
    assert accepted.exit_code == 0 and STATUS in accepted.stdout
    assert (clinic.tmp / "state").exists() or True
    res = clinic.fit("sync")
    assert res.exit_code == 0, res.output
    shorter = clinic.attendance()
    assert 0 < len(shorter) < len(good) and set(shorter.items()) <= set(good.items())
    assert clinic.quarantine() == []
    # the shorter report is the new measure: cutting it again is refused again
    _cut_at_a_line(clinic.exports / STATUS)
    res = clinic.fit("sync")
    assert res.exit_code == ExitCode.PARTIAL and clinic.attendance() == shorter


def test_without_a_status_report_once_accepted_billing_rows_count_again(clinic: Clinic) -> None:
    assert clinic.fit("sync").exit_code == 0
    (clinic.exports / STATUS).unlink()
    assert clinic.fit("sync").exit_code == ExitCode.PARTIAL
    assert clinic.fit("exports", "accept").exit_code == 0
    assert clinic.fit("sync").exit_code == 0
    billed = sum(1 for a in clinic.p.appointments if a.status in syn.BILLED)
    assert counted(clinic.attendance()) == {"attended": billed}
