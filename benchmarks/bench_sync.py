#!/usr/bin/env python3
"""Measure `fit sync` on a synthetic clinic: throughput, re-sync cost and peak memory.

Run by hand (it is not a test)::

    python benchmarks/bench_sync.py --n 100000
    python benchmarks/bench_sync.py --n 100000 --workdir /tmp/fitbench --memory-n 0

Steps (see benchmarks/README.md for what each figure means):

a. generate N administrations into ``admins.csv`` with :func:`fit_core.synthetic.generate_rows`
   (not timed as part of any figure; its own speed is printed for information);
b. FLOOR: read that CSV with the ``csv`` module and write the same rows to another CSV
   (``csv.reader`` → ``csv.writer``), the least any sync of this file can cost in Python;
c. write a fit config and time ``fit --config CONFIG sync`` on an empty store (full sync);
d. time a second ``fit sync`` with nothing changed (re-sync);
e. peak memory: the full sync of ``--memory-n`` administrations (default 1,000,000; 0 skips it)
   into a fresh store, measuring the child's maximum RSS from a fresh wrapper process;
f. print every figure next to its target.

`fit sync` exits 0 (all good) or 1 (some bad records, quarantined); any other exit code is a
failure: the script prints the tail of its stderr and exits 1.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fit_core.synthetic import generate_rows, write_csv

TARGET_RATE = 10_000  # administrations per second, full sync
TARGET_RESYNC_PCT = 5.0  # re-sync time as % of the full sync
TARGET_PEAK_MB = 250.0  # peak RSS of a full sync of 1,000,000 administrations
OK_EXIT_CODES = (0, 1)  # 0 OK, 1 PARTIAL (some records quarantined)

# Runs the command given in argv[1:] and prints its exit code, wall time and the maximum RSS of
# its process tree (RUSAGE_CHILDREN of this fresh wrapper covers only that one child).
_RSS_WRAPPER = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
seconds = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.buffer.write(p.stderr[-4000:])
print(json.dumps({"rc": p.returncode, "seconds": seconds, "maxrss": ru.ru_maxrss,
                  "stdout": p.stdout.decode("utf-8", "replace")}))
"""


@dataclass
class Run:
    """One `fit` invocation."""

    label: str
    rc: int
    seconds: float
    stdout: str = ""
    stderr: str = ""
    peak_mb: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.rc in OK_EXIT_CODES


def fit_command() -> list[str]:
    """The `fit` console script next to this interpreter, else ``python -m fit_cli``."""
    bindir = Path(sys.executable).parent
    for name in ("fit", "fit.exe"):
        script = bindir / name
        if script.exists():
            return [str(script)]
    return [sys.executable, "-m", "fit_cli"]


def child_env() -> dict[str, str]:
    """The environment for `fit`: ours without FIT_* settings that could change the run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIT_")}
    env.pop("STATE_DIRECTORY", None)
    env.pop("CREDENTIALS_DIRECTORY", None)
    return env


def write_config(workdir: Path, admins_csv: Path, name: str = "fit.toml") -> Path:
    """The benchmark's fit config (one CSV source) in ``workdir``; removes an old store."""
    store = workdir / "fit.sqlite3"
    for old in (store, *workdir.glob("fit.sqlite3-*"), workdir / "scores.csv"):
        old.unlink(missing_ok=True)
    config = workdir / name
    config.write_text(
        "[store]\n"
        f"path = {json.dumps(str(store))}\n"
        "[sync]\n"
        'timezone = "UTC"\n'
        "[sources.bench]\n"
        'adapter = "csv"\n'
        f"path = {json.dumps(str(admins_csv))}\n"
        f"scores_path = {json.dumps(str(workdir / 'scores.csv'))}\n",
        encoding="utf-8",
    )
    return config


