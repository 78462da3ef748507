#!/usr/bin/env python3
"""Measure `fit report`: seconds per client report and the clinic report over 100k administrations.

Run by hand (it is not a test); needs the reports extra (`pip install -e '.[reports]'`)::

    python benchmarks/bench_reports.py --n 100000
    python benchmarks/bench_reports.py --n 100000 --workdir /tmp/fitbench-reports --clients 40

Steps:

a. generate N administrations into ``admins.csv`` (:func:`fit_core.synthetic.generate_rows`);
b. `fit --config CONFIG sync` into a fresh store, `fit trajectories fit` (so client pages carry an
   expected band, as in a clinic that uses one) and a second `fit sync` to rescore with it;
c. client reports, HTML:
   - in-process: the pure pipeline (read one client from the store, score it, prepare and render
     its page: six charts and the HTML) for ``--clients`` clients, after one warm-up;
   - one `fit report client ID` process (cold: Python start-up and imports included);
   - one `fit report client ID1 ... IDk` process for ``--clients`` clients: the marginal cost
     per report is (batch − single)/(k − 1);
d. `fit report clinic --by clinician` over the whole store, one process (cold);
e. print every figure next to its target.

Every `fit` runs from compiled bytecode, as an installed fit does: the processes run without
``PYTHONDONTWRITEBYTECODE`` (inherited, it would make every timed run compile fit's sources
again), and before the first timed run the script compiles fit's packages and runs one untimed
``fit --version``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fit_core.synthetic import generate_rows, write_csv

TARGET_CLIENT_S = 0.5
TARGET_CLINIC_S = 10.0
OK_EXIT_CODES = (0, 1)  # 1: some planted/bad rows quarantined by the sync

# `fit` with the report group registered, whether or not cli/main.py has it yet
_FIT = (
    "import sys\n"
    "from fit_cli.main import cli, main\n"
    "if 'report' not in cli.commands:\n"
    "    from fit_cli.reports import report\n"
    "    cli.add_command(report)\n"
    "sys.argv[0] = 'fit'\n"
    "main()\n"
)


def child_env() -> dict[str, str]:
    """Our environment without FIT_* settings (they could change the run), and without
    PYTHONDONTWRITEBYTECODE, so `fit` imports compiled bytecode as an installed fit does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIT_")}
    env.pop("STATE_DIRECTORY", None)
    env.pop("CREDENTIALS_DIRECTORY", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def warm_up() -> None:
    """Compile fit's packages (as pip does when it installs them; an editable install leaves
    that to the first import) and run one untimed `fit --version`."""
    import importlib.util

    folders: list[str] = []
    for package in ("fit_core", "fit_adapters", "fit_cli"):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            folders.extend(spec.submodule_search_locations)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *folders],
        capture_output=True,
        env=child_env(),
    )
    fit("--version")


def fit(*args: str, ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    """Run `fit ARGS` in a fresh process; (wall seconds, stdout). Exits on failure."""
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _FIT, *args], capture_output=True, text=True, env=child_env()
    )
    seconds = time.perf_counter() - t
    if proc.returncode not in ok:
        sys.stderr.write(proc.stderr[-3000:])
        sys.exit(f"fit {' '.join(args[:3])} ... exited {proc.returncode}")
    return seconds, proc.stdout


def write_config(workdir: Path, admins_csv: Path) -> Path:
    store = workdir / "fit.sqlite3"
    for old in (store, *workdir.glob("fit.sqlite3*"), workdir / "scores.csv"):
        old.unlink(missing_ok=True)
    config = workdir / "fit.toml"
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


