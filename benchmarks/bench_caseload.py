#!/usr/bin/env python3
"""Measure the caseload pages and notification planning over a synthetic clinic.

Run by hand (it is not a test); needs the reports extra (`pip install -e '.[reports]'`)::

    python benchmarks/bench_caseload.py --n 100000
    python benchmarks/bench_caseload.py --n 20000 --workdir /tmp/fitbench-caseload

Steps:

a. generate N administrations (:func:`fit_core.synthetic.generate_rows`) and sync them into a
   fresh store in-process ("today" = the day after the middle of the data, so many episodes
   are still open and many alerts hold);
b. ``fit report caseload`` as :func:`write_caseload` does it: every active client's report
   page plus every clinician's page and the index (cold: the first run draws everything);
c. the same after a sync that rescored ten active clients (:func:`regenerate`): only their
   reports are drawn again, the caseload pages always;
d. planning the notifications of a per-clinician e-mail route over every open alert
   (``Dispatcher.preview``: the work of a delivery without the network);
e. print every figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
import time
from pathlib import Path

from fit_core.config import config_from_mapping
from fit_core.notify.deliver import Dispatcher
from fit_core.plugins import load_plugins
from fit_core.reports.caseload_write import regenerate, write_caseload
from fit_core.store import Store
from fit_core.sync import SyncEngine
from fit_core.synthetic import generate_rows, write_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="administrations (default 100k)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fitbench-caseload-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = list(generate_rows(args.n))
    dates = sorted(r["administered_at"][:10] for r in rows)
    today = dt.date.fromisoformat(dates[len(dates) // 2]) + dt.timedelta(days=1)
    write_csv(work / "admins.csv", rows)
    clinicians = sorted({r["clinician_id"] for r in rows if r.get("clinician_id")})
    raw = {
        "store": {"path": str(work / "fit.sqlite3")},
        "sync": {"timezone": "UTC"},
        "sources": {
            "bench": {
                "adapter": "csv",
                "path": str(work / "admins.csv"),
                "scores_path": str(work / "scores.csv"),
            }
        },
        "reports": {"caseload_dir": str(work / "caseload")},
        "notify": {
            "clinicians": {c: f"{c.lower()}@clinic.example" for c in clinicians},
            "channels": {
                "mail": {"type": "email", "host": "127.0.0.1", "from": "fit@clinic.example"}
            },
            "routes": {
                "clinicians": {"channel": "mail", "to": "clinician", "when": "digest",
                               "at": ["07:30"], "detail": "scores"}
            },
        },
    }  # fmt: skip
    config = config_from_mapping(raw, path=work / "fit.toml")
    registry = load_plugins()
    for old in work.glob("fit.sqlite3*"):
        old.unlink()
    shutil.rmtree(work / "caseload", ignore_errors=True)
    store = Store.open(config.store_path)
    now = dt.datetime.combine(today, dt.time(6), tzinfo=dt.UTC)
    t = time.perf_counter()
    summary = SyncEngine(config, registry, store, clock=lambda: now).run()
    print(
        f"data: {args.n:,} administrations, today = {today}; sync {time.perf_counter() - t:.1f} s"
    )
    print(f"open alerts: {summary.open_flags:,}")

    t = time.perf_counter()
    full = write_caseload(config, registry, store, work / "caseload", as_of=today)
    cold = time.perf_counter() - t
    print(
        f"caseload, everything drawn: {cold:.1f} s for {full.clients:,} active clients "
        f"({len(full.pages)} caseload pages + {len(full.client_pages):,} client reports; "
        f"{cold / max(1, full.clients) * 1000:.0f} ms per client)"
    )
    manifest = json.loads((work / "caseload" / ".fit-caseload.json").read_text("utf-8"))
    some = {tuple(k.split("/", 1)) for k in sorted(manifest["clients"])[:10]}
    t = time.perf_counter()
    after = regenerate(config, registry, store, rescored=some, clock=lambda: now)
    warm = time.perf_counter() - t
    print(
        f"caseload after a sync that rescored 10 clients: {warm:.1f} s "
        f"({len(after.client_pages)} client reports drawn, {after.kept:,} kept)"
    )
    t = time.perf_counter()
    (preview,) = Dispatcher(config, registry, store, clock=lambda: now).preview()
    plan_s = time.perf_counter() - t
    told = sum(len(m.items) for m in preview.plan.messages)
    print(
        f"notification planning: {plan_s:.2f} s for {told:,} alerts in "
        f"{len(preview.plan.messages)} digests (detail = scores)"
    )
    store.close()
    if args.workdir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
