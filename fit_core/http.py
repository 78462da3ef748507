"""HTTP for adapters: one ``requests.Session`` factory, a retry policy, and a throttle.

Adapters decide what is safe to retry (docs/integrations.md: a REDCap 429 never, a Google 429
always, with backoff); this module only carries the policy out. Timeouts are always set.
Nothing here logs a URL's query string or a body (they may hold tokens or PHI).
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from . import __version__

log = logging.getLogger(__name__)

USER_AGENT = f"fit-sync/{__version__} (+https://github.com/fit-sync/fit-sync)"
DEFAULT_TIMEOUT = (10.0, 60.0)  # connect, read (seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how to retry one request.

    ``statuses`` are HTTP statuses worth retrying; ``connection_errors`` retries connection
    failures and timeouts. Backoff is truncated exponential with full jitter:
    ``uniform(0, min(cap, base * 2**attempt))``, honouring ``Retry-After`` when
    ``honor_retry_after``; no retry starts after ``max_elapsed`` seconds.
    """

    statuses: frozenset[int] = frozenset()
    connection_errors: bool = True
    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_cap: float = 32.0
    max_elapsed: float = 120.0
    honor_retry_after: bool = True

    def delay(self, attempt: int, response: requests.Response | None, rng: random.Random) -> float:
        if response is not None and self.honor_retry_after:
            after = retry_after_seconds(response.headers.get("Retry-After"))
            if after is not None:
                return min(after, self.backoff_cap)
        return rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))


NO_RETRY = RetryPolicy(connection_errors=False, max_attempts=1)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def make_session(*, verify: bool | str = True, user_agent: str = USER_AGENT) -> requests.Session:
    """A session with our user agent and TLS verification (``verify`` may be a CA bundle path).

    Verification is never switched off silently: ``verify=False`` is logged as a warning.
    """
    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    session.verify = verify
    if verify is False:
        log.warning("TLS certificate verification is OFF for this source: use a CA bundle path")
    return session


@dataclass
class Throttle:
    """At most one request per ``min_interval`` seconds (e.g. 0.5 for 2 requests/s)."""

    min_interval: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _last: float | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def wait(self) -> None:
        with self._lock:
            now = self.clock()
            if self._last is not None:
                gap = self._last + self.min_interval - now
                if gap > 0:
                    self.sleep(gap)
                    now = self.clock()
            self._last = now


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    policy: RetryPolicy = NO_RETRY,
    throttle: Throttle | None = None,
    timeout: Any = DEFAULT_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    **kwargs: Any,
) -> requests.Response:
    """Send one request, retrying as ``policy`` allows; returns the last response.

    Raises the last ``requests`` exception when connection errors exhaust the policy. Redirects
    are never followed on their own for non-GET methods (a 302 turns a POST into a GET).
    """
    rng = rng or random.Random()
    kwargs.setdefault("allow_redirects", method.upper() == "GET")
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override Session.verify unless verify is
    # passed per request: a configured CA bundle (or verify=False) must not be silently replaced
    kwargs.setdefault("verify", session.verify)
    started = clock()
    attempt = 0
    while True:
        if throttle is not None:
            throttle.wait()
        response: requests.Response | None = None
        try:
            response = session.request(method, url, timeout=timeout, **kwargs)
        except requests.exceptions.SSLError:
            raise  # a certificate problem never heals by retrying
        except (requests.ConnectionError, requests.Timeout) as exc:
            if not policy.connection_errors or not _may_retry(policy, attempt, started, clock):
                raise
            log.warning("%s %s: %s; retrying", method, _safe(url), type(exc).__name__)
        else:
            if response.status_code not in policy.statuses:
                return response
            if not _may_retry(policy, attempt, started, clock):
                return response
            log.warning("%s %s: HTTP %d; retrying", method, _safe(url), response.status_code)
        delay = policy.delay(attempt, response, rng)
        if clock() + delay - started > policy.max_elapsed:
            if response is not None:
                return response
            raise requests.ConnectionError(f"gave up after {attempt + 1} attempts")
        sleep(delay)
        attempt += 1


def _may_retry(
    policy: RetryPolicy, attempt: int, started: float, clock: Callable[[], float]
) -> bool:
    return attempt + 1 < policy.max_attempts and clock() - started < policy.max_elapsed


def _safe(url: str) -> str:
    """A URL for logs: without query string or credentials."""
    base = url.split("?", 1)[0]
    if "@" in base.split("//", 1)[-1].split("/", 1)[0]:
        scheme, rest = base.split("//", 1)
        base = scheme + "//" + rest.split("@", 1)[1]
    return base
