"""Work split over two processes (fit_core.forkmap): the same results in the same order as one
process, whatever the child does, and nothing left behind when either side fails or is killed."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fit_core import forkmap
from fit_core.forkmap import split_map, split_point

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")


# the ``forking`` fixture (tests/conftest.py) lets forkmap fork here and counts the forks


def squares_with_pid(items: Sequence[int]) -> list[tuple[int, int]]:
    return [(i * i, os.getpid()) for i in items]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 50), max_size=40))
def test_split_point_halves_the_weight(weights: list[int]) -> None:
    cut = split_point(weights)
    assert 0 <= cut <= len(weights)
    first, second = sum(weights[:cut]), sum(weights[cut:])
    biggest = max(weights, default=0)
    assert abs(first - second) <= biggest  # no better cut moves less than one item


def test_results_come_back_in_order_from_both_processes(forking: list[int]) -> None:
    items = list(range(100))
    out = split_map(squares_with_pid, items, [1] * 100, min_weight=10)
    assert [v for v, _pid in out] == [i * i for i in items]
    pids = {pid for _v, pid in out}
    assert os.getpid() in pids and len(pids) == 2  # one part was computed elsewhere
    assert len(forking) == 1


def test_small_work_stays_in_one_process(forking: list[int]) -> None:
    out = split_map(squares_with_pid, list(range(10)), [1] * 10, min_weight=11)
    assert {pid for _v, pid in out} == {os.getpid()}
    assert forking == []


def test_one_process_asked_for_keeps_one_process(forking: list[int]) -> None:
    out = split_map(squares_with_pid, list(range(100)), [1] * 100, min_weight=10, processes=1)
    assert {pid for _v, pid in out} == {os.getpid()}
    assert forking == []


def test_a_failing_child_is_replaced_by_this_process(
    forking: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    me = os.getpid()

    def fails_elsewhere(items: Sequence[int]) -> list[int]:
        if os.getpid() != me:
            raise ValueError("secret value 42")
        return [i + 1 for i in items]

    with caplog.at_level(logging.WARNING, logger="fit_core.forkmap"):
        out = split_map(fails_elsewhere, list(range(20)), [1] * 20, min_weight=2)
    assert out == [i + 1 for i in range(20)]
    assert len(forking) == 1
    assert "ValueError" in caplog.text and "42" not in caplog.text  # the kind, not the values
    with pytest.raises(ChildProcessError):
        os.waitpid(forking[0], os.WNOHANG)  # reaped


def test_a_failure_here_stops_and_reaps_the_child(forking: list[int]) -> None:
    me = os.getpid()

    def fails_here(items: Sequence[int]) -> list[int]:
        if os.getpid() == me:
            raise RuntimeError("boom")
        time.sleep(30)  # the child would take long: it is killed, not waited for
        return list(items)

    t = time.monotonic()
    with pytest.raises(RuntimeError):
        split_map(fails_here, list(range(20)), [1] * 20, min_weight=2)
    assert time.monotonic() - t < 10
    with pytest.raises(ChildProcessError):
        os.waitpid(forking[0], os.WNOHANG)


KILLED_PARENT = """
import os, sys, time
sys.path.insert(0, {root!r})
from fit_core import forkmap
from fit_core.lock import SyncLock

forkmap.can_fork = lambda: True
me = os.getpid()

def work(items):
    if os.getpid() != me:
        with open({pidfile!r} + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace({pidfile!r} + ".tmp", {pidfile!r})
        time.sleep(3)  # still busy when the parent is killed
        return list(items)
    time.sleep(60)
    return list(items)

with SyncLock({store!r}):
    forkmap.split_map(work, list(range(10)), [1] * 10, min_weight=2)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_killed_parent_frees_the_lock_at_once_and_its_child_ends(tmp_path: Path) -> None:
    from fit_core.lock import LockedError, SyncLock

    pidfile, store = tmp_path / "child.pid", tmp_path / "fit.sqlite3"
    root = str(Path(__file__).resolve().parent.parent)
    script = KILLED_PARENT.format(root=root, pidfile=str(pidfile), store=str(store))
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)])
    try:
        deadline = time.monotonic() + 30
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        child = int(pidfile.read_text())
        assert _alive(child)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the child still runs, but holds no copy of the lock: the next sync may start now
    assert _alive(child)
    try:
        with SyncLock(store):
            pass
    except LockedError:  # pragma: no cover - the failure this test is for
        pytest.fail("a forked child kept the sync lock of a killed parent")
    deadline = time.monotonic() + 20
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)  # its write found no reader: it ended


def test_the_child_works_while_this_process_does_something_else(forking: list[int]) -> None:
    split = forkmap.start(squares_with_pid, list(range(50)), [1] * 50, min_weight=2)
    assert split.forked
    busy = sum(i * i for i in range(10_000))  # the caller's own work meanwhile
    out = split.finish()
    assert busy > 0
    assert [v for v, _pid in out] == [i * i for i in range(50)]
    assert len({pid for _v, pid in out}) == 2


