"""Synthetic SimplePractice exports and ORS/SRS data for the bridge's tests.

Every person here is invented ("Alex Example", "Blair Sample", ...). The committed CSV exports
beside this file mimic real SimplePractice reports: a title line above the header, US dates with
24 h times, full names in ``Client``, CPT codes with trailing spaces, both spellings of
statuses, and the billing report's duplicate ``Charge``/``Paid``/``Unpaid`` headers. The client
list is written here as an Excel workbook (openpyxl), with real Excel dates.

Links used by the tests (namespace ``clinic``):

========================  =========  ==========================================
SimplePractice client     client id  linked how
========================  =========  ==========================================
Alex Example (1001)       C001       by name
Blair Sample (1002)       C002       by SimplePractice id 1002
Zoë Placeholder (1003)    C003       by name, typed with the accent and caps
Casey Billing (1007)      C004       by name (only in the billing report)
Drew Unlinked (1004)      -          not linked: rows reported "client not linked"
Jordan Same (1005, 1006)  -          two clients share the name: ambiguous
========================  =========  ==========================================
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

HERE = Path(__file__).parent
NAME_KEY = "synthetic-name-key-0123456789abcdef"
TIMEZONE = "America/Chicago"
#: the sync's "now": 2026-04-02 10:00 in Chicago
NOW = dt.datetime(2026, 4, 2, 15, 0, tzinfo=dt.UTC)

STATUS_REPORT = "appointment_status.csv"
BILLING_REPORT = "billing_appointments.csv"
RENAMED_REPORT = "renamed_columns.csv"

CLIENT_ROWS: list[tuple[object, ...]] = [
    (1001, "Alex", "Example", dt.datetime(1990, 5, 1), "Active", "Jamie Rivera, LCSW"),
    (1002, "Blair", "Sample", dt.datetime(2009, 8, 15), "Active", "Sam Okafor, PhD"),
    (1003, "Zoe", "Placeholder", dt.datetime(1985, 1, 20), "Active", "Jamie Rivera, LCSW"),
    (1004, "Drew", "Unlinked", dt.datetime(1970, 2, 2), "Inactive", "Sam Okafor, PhD"),
    (1005, "Jordan", "Same", dt.datetime(1992, 3, 3), "Active", "Jamie Rivera, LCSW"),
    (1006, "Jordan", "Same", dt.datetime(1994, 4, 4), "Active", "Sam Okafor, PhD"),
    (1007, "Casey", "Billing", dt.datetime(2001, 6, 6), "Active", "Sam Okafor, PhD"),
]
CLIENT_HEADER = (
    "Client ID",
    "First Name",
    "Last Name",
    "Date of Birth",
    "Status",
    "Primary Clinician",
)

#: ORS/SRS collected elsewhere (the csv adapter's FIT long format), dates clinic-local
SCORES = """client_id,administered_at,measure,total
C001,2026-03-02,ORS,18
C001,2026-03-02,SRS,38
C001,2026-03-09,ORS,20
C001,2026-03-09,SRS,38
C001,2026-03-16,ORS,24.5
C001,2026-03-16,SRS,39
C002,2026-03-03,ORS,22
C002,2026-03-03,SRS,37
C002,2026-03-10,ORS,23
C002,2026-03-10,SRS,36.5
C002,2026-03-31,ORS,27
C002,2026-03-31,SRS,38
C003,2026-03-06,ORS,15
C003,2026-03-06,SRS,35
C004,2026-03-27,ORS,30
"""


def write_client_list(path: Path, rows: list[tuple[object, ...]] | None = None) -> Path:
    """The client list as an Excel workbook with a title row above the header."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Clients"
    sheet.append(["Client List (synthetic)"])
    sheet.append(list(CLIENT_HEADER))
    for row in rows if rows is not None else CLIENT_ROWS:
        sheet.append(list(row))
    for cell in sheet["D"]:
        cell.number_format = "mm/dd/yyyy"
    book.save(path)
    return path


def inbox(tmp: Path, *reports: str, clients: bool = True) -> Path:
    """A folder of exports: the named committed reports and (by default) the client list."""
    folder = tmp / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    for name in reports:
        shutil.copy(HERE / name, folder / name)
    if clients:
        write_client_list(folder / "clients.xlsx")
    return folder


def link_all(mapping_file: Path) -> None:
    """The links of the table above, made through the link book as `fit clients link` does."""
    from fit_adapters.simplepractice.links import LinkBook
    from fit_adapters.simplepractice.names import NameHasher

    hasher = NameHasher(NAME_KEY, "sp")
    book = LinkBook.load(mapping_file)
    book.key_check = hasher.check_value()
    today = NOW.date()
    for name, client in (
        ("Alex Example", "C001"),
        ("ZOË  placeholder", "C003"),
        ("Casey Billing", "C004"),
    ):
        key = hasher.name(name)
        assert key is not None
        book.set("name", key, client, today)
    book.set("number", "1002", "C002", today)
    book.save()


def sp_options(tmp: Path, folder: Path, **extra: object) -> dict[str, object]:
    """Options of the simplepractice source used in the tests."""
    options: dict[str, object] = {
        "path": str(folder),
        "namespace_target": "clinic",
        "outbox": str(tmp / "outbox"),
        "mapping_file": str(tmp / "links.csv"),
        "clinicians": {"Jamie Rivera, LCSW": "T07"},
    }
    options.update(extra)
    return options
