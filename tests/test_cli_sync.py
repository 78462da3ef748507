"""`fit sync` end to end through the CLI, as cron would run it (subprocesses, real files)."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fit_core.lock import SyncLock
from fit_core.synthetic import bad_rows, generate_rows, write_csv

FIT = [sys.executable, "-m", "fit_cli"]


def write_config(d: Path, admins: Path) -> Path:
    cfg = d / "config.toml"
    cfg.write_text(
        f'[store]\npath = "{d / "fit.sqlite3"}"\n[sync]\ntimezone = "UTC"\n'
        f'[sources.clinic]\nadapter = "csv"\npath = "{admins}"\n'
        f'scores_path = "{d / "scores.csv"}"\n',
        encoding="utf-8",
    )
    return cfg


def fit(cfg: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FIT_CONFIG": str(cfg)}
    return subprocess.run(
        [*FIT, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def read_scores(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_sync_is_silent_on_success_and_second_run_pushes_nothing(tmp_path: Path) -> None:
    admins = tmp_path / "admins.csv"
    write_csv(admins, generate_rows(300, seed=3))
    cfg = write_config(tmp_path, admins)
    first = fit(cfg, "sync")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "" and first.stderr == ""
    assert len(read_scores(tmp_path / "scores.csv")) == 300
    mtime = (tmp_path / "scores.csv").stat().st_mtime_ns
    second = fit(cfg, "sync", "--json")
    assert second.returncode == 0
    summary = json.loads(second.stdout)
    assert summary["sources"][0]["pulled"] == 0 and summary["sources"][0]["pushed"] == 0
    assert (tmp_path / "scores.csv").stat().st_mtime_ns == mtime


def test_bad_rows_are_quarantined_good_rows_scored_and_no_answers_logged(tmp_path: Path) -> None:
    good = list(generate_rows(60, seed=5))
    bad = bad_rows(good[10])
    rows = good[:30] + bad + good[30:]
    admins = tmp_path / "admins.csv"
    write_csv(admins, rows)
    cfg = write_config(tmp_path, admins)
    res = fit(cfg, "sync")
    assert res.returncode == 1
    scores = read_scores(tmp_path / "scores.csv")
    assert len(scores) == 60
    q = json.loads(fit(cfg, "quarantine", "--json").stdout)
    assert {r["source_key"] for r in q} == {r["source_key"] for r in bad}
    for r in q:
        assert r["reasons"] and r["location"].startswith("admins.csv line ")
    # the logs name the key's reference, the line and the fields, never answers or the key
    for value in ("12.5", "abc", "26.0", "XYZ", "bad-001"):
        assert value not in res.stderr
    ref = next(r["ref"] for r in q if r["source_key"] == "bad-001")
    assert f"record {ref} (admins.csv line " in res.stderr and "q2" not in res.stderr
    (tmp_path / "v").mkdir()
    verbose = fit(write_config(tmp_path / "v", admins), "-v", "sync")  # -v adds the fields
    assert f"record {ref} (admins.csv line " in verbose.stderr and "(q2)" in verbose.stderr


def test_second_sync_while_one_holds_the_lock_exits_5_at_once(tmp_path: Path) -> None:
    admins = tmp_path / "admins.csv"
    write_csv(admins, generate_rows(50, seed=1))
    cfg = write_config(tmp_path, admins)
    with SyncLock(tmp_path / "fit.sqlite3"):
        t = time.monotonic()
        res = fit(cfg, "sync")
        assert res.returncode == 5, res.stderr
        assert time.monotonic() - t < 10
        assert "another fit sync is running" in res.stderr


def test_concurrent_syncs_one_runs_one_is_locked(tmp_path: Path) -> None:
    admins = tmp_path / "admins.csv"
    write_csv(admins, generate_rows(20_000, seed=2))
    cfg = write_config(tmp_path, admins)
    env = {**os.environ, "FIT_CONFIG": str(cfg)}
    first = subprocess.Popen(
        [*FIT, "sync"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lock = tmp_path / "fit.sqlite3.lock"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip()):
        time.sleep(0.01)
    second = fit(cfg, "sync")
    _out, err = first.communicate(timeout=300)
    assert second.returncode == 5, second.stderr
    assert first.returncode == 0, err


@pytest.mark.parametrize("seed", [11])
def test_sigkill_at_random_moments_then_rerun_equals_an_uninterrupted_run(
    tmp_path: Path, seed: int
) -> None:
    rows = list(generate_rows(20_000, seed=seed))
    ref, crash = tmp_path / "ref", tmp_path / "crash"
    for d in (ref, crash):
        d.mkdir()
        write_csv(d / "admins.csv", rows)
    ref_cfg, crash_cfg = (
        write_config(ref, ref / "admins.csv"),
        write_config(crash, crash / "admins.csv"),
    )
    t0 = time.monotonic()
    assert fit(ref_cfg, "sync").returncode == 0
    full = time.monotonic() - t0
    rnd = random.Random(seed)
    env = {**os.environ, "FIT_CONFIG": str(crash_cfg)}
    kills = 0
    for _ in range(5):
        proc = subprocess.Popen(
            [*FIT, "sync"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rnd.uniform(0.05, max(0.1, full * 0.95)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 1
    final = fit(crash_cfg, "sync")
    assert final.returncode == 0, final.stderr
    assert (crash / "scores.csv").read_bytes() == (ref / "scores.csv").read_bytes()
    assert len(read_scores(crash / "scores.csv")) == 20_000


def test_a_row_that_becomes_a_conflict_leaves_the_scores_file(tmp_path: Path) -> None:
    admins = tmp_path / "admins.csv"
    rows = list(generate_rows(40, seed=9))
    write_csv(admins, rows)
    cfg = write_config(tmp_path, admins)
    assert fit(cfg, "sync").returncode == 0
    key = rows[5]["source_key"]
    assert key in {r["source_key"] for r in read_scores(tmp_path / "scores.csv")}
    write_csv(admins, [*rows, dict(rows[5])])  # the same key twice: both rows quarantined
    assert fit(cfg, "sync").returncode == 1
    assert key not in {r["source_key"] for r in read_scores(tmp_path / "scores.csv")}
    assert len(read_scores(tmp_path / "scores.csv")) == 39
