"""A large CSV source is read by two processes (each stores, scores and writes its half of
the clients); the store, the alerts and the scores files end exactly as with one process,
through edits, deletions, bad rows and repeated keys, and when the second process fails or
reads something else. Only the alert ids may differ: each process numbers the alerts it
writes as it writes them. A killed sync leaves no second process behind."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from test_parallel_rescore import TABLES, life_of_a_clinic

from fit_adapters.csv import adapter as csv_adapter
from fit_core import sync as sync_module
from fit_core.config import config_from_mapping
from fit_core.hookspecs import hookimpl
from fit_core.plugins import load_plugins
from fit_core.store import Store
from fit_core.sync import SyncEngine
from fit_core.synthetic import generate_rows, write_csv

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

_SCOPE = (
    "namespace",
    "client_id",
    "episode_id",
    "rater",
    "family",
    "rule_id",
    "severity",
    "source",
    "source_key",
)
_FLAG = ", ".join(_SCOPE)
_OF_FLAG = ", ".join(f"f.{c}" for c in _SCOPE)
#: the alerts by what they say, not by their ids; their events by the alert's scope, in order
BY_CONTENT = {
    **TABLES,
    "flags": f"SELECT {_FLAG}, message, inputs, state, session, local_date, first_source_key, "
    f"close_reason, closed_by_key FROM flags ORDER BY {_FLAG}, id",
    "flag_events": f"SELECT {_OF_FLAG}, e.event, e.state, e.source, e.source_key, e.session, "
    f"e.detail FROM flag_events e JOIN flags f ON f.id = e.flag_id ORDER BY {_OF_FLAG}, e.id",
}
STORED = {
    **BY_CONTENT,
    "administrations": "SELECT source, source_key, namespace, client_id, measure, "
    "administered_at, total, items, hash FROM administrations ORDER BY source, source_key",
    "quarantine": "SELECT source, source_key, location, reasons FROM quarantine ORDER BY 1, 2",
    "dirty": "SELECT * FROM dirty_clients",
}


@pytest.fixture
def two_readers(monkeypatch: pytest.MonkeyPatch, forking: list[int]) -> list[int]:
    """Every CSV source is read by two processes, whatever its size; the forks, counted."""
    monkeypatch.setattr(csv_adapter, "PARALLEL_PULL_MIN_BYTES", 0)
    return forking


def tables(path: Path) -> dict[str, list[Any]]:
    conn = sqlite3.connect(path)
    try:
        return {name: conn.execute(sql).fetchall() for name, sql in STORED.items()}
    finally:
        conn.close()


def sync_once(
    workdir: Path,
    rows: list[dict[str, str]],
    processes: int,
    plugins: Sequence[object] = (),
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """One sync of ``rows`` into a fresh store (with ``plugins`` loaded too, on the day of
    ``now`` when given); the summaries, tables and scores file."""
    workdir.mkdir()
    write_csv(workdir / "admins.csv", rows)
    config = config_from_mapping(
        {
            "store": {"path": str(workdir / "fit.sqlite3")},
            "sync": {"timezone": "UTC", "processes": processes},
            "sources": {
                "clinic": {
                    "adapter": "csv",
                    "path": str(workdir / "admins.csv"),
                    "scores_path": str(workdir / "scores.csv"),
                }
            },
        }
    )
    store = Store.open(config.store_path)
    try:
        clock = (lambda: now) if now is not None else None
        summary = SyncEngine(config, load_plugins(plugins), store, clock=clock).run()
    finally:
        store.close()
    return {
        "run": summary,
        "summary": summary.sources[0],
        "tables": tables(workdir / "fit.sqlite3"),
        "scores": (workdir / "scores.csv").read_bytes(),
    }


def test_a_clinic_read_by_two_processes_over_time_ends_as_with_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, two_readers: list[int]
) -> None:
    serial_tables, serial_files = life_of_a_clinic(tmp_path / "one", 1, BY_CONTENT)
    assert not two_readers
    parallel_tables, parallel_files = life_of_a_clinic(tmp_path / "two", 2, BY_CONTENT)
    assert len(two_readers) >= 3, "not every sync read its source in two processes"
    assert "second process" not in caplog.text  # nothing was done again here
    assert "read again" not in caplog.text
    for name in BY_CONTENT:
        assert parallel_tables[name] == serial_tables[name], name
    assert parallel_files == serial_files


class AlertListener:
    """A plugin told of every new alert (its scope, no ids)."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, str, str]] = []

    @hookimpl
    def fit_alert_raised(self, flag: Any, administration: Any) -> None:
        self.heard.append((administration.client_id, flag.rule_id, administration.source_key))


