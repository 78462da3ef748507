"""Compute a list in two processes: the end of it in a forked child, the rest here.

The sync's rescore is pure computation over data already in memory (the administrations of a
batch of clients, their stored alerts and practice data): scoring, rules, alert plans and the
outbox rows. :func:`split_map` lets a second core do part of it. The child is forked, so it sees
the batch without copying it; it sends back only its results (pickled: tuples of text and
numbers, and the few alert plans), and ends with ``os._exit`` (no clean-up of the parent's
objects, no flush of its buffers, never a write to the store). The parent writes everything in
its own transaction, as a serial run would: a kill of either process at any moment leaves the
store as a serial run killed at the same moment would (whole transactions only); a child left
alone when the parent dies gets a broken pipe at its first write and exits.

A fork is used only where it is safe and can pay: on Linux (macOS has ``os.fork`` too, but its
system libraries may crash a forked child that uses them, so Python itself stopped forking
there by default), in a process with a single thread (a fork copies no other thread, and a
lock another thread held would stay locked in the child), with at least two usable CPUs, and
for work of at least ``min_weight`` (the fork and the hand-over cost a few milliseconds).
Otherwise, and whenever the child fails, the whole list is computed here: the result is the
same either way, in the same order.

:func:`serve` forks a longer-lived child for the sync's parallel pull: it does one piece of
work (reading and storing its half of a source, over a store connection of its own) and then
answers requests (scoring and writing the clients it stored, over the same connection) until
the parent closes the pipe.
As it writes to the store, it must never outlive the parent: the kernel kills it when the
parent dies (``PR_SET_PDEATHSIG``), and the parent forks it holding no SQLite connection.
"""

from __future__ import annotations

import contextlib
import copyreg
import functools
import gc
import io
import logging
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any, Generic, NoReturn, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the platform tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Whether a second process may be forked here (see the module's text)."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and threading.active_count() == 1
        and usable_cpus() >= 2
    )


def split_point(weights: Sequence[int], first: float = 0.5) -> int:
    """The index that splits ``weights`` so the part before it holds about ``first`` of the
    total (0.5: two parts of about the same weight)."""
    total = sum(weights)
    goal, run = total * first, 0
    for i, w in enumerate(weights):
        if run + w / 2 >= goal:
            return i
        run += w
    return len(weights)


def balanced_share(
    other_work: float,
    weight: int,
    mine_rate: float,
    their_rate: float,
    low: float = 0.5,
    high: float = 0.9,
) -> float:
    """The child's share of ``weight`` units of work when this process also has ``other_work``
    seconds to do meanwhile, so both finish together: this process computes ``mine_rate``
    seconds a unit, the child ``their_rate`` (slower: the fork, its first writes to the pages
    it shares with the parent, sending its results). Kept within ``low``..``high``; ``low``
    when nothing is known yet."""
    if weight <= 0 or mine_rate <= 0 or their_rate <= 0:
        return low
    share = (other_work + weight * mine_rate) / (weight * (mine_rate + their_rate))
    return min(high, max(low, share))


class Split(Generic[T, R]):
    """Work started by :func:`start`: a forked child computes its part meanwhile (if there is
    a child); :meth:`finish` computes this process's part and returns every result in order.
    Call :meth:`cancel` instead when the results are not wanted (an error elsewhere)."""

    def __init__(
        self,
        fn: Callable[[Sequence[T]], list[R]],
        mine: Sequence[T],
        theirs: Sequence[T],
        pid: int = 0,
        read_end: int = -1,
        mine_weight: int = 0,
    ) -> None:
        self._fn, self._mine, self._theirs = fn, mine, theirs
        self._pid, self._read_end = pid, read_end
        #: the weight of each part, and the seconds each took to compute (after finish)
        self.mine_weight = mine_weight
        self.mine_seconds = 0.0
        self.their_weight = 0
        self.their_seconds = 0.0

    @property
    def forked(self) -> bool:
        return self._pid > 0

    def finish(self) -> list[R]:
        fn = self._fn
        if not self.forked:
            return fn([*self._mine, *self._theirs])
        done = False
        try:
            began = time.perf_counter()
            mine = fn(self._mine)
            self.mine_seconds = time.perf_counter() - began
            chunks: list[bytes] = []
            while chunk := os.read(self._read_end, 1 << 20):
                chunks.append(chunk)
            done = True
        finally:
            if not done:  # this process failed: the child's work is not wanted
                self.cancel()
            else:
                self._close()
        try:
            ok, theirs, self.their_seconds = pickle.loads(b"".join(chunks))
        except Exception:
            ok, theirs = False, "no result"
        if not ok:
            log.warning(
                "the second process failed (%s); its part of the work was done here instead",
                theirs,
            )
            return mine + fn(self._theirs)
        return mine + theirs

    def cancel(self) -> None:
        """Stop the child (if any) and wait for it; nothing is computed."""
        if self.forked:
            _kill(self._pid)
            self._close()

    def _close(self) -> None:
        pid, self._pid = self._pid, 0
        os.close(self._read_end)
        _reap(pid)