def sample_clients(admins_csv: Path, k: int) -> list[str]:
    """k client ids spread over the file (every n-th distinct id)."""
    import csv

    with admins_csv.open(encoding="utf-8", newline="") as fh:
        ids = list(dict.fromkeys(row["client_id"] for row in csv.DictReader(fh)))
    step = max(1, len(ids) // k)
    return ids[::step][:k]


def in_process(config: Path, clients: list[str], out: Path) -> float:
    """Seconds per client report in one warm process (store read + score + page + HTML)."""
    from fit_core.config import load_config
    from fit_core.plugins import load_plugins
    from fit_core.reports.charts import FigureCache
    from fit_core.reports.deps import require_reports
    from fit_core.reports.output import ensure_dir
    from fit_core.reports.render import write_client
    from fit_core.reports.source import ClientReportSource
    from fit_core.store import Store
    from fit_core.sync import load_active_model

    require_reports()
    ensure_dir(out)
    cfg = load_config(config)
    registry = load_plugins()
    today = dt.date.today()
    store = Store.open(cfg.store_path)
    try:
        source = ClientReportSource(
            store=store,
            measures=registry.measures,
            settings=cfg.settings.with_(as_of=today),
            model=load_active_model(store),
            namespaces=sorted({s.namespace for s in cfg.sources.values()}),
            rule_titles={r: rule.description for r, rule in registry.rules.items()},
            store_path=str(cfg.store_path),
        )

        cache = FigureCache()

        def one(cid: str) -> int:
            pages = source.pages(cid)
            for i, page in enumerate(pages):
                write_client(page, out, f"inproc-{cid}-{i}", "html", generated=today, cache=cache)
            return len(pages)

        one(clients[0])  # warm-up: imports, font cache
        t = time.perf_counter()
        n_pages = sum(one(cid) for cid in clients)
        seconds = time.perf_counter() - t
    finally:
        store.close()
    print(f"  in-process: {len(clients)} clients, {n_pages} pages in {seconds:.2f} s")
    return seconds / len(clients)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="administrations to generate")
    parser.add_argument("--clients", type=int, default=20, help="client reports to time")
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the synced store in --workdir (skip a and b)"
    )
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fit-bench-reports-"))
    workdir.mkdir(parents=True, exist_ok=True)
    warm_up()
    try:
        admins = workdir / "admins.csv"
        config = workdir / "fit.toml"
        if args.reuse and config.exists() and (workdir / "fit.sqlite3").exists():
            with admins.open(encoding="utf-8") as fh:
                n = sum(1 for _ in fh) - 1
            print(f"a-b. reusing the store of {n} administrations in {workdir}")
        else:
            t = time.perf_counter()
            n = write_csv(admins, generate_rows(args.n))
            print(f"a. generated {n} administrations in {time.perf_counter() - t:.1f} s")
            config = write_config(workdir, admins)
            s1, _ = fit("--config", str(config), "sync", ok=OK_EXIT_CODES)
            s2, _ = fit("--config", str(config), "trajectories", "fit")
            s3, _ = fit("--config", str(config), "sync", ok=OK_EXIT_CODES)
            print(f"b. sync {s1:.1f} s; trajectories fit {s2:.1f} s; rescore sync {s3:.1f} s")

        clients = sample_clients(admins, args.clients)
        out = workdir / "reports"
        per_inproc = in_process(config, clients, out)
        single, _ = fit("--config", str(config), "report", "client", clients[0], "--out", str(out))
        batch, stdout = fit(
            "--config", str(config), "report", "client", *clients, "--out", str(out)
        )
        pages = len(stdout.split())
        marginal = (batch - single) / max(1, len(clients) - 1)
        print(
            f"c. one client, one process: {single:.2f} s; {len(clients)} clients "
            f"({pages} pages) in one process: {batch:.2f} s"
        )
        clinic, _ = fit("--config", str(config), "report", "clinic", "--out", str(out))
        print(f"d. clinic report over {n} administrations, one process: {clinic:.2f} s")

        rows = [
            ("client report, in-process (s/report)", per_inproc, TARGET_CLIENT_S),
            ("client report, marginal in a batch (s/report)", marginal, TARGET_CLIENT_S),
            ("client report, batch average incl. start-up", batch / len(clients), None),
            ("client report, single cold process (s)", single, None),
            (f"clinic report, {n} administrations (s)", clinic, TARGET_CLINIC_S),
        ]
        print("\ne. figures")
        for label, value, target in rows:
            verdict = "" if target is None else ("  OK" if value < target else "  OVER")
            goal = "" if target is None else f" (target < {target:g})"
            print(f"  {label:<48} {value:7.3f}{goal}{verdict}")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
