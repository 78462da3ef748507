#!/usr/bin/env python3
"""Measure the REDCap adapter against the loopback fake REDCap: requests, seconds, request rate.

Run by hand (it is not a test); it uses the fake in tests/fakes/redcap_fake.py::

    python benchmarks/bench_redcap.py                       # 10,000 records, throttle 2/s
    python benchmarks/bench_redcap.py --records 2000 --json
    python benchmarks/bench_redcap.py --records 2000 --oom-rows 5000   # a server short of memory

Steps (the fake adds no artificial latency):

a. ONE-SHOT: the same export as one plain ``requests.post`` (every record, the mapped fields,
   survey fields, JSON parsed): the floor a full pull is compared with.
b. FULL PULL: the adapter's ``check()`` and ``pull(None)`` (project info, metadata, the ids, then
   batches of ``--batch-size`` records), at the default throttle; the ratio to ONE-SHOT.
c. FULL SYNC: ``SyncEngine.run()`` on an empty store: pull, score, push to the scoring instrument
   (per push step: one read-back of the records' scoring rows, then the imports).
d. RE-SYNC 1: nothing changed outside; it reads our own imports again (they changed the
   records' modification times), checks server_timezone against them and pushes nothing.
e. RE-SYNC 2: nothing changed; at most 3 requests.
f. INCREMENTAL: ``--changed`` percent of the records get a new ORS (an outside change), then a
   sync: only those records are read, and only the new administrations pushed.

Every step reports its requests (and how many the server answered "ran out of memory"), seconds,
and the smallest gap between two requests the server saw; the largest number of requests in any
one-second window is checked against the throttle. ``--oom-rows N`` makes the fake run out of
memory past N rows an export (the record ids alone included), so every export is split;
``--skip-srs`` makes a share of sessions have no SRS. Records change over months (their last
survey), as in a real project.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakes.redcap_fake import (  # noqa: E402
    SESSION,
    TOKEN,
    RedcapFake,
    clinic_project,
    source_options,
)

from fit_adapters.redcap.adapter import RedcapAdapter  # noqa: E402
from fit_core.config import config_from_mapping  # noqa: E402
from fit_core.errors import ConfigError  # noqa: E402
from fit_core.hookspecs import hookimpl  # noqa: E402
from fit_core.plugins import load_plugins  # noqa: E402
from fit_core.rules import builtin as builtin_rules  # noqa: E402
from fit_core.store import Store  # noqa: E402
from fit_core.sync import SyncEngine  # noqa: E402
from fit_core.testing import make_context  # noqa: E402

SOURCE = "bench_redcap"
TARGET_RATIO = 2.0


def window_max(times: list[float], width: float = 1.0) -> int:
    """The most requests the server saw in any window of ``width`` seconds."""
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - width:
            j += 1
        best = max(best, i - j + 1)
    return best


def measure(fake: RedcapFake, step: Callable[[], Any]) -> tuple[dict[str, Any], Any]:
    """Run ``step``; its seconds, requests and the tightest spacing the server saw."""
    mark = len(fake.hits)
    started = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - started
    times = [h.at for h in fake.hits[mark:]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    figures = {
        "seconds": round(seconds, 2),
        "requests": len(times),
        "min_gap_s": round(min(gaps), 3) if gaps else None,
        "max_per_second": window_max(times) if times else 0,
        "out_of_memory": sum(1 for h in fake.hits[mark:] if h.status == 500),
    }
    return figures, result


def one_shot(fake: RedcapFake, fields: list[str]) -> int:
    data = [
        ("token", TOKEN),
        ("content", "record"),
        ("format", "json"),
        ("type", "flat"),
        ("rawOrLabel", "raw"),
        ("exportSurveyFields", "true"),
        ("returnFormat", "json"),
    ]
    data += [(f"fields[{i}]", f) for i, f in enumerate(fields)]
    response = requests.post(fake.url, data=data, timeout=600)
    if response.status_code == 500:
        return -1  # out of memory: the one-shot export is not possible on this server
    response.raise_for_status()
    return len(response.json())


def engine_for(workdir: Path, options: dict[str, Any]) -> SyncEngine:
    class Shim:
        @staticmethod
        @hookimpl
        def fit_register_adapters(register: Callable[[type], None]) -> None:
            register(RedcapAdapter)

    config = config_from_mapping(
        {
            "store": {"path": str(workdir / "fit.sqlite3")},
            "sync": {"timezone": "America/Chicago"},
            "sources": {SOURCE: {"adapter": "redcap", **options}},
        }
    )
    registry = load_plugins(extra=[builtin_rules, Shim], entry_points=False)

    def secret(source: str, key: str) -> str:
        if key != "token":
            raise ConfigError(f"no secret {key}")
        return TOKEN

    return SyncEngine(config, registry, Store.open(config.store_path), secret=secret)


def sync_step(engine: SyncEngine) -> Callable[[], dict[str, Any]]:
    def step() -> dict[str, Any]:
        src = engine.run().sources[0]
        if src.status != "ok":
            raise SystemExit(f"sync failed: {src.error}")
        return {"pulled": src.pulled, "pushed": src.pushed}

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--throttle", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--changed", type=float, default=1.0, help="percent for INCREMENTAL")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--pull-only", action="store_true", help="only ONE-SHOT and FULL PULL")
    parser.add_argument(
        "--oom-rows", type=int, default=None, help="the fake runs out of memory past N rows"
    )
    parser.add_argument("--skip-srs", type=float, default=0.0, help="share of sessions, 0-1")
    args = parser.parse_args(argv)

    print(f"building a synthetic project of {args.records:,} records ...", file=sys.stderr)
    project = clinic_project(args.records, seed=args.seed, modified=None, skip_srs=args.skip_srs)
    rows = sum(len(r) for r in project.data.values())
    options_extra = {"batch_size": args.batch_size, "throttle": args.throttle}
    figures: dict[str, Any] = {
        "records": args.records,
        "rows": rows,
        "oom_rows": args.oom_rows,
        **options_extra,
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        RedcapFake(project, row_limit=args.oom_rows) as fake,
    ):
        workdir = Path(tmp)
        options = source_options(fake, **options_extra)
        adapter = RedcapAdapter(
            make_context(
                SOURCE,
                options,
                workdir,
                adapter=RedcapAdapter,
                timezone="America/Chicago",
                secrets={"token": TOKEN},
            )
        )

        def full_pull() -> int:
            adapter.check()
            return sum(1 for _ in adapter.pull(None))

        fields = [
            f
            for f in dict.fromkeys(
                [
                    "record_id",
                    "age",
                    "clinician",
                    *options["instruments"]["ors"]["items"],
                    "ors_complete",
                    *options["instruments"]["srs"]["items"],
                    "srs_complete",
                ]
            )
        ]
        figures["one_shot"], n_rows = measure(fake, lambda: one_shot(fake, fields))
        adapter_from = len(fake.hits)  # the one-shot is a plain call, not the adapter's
        figures["one_shot"]["rows"] = n_rows  # -1: the server ran out of memory
        figures["full_pull"], n_records = measure(fake, full_pull)
        figures["full_pull"]["administrations"] = n_records
        adapter.close()
        ratio = figures["full_pull"]["seconds"] / max(figures["one_shot"]["seconds"], 1e-9)
        figures["pull_ratio"] = round(ratio, 1)

        if args.pull_only:
            figures["max_per_second_overall"] = window_max([h.at for h in fake.hits[adapter_from:]])
            report(figures, args.throttle)
            return 0
        engine = engine_for(workdir, options)
        try:
            figures["full_sync"], figures["full_sync_counts"] = measure(fake, sync_step(engine))
            figures["resync_1"], figures["resync_1_counts"] = measure(fake, sync_step(engine))
            figures["resync_2"], figures["resync_2_counts"] = measure(fake, sync_step(engine))
            rng = random.Random(args.seed)
            changed = rng.sample(
                sorted(project.data), max(1, int(args.records * args.changed / 100))
            )
            for record in changed:
                project.put(
                    record,
                    {
                        "ors_1": 55,
                        "ors_2": 60,
                        "ors_3": 40,
                        "ors_4": 50,
                        "ors_complete": 2,
                        "ors_timestamp": "2024-06-20 10:00:00",
                    },
                    event=SESSION,
                    repeat_instrument="ors",
                    instance=99,
                    modified=fake.now_local(),
                )
            figures["incremental"], figures["incremental_counts"] = measure(fake, sync_step(engine))
        finally:
            engine.store.close()
        all_times = [h.at for h in fake.hits[adapter_from:]]
        figures["max_per_second_overall"] = window_max(all_times)

    report(figures, args.throttle)
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


def report(f: dict[str, Any], throttle: float) -> None:
    def line(name: str, key: str, extra: str = "") -> None:
        x = f[key]
        gap = "-" if x["min_gap_s"] is None else f"{x['min_gap_s']:.3f}s"
        print(
            f"{name:<13} {x['requests']:>5} requests {x['seconds']:>8.2f}s   "
            f"min gap {gap:>7}  max/s {x['max_per_second']:>2}  "
            f"out of memory {x['out_of_memory']:>3}  {extra}"
        )

    memory = f", out of memory past {f['oom_rows']:,} rows" if f.get("oom_rows") else ""
    print(
        f"\nREDCap adapter vs the fake: {f['records']:,} records ({f['rows']:,} rows), "
        f"throttle {throttle:g}/s, batch_size {f['batch_size']}{memory}"
    )
    shot = f["one_shot"]["rows"]
    line(
        "ONE-SHOT",
        "one_shot",
        "the server ran out of memory" if shot < 0 else f"{shot:,} rows in one plain requests call",
    )
    line("FULL PULL", "full_pull", f"{f['full_pull']['administrations']:,} administrations")
    if shot < 0:
        print(f"{'':13} full pull / one-shot: no one-shot to compare with")
    else:
        verdict = "ok" if f["pull_ratio"] <= TARGET_RATIO else "MISSED"
        print(
            f"{'':13} full pull / one-shot = {f['pull_ratio']}x (target <= {TARGET_RATIO:g}x: "
            f"{verdict})"
        )
    for name, key in (
        ()
        if "full_sync" not in f
        else (
            ("FULL SYNC", "full_sync"),
            ("RE-SYNC 1", "resync_1"),
            ("RE-SYNC 2", "resync_2"),
            ("INCREMENTAL", "incremental"),
        )
    ):
        counts = f[f"{key}_counts"]
        line(name, key, f"pulled {counts['pulled']:,}, pushed {counts['pushed']:,}")
    limit = int(throttle) if throttle >= 1 else 1
    ok = f["max_per_second_overall"] <= limit
    print(
        f"most requests in any 1 s window, the adapter's steps: {f['max_per_second_overall']} "
        f"(throttle {throttle:g}/s: {'ok' if ok else 'EXCEEDED'})"
    )


if __name__ == "__main__":
    sys.exit(main())