@pytest.mark.parametrize("listening", [False, True])
def test_two_processes_count_and_tell_what_one_does(
    tmp_path: Path, two_readers: list[int], listening: bool
) -> None:
    rows = list(generate_rows(3_000, seed=11))
    today = sorted(r["administered_at"][:10] for r in rows)[len(rows) * 3 // 4]
    rows = [r for r in rows if r["administered_at"][:10] <= today]  # mid-life: alerts hold
    now = dt.datetime.combine(dt.date.fromisoformat(today), dt.time(18), tzinfo=dt.UTC)
    ears = [AlertListener(), AlertListener()] if listening else []
    one = sync_once(tmp_path / "one", rows, 1, ears[:1], now)
    two = sync_once(tmp_path / "two", rows, 2, ears[1:], now)
    assert two_readers
    assert one["run"].flags_raised > 0
    for count in ("clients_rescored", "flags_raised", "alerts_closed", "open_flags"):
        assert getattr(two["run"], count) == getattr(one["run"], count), count
    assert two["tables"] == one["tables"]
    assert two["scores"] == one["scores"]
    if listening:  # a plugin hears of the second process's clients' alerts too
        assert len(ears[0].heard) == one["run"].flags_raised
        assert sorted(ears[1].heard) == sorted(ears[0].heard)


@pytest.mark.parametrize("slow", ["first", "second"])
def test_the_faster_process_goes_on_with_the_slower_ones_clients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_readers: list[int], slow: str
) -> None:
    rows = list(generate_rows(3_000, seed=9))
    clients = sorted({r["client_id"] for r in rows})
    for i in range(0, len(clients) - 3, 7):  # keys repeated for two clients: held apart
        a = next(r for r in rows if r["client_id"] == clients[i])
        b = next(r for r in reversed(rows) if r["client_id"] == clients[i + 3])
        b["source_key"] = a["source_key"]
    one = sync_once(tmp_path / "one", rows, processes=1)
    parent = os.getpid()
    real_score, real_take = sync_module._score_clients, sync_module._Claims.take
    claims = tmp_path / "claims"

    def slow_score(*args: Any, **kwargs: Any) -> Any:
        if (os.getpid() == parent) == (slow == "first"):
            time.sleep(0.02)
        return real_score(*args, **kwargs)

    def noted_take(self: Any, fd: int, me: int) -> Any:
        got = real_take(self, fd, me)
        if got is not None:
            with claims.open("a") as f:
                f.write(f"{me} {got[0]}\n")
        return got

    monkeypatch.setattr(sync_module, "_score_clients", slow_score)
    monkeypatch.setattr(sync_module._Claims, "take", noted_take)
    two = sync_once(tmp_path / "two", rows, processes=2)
    assert two_readers
    faster = "1" if slow == "first" else "0"
    taken = claims.read_text().split("\n")
    assert f"{faster} {1 - int(faster)}" in taken, "the faster process took none of the other's"
    assert two["tables"] == one["tables"]
    assert two["scores"] == one["scores"]
    assert two["run"].clients_rescored == one["run"].clients_rescored


def test_a_key_repeated_for_two_clients_is_quarantined_as_with_one_process(
    tmp_path: Path, two_readers: list[int]
) -> None:
    rows = list(generate_rows(3_000, seed=4))
    clients = sorted({r["client_id"] for r in rows})
    # the same key for rows of many pairs of clients: a Record goes to one process, its
    # repeat (a RecordError) stays in the first
    for i in range(0, len(clients) - 3, 5):
        a = next(r for r in rows if r["client_id"] == clients[i])
        b = next(r for r in reversed(rows) if r["client_id"] == clients[i + 3])
        b["source_key"] = a["source_key"]
    one = sync_once(tmp_path / "one", rows, processes=1)
    two = sync_once(tmp_path / "two", rows, processes=2)
    assert two_readers
    assert one["tables"]["quarantine"], "the repeated keys are quarantined"
    assert two["tables"] == one["tables"]
    assert two["scores"] == one["scores"]
    for count in ("pulled", "quarantined"):
        assert getattr(two["summary"], count) == getattr(one["summary"], count), count


