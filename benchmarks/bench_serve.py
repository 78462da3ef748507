#!/usr/bin/env python3
"""Measure `fit serve` under abuse: memory and the time to answer a real Data Entry Trigger.

Run by hand (it is not a test); it serves the loopback fake REDCap of tests/fakes::

    python benchmarks/bench_serve.py                     # 1,000 slow connections
    python benchmarks/bench_serve.py --slow 5000 --json

Steps:

a. IDLE: `fit serve` started as cron/systemd would (a separate process); its resident memory.
b. QUIET TRIGGER: a real notice on a quiet receiver; seconds to the answer (median of 5).
c. FLOOD: ``--slow`` connections that send half a request and stall (one more header byte on
   each, twice, a second apart), then a ``Content-Length: -1`` request followed by ``--body-mb``
   MB, and a request announcing a 400 MB body: their status codes.
d. TRIGGER UNDER FLOOD: real notices while the flood is still open; seconds to the answer
   (median and worst of 5).
e. MEMORY: the receiver's peak resident memory (VmHWM) and its growth over IDLE, against the
   documented bound (docs/hardening.md: growth under 64 MiB).

`fit serve` runs from compiled bytecode, as an installed fit does: without
``PYTHONDONTWRITEBYTECODE`` (inherited, it would make the receiver compile fit's sources as it
first imports them, in its memory and in the first triggers' time), after the script has
compiled fit's packages and run one `fit --version`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from abuse_clients import (  # noqa: E402
    huge_length,
    negative_length,
    peak_rss_kib,
    post_notice,
    rss_kib,
    slow_connections,
    trickle,
)
from fakes.redcap_fake import TOKEN, RedcapFake, clinic_project, source_options  # noqa: E402

SOURCE = "clinic_redcap"
BOUND_MIB = 64


def write_config(folder: Path, options: dict[str, Any]) -> Path:
    lines = [f'[store]\npath = "{folder / "fit.sqlite3"}"', '[sync]\ntimezone = "UTC"']
    lines += [f"[sources.{SOURCE}]", 'adapter = "redcap"', f'url = "{options["url"]}"']
    for name, spec in options["instruments"].items():
        lines.append(f"[sources.{SOURCE}.instruments.{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in spec.items()]
    path = folder / "fit.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def child_env() -> dict[str, str]:
    """Our environment without PYTHONDONTWRITEBYTECODE, so `fit` imports compiled bytecode as an
    installed fit does, and with the fake project's token."""
    env = {**os.environ, f"FIT_{SOURCE.upper()}_TOKEN": TOKEN}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def warm_up() -> None:
    """Compile fit's packages (as pip does when it installs them; an editable install leaves
    that to the first import) and run one `fit --version`."""
    import importlib.util

    folders: list[str] = []
    for package in ("fit_core", "fit_adapters", "fit_cli"):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            folders.extend(spec.submodule_search_locations)
    for cmd in (["-m", "compileall", "-q", *folders], ["-m", "fit_cli", "--version"]):
        subprocess.run([sys.executable, *cmd], capture_output=True, env=child_env())


def start_serve(config: Path) -> tuple[subprocess.Popen[str], str, int, list[str]]:
    """`fit serve` on a free port; (process, host, port, its stderr lines as they come)."""
    env = child_env()
    cmd = [sys.executable, "-m", "fit_cli", "--config", str(config), "serve", "--port", "0"]
    cmd += ["--path", "/det", "--debounce", "0.2"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    found = threading.Event()
    address: list[tuple[str, int]] = []

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            m = re.search(r"listening on http://([\d.]+):(\d+)", line)
            if m and not found.is_set():
                address.append((m.group(1), int(m.group(2))))
                found.set()

    threading.Thread(target=drain, daemon=True).start()
    if not found.wait(60):
        proc.kill()
        raise RuntimeError("fit serve did not start:\n" + "".join(lines))
    host, port = address[0]
    return proc, host, port, lines


def notice(fake: RedcapFake, record: str) -> dict[str, str]:
    return {
        "redcap_url": f"http://127.0.0.1:{fake.port}/",
        "project_id": str(fake.project.project_id),
        "record": record,
        "instrument": "ors",
        "ors_complete": "2",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slow", type=int, default=1000, help="slow connections (default 1000)")
    parser.add_argument("--body-mb", type=int, default=64, help="MB sent after Content-Length -1")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()

    fake = RedcapFake(clinic_project(20, seed=9)).start()
    figures: dict[str, Any] = {"slow_connections": args.slow}
    with tempfile.TemporaryDirectory(prefix="fit-bench-serve-") as tmp:
        config = write_config(Path(tmp), source_options(fake))
        warm_up()
        proc, host, port, _lines = start_serve(config)
        url = f"http://{host}:{port}/det"
        try:
            time.sleep(0.5)
            idle = rss_kib(proc.pid)
            quiet = [post_notice(url, notice(fake, "1003"), 10)[1] for _ in range(5)]
            with slow_connections(host, port, args.slow, "/det") as socks:
                for _ in range(2):
                    time.sleep(1)
                    figures["slow_still_open"] = trickle(socks)
                figures["status_content_length_minus_1"] = negative_length(
                    host, port, "/det", args.body_mb
                )
                figures["status_400_mb_announced"] = huge_length(host, port, "/det")
                flooded = [post_notice(url, notice(fake, "1004"), 10) for _ in range(5)]
                peak = peak_rss_kib(proc.pid)
            figures.update(
                idle_rss_mib=round(idle / 1024, 1),
                peak_rss_mib=round(peak / 1024, 1),
                growth_mib=round((peak - idle) / 1024, 1),
                bound_mib=BOUND_MIB,
                trigger_quiet_median_s=round(statistics.median(quiet), 4),
                trigger_flood_statuses=sorted({s for s, _ in flooded}),
                trigger_flood_median_s=round(statistics.median(t for _, t in flooded), 4),
                trigger_flood_worst_s=round(max(t for _, t in flooded), 4),
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            figures["exit_code"] = proc.wait(30)
            fake.stop()

    print(f"slow connections opened        {args.slow:>10,}")
    print(f"still open after 2 s           {figures['slow_still_open']:>10,}")
    print(f"Content-Length: -1 ({args.body_mb} MB)   -> {figures['status_content_length_minus_1']}")
    print(f"400 MB announced               -> {figures['status_400_mb_announced']}")
    print(f"trigger, quiet (median)        {figures['trigger_quiet_median_s']:>10.4f} s")
    print(f"trigger, under flood (median)  {figures['trigger_flood_median_s']:>10.4f} s")
    print(f"trigger, under flood (worst)   {figures['trigger_flood_worst_s']:>10.4f} s")
    print(f"trigger statuses under flood   {figures['trigger_flood_statuses']}")
    print(f"RSS idle                       {figures['idle_rss_mib']:>10.1f} MiB")
    print(f"RSS peak                       {figures['peak_rss_mib']:>10.1f} MiB")
    print(f"growth (bound {BOUND_MIB} MiB)          {figures['growth_mib']:>10.1f} MiB")
    print(f"exit code after SIGTERM        {figures['exit_code']:>10}")
    if args.json:
        print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
