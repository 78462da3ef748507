"""SimplePractice bridge: reading exports (CSV and xlsx), statuses, dates, columns, linking.

Synthetic exports only (tests/data/simplepractice, invented names).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from fit_adapters.simplepractice.adapter import SimplePracticeAdapter
from fit_adapters.simplepractice.columns import HeaderError, build_layout, detect, find, norm
from fit_adapters.simplepractice.links import LinkBook
from fit_adapters.simplepractice.names import NameHasher, normalise_name
from fit_adapters.simplepractice.values import (
    ValueProblem,
    clean_code,
    is_intake,
    normalise_status,
    parse_when,
)
from fit_core.errors import ConfigError
from fit_core.models import Appointment, ClientInfo, RecordError
from fit_core.testing import make_context

sys.path.insert(0, str(Path(__file__).parent / "data" / "simplepractice"))
import sp_synthetic as syn

NAMES = (
    "Alex",
    "Example",
    "Blair",
    "Sample",
    "Zoe",
    "Placeholder",
    "Drew",
    "Unlinked",
    "Jordan",
    "Same",
    "Casey",
    "Billing",
)


def adapter(tmp_path: Path, folder: Path, **extra: Any) -> SimplePracticeAdapter:
    ctx = make_context(
        "sp",
        syn.sp_options(tmp_path, folder, **extra),
        tmp_path,
        adapter=SimplePracticeAdapter,
        timezone=syn.TIMEZONE,
        run_started=syn.NOW,
        secrets={"name_key": syn.NAME_KEY},
    )
    return SimplePracticeAdapter(ctx)


def pull(a: SimplePracticeAdapter, bookmark: str | None = None) -> list[Any]:
    return list(a.pull(bookmark))


def by_kind(items: Sequence[Any]) -> tuple[list[Appointment], list[ClientInfo], list[RecordError]]:
    return (
        [i for i in items if isinstance(i, Appointment)],
        [i for i in items if isinstance(i, ClientInfo)],
        [i for i in items if isinstance(i, RecordError)],
    )


def assert_no_names(items: Sequence[Any], text: str = "") -> None:
    """No invented client name appears in any key, reason, location or raw value."""
    blob = text + json.dumps(
        [
            {"key": i.source_key, "reasons": dict(i.reasons), "loc": i.location, "raw": i.raw}
            for i in items
            if isinstance(i, RecordError)
        ]
        + [repr(i) for i in items if not isinstance(i, RecordError)],
        ensure_ascii=False,
    )
    for name in NAMES:
        assert name not in blob, f"a client name leaked: {name}"


# --- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "status"),
    [
        ("Show", "attended"),
        ("Attended", "attended"),
        ("No Show", "no_show"),
        ("No-show", "no_show"),
        ("NO_SHOW", "no_show"),
        ("Late Canceled", "late_cancel"),
        ("Late Cancelled", "late_cancel"),
        ("late-cancelled", "late_cancel"),
        ("Canceled", "cancelled"),
        ("Cancelled", "cancelled"),
        ("Clinician Canceled", "clinician_cancelled"),
        ("Clinician  Cancelled", "clinician_cancelled"),
        ("", "scheduled"),
        ("Scheduled", "scheduled"),
    ],
)
def test_status_spellings(spelling: str, status: str) -> None:
    assert normalise_status(spelling, {}) == status


def test_unknown_status_names_the_value_and_the_fix_and_extra_spellings_win() -> None:
    with pytest.raises(ValueProblem) as exc:
        normalise_status("Rescheduled", {})
    assert "'Rescheduled'" in exc.value.reason and "statuses" in exc.value.reason
    assert normalise_status("Rescheduled", {"rescheduled": "ignore"}) == "ignore"
    assert normalise_status("show", {"show": "no_show"}) == "no_show"


def test_payment_statuses_are_not_attendance() -> None:
    for word in ("PAID", "UNPAID", "NO CHARGE", "OVER"):
        with pytest.raises(ValueProblem):
            normalise_status(word, {})


def test_dates_us_with_24h_times_12h_date_only_iso_and_excel() -> None:
    from fit_adapters.simplepractice.values import DEFAULT_DATE_FORMATS as F

    assert parse_when("03/02/2026 14:30", F) == (dt.datetime(2026, 3, 2, 14, 30), True)
    assert parse_when("3/2/2026 2:30 PM", F) == (dt.datetime(2026, 3, 2, 14, 30), True)
    assert parse_when("03/02/2026", F) == (dt.datetime(2026, 3, 2), False)
    assert parse_when("2026-03-02T14:30", F) == (dt.datetime(2026, 3, 2, 14, 30), True)
    assert parse_when(dt.datetime(2026, 3, 2, 9), F) == (dt.datetime(2026, 3, 2, 9), True)
    assert parse_when(dt.date(2026, 3, 2), F) == (dt.datetime(2026, 3, 2), False)
    for bad in ("02.03.2026", "03/02/26", "13/45/2026", "tomorrow"):
        with pytest.raises(ValueProblem) as exc:
            parse_when(bad, F)
        assert bad not in exc.value.reason  # dates are not quoted back


def test_billing_codes_trailing_spaces_excel_numbers_and_intake() -> None:
    assert clean_code("90791 ") == "90791"
    assert clean_code("90834.0") == "90834"
    assert clean_code("  ") is None
    intake = frozenset({"90791", "90792"})
    assert is_intake("90791", intake) and is_intake("90791-95", intake)
    assert not is_intake("90834", intake) and not is_intake(None, intake)


def test_names_are_normalised_and_keyed_never_kept() -> None:
    assert normalise_name("  Zoë   PLACEHOLDER ") == "zoe placeholder"
    assert normalise_name("José Example") == normalise_name("jose example")
    h = NameHasher(syn.NAME_KEY, "sp")
    assert h.name("Zoë Placeholder") == h.name("zoe  placeholder")
    assert h.name("Alex Example") != NameHasher("another-key-0123456789", "sp").name("Alex Example")
    assert h.name("  ") is None
    with pytest.raises(ConfigError, match="name_key"):
        NameHasher("short", "sp")


# --- columns -----------------------------------------------------------------------------------


BILLING_HEADER = [
    "Date of Service",
    "Client",
    "Clinician",
    "Billing Code",
    "Primary Insurance",
    "Secondary Insurance",
    "Rate per Unit",
    "Units",
    "Total Fee",
    "Client Payment Status",
    "Charge",
    "Uninvoiced",
    "Paid",
    "Unpaid",
    "Insurance Payment Status",
    "Charge",
    "Paid",
    "Unpaid",
]


def test_billing_report_detected_and_duplicate_headers_addressable() -> None:
    layout = detect(BILLING_HEADER, {}, None)
    assert layout.kind == "billing"
    assert layout.index["code"] == 3 and "status" not in layout.index
    header = [norm(h) for h in BILLING_HEADER]
    assert find(header, "Charge") == 10 and find(header, "Charge#2") == 15
    assert find(header, "paid#2") == 16 and find(header, "Paid#3") is None


def test_kinds_detected_from_headers() -> None:
    assert detect(["Date", "Client", "Status"], {}, None).kind == "appointments"
    assert detect(list(syn.CLIENT_HEADER), {}, None).kind == "clients"
    renamed = {"appointments": {"date": ("Appt Date",), "status": ("Attendance",)}}
    assert detect(["Appt Date", "Client Name", "Attendance"], renamed, None).kind == "appointments"


def test_missing_column_names_it_and_the_columns_found() -> None:
    with pytest.raises(HeaderError) as exc:
        detect(["Date", "Client", "Clinician", "Visit State"], {}, None)
    msg = str(exc.value)
    assert "missing column 'status'" in msg and "'Appointment Status'" in msg
    assert "columns found: Date, Client, Clinician, Visit State" in msg
    with pytest.raises(HeaderError) as exc:
        build_layout(["When", "Who"], "appointments", {}, None)
    assert "missing column 'date'" in str(exc.value) and "columns found: When, Who" in str(
        exc.value
    )
    with pytest.raises(HeaderError) as exc:
        detect(["Foo", "Bar"], {}, None)
    assert "not a report fit-sync knows" in str(exc.value) and "Foo, Bar" in str(exc.value)


def test_a_data_row_mistaken_for_a_header_is_never_quoted() -> None:
    with pytest.raises(HeaderError) as exc:
        detect(["03/02/2026 09:00", "Alex Example", "Show"], {}, None)
    assert "Alex" not in str(exc.value) and "looks like data" in str(exc.value)


# --- the pull ----------------------------------------------------------------------------------


def test_pull_links_statuses_codes_and_reports_every_problem_by_row(tmp_path: Path) -> None:
    folder = syn.inbox(tmp_path, syn.STATUS_REPORT, syn.BILLING_REPORT)
    syn.link_all(tmp_path / "links.csv")
    items = pull(adapter(tmp_path, folder))
    appts, infos, errors = by_kind(items)
    assert_no_names(items)
    by_client: dict[str, list[Appointment]] = {}
    for a in appts:
        by_client.setdefault(a.client_id, []).append(a)
    alex = sorted(by_client["C001"], key=lambda a: a.starts_at)
    # SimplePractice marks every new appointment "Show": a future one is only scheduled
    assert [a.status for a in alex] == [
        "attended",
        "attended",
        "attended",
        "no_show",
        "late_cancel",
        "scheduled",
    ]
    assert alex[0].intake and alex[0].service_code == "90791" and not alex[1].intake
    assert alex[0].starts_at == dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)  # 09:00 CST
    assert alex[0].local_date == dt.date(2026, 3, 2) and alex[0].clinician_id == "T07"
    assert all(a.namespace == "clinic" and a.source == "sp" for a in appts)
    blair = sorted(by_client["C002"], key=lambda a: a.starts_at)  # linked by SP id via client list
    assert [a.status for a in blair][-3:] == ["no_show", "attended", "scheduled"]
    assert blair[0].clinician_id == "Sam Okafor, PhD"  # unmapped clinicians keep their name
    zoe = sorted(by_client["C003"], key=lambda a: a.starts_at)
    assert [a.status for a in zoe] == ["attended", "clinician_cancelled"]
    # only in the billing report: a billed service counts as attended
    (casey,) = by_client["C004"]
    assert casey.status == "attended" and casey.service_code == "90834"
    # the billing rows of appointments the status report has are not doubled
    assert len(alex) == 6 and len({a.source_key for a in appts}) == len(appts)
    # client list (xlsx): one ClientInfo per linked client
    info = {i.client_id: i for i in infos}
    assert set(info) == {"C001", "C002", "C003", "C004"}
    assert info["C002"].date_of_birth == dt.date(2009, 8, 15)
    assert info["C001"].clinician_id == "T07" and info["C001"].status == "active"
    # problems, by row
    where = {e.location: e.reasons for e in errors}
    for line in (15, 16):  # Drew Unlinked
        assert where[f"appointment_status.csv line {line}"]["client"].startswith(
            "client not linked"
        )
    assert (
        "2 SimplePractice clients share this name"
        in where["appointment_status.csv line 17"]["client"]
    )  # Jordan Same: ambiguous
    assert "'Rescheduled'" in where["appointment_status.csv line 20"]["status"]
    assert where["clients.xlsx row 6"]["client"].startswith("client not linked")  # Drew
    assert "share this name" in where["clients.xlsx row 7"]["client"]  # Jordan Same x2
    assert "share this name" in where["clients.xlsx row 8"]["client"]
    assert len(errors) == 7, sorted(where)


def test_renamed_columns_via_the_map_and_separate_time_column(tmp_path: Path) -> None:
    folder = syn.inbox(tmp_path, syn.RENAMED_REPORT)
    syn.link_all(tmp_path / "links.csv")
    items = pull(adapter(tmp_path, folder))
    _, _, errors = by_kind(items)
    (err,) = [e for e in errors if e.location.startswith("renamed")]
    assert "missing column 'date'" in err.reasons["header"]
    assert (
        "columns found: Appt Date, Appt Time, Client Name, Provider, Attendance"
        in (err.reasons["header"])
    )
    mapped = {"appointments": {"date": "Appt Date", "time": ["Appt Time"]}}
    items = pull(adapter(tmp_path, folder, columns=mapped))
    appts, _, errors = by_kind(items)
    assert not [e for e in errors if e.location.startswith("renamed")]
    got = {(a.client_id, a.status, a.starts_at) for a in appts}
    assert got == {
        ("C001", "attended", dt.datetime(2026, 3, 26, 14, 30, tzinfo=dt.UTC)),  # 09:30 CDT
        ("C002", "late_cancel", dt.datetime(2026, 3, 27, 18, 0, tzinfo=dt.UTC)),  # 1:00 PM
    }


def test_xlsx_appointment_report_with_excel_dates_and_numeric_codes(tmp_path: Path) -> None:
    import openpyxl

    folder = tmp_path / "x"
    folder.mkdir()
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["Date", "Client", "Clinician", "Billing Code", "Status"])
    ws.append([dt.datetime(2026, 3, 2, 9, 0), "Alex Example", "Jamie Rivera, LCSW", 90791, "Show"])
    ws.append(
        [dt.datetime(2026, 3, 9, 9, 0), "Alex Example", "Jamie Rivera, LCSW", 90834, "No Show"]
    )
    ws.append([None, None, None, None, None])
    ws.append(["Total", None, None, None, None])  # a footer row is skipped
    book.save(folder / "appointments.xlsx")
    syn.link_all(tmp_path / "links.csv")
    appts, _, errors = by_kind(pull(adapter(tmp_path, folder)))
    assert not errors
    assert [
        (a.status, a.service_code, a.intake) for a in sorted(appts, key=lambda a: a.starts_at)
    ] == [("attended", "90791", True), ("no_show", "90834", False)]


def test_link_column_in_the_export_needs_no_link(tmp_path: Path) -> None:
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "a.csv").write_text(
        "Date,Client,Status,External ID\n"
        "03/20/2026 09:00,Alex Example,Show,R-17\n"
        "03/23/2026 09:00,Blair Sample,Show,\n",
        encoding="utf-8",
    )
    appts, _, errors = by_kind(pull(adapter(tmp_path, folder, link_column="External ID")))
    assert [a.client_id for a in appts] == ["R-17"]
    assert [e.location for e in errors] == ["a.csv line 3"]


def test_unlinked_skip_mode_and_ignored_clients(tmp_path: Path) -> None:
    folder = syn.inbox(tmp_path, syn.STATUS_REPORT)
    syn.link_all(tmp_path / "links.csv")
    _, _, errors = by_kind(pull(adapter(tmp_path, folder, unlinked="skip")))
    assert all("not linked" not in r for e in errors for r in e.reasons.values())
    drew_rows = {
        "appointment_status.csv line 15",
        "appointment_status.csv line 16",
        "clients.xlsx row 6",
    }
    book = LinkBook.load(tmp_path / "links.csv")
    drew = NameHasher(syn.NAME_KEY, "sp").name("Drew Unlinked")
    assert drew is not None
    book.set("name", drew, None, syn.NOW.date())  # `fit clients ignore`
    book.save()
    _, _, errors = by_kind(pull(adapter(tmp_path, folder)))
    unlinked = {e.location for e in errors if "client" in e.reasons}
    assert unlinked and not unlinked & drew_rows  # Jordan Same is still reported


def test_past_appointment_without_status_is_a_problem_future_is_scheduled(tmp_path: Path) -> None:
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "a.csv").write_text(
        "Date,Client,Status\n03/20/2026 09:00,Alex Example,\n04/02/2026 17:00,Alex Example,\n"
        "04/09/2026 09:00,Alex Example,Scheduled\n",
        encoding="utf-8",
    )
    syn.link_all(tmp_path / "links.csv")
    appts, _, errors = by_kind(pull(adapter(tmp_path, folder)))
    assert [e.location for e in errors] == ["a.csv line 2"]
    assert "no attendance status for a past appointment" in errors[0].reasons["status"]
    assert {a.status for a in appts} == {"scheduled"} and len(appts) == 2


def test_same_appointment_in_two_exports_newest_wins(tmp_path: Path) -> None:
    import os

    folder = tmp_path / "x"
    folder.mkdir()
    old, new = folder / "march.csv", folder / "march-again.csv"
    old.write_text("Date,Client,Status\n03/02/2026 09:00,Alex Example,\n", encoding="utf-8")
    new.write_text("Date,Client,Status\n03/02/2026 09:00,Alex Example,Show\n", encoding="utf-8")
    os.utime(old, (1_700_000_000, 1_700_000_000))
    os.utime(new, (1_700_100_000, 1_700_100_000))
    syn.link_all(tmp_path / "links.csv")
    appts, _, errors = by_kind(
        pull(adapter(tmp_path, folder, date_formats=["%m/%d/%Y %H:%M"], statuses={"": "scheduled"}))
    )
    assert [a.status for a in appts] == ["attended"] and not errors


def test_bookmark_skips_unchanged_exports_and_rereads_after_a_new_link(tmp_path: Path) -> None:
    folder = syn.inbox(tmp_path, syn.STATUS_REPORT)
    syn.link_all(tmp_path / "links.csv")
    first = adapter(tmp_path, folder)
    items = pull(first)
    bookmark = first.next_bookmark()
    assert bookmark is not None
    assert_no_names(items, bookmark)
    again = adapter(tmp_path, folder)
    assert pull(again, bookmark) == [] and again.next_bookmark() == bookmark
    book = LinkBook.load(tmp_path / "links.csv")
    drew = NameHasher(syn.NAME_KEY, "sp").name("Drew Unlinked")
    assert drew is not None
    book.set("name", drew, "C009", syn.NOW.date())
    book.save()
    appts, _, _ = by_kind(pull(adapter(tmp_path, folder), bookmark))
    assert {a.client_id for a in appts} >= {"C009"}


def test_links_file_is_private_and_holds_no_names(tmp_path: Path) -> None:
    syn.link_all(tmp_path / "links.csv")
    path = tmp_path / "links.csv"
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text(encoding="utf-8")
    for name in NAMES:
        assert name.lower() not in text.lower()
    assert "number,1002,C002" in text and "key-check=" in text


def test_another_name_key_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    folder = syn.inbox(tmp_path, syn.STATUS_REPORT, clients=False)
    syn.link_all(tmp_path / "links.csv")
    ctx = make_context(
        "sp",
        syn.sp_options(tmp_path, folder),
        tmp_path,
        adapter=SimplePracticeAdapter,
        secrets={"name_key": "x" * 32},
    )
    with pytest.raises(ConfigError, match="another name_key"):
        SimplePracticeAdapter(ctx).check()


def test_unknown_options_and_bad_values_raise_naming_the_key(tmp_path: Path) -> None:
    for extra, needle in (
        ({"colums": {}}, "colums"),
        ({"columns": {"appointments": {"stat": "X"}}}, "stat"),
        ({"columns": {"visits": {}}}, "visits"),
        ({"statuses": {"Rescheduled": "maybe"}}, "maybe"),
        ({"kinds": {"*.csv": "invoices"}}, "invoices"),
        ({"unlinked": "guess"}, "unlinked"),
    ):
        with pytest.raises(ConfigError, match=needle):
            adapter(tmp_path, tmp_path, **extra)


def test_header_and_file_errors_are_one_record_error_per_file(tmp_path: Path) -> None:
    folder = syn.inbox(tmp_path, syn.STATUS_REPORT, clients=False)
    (folder / "notes.csv").write_text("Foo,Bar\n1,2\n", encoding="utf-8")
    (folder / "broken.xlsx").write_bytes(b"not a zip")
    shutil.copy(folder / syn.STATUS_REPORT, folder / "copy.csv")
    syn.link_all(tmp_path / "links.csv")
    _, _, errors = by_kind(pull(adapter(tmp_path, folder)))
    keys = {e.source_key: e for e in errors}
    assert "not a report fit-sync knows" in keys["notes.csv:header"].reasons["header"]
    assert keys["notes.csv:header"].location == "notes.csv line 1"
    assert "not a readable .xlsx" in keys["broken.xlsx:file"].reasons["file"]


def test_last_first_names_suffixes_and_described_codes() -> None:
    assert normalise_name("Example, Alex") == normalise_name("alex EXAMPLE")
    assert normalise_name("Alex Example, Jr.") == "alex example jr"
    assert clean_code("90834 Psychotherapy, 45 min") == "90834"
    assert is_intake(clean_code("90791 Diagnostic evaluation"), frozenset({"90791"}))


def test_billing_codes_complete_a_status_report_without_codes(tmp_path: Path) -> None:
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "status.csv").write_text(
        "Date,Client,Status\n03/02/2026 09:00,Alex Example,Show\n"
        "03/09/2026 09:00,Alex Example,No Show\n",
        encoding="utf-8",
    )
    shutil.copy(syn.HERE / syn.BILLING_REPORT, folder / syn.BILLING_REPORT)
    syn.link_all(tmp_path / "links.csv")
    # 03/02 and 03/09 could be day first too: the source says they are month first
    appts, _, _ = by_kind(pull(adapter(tmp_path, folder, date_order="MDY")))
    alex = sorted((a for a in appts if a.client_id == "C001"), key=lambda a: a.starts_at)
    # the status report's statuses win; the billing report adds the codes (90791: intake)
    assert [(a.status, a.service_code, a.intake) for a in alex] == [
        ("attended", "90791", True),
        ("no_show", "90834", False),
    ]
    assert {a.client_id for a in appts} == {"C001", "C003", "C004"}  # billing-only rows
    appts, _, _ = by_kind(pull(adapter(tmp_path, folder, billing_rows="codes", date_order="MDY")))
    assert {a.client_id for a in appts} == {"C001"}


def test_future_show_date_only_is_scheduled(tmp_path: Path) -> None:
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "a.csv").write_text(
        "Date,Client,Status\n04/01/2026,Alex Example,Show\n04/03/2026,Alex Example,Show\n"
        "04/02/2026 08:00,Alex Example,Show\n04/02/2026 11:00,Alex Example,Show\n",
        encoding="utf-8",
    )
    syn.link_all(tmp_path / "links.csv")
    # every date could be day first as well: refused whole until the source says which
    appts, _, errors = by_kind(pull(adapter(tmp_path, folder)))
    assert not appts and [e.source_key for e in errors] == ["a.csv:file"]
    assert "date_order" in errors[0].reasons["date"]
    appts, _, _ = by_kind(pull(adapter(tmp_path, folder, date_order="MDY")))  # now: 04/02 10:00
    got = sorted((a.starts_at, a.status) for a in appts)
    assert [s for _, s in got] == ["attended", "attended", "scheduled", "scheduled"]


def test_kinds_option_names_a_report_the_header_does_not_reveal(tmp_path: Path) -> None:
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "roster.csv").write_text(
        'Name,Primary Clinician,Status\nAlex Example,"Jamie Rivera, LCSW",Active\n',
        encoding="utf-8",
    )
    (folder / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    syn.link_all(tmp_path / "links.csv")
    _, infos, errors = by_kind(pull(adapter(tmp_path, folder)))
    assert not infos
    assert {e.source_key for e in errors} == {"roster.csv:header", "old.xls:file"}
    assert (
        ".xlsx or CSV" in next(e for e in errors if e.source_key == "old.xls:file").reasons["file"]
    )
    _, infos, _ = by_kind(pull(adapter(tmp_path, folder, kinds={"ROSTER*": "clients"})))
    assert [(i.client_id, i.clinician_id, i.status) for i in infos] == [("C001", "T07", "active")]


def test_a_garbled_link_book_is_a_config_error_naming_the_row(tmp_path: Path) -> None:
    path = tmp_path / "links.csv"
    path.write_text("kind,key,client_id,linked_at\nname,Alex Example,C001,2026-01-01\n")
    with pytest.raises(ConfigError, match="row 2 is not a name hash") as exc:
        LinkBook.load(path)
    assert "Alex" not in str(exc.value)
    path.write_text("who,what\n")
    with pytest.raises(ConfigError, match="header"):
        LinkBook.load(path)


def test_every_option_is_documented() -> None:
    from fit_adapters.simplepractice.options import SimplePracticeOptionsSchema

    doc = (Path(__file__).parent.parent / "docs" / "simplepractice.md").read_text("utf-8")
    documented = set(re.findall(r"^\| `(\w+)` \|", doc, flags=re.M))
    assert set(SimplePracticeOptionsSchema().fields) <= documented


def test_a_status_report_missing_a_column_is_never_another_kind() -> None:
    status = ["Date", "Start Time", "Client", "Client ID", "Clinician", "Service Code", "Status"]
    without = [h for h in status if h != "Status"]
    with pytest.raises(HeaderError, match="missing column 'status'"):
        detect(without, {}, None)  # dates and codes but no payment columns
    with pytest.raises(HeaderError, match="missing column 'status'"):
        detect([*without, "Paid"], {}, None, "appointment_status.csv Appointment Status Report")
    assert detect([*without, "Paid"], {}, None).kind == "billing"  # payment columns: billing
    assert detect(without, {}, None, "billing_2026.csv").kind == "billing"
    # without its date it is still a status report, not a client list with a client id
    with pytest.raises(HeaderError, match="missing column 'date'"):
        detect([h for h in status if h not in ("Date", "Start Time")], {}, None)
    # a billing report without its codes says so
    with pytest.raises(HeaderError, match="missing column 'code'"):
        detect([h for h in BILLING_HEADER if h != "Billing Code"], {}, None)
    assert detect(list(syn.CLIENT_HEADER), {}, None).kind == "clients"
