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
from dataclasses import dataclass
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


# --- a larger practice: 40 invented clients over three months -------------------------------

FIRST_NAMES = ("Avery", "Bailey", "Cameron", "Dakota", "Emerson", "Finley", "Harper", "Jessie")
LAST_NAMES = ("Example", "Sample", "Specimen", "Mockup", "Fictive")
PRACTICE_CLINICIANS = ("Jamie Rivera, LCSW", "Sam Okafor, PhD", "Robin Lee, LMFT")
PRACTICE_START = dt.date(2026, 1, 5)  # a Monday; twelve weekly appointments each
PRACTICE_WEEKS = 12
#: a practice's statuses, most appointments attended (weights out of 20)
_STATUS_MIX = (
    ("Show", 14),
    ("No Show", 2),
    ("Late Canceled", 2),
    ("Canceled", 1),
    ("Clinician Canceled", 1),
)


@dataclass(frozen=True)
class PracticeClient:
    name: str  # invented
    sp_id: int
    client_id: str  # the ORS/SRS client id
    born: dt.date
    clinician: str


@dataclass(frozen=True)
class PracticeAppt:
    client: PracticeClient
    starts: dt.datetime  # clinic-local
    status: str  # as SimplePractice writes it
    code: str


@dataclass
class Practice:
    """The exports of a synthetic practice, and what they hold (for the assertions)."""

    clients: list[PracticeClient]
    appointments: list[PracticeAppt]

    def statuses(self, client_id: str) -> list[str]:
        return [a.status for a in self.appointments if a.client.client_id == client_id]


def practice(n_clients: int = 40, seed: int = 13) -> Practice:
    """A practice of ``n_clients`` invented clients with weekly appointments (deterministic)."""
    import random

    rng = random.Random(seed)
    names = [f"{f} {last}" for last in LAST_NAMES for f in FIRST_NAMES][:n_clients]
    clients = [
        PracticeClient(
            name,
            2001 + i,
            f"R{i + 1:03d}",
            dt.date(1960 + rng.randrange(45), 1 + rng.randrange(12), 1 + rng.randrange(28)),
            PRACTICE_CLINICIANS[i % len(PRACTICE_CLINICIANS)],
        )
        for i, name in enumerate(names)
    ]
    words = [w for w, n in _STATUS_MIX for _ in range(n)]
    appts = []
    for i, c in enumerate(clients):
        hour = 9 + i % 8  # 9 AM .. 4 PM
        first = PRACTICE_START + dt.timedelta(days=i % 5)
        for week in range(PRACTICE_WEEKS):
            day = first + dt.timedelta(weeks=week)
            status = "Show" if week == 0 else rng.choice(words)
            code = "90791" if week == 0 else rng.choice(("90834", "90837"))
            appts.append(PracticeAppt(c, dt.datetime.combine(day, dt.time(hour)), status, code))
    return Practice(clients, appts)


def _date(d: dt.date, day_first: bool) -> str:
    return d.strftime("%d/%m/%Y" if day_first else "%m/%d/%Y")


def write_status_report(path: Path, p: Practice, *, day_first: bool = False) -> Path:
    """The appointment status report, by date: a separate 12-hour "Start Time" column."""
    import csv

    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("Appointment Status Report\r\n\r\n")
        w = csv.writer(f)
        w.writerow(
            ["Date", "Start Time", "End Time", "Client", "Clinician", "Service Code", "Status"]
        )
        for a in sorted(p.appointments, key=lambda a: (a.starts, a.client.sp_id)):
            end = a.starts + dt.timedelta(minutes=50)
            w.writerow(
                [
                    _date(a.starts.date(), day_first),
                    a.starts.strftime("%I:%M %p"),
                    end.strftime("%I:%M %p"),
                    a.client.name,
                    a.client.clinician,
                    a.code + " ",
                    a.status,
                ]
            )
    return path


#: SimplePractice bills shows, no-shows and late cancels
BILLED = ("Show", "No Show", "Late Canceled")


def write_billing_report(path: Path, p: Practice, *, day_first: bool = False) -> Path:
    """The billing appointment report: 24 h date-times, duplicate payment headers."""
    import csv

    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
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
        )
        for a in sorted(p.appointments, key=lambda a: (a.starts, a.client.sp_id)):
            if a.status not in BILLED:
                continue
            when = f"{_date(a.starts.date(), day_first)} {a.starts:%H:%M}"
            w.writerow(
                [
                    when,
                    a.client.name,
                    a.client.clinician,
                    a.code + " ",
                    "Acme Health",
                    "",
                    "$150.00",
                    "1",
                    "$150.00",
                    "PAID",
                    "$30.00",
                    "$0.00",
                    "$30.00",
                    "$0.00",
                    "PAID",
                    "$120.00",
                    "$120.00",
                    "$0.00",
                ]
            )
    return path


def write_practice_clients(path: Path, p: Practice, *, day_first: bool = False) -> Path:
    """The client list as CSV, dates of birth as text."""
    import csv

    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(CLIENT_HEADER))
        for c in p.clients:
            first, last = c.name.split(" ", 1)
            w.writerow([c.sp_id, first, last, _date(c.born, day_first), "Active", c.clinician])
    return path


def practice_scores(p: Practice) -> str:
    """ORS and SRS of every attended session but each client's fourth (an unscored one)."""
    lines = ["client_id,administered_at,measure,total"]
    for c in p.clients:
        shows = [a for a in p.appointments if a.client is c and a.status == "Show"]
        for n, a in enumerate(shows):
            if n == 3:
                continue
            ors = min(40.0, 14 + 2.5 * n + (c.sp_id % 5))
            lines.append(f"{c.client_id},{a.starts.date().isoformat()},ORS,{ors}")
            lines.append(f"{c.client_id},{a.starts.date().isoformat()},SRS,{36 + n % 4}")
    return "\n".join(lines) + "\n"


def write_link_file(path: Path, clients: list[PracticeClient]) -> Path:
    """A two-column link file (name, client id) as a clinic would make it in a spreadsheet."""
    import csv

    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Name", "Client ID"])
        for c in clients:
            w.writerow([c.name, c.client_id])
    return path


def link_practice(mapping_file: Path, clients: list[PracticeClient]) -> None:
    """Link ``clients`` by name in the link book, as `fit clients link` does."""
    from fit_adapters.simplepractice.links import LinkBook
    from fit_adapters.simplepractice.names import NameHasher

    hasher = NameHasher(NAME_KEY, "sp")
    book = LinkBook.load(mapping_file)
    book.key_check = hasher.check_value()
    for c in clients:
        key = hasher.name(c.name)
        assert key is not None
        book.set("name", key, c.client_id, NOW.date())
    book.save()
