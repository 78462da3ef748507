#!/usr/bin/env python3
"""Measure the SimplePractice bridge's pull: reading a large appointment status report.

Run by hand (it is not a test), from the repository::

    python benchmarks/bench_simplepractice.py                 # 2,000 clients x 50 weeks
    python benchmarks/bench_simplepractice.py --clients 500 --weeks 52 --json

Steps:

a. write an appointment status report (CSV, US dates, a separate "Start Time" column with
   AM/PM times) of ``clients x weeks`` rows of invented clients, and link every client in the
   link book;
b. pull it once through the adapter (no store, no engine): classify the file, survey it (row
   count, date order, unreadable rows, a cut-off last row), then read every row into linked
   appointments;
c. pull again with the bookmark of (b): nothing changed, so nothing is read;
d. print the seconds of each, rows per second, and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "data" / "simplepractice"))

import sp_synthetic as syn  # noqa: E402 - needs the path above

from fit_adapters.simplepractice.adapter import SimplePracticeAdapter  # noqa: E402
from fit_adapters.simplepractice.links import LinkBook  # noqa: E402
from fit_adapters.simplepractice.names import NameHasher  # noqa: E402
from fit_core.testing import make_context  # noqa: E402


def write_report(path: Path, clients: int, weeks: int) -> None:
    start = dt.date(2025, 1, 6)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Date", "Start Time", "Client", "Clinician", "Service Code", "Status"])
        for week in range(weeks):
            for i in range(clients):
                day = start + dt.timedelta(weeks=week, days=i % 5)
                hour = 8 + i % 9
                status = "No Show" if (i + week) % 7 == 0 else "Show"
                w.writerow(
                    [
                        day.strftime("%m/%d/%Y"),
                        dt.time(hour).strftime("%I:%M %p"),
                        f"Client{i} Example",
                        "Jamie Rivera, LCSW",
                        "90834 ",
                        status,
                    ]
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--weeks", type=int, default=50)
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fit-sp-bench-") as tmp_name:
        tmp = Path(tmp_name)
        folder = tmp / "exports"
        folder.mkdir()
        write_report(folder / "appointment_status.csv", args.clients, args.weeks)
        hasher = NameHasher(syn.NAME_KEY, "sp")
        book = LinkBook.load(tmp / "links.csv")
        book.key_check = hasher.check_value()
        for i in range(args.clients):
            key = hasher.name(f"Client{i} Example")
            assert key is not None
            book.set("name", key, f"C{i:05d}", dt.date(2026, 1, 1))
        book.save()
        ctx = make_context(
            "sp",
            syn.sp_options(tmp, folder),
            tmp,
            adapter=SimplePracticeAdapter,
            timezone=syn.TIMEZONE,
            run_started=syn.NOW,
            secrets={"name_key": syn.NAME_KEY},
        )
        rows = args.clients * args.weeks
        first = SimplePracticeAdapter(ctx)
        t0 = time.perf_counter()
        items = sum(1 for _ in first.pull(None))
        full = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = sum(1 for _ in SimplePracticeAdapter(ctx).pull(first.next_bookmark()))
        unchanged = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    figures = {
        "rows": rows,
        "items": items,
        "full_pull_s": round(full, 2),
        "rows_per_s": round(rows / full),
        "unchanged_pull_s": round(unchanged, 3),
        "unchanged_items": again,
        "peak_rss_mb": round(peak),
    }
    print(
        f"{rows:,} status-report rows -> {items:,} appointments: full pull {full:.2f} s "
        f"({rows / full:,.0f} rows/s); unchanged pull {unchanged:.3f} s ({again} items); "
        f"peak memory {peak:.0f} MB"
    )
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