def start(
    fn: Callable[[Sequence[T]], list[R]],
    items: Sequence[T],
    weights: Sequence[int],
    min_weight: int,
    processes: int = 2,
    child_share: float = 0.5,
) -> Split[T, R]:
    """Start ``fn(items)``; :meth:`Split.finish` returns its results, in the order of ``items``.

    ``fn`` maps a sequence of items to one result per item and must be pure (it may read what
    is in memory, never write to files or the store: in the child its writes would be lost).
    ``weights`` (one per item) say how much work each item is; with a total of at least
    ``min_weight``, ``processes`` 2 and :func:`can_fork`, about ``child_share`` of the weight
    (the items at the end) is computed in a forked child, which starts now, and the rest here
    when :meth:`Split.finish` is called. Otherwise everything is computed by ``finish``.
    """
    if processes < 2 or len(items) < 2 or sum(weights) < min_weight or not can_fork():
        return Split(fn, items, ())
    cut = split_point(weights, 1.0 - child_share)
    if cut <= 0 or cut >= len(items):
        return Split(fn, items, ())
    theirs = items[cut:]
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return Split(fn, items, ())
    if pid == 0:  # the child: compute, send, and leave without any clean-up
        _child(fn, theirs, write_end)
    os.close(write_end)
    split = Split(fn, items[:cut], theirs, pid, read_end, sum(weights[:cut]))
    split.their_weight = sum(weights[cut:])
    return split


def split_map(
    fn: Callable[[Sequence[T]], list[R]],
    items: Sequence[T],
    weights: Sequence[int],
    min_weight: int,
    processes: int = 2,
) -> list[R]:
    """``fn(items)`` with the work split over two processes where it can pay (see
    :func:`start`): one list of results, in the order of ``items``."""
    return start(fn, items, weights, min_weight, processes).finish()


class Worker:
    """A forked child that did one piece of work and then answers requests (:func:`serve`).

    :meth:`first` waits for the first result; then each :meth:`ask` is answered, in order, by
    one :meth:`answer`. :meth:`close` lets the child end; :meth:`cancel` kills it."""

    def __init__(self, pid: int, requests: int, answers: int) -> None:
        self._pid, self._requests, self._answers = pid, requests, answers

    @property
    def alive(self) -> bool:
        return self._pid > 0

    def first(self) -> tuple[bool, Any]:
        """The result of the child's first piece of work: ``(True, value)``, or ``(False, the
        kind of error)`` (the child has ended then)."""
        return self.answer()

    def ask(self, request: object) -> None:
        try:
            _send(self._requests, dumps(request))
        except BaseException:
            self.cancel()
            raise

    def answer(self) -> tuple[bool, Any]:
        """The answer to the oldest request not yet answered (see :meth:`first`)."""
        try:
            data = _receive(self._answers)
        except BaseException:
            self.cancel()
            raise
        try:
            ok, value = pickle.loads(data) if data is not None else (False, "no result")
        except Exception:
            ok, value = False, "no result"
        if not ok:
            self.cancel()
        return ok, value

    def close(self) -> None:
        """No more requests: the child ends; wait for it."""
        if self._pid:
            os.close(self._requests)  # the child reads the end of its requests, and exits
            os.close(self._answers)
            pid, self._pid = self._pid, 0
            _reap(pid)

    def cancel(self) -> None:
        """Kill the child and wait for it."""
        if self._pid:
            _kill(self._pid)
            self.close()


