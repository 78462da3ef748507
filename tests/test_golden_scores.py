"""The scores files a sync writes, pinned byte for byte.

Speed work on the sync (fast paths, memos, lazy imports) must never change a result. These
hashes were taken with the sync before that work and must stay; change one only when a result
is meant to change (a new payload field, a scoring fix), and say so in the commit.

- the demo clinic (``fit demo``: 40 clients, planted bad rows, its own "today");
- a synthetic clinic (the first 20,000 administrations, as exported two-thirds into them) in a
  zone east of UTC, synced, then synced again after edits (changed answers, a changed
  clinician, appended bad rows): the first sync scores clients held in memory, the second
  reads the changed clients back from the store.

- the same clinic at 100,000 administrations (its hashes were taken with the sync before the
  two-process rescoring), scored with the second process forced on, so a batch's results
  coming back from a forked child are held to the same bytes.

``benchmarks/bench_sync.py`` prints the hash of a 50,000- or 100,000-row clinic for the same
comparison at scale.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from fit_cli.demo import run_demo
from fit_core.config import config_from_mapping
from fit_core.plugins import load_plugins
from fit_core.store import Store
from fit_core.sync import SyncEngine
from fit_core.synthetic import bad_rows, generate_rows, write_csv

GOLDEN_DEMO = "4ada50191f405c9c32018d1c3194da3ad07cad37d48c3a2439364a2b796c722e"
GOLDEN_CLINIC = "41d2fe05a9f486f44036a0e33befe8830d03099d526e71620fecd2b11d919faa"
GOLDEN_CLINIC_EDITED = "e794eb0005696873b4002c181275bc29fd57f8f1a0b55d6d97fbff4d878d2f21"
GOLDEN_CLINIC_100K = "3522220e654465d048554982bc32c4b4dc2b271c8b947540b00d823f50e09dad"
GOLDEN_CLINIC_100K_EDITED = "31f606fc439c829c2837a9c9aeae9689496dec03d181f1ab4c86b5f8de79ee84"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def clinic_hashes(workdir: Path, n: int = 20_000, seed: int = 11) -> tuple[str, str]:
    """(scores file after the first sync, after the second) of the synthetic clinic."""
    rows = list(generate_rows(n, seed=seed))
    # "today" in the middle of the clinic's life (many episodes open, alerts holding): the
    # rows up to that day, as an export taken then would hold them
    days = sorted(r["administered_at"][:10] for r in rows)
    today = days[len(days) * 2 // 3]
    rows = [r for r in rows if r["administered_at"][:10] <= today]
    now = dt.datetime.combine(dt.date.fromisoformat(today), dt.time(18), tzinfo=dt.UTC)
    admins = workdir / "admins.csv"
    write_csv(admins, rows)
    config = config_from_mapping(
        {
            "store": {"path": str(workdir / "fit.sqlite3")},
            "sync": {"timezone": "Europe/Berlin"},
            "sources": {
                "clinic": {
                    "adapter": "csv",
                    "path": str(admins),
                    "scores_path": str(workdir / "scores.csv"),
                }
            },
        }
    )
    store = Store.open(config.store_path)
    try:
        engine = SyncEngine(config, load_plugins(), store, clock=lambda: now)
        assert engine.run().exit_code == 0
        first = sha256(workdir / "scores.csv")
        for i, row in enumerate(rows):
            if i % 97 == 5 and row["q1"]:
                row["q1"] = "1.5" if row["q1"] != "1.5" else "2.5"
                row["total"] = ""
            elif i % 89 == 3:
                row["clinician_id"] = "T99"
        write_csv(admins, [*rows, *bad_rows(rows[len(rows) // 2])])
        assert engine.run().exit_code == 1  # the bad rows are quarantined
        return first, sha256(workdir / "scores.csv")
    finally:
        store.close()


def test_the_demo_clinic_scores_file_is_unchanged(tmp_path: Path) -> None:
    run_demo(tmp_path)
    assert sha256(tmp_path / "scores.csv") == GOLDEN_DEMO


def test_a_synthetic_clinic_scores_file_is_unchanged(tmp_path: Path) -> None:
    assert clinic_hashes(tmp_path) == (GOLDEN_CLINIC, GOLDEN_CLINIC_EDITED)


def test_a_100000_row_clinic_scores_file_is_unchanged_with_two_processes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, forking: list[int]
) -> None:
    # ``forking`` forks even on one CPU or with other threads in the test run
    hashes = clinic_hashes(tmp_path, n=100_000)
    assert "second process failed" not in caplog.text  # every child's results came back
    assert hashes == (GOLDEN_CLINIC_100K, GOLDEN_CLINIC_100K_EDITED)
