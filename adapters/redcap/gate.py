"""One request at a time per REDCap server, spaced by a throttle, across the whole process.

A REDCap server bans an IP past a site-wide hit threshold, so the spacing must hold across every
adapter instance talking to the same server in this process: one sync run after another, the
``fit serve`` worker, ``fit redcap inspect``. A :class:`Gate` per API URL holds the request lock
and the time the last response ended; :class:`GateThrottle` (a
:class:`fit_core.http.Throttle`) waits until ``min_interval`` seconds after that.

Spacing is measured from the **end** of one response to the start of the next request (as
REDCapR pauses between batches). The server receives a request before it answers it, so it never
sees two requests closer together than ``min_interval``, whatever the network delays.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fit_core.http import Throttle


@dataclass
class Gate:
    """Shared state of one server: ``lock`` is held for a whole request (retries included)."""

    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    state: threading.Lock = field(default_factory=threading.Lock, repr=False)
    last: float | None = None  # monotonic time the last response ended


_GATES: dict[str, Gate] = {}
_GATES_LOCK = threading.Lock()


def gate_for(url: str) -> Gate:
    """The process-wide gate of the API at ``url`` (scheme, host, port and path; no query)."""
    key = url.split("?", 1)[0].split("#", 1)[0].rstrip("/").lower()
    with _GATES_LOCK:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = Gate()
        return gate


@dataclass
class GateThrottle(Throttle):
    """A :class:`Throttle` whose last-request time lives on a shared :class:`Gate`.

    :meth:`wait` sleeps until ``min_interval`` after the previous response ended (or, before the
    first response, after the previous request started); :meth:`done` records a response's end.
    """

    gate: Gate = field(default_factory=Gate)

    def wait(self) -> None:
        """Sleep until ``min_interval`` after the last response ended; then mark a start."""
        with self.gate.state:
            now = self.clock()
            last = self.gate.last
            if last is not None:
                gap = last + self.min_interval - now
                if gap > 0:
                    self.sleep(gap)
                    now = self.clock()
            self.gate.last = now

    def done(self) -> None:
        """A response (or a failed attempt) just ended: the next request waits from now."""
        with self.gate.state:
            self.gate.last = self.clock()


def make_throttle(
    rate: float,
    gate: Gate,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> GateThrottle:
    """A throttle of ``rate`` requests a second (with 1 % to spare) on ``gate``."""
    return GateThrottle(min_interval=1.01 / rate, clock=clock, sleep=sleep, gate=gate)