def test_when_the_second_read_differs_the_source_is_read_again_in_one_process(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    two_readers: list[int],
) -> None:
    rows = list(generate_rows(2_000, seed=6))
    one = sync_once(tmp_path / "one", rows, processes=1)
    parent = os.getpid()
    real = csv_adapter.CsvAdapter.pull_identity

    def other_in_the_child(self: csv_adapter.CsvAdapter) -> str | None:
        seen = real(self)
        return f"{seen} (changed)" if os.getpid() != parent else seen

    monkeypatch.setattr(csv_adapter.CsvAdapter, "pull_identity", other_in_the_child)
    two = sync_once(tmp_path / "two", rows, processes=2)
    assert two_readers
    assert "the source changed while it was read; reading it again in one process" in caplog.text
    assert two["tables"] == one["tables"]
    assert two["scores"] == one["scores"]
    assert two["summary"].pulled == one["summary"].pulled


@pytest.mark.parametrize("step", ["_pull_part", "_rescore_part"])
def test_when_the_second_process_fails_its_part_is_done_here(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    two_readers: list[int],
    step: str,
) -> None:
    rows = list(generate_rows(2_000, seed=7))
    one = sync_once(tmp_path / "one", rows, processes=1)
    parent = os.getpid()
    real = getattr(SyncEngine, step)

    def failing_in_the_child(self: SyncEngine, *args: Any) -> Any:
        if os.getpid() != parent:
            raise RuntimeError("a failure in the second process")
        return real(self, *args)

    monkeypatch.setattr(SyncEngine, step, failing_in_the_child)
    two = sync_once(tmp_path / "two", rows, processes=2)
    assert two_readers
    assert "second process" in caplog.text and "(RuntimeError)" in caplog.text
    assert "a failure in the second process" not in caplog.text  # its kind only
    assert two["tables"] == one["tables"]
    assert two["scores"] == one["scores"]


def test_processes_1_reads_in_one_process(tmp_path: Path, two_readers: list[int]) -> None:
    sync_once(tmp_path / "one", list(generate_rows(500, seed=8)), processes=1)
    assert two_readers == []


def _processes_running(config: Path) -> list[int]:
    """The pids of processes whose command line names ``config``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(config).encode() in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one process with one CPU")
def test_a_sync_killed_while_two_processes_read_leaves_neither_running(tmp_path: Path) -> None:
    write_csv(tmp_path / "admins.csv", generate_rows(30_000, seed=12))  # about 3 MB
    config = tmp_path / "fit.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "fit.sqlite3"}"\n[sync]\ntimezone = "UTC"\n'
        f'[sources.clinic]\nadapter = "csv"\npath = "{tmp_path / "admins.csv"}"\n'
        f'scores_path = "{tmp_path / "scores.csv"}"\n',
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "fit_cli", "--config", str(config), "sync"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    # wait for the second process (a fork: the same command line)
    while time.monotonic() < deadline and len(_processes_running(config)) < 2:
        assert proc.poll() is None, "the sync ended before a second process was seen"
        time.sleep(0.005)
    assert len(_processes_running(config)) >= 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _processes_running(config):
        time.sleep(0.01)
    assert _processes_running(config) == []
    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr


def test_a_file_over_the_limit_is_read_by_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_readers: list[int]
) -> None:
    """Each reader keeps the keys of every row it reads: a file over
    PARALLEL_PULL_MAX_BYTES is read once, so two readers never double a large pull's memory."""
    rows = list(generate_rows(1_000, seed=9))
    monkeypatch.setattr(csv_adapter, "PARALLEL_PULL_MAX_BYTES", 50_000)  # the file is ~95 KB
    over = sync_once(tmp_path / "over", rows, processes=2)
    assert two_readers == []
    monkeypatch.setattr(csv_adapter, "PARALLEL_PULL_MAX_BYTES", 200_000)
    under = sync_once(tmp_path / "under", rows, processes=2)
    assert len(two_readers) == 1
    assert under["tables"] == over["tables"]


def test_without_a_temporary_file_one_process_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_readers: list[int]
) -> None:
    import tempfile

    def no_room(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    rows = list(generate_rows(1_000, seed=10))
    one = sync_once(tmp_path / "one", rows, processes=1)
    monkeypatch.setattr(tempfile, "TemporaryFile", no_room)
    two = sync_once(tmp_path / "two", rows, processes=2)
    assert two_readers == []
    assert two["tables"] == one["tables"]
