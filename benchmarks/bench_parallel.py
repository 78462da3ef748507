#!/usr/bin/env python3
"""Does a second process pay off for a sync? Reading and validating in one, storing in the other.

Run by hand (it is not a test)::

    python benchmarks/bench_parallel.py                 # 50,000 rows, 5 runs each, medians
    python benchmarks/bench_parallel.py --n 100000 --repeat 3

Of a full sync only the pull can overlap with other work: scoring needs every record of a client,
so it starts when the pull has ended. This script times that part both ways, with the real CSV
reader, validator and store:

- serial: read the CSV, validate, build the store rows and upsert them in chunks (what
  ``fit sync`` does);
- two processes: a child reads and validates and sends each chunk of administrations through a
  pipe (pickled); the parent unpickles them, builds the rows and upserts them (SQLite stays in
  one process, so a kill still leaves whole transactions only).

It prints both times (medians of ``--repeat`` runs), the CPU each side used, and the cost of the
hand-over (pickling and unpickling), so the answer can be read on the machine at hand: on two
otherwise idle cores the parent's critical path shrinks by what the child does minus what
unpickling costs; on a busy machine the child competes for the same cores.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import pickle
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

CHUNK = 2_000


def _records(path: Path) -> Iterator[Any]:
    """The CSV adapter's records of ``path`` (its reader, as a sync reads the file)."""
    from fit_adapters.csv.options import CsvOptions
    from fit_adapters.csv.reader import KeyLedger, read_file

    opts = CsvOptions.load({"path": str(path), "scores_path": str(path.with_suffix(".out"))}, "b")
    yield from read_file(path, path.name, opts, KeyLedger())


def _chunks(path: Path) -> Iterator[list[Any]]:
    """Validated chunks of administrations (the producer's work)."""
    from fit_core.measures import BUILTIN_MEASURES
    from fit_core.validation import Validator

    validator = Validator({m.key: m for m in BUILTIN_MEASURES}, "UTC", source="bench")
    chunk: list[Any] = []
    for record in _records(path):
        chunk.append(record)
        if len(chunk) == CHUNK:
            yield validator.validate_many(chunk)
            chunk = []
    if chunk:
        yield validator.validate_many(chunk)


def _store(store: Any, admins: list[Any]) -> None:
    """The consumer's work for one chunk: store rows, content hashes, one transaction."""
    from fit_core.store import admin_row_hashed, now_text

    at = now_text()
    rows = [admin_row_hashed(a, at)[0] for a in admins if not isinstance(a, dict)]
    with store.transaction():
        store.upsert_administrations(rows)


def serial(path: Path, db: Path) -> dict[str, float]:
    from fit_core.store import Store

    store = Store.open(db)
    t, c = time.perf_counter(), time.process_time()
    for admins in _chunks(path):
        _store(store, admins)
    out = {"seconds": time.perf_counter() - t, "cpu_parent": time.process_time() - c}
    store.close()
    return out


def _producer(path: str, conn: Any) -> None:
    c = time.process_time()
    for admins in _chunks(Path(path)):
        # an empty ``extra`` is a shared read-only mapping, which pickle cannot take
        plain = [a if isinstance(a, dict) else replace(a, extra=dict(a.extra)) for a in admins]
        conn.send_bytes(pickle.dumps(plain, protocol=pickle.HIGHEST_PROTOCOL))
    conn.send_bytes(b"")
    conn.send_bytes(pickle.dumps(time.process_time() - c))
    conn.close()


def parallel(path: Path, db: Path) -> dict[str, float]:
    from fit_core.store import Store

    store = Store.open(db)
    t, c = time.perf_counter(), time.process_time()
    receive, send = mp.Pipe(duplex=False)
    child = mp.get_context("fork").Process(target=_producer, args=(str(path), send))
    child.start()
    send.close()
    unpickle = 0.0
    while blob := receive.recv_bytes():
        u = time.process_time()
        admins = pickle.loads(blob)
        unpickle += time.process_time() - u
        _store(store, admins)
    child_cpu = pickle.loads(receive.recv_bytes())
    child.join()
    out = {
        "seconds": time.perf_counter() - t,
        "cpu_parent": time.process_time() - c,
        "cpu_child": child_cpu,
        "unpickle": unpickle,
    }
    store.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="administrations (default 50000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each (default 5)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    from fit_core.synthetic import generate_rows, write_csv

    with tempfile.TemporaryDirectory(prefix="fit-par-") as tmp:
        path = Path(tmp) / "admins.csv"
        write_csv(path, generate_rows(args.n, seed=args.seed))
        load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
        print(
            f"read + validate + store {args.n:,} administrations; {os.cpu_count()} CPUs, ", end=""
        )
        print(f"load {load[0]:.2f}; medians of {args.repeat}")
        runs: dict[str, list[dict[str, float]]] = {"serial": [], "two processes": []}
        for i in range(args.repeat):  # interleaved, so a change of load touches both alike
            for name, fn in (("serial", serial), ("two processes", parallel)):
                db = Path(tmp) / f"{name[0]}{i}.sqlite3"
                runs[name].append(fn(path, db))
        for name, results in runs.items():
            med = {k: statistics.median(r[k] for r in results) for k in results[0]}
            extra = ", ".join(f"{k} {v:.2f} s" for k, v in med.items() if k != "seconds")
            print(f"  {name:<14}{med['seconds']:>7.2f} s   ({extra})")
        s = statistics.median(r["seconds"] for r in runs["serial"])
        p = statistics.median(r["seconds"] for r in runs["two processes"])
        verdict = "pays off" if p < s * 0.9 else "does not pay off"
        print(f"  two processes / serial: {p / s:.2f} ({verdict} here)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