def test_a_cancelled_split_leaves_no_child(forking: list[int]) -> None:
    def slow(items: Sequence[int]) -> list[int]:
        time.sleep(30)
        return list(items)

    t = time.monotonic()
    forkmap.start(slow, list(range(10)), [1] * 10, min_weight=2).cancel()
    assert time.monotonic() - t < 10
    with pytest.raises(ChildProcessError):
        os.waitpid(forking[0], os.WNOHANG)


def test_the_child_takes_the_share_it_is_given(forking: list[int]) -> None:
    out = forkmap.start(squares_with_pid, list(range(100)), [1] * 100, 2, child_share=0.7)
    pids = [pid for _v, pid in out.finish()]
    assert pids.count(os.getpid()) == 30


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0, 10),
    st.integers(1, 100_000),
    st.floats(1e-7, 1e-3),
    st.floats(1e-7, 1e-3),
)
def test_a_balanced_share_finishes_both_processes_together(
    other: float, weight: int, mine: float, theirs: float
) -> None:
    share = forkmap.balanced_share(other, weight, mine, theirs)
    assert 0.5 <= share <= 0.9
    here = other + (1 - share) * weight * mine
    there = share * weight * theirs
    if 0.5 < share < 0.9:
        assert abs(here - there) <= 1e-9 * max(1.0, here)
    elif share == 0.5:
        assert there >= here - 1e-9 * max(1.0, here)  # the child is the slower one even so
    else:
        assert here >= there - 1e-9 * max(1.0, here)  # this process stays the slower one


def test_nothing_known_yet_halves_the_work() -> None:
    assert forkmap.balanced_share(0.0, 1000, 0.0, 0.0) == 0.5


def test_read_only_mappings_come_back_from_the_child(
    forking: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    """Records carry their extra fields as read-only mappings, which plain pickle refuses."""
    from types import MappingProxyType

    def proxies(items: Sequence[int]) -> list[tuple[MappingProxyType[str, int], int]]:
        return [(MappingProxyType({"n": i}), os.getpid()) for i in items]

    with caplog.at_level(logging.WARNING, logger="fit_core.forkmap"):
        out = split_map(proxies, list(range(20)), [1] * 20, min_weight=2)
    assert [dict(m) for m, _pid in out] == [{"n": i} for i in range(20)]
    assert all(isinstance(m, MappingProxyType) for m, _pid in out)
    assert len({pid for _m, pid in out}) == 2 and "failed" not in caplog.text


def test_no_fork_outside_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forkmap.sys, "platform", "darwin")
    assert forkmap.can_fork() is False


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2] if sys.platform == "linux" else ""
    return state != "Z"


def test_a_worker_answers_its_requests_in_order_then_ends(forking: list[int]) -> None:
    worker = forkmap.serve(lambda: os.getpid(), lambda n: [n, n * n, os.getpid()])
    assert worker is not None and len(forking) == 1
    ok, child = worker.first()
    assert ok and child == forking[0] != os.getpid()
    for n in (3, 4, 5):
        worker.ask(n)
        assert worker.answer() == (True, [n, n * n, child])
    worker.close()
    assert not worker.alive
    with pytest.raises(ChildProcessError):
        os.waitpid(child, os.WNOHANG)  # reaped: nothing left behind


def fails_with_values(_request: object) -> None:
    raise ValueError("a value that must not travel")


@pytest.mark.parametrize("where", ["first", "request"])
def test_a_failing_worker_says_the_kind_of_error_and_ends(forking: list[int], where: str) -> None:
    first = (lambda: fails_with_values(None)) if where == "first" else (lambda: "ready")
    worker = forkmap.serve(first, fails_with_values)
    assert worker is not None
    if where == "request":
        assert worker.first() == (True, "ready")
        worker.ask("anything")
        outcome = worker.answer()
    else:
        outcome = worker.first()
    assert outcome == (False, "ValueError")  # its kind only, never its text
    assert not worker.alive
    assert not _is_running(forking[0])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_dies_with_its_parent(tmp_path: Path) -> None:
    """A parent killed by SIGKILL takes its worker with it even while the worker is busy (it
    may be writing to the store: it must never outlive the sync that started it)."""
    pid_file = tmp_path / "worker.pid"
    script = textwrap.dedent(
        f"""
        import os, time
        from pathlib import Path
        from fit_core import forkmap
        forkmap.can_fork = lambda: True

        def busy():
            Path({str(pid_file)!r}).write_text(str(os.getpid()))
            time.sleep(60)  # never reads its requests: only the signal ends it

        worker = forkmap.serve(busy, lambda r: r)
        worker.first()
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (pid_file.exists() and pid_file.read_text()):
        time.sleep(0.01)
    worker_pid = int(pid_file.read_text())
    assert _is_running(worker_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _is_running(worker_pid):
        time.sleep(0.01)
    assert not _is_running(worker_pid)