def run_fit(label: str, args: list[str], *, measure_rss: bool = False) -> Run:
    """Run `fit ARGS`, timing it; with ``measure_rss`` through the max-RSS wrapper."""
    cmd = fit_command() + args
    if measure_rss:
        proc = subprocess.run(
            [sys.executable, "-c", _RSS_WRAPPER, *cmd],
            capture_output=True,
            text=True,
            env=child_env(),
        )
        try:
            out = json.loads(proc.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            return Run(label, proc.returncode or 99, 0.0, proc.stdout, proc.stderr)
        # ru_maxrss is in KiB on Linux, in bytes on macOS
        scale = 1024 * 1024 if sys.platform == "darwin" else 1024
        run = Run(label, out["rc"], out["seconds"], out["stdout"], proc.stderr)
        run.peak_mb = out["maxrss"] / scale
    else:
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
        run = Run(label, proc.returncode, time.perf_counter() - t, proc.stdout, proc.stderr)
    try:
        run.summary = json.loads(run.stdout) if run.stdout.strip() else {}
    except json.JSONDecodeError:
        run.summary = {}
    return run


def csv_floor(src: Path, dst: Path) -> float:
    """Seconds to copy ``src`` to ``dst`` row by row with the csv module alone."""
    t = time.perf_counter()
    with (
        src.open(newline="", encoding="utf-8") as fin,
        dst.open("w", newline="", encoding="utf-8") as fout,
    ):
        csv.writer(fout).writerows(csv.reader(fin))
    return time.perf_counter() - t


def generate(path: Path, n: int, seed: int) -> float:
    """Write ``n`` synthetic administrations to ``path``; returns the seconds it took."""
    t = time.perf_counter()
    written = write_csv(path, generate_rows(n, seed=seed))
    assert written == n, (written, n)
    return time.perf_counter() - t


def source_counts(run: Run) -> str:
    """'pulled X, new Y, pushed Z, quarantined Q' from `fit sync --json`, when it printed one."""
    sources = run.summary.get("sources") if isinstance(run.summary, dict) else None
    if not sources:
        return ""
    s = sources[0]
    keys = ("pulled", "new", "changed", "unchanged", "pushed", "quarantined")
    return ", ".join(f"{k} {s[k]}" for k in keys if k in s)


def report_failure(run: Run) -> None:
    print(f"  FAILED: {run.label}: `fit sync` exited {run.rc}", file=sys.stderr)
    tail = (run.stderr or run.stdout).strip().splitlines()[-15:]
    for line in tail:
        print(f"    {line}", file=sys.stderr)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="administrations (default 100000)")
    parser.add_argument("--workdir", type=Path, help="where files go (default: a temp dir)")
    parser.add_argument(
        "--memory-n",
        type=int,
        default=1_000_000,
        help="administrations for the peak-memory run (default 1000000; 0 skips it)",
    )
    parser.add_argument("--seed", type=int, default=1, help="synthetic clinic seed (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep a temporary workdir")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if args.n < 1 or args.memory_n < 0:
        parser.error("--n must be >= 1 and --memory-n >= 0")

    temp = args.workdir is None
    workdir: Path = args.workdir or Path(tempfile.mkdtemp(prefix="fit-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return bench(args, workdir)
    finally:
        if temp and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif temp:
            print(f"(kept {workdir})")


def bench(args: argparse.Namespace, workdir: Path) -> int:
    n: int = args.n
    fit = " ".join(fit_command())
    print(f"fit-sync sync benchmark: N = {n:,} administrations, workdir {workdir}")
    print(f"  fit: {fit}; python {sys.version.split()[0]}; {os.cpu_count()} CPUs")

    # (a) data
    admins = workdir / "admins.csv"
    gen_s = generate(admins, n, args.seed)
    size_mb = admins.stat().st_size / 1e6
    print(f"  generated {admins.name}: {size_mb:.1f} MB in {gen_s:.2f} s ({n / gen_s:,.0f} rows/s)")

    # (b) floor
    floor_s = csv_floor(admins, workdir / "floor.csv")
    (workdir / "floor.csv").unlink(missing_ok=True)

    # startup cost, for reading the small-N figures
    startup = run_fit("startup", ["--version"])

    # (c) full sync, (d) re-sync
    config = write_config(workdir, admins)
    sync_args = ["--config", str(config), "sync", "--json"]
    full = run_fit("full sync", sync_args)
    failures = [r for r in (full,) if not r.ok]
    resync = run_fit("re-sync", sync_args) if full.ok else None
    if resync is not None and not resync.ok:
        failures.append(resync)

    # (e) peak memory
    mem: Run | None = None
    if args.memory_n and full.ok:
        memdir = workdir / "memory"
        memdir.mkdir(exist_ok=True)
        mem_admins = admins if args.memory_n == n else memdir / "admins.csv"
        if mem_admins != admins:
            mem_gen_s = generate(mem_admins, args.memory_n, args.seed)
            print(f"  generated memory/admins.csv: {args.memory_n:,} rows in {mem_gen_s:.1f} s")
        mem_args = ["--config", str(write_config(memdir, mem_admins)), "sync", "--json"]
        mem = run_fit("memory run", mem_args, measure_rss=True)
        if not mem.ok:
            failures.append(mem)

    # (f) figures
    figures: dict[str, Any] = {
        "n": n,
        "floor_seconds": round(floor_s, 3),
        "floor_rate": round(n / floor_s),
        "startup_seconds": round(startup.seconds, 3),
        "full_rc": full.rc,
        "full_seconds": round(full.seconds, 3),
    }
    print()
    print(f"  {'figure':<34}{'value':>16}   target")
    floor_label = "FLOOR csv.reader -> csv.writer"
    print(f"  {floor_label:<34}{floor_s:>14.2f} s   ({n / floor_s:,.0f} rows/s)")
    print(f"  {'fit startup (fit --version)':<34}{startup.seconds:>14.2f} s")
    if full.ok:
        rate = n / full.seconds
        ratio = full.seconds / floor_s
        figures.update(full_rate=round(rate), full_over_floor=round(ratio, 1))
        print(f"  {'full sync':<34}{full.seconds:>14.2f} s   exit {full.rc}; {source_counts(full)}")
        print(
            f"  {'  administrations/s':<34}{rate:>16,.0f}   >= {TARGET_RATE:,}: "
            f"{verdict(rate >= TARGET_RATE)}"
        )
        print(f"  {'  full sync / floor':<34}{ratio:>15.1f}x")
    if resync is not None and resync.ok:
        pct = 100 * resync.seconds / full.seconds
        figures.update(resync_rc=resync.rc, resync_seconds=round(resync.seconds, 3))
        figures.update(resync_pct=round(pct, 2))
        print(f"  {'re-sync (no change)':<34}{resync.seconds:>14.2f} s   {source_counts(resync)}")
        print(
            f"  {'  % of the full sync':<34}{pct:>15.1f}%   <= {TARGET_RESYNC_PCT:g}%: "
            f"{verdict(pct <= TARGET_RESYNC_PCT)}"
        )
        if full.seconds > startup.seconds:
            # the same ratio without the fixed cost of starting Python and importing fit
            base = startup.seconds
            net = 100 * max(resync.seconds - base, 0.0) / (full.seconds - base)
            figures.update(resync_pct_net_of_startup=round(net, 2))
            print(f"  {'  % net of startup':<34}{net:>15.1f}%   (for reading small-N runs)")
    if mem is not None and mem.ok and mem.peak_mb is not None:
        figures.update(memory_n=args.memory_n, memory_seconds=round(mem.seconds, 3))
        figures.update(peak_mb=round(mem.peak_mb, 1))
        label = f"peak RSS, full sync of {args.memory_n:,}"
        target = ""
        if args.memory_n >= 1_000_000:
            target = f"<= {TARGET_PEAK_MB:g} MB: {verdict(mem.peak_mb <= TARGET_PEAK_MB)}"
        else:
            target = f"(the {TARGET_PEAK_MB:g} MB target is for 1,000,000)"
        print(f"  {label:<34}{mem.peak_mb:>13.0f} MB   {target}")
        print(
            f"  {'  its time, administrations/s':<34}{args.memory_n / mem.seconds:>16,.0f}   "
            f"({mem.seconds:.1f} s)"
        )
    elif args.memory_n == 0:
        print(f"  {'peak RSS':<34}{'skipped':>16}   (--memory-n 0)")
    for run in failures:
        report_failure(run)
    if args.json:
        figures["failures"] = [asdict(r) | {"stdout": r.stdout[-2000:]} for r in failures]
        print(json.dumps(figures, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
