#!/usr/bin/env python3
"""Measure `fit sync` on a synthetic clinic against the floor of reading and writing its CSV.

Run by hand (it is not a test)::

    python benchmarks/bench_sync.py                       # 50,000 rows, 3 runs each, 1M memory run
    python benchmarks/bench_sync.py --n 100000 --memory-n 0 --repeat 5

Steps (see benchmarks/README.md for what each figure means):

a. generate N administrations into ``admins.csv`` with :func:`fit_core.synthetic.generate_rows`
   (not timed as part of any figure);
b. FLOOR: read that CSV with the ``csv`` module and write the same rows to another CSV
   (``csv.reader`` → ``csv.writer``), the least any sync of this file can cost in Python;
c. ``fit --version`` (start-up: Python and fit's imports);
d. ``fit sync`` on an empty store (full sync), then again with nothing changed (re-sync);
   and the full sync again with ``[sync] processes = 1`` (no second process; ``--no-single``
   skips it), which says whether the second process pays off on this machine;
e. the same full sync in a child process with timers around the engine's phases (read,
   validate, store, score, outbox, push; the rest is start-up, config and plugins);
f. peak memory: the full sync of ``--memory-n`` administrations (default 1,000,000; 0 skips it)
   into a fresh store, measuring the child's maximum RSS from a fresh wrapper process;
g. print every figure in seconds and as a multiple of the floor measured in this run (medians
   of ``--repeat`` runs), next to its target, and the SHA-256 of the scores file written.

`fit sync` exits 0 (all good) or 1 (some bad records, quarantined); any other exit code is a
failure: the script prints the tail of its stderr and exits 1.

Every `fit` runs from compiled bytecode, as an installed fit does (pip compiles a package's
modules when it installs it): the children run without ``PYTHONDONTWRITEBYTECODE`` (inherited,
it would make every timed run compile fit's sources again, which no scheduled `fit sync` pays),
and before the first timed run the script compiles fit's packages and runs one untimed
``fit --version``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TARGET_FLOOR_RATIO = 20.0  # full sync / floor (the next step is 10)
TARGET_RESYNC_OVER_STARTUP = 0.5  # seconds a no-change re-sync may take beyond `fit --version`
TARGET_PEAK_MB = 250.0  # peak RSS of a full sync of 1,000,000 administrations
OK_EXIT_CODES = (0, 1)  # 0 OK, 1 PARTIAL (some records quarantined)

#: the engine's phases: each is timed exclusive of the phases called inside it (a function
#: listed here that does not exist in the code under test is skipped, so the same script
#: measures older versions of fit-sync too)
PHASES: dict[str, tuple[tuple[str, str], ...]] = {
    "read": (("fit_core.sync", "SyncEngine._pull"),),
    "validate": (("fit_core.validation", "Validator.validate_many"),),
    "store": (("fit_core.sync", "SyncEngine._ingest"),),
    "score": (("fit_core.sync", "SyncEngine._rescore"),),
    "outbox": (
        ("fit_core.sync", "outbox_item"),
        ("fit_core.sync", "outbox_row"),
        ("fit_core.sync", "outbox_row_with_line"),
        ("fit_core.store", "Store.write_outbox"),
        ("fit_core.store", "Store.write_outbox_rows"),
    ),
    "push": (("fit_core.sync", "SyncEngine._push"),),
}
PHASE_NOTES = {
    "read": "the adapter reads the CSV (csv.reader, keys)",
    "validate": "records -> administrations",
    "store": "hash, upsert, dirty marks",
    "score": "sessions, change, rules, alerts",
    "outbox": "payloads, their JSON, hash and scores-file line, outbox rows",
    "push": "the scores file",
    "other": "start-up, imports, config, plugins, store",
}

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
    """The environment for `fit`: ours without FIT_* settings that could change the run, and
    without PYTHONDONTWRITEBYTECODE, so `fit` imports compiled bytecode as an installed fit does
    (with it every run would compile fit's sources again)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIT_")}
    env.pop("STATE_DIRECTORY", None)
    env.pop("CREDENTIALS_DIRECTORY", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def warm_up() -> None:
    """Compile fit's packages (as pip does when it installs them; an editable install leaves
    that to the first import) and run one untimed `fit --version`, so the timed runs find the
    bytecode written. Both in child processes: this process imports nothing of fit's before
    it measures the floor (its imports would slow the floor's own run here)."""
    subprocess.run([sys.executable, "-c", _COMPILE], capture_output=True, env=child_env())
    run_fit("warm-up", ["--version"])


#: the child that compiles fit's packages (see warm_up)
_COMPILE = """
import compileall, importlib.util
for package in ("fit_core", "fit_adapters", "fit_cli"):
    spec = importlib.util.find_spec(package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        compileall.compile_dir(folder, quiet=1)
"""


def write_config(
    workdir: Path, admins_csv: Path, name: str = "fit.toml", processes: int = 2
) -> Path:
    """The benchmark's fit config (one CSV source) in ``workdir``; removes an old store.
    ``processes`` is ``[sync] processes`` (2, the default: a second process scores big
    batches where there are two CPUs)."""
    store = workdir / "fit.sqlite3"
    for old in (store, *workdir.glob("fit.sqlite3-*"), workdir / "scores.csv"):
        old.unlink(missing_ok=True)
    config = workdir / name
    config.write_text(
        "[store]\n"
        f"path = {json.dumps(str(store))}\n"
        "[sync]\n"
        'timezone = "UTC"\n'
        f"processes = {processes}\n"
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
    from fit_core.synthetic import generate_rows, write_csv

    t = time.perf_counter()
    written = write_csv(path, generate_rows(n, seed=seed))
    assert written == n, (written, n)
    return time.perf_counter() - t


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def source_counts(run: Run) -> str:
    """'pulled X, new Y, pushed Z, quarantined Q' from `fit sync --json`, when it printed one."""
    sources = run.summary.get("sources") if isinstance(run.summary, dict) else None
    if not sources:
        return ""
    s = sources[0]
    keys = ("pulled", "new", "unchanged", "pushed", "quarantined")
    return ", ".join(f"{k} {s[k]}" for k in keys if k in s)


def report_failure(run: Run) -> None:
    print(f"  FAILED: {run.label}: `fit` exited {run.rc}", file=sys.stderr)
    tail = (run.stderr or run.stdout).strip().splitlines()[-15:]
    for line in tail:
        print(f"    {line}", file=sys.stderr)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- the phase timers (run in a child process: `bench_sync.py --phase-child CONFIG OUT`) -----


def _install_timers(totals: dict[str, float], clock: Callable[[], float]) -> list[str]:
    """Wrap the functions of :data:`PHASES` with exclusive timers; returns the ones found."""
    import importlib

    stack: list[float] = []
    found: list[str] = []

    def timed(fn: Callable[..., Any], phase: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                inner = stack.pop()
                spent = clock() - start
                totals[phase] += spent - inner
                if stack:
                    stack[-1] += spent

        return wrapper

    for phase, targets in PHASES.items():
        totals.setdefault(phase, 0.0)
        for module_name, qualname in targets:
            owner: Any = importlib.import_module(module_name)
            *path, attr = qualname.split(".")
            for part in path:
                owner = getattr(owner, part, None)
            if owner is None or not callable(getattr(owner, attr, None)):
                continue
            setattr(owner, attr, timed(getattr(owner, attr), phase))
            found.append(f"{module_name}.{qualname}")
    return found


def phase_child(config: str, out: str, clock_name: str) -> int:
    """Run `fit --config CONFIG sync` in this process with phase timers; write JSON to OUT."""
    clock = time.process_time if clock_name == "cpu" else time.perf_counter
    start = clock()
    totals: dict[str, float] = {}
    found = _install_timers(totals, clock)
    from fit_cli.main import main as fit_main

    sys.argv = ["fit", "--config", config, "sync", "--json"]
    devnull = open(os.devnull, "w")  # noqa: SIM115 - the summary is not needed here
    sys.stdout = devnull
    code: Any = 0
    try:
        fit_main()
    except SystemExit as exc:
        code = exc.code
    total = clock() - start
    totals["other"] = total - sum(totals.values())
    Path(out).write_text(
        json.dumps({"rc": code, "total": total, "phases": totals, "timed": found}),
        encoding="utf-8",
    )
    return 0


def phase_run(workdir: Path, admins: Path, out: Path, clock: str) -> dict[str, Any]:
    """One instrumented full sync of ``admins`` (into a fresh store in ``workdir``)."""
    workdir.mkdir(exist_ok=True)
    config = write_config(workdir, admins)
    proc = subprocess.run(
        [sys.executable, __file__, "--phase-child", str(config), str(out), clock],
        capture_output=True,
        text=True,
        env=child_env(),
    )
    if proc.returncode != 0 or not out.exists():
        return {"rc": proc.returncode or 99, "error": proc.stderr[-2000:]}
    return json.loads(out.read_text(encoding="utf-8"))


# --- the benchmark ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--phase-child"]:
        return phase_child(argv[1], argv[2], argv[3])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="administrations (default 50000)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each timed figure; medians (default 3)"
    )
    parser.add_argument("--workdir", type=Path, help="where files go (default: a temp dir)")
    parser.add_argument(
        "--memory-n",
        type=int,
        default=1_000_000,
        help="administrations for the peak-memory run (default 1000000; 0 skips it)",
    )
    parser.add_argument("--seed", type=int, default=1, help="synthetic clinic seed (default 1)")
    parser.add_argument("--no-phases", action="store_true", help="skip the per-phase runs")
    parser.add_argument(
        "--no-single",
        action="store_true",
        help="skip the full syncs with [sync] processes = 1 (the second process's gain)",
    )
    parser.add_argument(
        "--phase-clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time the phases by the wall clock (default) or by this process's CPU time "
        "(steadier on a busy machine; start-up I/O waits are then left out)",
    )
    parser.add_argument("--keep", action="store_true", help="keep a temporary workdir")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if args.n < 1 or args.memory_n < 0 or args.repeat < 1:
        parser.error("--n and --repeat must be >= 1, --memory-n >= 0")

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
    repeat: int = args.repeat
    fit = " ".join(fit_command())
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"fit-sync sync benchmark: N = {n:,} administrations, {repeat} run(s) each, medians")
    print(f"  fit: {fit}; python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
    if load:
        print(f"  load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    # (a) data
    admins = workdir / "admins.csv"
    gen_s = generate(admins, n, args.seed)
    size_mb = admins.stat().st_size / 1e6
    print(f"  generated {admins.name}: {size_mb:.1f} MB in {gen_s:.2f} s")

    warm_up()
    config = write_config(workdir, admins)
    sync_args = ["--config", str(config), "sync", "--json"]
    floors: list[float] = []
    startups: list[float] = []
    fulls: list[Run] = []
    singles: list[Run] = []  # full syncs with [sync] processes = 1
    resyncs: list[Run] = []
    failures: list[Run] = []
    scores_hash = ""
    for _ in range(repeat):
        # (b) floor, (c) start-up, (d) full sync and re-sync, interleaved so that a change in
        # the machine's load touches every figure alike
        floors.append(csv_floor(admins, workdir / "floor.csv"))
        (workdir / "floor.csv").unlink(missing_ok=True)
        startups.append(run_fit("startup", ["--version"]).seconds)
        write_config(workdir, admins)
        full = run_fit("full sync", sync_args)
        if not full.ok:
            failures.append(full)
            break
        fulls.append(full)
        scores_hash = sha256(workdir / "scores.csv")
        resync = run_fit("re-sync", sync_args)
        if not resync.ok:
            failures.append(resync)
            break
        resyncs.append(resync)
        if not args.no_single:
            (workdir / "single").mkdir(exist_ok=True)
            single_cfg = write_config(workdir / "single", admins, processes=1)
            single = run_fit("full sync, one process", ["--config", str(single_cfg), "sync"])
            if not single.ok:
                failures.append(single)
                break
            singles.append(single)

    # (e) phases
    phases: list[dict[str, Any]] = []
    if not args.no_phases and not failures:
        for i in range(repeat):
            result = phase_run(
                workdir / "phases", admins, workdir / f"phases{i}.json", args.phase_clock
            )
            if result.get("rc") not in OK_EXIT_CODES:
                print(f"  phase run failed: {result.get('error', '')[-500:]}", file=sys.stderr)
                break
            phases.append(result)

    # (f) peak memory
    mem: Run | None = None
    if args.memory_n and not failures:
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

    # (g) figures
    floor_s = median(floors)
    startup_s = median(startups)
    figures: dict[str, Any] = {
        "n": n,
        "repeat": repeat,
        "load_before": list(load) if load else None,
        "floor_seconds": round(floor_s, 3),
        "startup_seconds": round(startup_s, 3),
    }

    def line(label: str, seconds: float, note: str = "") -> None:
        print(f"  {label:<36}{seconds:>9.2f} s{seconds / floor_s:>9.1f}x   {note}")

    print()
    print(f"  {'figure':<36}{'seconds':>11}{'x floor':>10}   target / note")
    line("FLOOR csv.reader -> csv.writer", floor_s, f"({n / floor_s:,.0f} rows/s)")
    line("fit startup (fit --version)", startup_s)
    if fulls:
        full_s = median([r.seconds for r in fulls])
        ratio = full_s / floor_s
        figures.update(
            full_seconds=round(full_s, 3),
            full_rate=round(n / full_s),
            full_over_floor=round(ratio, 1),
            full_runs=[round(r.seconds, 3) for r in fulls],
            scores_sha256=scores_hash,
        )
        line(
            "full sync",
            full_s,
            f"<= {TARGET_FLOOR_RATIO:g}x: {verdict(ratio <= TARGET_FLOOR_RATIO)}; "
            f"{n / full_s:,.0f} administrations/s",
        )
        print(f"  {'':<36}{'':>21}   {source_counts(fulls[-1])}")
    if singles and fulls:
        single_s = median([r.seconds for r in singles])
        figures.update(
            single_seconds=round(single_s, 3),
            single_runs=[round(r.seconds, 3) for r in singles],
        )
        pays = "pays off here" if full_s < single_s else "does not pay off here"
        line(
            "  full sync, [sync] processes = 1",
            single_s,
            f"two processes / one: {full_s / single_s:.2f} ({pays})",
        )
    if resyncs:
        resync_s = median([r.seconds for r in resyncs])
        over = resync_s - startup_s
        figures.update(
            resync_seconds=round(resync_s, 3),
            resync_over_startup=round(over, 3),
            resync_runs=[round(r.seconds, 3) for r in resyncs],
        )
        line("re-sync (no change)", resync_s, source_counts(resyncs[-1]))
        ok = over <= TARGET_RESYNC_OVER_STARTUP
        line(
            "  re-sync - startup",
            over,
            f"<= {TARGET_RESYNC_OVER_STARTUP:g} s: {verdict(ok)}",
        )
    if phases:
        names = [*PHASES, "other"]
        medians = {p: median([r["phases"][p] for r in phases]) for p in names}
        total = median([r["total"] for r in phases])
        figures.update(
            phase_seconds={p: round(s, 3) for p, s in medians.items()},
            phase_total=round(total, 3),
            phases_timed=phases[0]["timed"],
        )
        clock = "CPU" if args.phase_clock == "cpu" else "wall"
        head = f"full sync by phase ({clock}, timed)"
        figures["phase_clock"] = args.phase_clock
        print(f"  {head:<36}{total:>9.2f} s{total / floor_s:>9.1f}x")
        for p in names:
            share = 100 * medians[p] / total if total else 0.0
            line(f"  {p}", medians[p], f"{share:4.0f}%  {PHASE_NOTES[p]}")
    if mem is not None and mem.ok and mem.peak_mb is not None:
        figures.update(memory_n=args.memory_n, memory_seconds=round(mem.seconds, 3))
        figures.update(peak_mb=round(mem.peak_mb, 1))
        label = f"peak RSS, full sync of {args.memory_n:,}"
        if args.memory_n >= 1_000_000:
            target = f"<= {TARGET_PEAK_MB:g} MB: {verdict(mem.peak_mb <= TARGET_PEAK_MB)}"
        else:
            target = f"(the {TARGET_PEAK_MB:g} MB target is for 1,000,000)"
        print(f"  {label:<36}{mem.peak_mb:>7.0f} MB{'':>10}   {target}")
        print(
            f"  {'  its time':<36}{mem.seconds:>9.2f} s{'':>10}   "
            f"{args.memory_n / mem.seconds:,.0f} administrations/s"
        )
    elif args.memory_n == 0:
        print(f"  {'peak RSS':<36}{'skipped':>11}{'':>10}   (--memory-n 0)")
    if scores_hash:
        print(f"  scores.csv sha256 {scores_hash}")
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    if load_after:
        print(f"  load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
        figures["load_after"] = list(load_after)
    for run in failures:
        report_failure(run)
    if args.json:
        figures["failures"] = [asdict(r) | {"stdout": r.stdout[-2000:]} for r in failures]
        print(json.dumps(figures, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
