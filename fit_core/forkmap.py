"""Compute a list in two processes: the second part in a forked child, the first here.

The sync's rescore is pure computation over data already in memory (the administrations of a
batch of clients, their stored alerts and practice data): scoring, rules, alert plans and the
outbox rows. :func:`split_map` lets a second core do part of it. The child is forked, so it sees
the batch without copying it; it sends back only its results (pickled: tuples of text and
numbers, and the few alert plans), and ends with ``os._exit`` (no clean-up of the parent's
objects, no flush of its buffers, never a write to the store). The parent writes everything in
its own transaction, as a serial run would: a kill of either process at any moment leaves the
store as a serial run killed at the same moment would (whole transactions only); a child left
alone when the parent dies gets a broken pipe at its first write and exits.

A fork is used only where it is safe and can pay: on a platform with ``os.fork``, in a process
with a single thread (a fork copies no other thread, and a lock another thread held would stay
locked in the child), with at least two usable CPUs, and for work of at least ``min_weight``
(the fork and the hand-over cost a few milliseconds). Otherwise, and whenever the child fails,
the whole list is computed here: the result is the same either way, in the same order.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import signal
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

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
    return hasattr(os, "fork") and threading.active_count() == 1 and usable_cpus() >= 2


def split_point(weights: Sequence[int]) -> int:
    """The index that splits ``weights`` into two parts of about the same total."""
    total = sum(weights)
    half, run = total / 2, 0
    for i, w in enumerate(weights):
        if run + w / 2 >= half:
            return i
        run += w
    return len(weights)


def split_map(
    fn: Callable[[Sequence[T]], list[R]],
    items: Sequence[T],
    weights: Sequence[int],
    min_weight: int,
    processes: int = 2,
) -> list[R]:
    """``fn(items)``: one list of results, in the order of ``items``.

    ``fn`` maps a sequence of items to one result per item and must be pure (it may read what
    is in memory, never write to files or the store: in the child its writes would be lost).
    ``weights`` (one per item) say how much work each item is; with a total of at least
    ``min_weight``, ``processes`` 2 and :func:`can_fork`, the items after
    :func:`split_point` are computed in a forked child while this process computes the rest.
    """
    if processes < 2 or len(items) < 2 or sum(weights) < min_weight or not can_fork():
        return fn(items)
    cut = split_point(weights)
    if cut <= 0 or cut >= len(items):
        return fn(items)
    theirs_items = items[cut:]
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return fn(items)
    if pid == 0:  # the child: compute, send, and leave without any clean-up
        code = 0
        try:
            # no file of the parent's stays open here: the sync lock (an flock shared with
            # the parent) is released as soon as the parent dies, and the store is not touched
            os.closerange(3, write_end)
            os.closerange(write_end + 1, _fd_limit())
            gc.disable()  # a collection would touch (and so copy) every page of the parent's
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it at once
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                data = pickle.dumps((True, fn(theirs_items)), pickle.HIGHEST_PROTOCOL)
            except BaseException as exc:  # said to the parent by kind only (no values)
                data = pickle.dumps((False, type(exc).__name__), pickle.HIGHEST_PROTOCOL)
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view) :]
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    done = False
    try:
        mine = fn(items[:cut])
        chunks: list[bytes] = []
        while chunk := os.read(read_end, 1 << 20):
            chunks.append(chunk)
        done = True
    finally:
        os.close(read_end)
        if not done:  # this process failed: the child's work is not wanted
            _kill(pid)
        _reap(pid)
    try:
        ok, theirs = pickle.loads(b"".join(chunks))
    except Exception:
        ok, theirs = False, "no result"
    if not ok:
        log.warning(
            "the second process failed (%s); its part of the work was done here instead", theirs
        )
        return mine + fn(theirs_items)
    return mine + theirs


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
