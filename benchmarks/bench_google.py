#!/usr/bin/env python3
"""Measure the google_forms adapter: calls and seconds of a full sync and a re-sync.

Run by hand (it is not a test); it needs the test fake, so run it from the repository::

    python benchmarks/bench_google.py                    # 5,000 responses over two forms
    python benchmarks/bench_google.py --responses 20000 --json

Steps:

a. start the loopback fake of Forms, Sheets and the token endpoint (tests/fakes/google_fake.py)
   with Google's per-minute quotas switched on (Forms 180, Sheets 60 calls a minute: a call
   beyond them gets a 429), and fill two forms, one ORS and one SRS, with synthetic responses;
b. full sync: `SyncEngine.run()` on an empty store (check, pull, validate, score, rules, push
   to a Scores tab that does not exist yet), as `fit sync` runs it but in this process;
c. re-sync with nothing changed: it should list each form once and write nothing;
d. incremental sync after 1 % of the responses were edited and 1 % added;
e. print, per run: seconds, Forms calls (get / list), Sheets reads and writes, 429s, time spent
   waiting for the per-minute budgets, the engine's counts, and the rows in the Scores tab.

Real time: retries and throttles sleep for real, as in production.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakes.google_fake import (  # noqa: E402 - needs the path above
    GoogleFake,
    measure_form,
    populate,
    service_account_json,
)

from fit_core.config import config_from_mapping  # noqa: E402
from fit_core.plugins import load_plugins  # noqa: E402
from fit_core.store import Store  # noqa: E402
from fit_core.sync import SyncEngine  # noqa: E402

BOOK = "benchScores000001"
START = dt.datetime(2025, 1, 6, 8, 0, tzinfo=dt.UTC)


def setup(fake: GoogleFake, responses: int, seed: int) -> dict[str, Any]:
    """Two forms with ``responses`` in all; returns the source's options."""
    forms = []
    per_form = responses // 2
    for n, measure in enumerate(("ORS", "SRS")):
        form_id = f"bench{measure}Form0001"
        doc, layout = measure_form(form_id, [measure])
        fake.add_form(form_id, doc)
        count = per_form if n == 0 else responses - per_form
        populate(
            fake,
            layout,
            count,
            seed=seed + n,
            clients=max(1, count // 8),
            start=START,
            step=dt.timedelta(minutes=3),
        )
        forms.append(
            {
                "form_id": form_id,
                "client_id": {"id": layout.client},
                "clinician": {"id": layout.clinician},
                "measures": {
                    measure: {
                        f"q{i + 1}": {"id": q, "scale": "range:0:10"}
                        for i, q in enumerate(layout.items[measure])
                    }
                },
            }
        )
    fake.add_spreadsheet(BOOK)
    return {"adapter": "google_forms", **fake.endpoints(), "spreadsheet_id": BOOK, "forms": forms}


def change_some(fake: GoogleFake, share: float, seed: int) -> int:
    """Edit and add ``share`` of each form's responses (now-ish timestamps); how many."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    changed = 0
    for form_id, form in fake.forms.items():
        ids = list(form.responses)
        k = max(1, int(len(ids) * share))
        items = [
            i["questionItem"]["question"]["questionId"]
            for i in form.doc["items"]
            if "scaleQuestion" in i.get("questionItem", {}).get("question", {})
        ]
        for rid in rng.sample(ids, k):
            fake.edit_response(
                form_id, rid, {q: str(rng.randint(0, 10)) for q in items}, submitted=now
            )
        layout_client = form.doc["items"][0]["questionItem"]["question"]["questionId"]
        for i in range(k):
            answers = {layout_client: f"N{i:04d}", **{q: str(rng.randint(0, 10)) for q in items}}
            fake.add_response(form_id, answers, submitted=now)
        changed += 2 * k
    return changed


def run(engine: SyncEngine, fake: GoogleFake, label: str) -> dict[str, Any]:
    fake.calls.clear()
    started = time.perf_counter()
    summary = engine.run()
    seconds = time.perf_counter() - started
    src = summary.sources[0]
    if src.status != "ok":
        raise SystemExit(f"{label}: the sync failed: {src.error}")
    ops = Counter(c.op for c in fake.calls)
    statuses = Counter(c.status for c in fake.calls)
    sheets = [c for c in fake.calls if c.path.startswith("/v4/")]
    return {
        "run": label,
        "seconds": round(seconds, 3),
        "calls": len(fake.calls),
        "forms_get": ops["forms.get"],
        "forms_list": ops["forms.responses.list"],
        "sheets_reads": sum(1 for c in sheets if c.method == "GET"),
        "sheets_writes": len(fake.writes()),
        "token": ops["token"],
        "http_429": statuses[429],
        "pulled": src.pulled,
        "new": src.new,
        "changed": src.changed,
        "pushed": src.pushed,
        "rows_in_tab": len(fake.table(BOOK, "Scores")),
        "ops": dict(sorted(ops.items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--responses", type=int, default=5000, help="responses over the two forms (default 5000)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--no-quota",
        action="store_true",
        help="do not enforce Google's per-minute quotas in the fake",
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)

    results = []
    with GoogleFake.running() as fake, tempfile.TemporaryDirectory() as tmp:
        if not args.no_quota:
            fake.quota = {"forms": 180, "sheets": 60}
        t = time.perf_counter()
        source = setup(fake, args.responses, args.seed)
        print(f"fake filled with {args.responses} responses in {time.perf_counter() - t:.2f} s")
        config = config_from_mapping(
            {
                "store": {"path": str(Path(tmp) / "fit.sqlite3")},
                "sync": {"timezone": "UTC"},
                "sources": {"bench": source},
            }
        )
        key = service_account_json()
        store = Store.open(config.store_path)
        try:
            engine = SyncEngine(config, load_plugins(), store, secret=lambda s, k: key)
            results.append(run(engine, fake, "full sync"))
            results.append(run(engine, fake, "re-sync"))
            changed = change_some(fake, 0.01, args.seed)
            results.append(run(engine, fake, f"incremental ({changed} edited/new)"))
        finally:
            store.close()

    head = (
        "run",
        "seconds",
        "calls",
        "forms_get",
        "forms_list",
        "sheets_reads",
        "sheets_writes",
        "http_429",
        "pulled",
        "new",
        "changed",
        "pushed",
        "rows_in_tab",
    )
    widths = [max(len(h), *(len(str(r[h])) for r in results)) for h in head]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    for r in results:
        print("  ".join(str(r[h]).ljust(w) for h, w in zip(head, widths, strict=True)))
    for r in results:
        print(f"{r['run']}: {r['ops']}")
    total = args.responses
    full, again = results[0], results[1]
    print(
        f"full sync: {total / full['seconds']:.0f} responses/s; re-sync: "
        f"{100 * again['seconds'] / full['seconds']:.1f} % of the full sync, "
        f"{again['forms_list']} list calls for 2 forms, {again['sheets_writes']} Sheets writes"
    )
    if args.json:
        print(json.dumps({"responses": total, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
