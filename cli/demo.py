"""`fit demo`: the whole loop on bundled synthetic data, no network, no secrets."""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from datetime import date, timedelta
from itertools import chain
from pathlib import Path
from typing import Any

from fit_core.config import config_from_mapping
from fit_core.errors import ExitCode
from fit_core.plugins import load_plugins
from fit_core.store import Store
from fit_core.sync import SyncEngine
from fit_core.synthetic import bad_rows, generate_clinic, write_csv


def run_demo(workdir: Path, *, clients: int = 40, seed: int = 7) -> dict[str, Any]:
    """Generate a synthetic clinic in ``workdir``, sync it twice, and summarise what happened.

    Every file is created readable by the owner only, like a real store and its exports."""
    workdir = workdir.absolute()  # the config names absolute paths: no nesting, any cwd
    admins_csv = workdir / "admins.csv"
    scores_csv = workdir / "scores.csv"
    good = list(generate_clinic(clients, seed=seed))
    bad = bad_rows(good[len(good) // 2]) if good else []  # one of each kind, planted on purpose
    _private(admins_csv)
    write_csv(admins_csv, chain(good, bad))
    raw = {
        "store": {"path": str(workdir / "fit.sqlite3")},
        "sync": {"timezone": "UTC"},
        "sources": {
            "demo_csv": {"adapter": "csv", "path": str(admins_csv), "scores_path": str(scores_csv)}
        },
    }
    _private(workdir / "config.toml")
    (workdir / "config.toml").write_text(_toml(raw), encoding="utf-8")
    config = config_from_mapping(raw, path=workdir / "config.toml")
    registry = load_plugins()
    store = Store.open(config.store_path)
    sync_log = logging.getLogger("fit_core.sync")
    quiet = not sync_log.isEnabledFor(logging.INFO)  # the planted rows are listed below instead
    old_level = sync_log.level
    try:
        if quiet:
            sync_log.setLevel(logging.ERROR)
        # the synthetic clinic lives in the past: judge it as of the day after its last session
        # (later, every episode would have ended and its alerts closed)
        as_of = max((r["administered_at"][:10] for r in good), default=None)
        settings = config.settings
        if as_of is not None:
            settings = settings.with_(as_of=date.fromisoformat(as_of) + timedelta(days=1))
        engine = SyncEngine(config, registry, store, settings=settings)
        first = engine.run()
        second = engine.run()
        flags = store.list_flags("open")
        n_admins = store.count("administrations")
        quarantined = store.quarantined()
    finally:
        sync_log.setLevel(old_level)
        store.close()
    with scores_csv.open(encoding="utf-8", newline="") as fh:
        scores_rows = sum(1 for _ in csv.reader(fh)) - 1
    src1, src2 = first.sources[0], second.sources[0]
    planted_only = src1.status in ("ok", "partial") and src1.quarantined == len(bad)
    ok = planted_only and src2.status in ("ok", "partial") and not first.rule_failures
    return {
        "exit_code": int(ExitCode.OK if ok else max(first.exit_code, ExitCode.PARTIAL)),
        "clients": len({r["client_id"] for r in good}),
        "administrations": n_admins,
        "quarantined": len(quarantined),
        "quarantine": [
            {"source_key": q["source_key"], "location": q["location"], "reasons": q["reasons"]}
            for q in quarantined
        ],
        "planted_bad_rows": len(bad),
        "scores_rows": scores_rows,
        "open_alerts": len(flags),
        "alerts_by_rule": dict(sorted(Counter(f["rule_id"] for f in flags).items())),
        "resync_pulled": src2.pulled,
        "resync_pushed": src2.pushed,
        "as_of": settings.as_of.isoformat() if settings.as_of else None,
        "first_sync": first.as_dict(),
    }


def _toml(raw: dict[str, Any]) -> str:
    lines: list[str] = []

    def table(prefix: str, d: dict[str, Any]) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
        if scalars:
            lines.append(f"[{prefix}]")
            for k, v in scalars.items():
                lines.append(f'{k} = "{v}"')
            lines.append("")
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}" if prefix else k, v)

    table("", raw)
    return "\n".join(lines)


def _private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (or take group and other rights from it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