def serve(first: Callable[[], Any], handle: Callable[[Any], Any]) -> Worker | None:
    """Fork a child that runs ``first()`` and then answers requests with ``handle(request)``;
    None where no child can be forked (see :func:`can_fork`).

    Unlike :func:`start`'s work, the child may write to files and the store, over connections
    it opens itself: every file the parent had open is closed in the child first, and the
    parent must hold no SQLite connection at the fork (see ``Store.detached``). So that it
    never outlives the parent, the kernel kills the child when the parent dies (by SIGKILL
    too): whatever it had not committed is rolled back, as the parent's is."""
    setter = _death_signal_setter()
    if not can_fork() or setter is None:
        return None
    requests_read, requests_write = os.pipe()
    answers_read, answers_write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        for fd in (requests_read, requests_write, answers_read, answers_write):
            os.close(fd)
        return None
    if pid == 0:
        _serving(first, handle, requests_read, answers_write, setter)
    os.close(requests_read)
    os.close(answers_write)
    return Worker(pid, requests_write, answers_read)


def _serving(
    first: Callable[[], Any],
    handle: Callable[[Any], Any],
    requests: int,
    answers: int,
    set_death_signal: Callable[[int], None],
) -> NoReturn:
    code = 0
    try:
        parent = os.getppid()
        set_death_signal(signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)
        _leave_parent(requests, answers)
        work: Callable[[], Any] = first
        while True:
            try:
                data = dumps((True, work()))
            except BaseException as exc:  # said to the parent by kind only (no values)
                _send(answers, dumps((False, type(exc).__name__)))
                code = 1
                break
            _send(answers, data)
            request = _receive(requests)
            if request is None:
                break
            work = functools.partial(handle, pickle.loads(request))
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _leave_parent(*keep: int) -> None:
    """In a forked child: close every file the parent had open but ``keep`` (so the sync lock,
    an flock shared with the parent, is released as soon as the parent dies, and the parent's
    store connection is never touched here); Ctrl-C and SIGTERM end it at once."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _fd_limit())
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _send(fd: int, data: bytes) -> None:
    """One message: its length, then ``data`` (see :func:`_receive`)."""
    _write_all(fd, len(data).to_bytes(8, "little") + data)


def _receive(fd: int) -> bytes | None:
    """One message sent with :func:`_send`; None at the end of the pipe."""
    head = _read_exactly(fd, 8)
    if head is None:
        return None
    return _read_exactly(fd, int.from_bytes(head, "little"))


def _read_exactly(fd: int, n: int) -> bytes | None:
    parts: list[bytes] = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _child(fn: Callable[[Sequence[T]], list[R]], items: Sequence[T], write_end: int) -> NoReturn:
    code = 0
    try:
        _leave_parent(write_end)
        gc.disable()  # a collection would touch (and so copy) every page of the parent's
        began = time.perf_counter()
        try:
            out = fn(items)
            data = dumps((True, out, time.perf_counter() - began))
        except BaseException as exc:  # said to the parent by kind only (no values)
            data = dumps((False, type(exc).__name__, 0.0))
        _write_all(write_end, data)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def dumps(obj: object) -> bytes:
    """``obj`` pickled for the parent. Read-only mappings (``MappingProxyType``, which the
    records' ``extra`` fields are) cannot be pickled as they are: they travel as the dict they
    show and come back read-only."""
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table, MappingProxyType: _reduce_proxy}
    pickler.dump(obj)
    return buf.getvalue()


def read_only(items: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    """A read-only mapping again (what :func:`dumps` sends a ``MappingProxyType`` as)."""
    return MappingProxyType(items)


def _reduce_proxy(proxy: MappingProxyType[Any, Any]) -> tuple[Any, ...]:
    return read_only, (dict(proxy),)


@functools.cache
def _death_signal_setter() -> Callable[[int], None] | None:
    """``prctl(PR_SET_PDEATHSIG, sig)`` on Linux (the signal a child gets when its parent
    dies); None elsewhere or when the C library cannot be loaded."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_signal(sig: int) -> None:
        if prctl(pr_set_pdeathsig, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")

    return set_signal


def _fd_limit() -> int:
    try:
        return min(os.sysconf("SC_OPEN_MAX"), 1 << 16)
    except (OSError, ValueError):
        return 1 << 10


def _kill(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def _reap(pid: int) -> None:
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except InterruptedError:
            continue
        except ChildProcessError:
            return
