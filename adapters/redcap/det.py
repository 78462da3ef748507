"""`fit serve`: a small receiver for REDCap's Data Entry Trigger (DET).

REDCap POSTs a form-encoded notice (``redcap_url, project_url, project_id, username, record,
instrument, <instrument>_complete`` and, when they apply, ``redcap_event_name``,
``redcap_data_access_group``, ``redcap_repeat_instrument``, ``redcap_repeat_instance``) on web
entry and survey submit, with a 15 s timeout and **no signature**. So a notice is only a hint:

- it must arrive on the configured path (which may end in a shared secret);
- its ``project_id`` and the host of ``redcap_url``/``project_url`` must match a served source;
- the receiver answers at once and syncs in the background: notices are collected for a
  moment (``debounce``), then each source syncs just those records, **re-read through the API**
  with fit-sync's own token (the notice's values are never used).

API imports do not fire DETs, so writing scores back cannot loop. Record ids are logged; nothing
else from a notice is.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import h11

from fit_core.errors import FitError, LockedError

log = logging.getLogger(__name__)

#: the largest notice body (REDCap's are a few hundred bytes)
MAX_BODY = 64 * 1024
#: the request line and headers together
MAX_HEADER = 16 * 1024
#: open connections at once (beyond: the oldest unfinished one is dropped)
MAX_CONNECTIONS = 256
#: seconds for a whole request to arrive (REDCap sends it at once)
REQUEST_TIMEOUT = 10.0
#: the longest record id queued (REDCap record names are short)
MAX_RECORD_ID = 100
READ_CHUNK = 4096
READ_LIMIT = 16 * 1024  # per connection, bytes buffered before reading pauses
#: more pending records than this for one source: run its normal incremental sync instead
MAX_RECORDS = 1000

#: ``runner(source, record_ids)``; ``record_ids`` None means an ordinary incremental sync
Runner = Callable[[str, Sequence[str] | None], None]


@dataclass(frozen=True)
class DetSource:
    """A served source: its name, REDCap project id, API host and mapped instruments."""

    name: str
    project_id: int | None
    host: str
    instruments: frozenset[str]

    @classmethod
    def of(
        cls, name: str, project_id: int | None, url: str, instruments: Iterable[str]
    ) -> DetSource:
        return cls(name, project_id, _host(url), frozenset(instruments))


def _host(url: str) -> str:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


def parse_notice(body: bytes) -> dict[str, str]:
    """A DET body: form-encoded ``key=value`` pairs (a repeated key keeps the last value)."""
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def route(notice: Mapping[str, str], sources: Sequence[DetSource]) -> tuple[list[str], str]:
    """The sources a notice concerns, and a short reason when none (for the log)."""
    record = notice.get("record", "").strip()
    pid = notice.get("project_id", "").strip()
    if not record or not pid.isdigit():
        return [], "no record or project_id"
    hosts = {_host(notice[k]) for k in ("redcap_url", "project_url") if notice.get(k)}
    if not hosts:
        return [], "no redcap_url"
    matches = [s for s in sources if s.project_id == int(pid) and hosts == {s.host}]
    if not matches:
        return [], f"project {pid} on {', '.join(sorted(hosts))} is not served here"
    instrument = notice.get("instrument", "").strip()
    if instrument:
        matches = [s for s in matches if instrument in s.instruments]
        if not matches:
            return [], f"instrument {instrument} is not mapped"
    return [s.name for s in matches], ""


class SyncQueue:
    """Collects (source, record) hints and runs the syncs one at a time in a worker thread.

    After the first hint the worker waits ``debounce`` seconds for more (a survey page save and
    its submit come close together), then calls ``runner`` per source. Another sync holding the
    lock: tried again after ``retry_after`` seconds. A source whose sync reports a 429 is not
    synced again by this process (the server may have banned us).
    """

    def __init__(self, runner: Runner, *, debounce: float = 2.0, retry_after: float = 15.0) -> None:
        self.runner = runner
        self.debounce = debounce
        self.retry_after = retry_after
        self.disabled: set[str] = set()
        self._pending: dict[str, dict[str, None] | None] = {}
        self._cond = threading.Condition()
        self._stop = False
        self._busy = False
        self._thread = threading.Thread(target=self._work, name="fit-det-sync", daemon=True)

    def start(self) -> SyncQueue:
        """Start the worker thread."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker after the sync it is running, if any."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def submit(self, source: str, record: str) -> None:
        """Queue a record of a source (ignored for a source disabled after a 429)."""
        with self._cond:
            if source in self.disabled:
                return
            ids = self._pending.setdefault(source, {})
            if ids is not None:
                ids[record] = None
                if len(ids) > MAX_RECORDS:
                    self._pending[source] = None
            self._cond.notify_all()

    def idle(self) -> bool:
        """Nothing pending and no sync running (for tests and shutdown)."""
        with self._cond:
            return not self._pending and not self._busy

    def wait_idle(self, timeout: float) -> bool:
        """Wait until :meth:`idle` (True) or ``timeout`` seconds (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle():
                return True
            time.sleep(0.02)
        return self.idle()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                self._busy = True
            time.sleep(self.debounce)
            with self._cond:
                batch, self._pending = self._pending, {}
            for source, ids in batch.items():
                self._run(source, None if ids is None else list(ids))
            with self._cond:
                self._busy = False

    def _run(self, source: str, ids: list[str] | None) -> None:
        what = "an incremental sync" if ids is None else f"record(s) {', '.join(ids[:10])}"
        log.info("DET: source %s: syncing %s", source, what)
        try:
            self.runner(source, ids)
        except LockedError:
            log.info(
                "DET: another sync is running; source %s again in %gs", source, self.retry_after
            )
            threading.Timer(self.retry_after, self._requeue, (source, ids)).start()
        except FitError as exc:
            self._failed(source, str(exc))
        except Exception:
            log.exception("DET: source %s: the sync failed with an internal error", source)

    def _requeue(self, source: str, ids: list[str] | None) -> None:
        if ids is None:
            with self._cond:
                self._pending[source] = None
                self._cond.notify_all()
            return
        for record in ids:
            self.submit(source, record)

    def _failed(self, source: str, error: str) -> None:
        log.error("DET: source %s: %s", source, error)
        if "429" in error:
            with self._cond:
                self.disabled.add(source)
            log.error("DET: source %s will not be synced again until fit serve restarts", source)


class DetServer:
    """The HTTP receiver. ``path`` plus ``/<secret>`` when a secret is set; POST only.

    One asyncio event loop serves every connection (HTTP/1.1 parsed by h11, one request per
    connection), so a thousand idle or slow clients cost a little memory each, not a thread
    each. Everything a client can make the receiver hold is bounded:

    - a request (line, headers and body) must arrive within ``request_timeout`` seconds (408);
    - the request line and headers may take :data:`MAX_HEADER` bytes (431);
    - the body must be announced by a valid ``Content-Length`` (400 when it is negative or not
      a number, 411 when missing) of at most :data:`MAX_BODY` bytes (413, nothing is read);
    - at most ``max_connections`` connections are open at once: when another one arrives, the
      oldest unfinished one is dropped, so a flood of slow clients cannot lock out REDCap,
      whose notice arrives whole within milliseconds;
    - the queue of pending re-reads is bounded by :class:`SyncQueue` (at most
      :data:`MAX_RECORDS` record ids of at most :data:`MAX_RECORD_ID` characters per source).

    With the defaults the receiver holds at most about 256 x (32 + 16 + 64) KiB of client data
    (see benchmarks/bench_serve.py for what it measures).
    """

    def __init__(
        self,
        sources: Sequence[DetSource],
        queue: SyncQueue,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        path: str = "/",
        secret: str | None = None,
        max_connections: int = MAX_CONNECTIONS,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.sources = list(sources)
        self.queue = queue
        base = "/" + path.strip("/")
        self.expected = (base.rstrip("/") + "/" + secret) if secret else base
        self.max_connections = max_connections
        self.request_timeout = request_timeout
        self.dropped = 0  # connections dropped to make room (for tests and the log)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # bound now, so the address (port 0 picks one) is known before serving starts
        self._sock = socket.create_server((host, port), family=family, backlog=1024)
        self._active: dict[asyncio.Task[None], None] = {}  # open connections, oldest first
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        self._ready = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_drop_log = 0.0

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port) (port 0 picks a free one)."""
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def path_ok(self, path: str) -> bool:
        """The request path is the expected one (constant-time comparison)."""
        got = "/" + path.split("?", 1)[0].strip("/")
        want = "/" + self.expected.strip("/")
        return hmac.compare_digest(got.encode(), want.encode())

    def notice(self, body: bytes) -> None:
        """Route one notice and queue its record for the matching sources."""
        fields = parse_notice(body)
        names, reason = route(fields, self.sources)
        record = fields.get("record", "").strip()
        if names and (len(record) > MAX_RECORD_ID or not record.isprintable()):
            names, reason = [], "the record id is not a REDCap record name"
            record = "?"
        if not names:
            log.warning("DET ignored (record %s): %s", record[:MAX_RECORD_ID] or "?", reason)
            return
        for name in names:
            self.queue.submit(name, record)
        log.info("DET: record %s queued for %s", record, ", ".join(names))

    # --- running ----------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` or :meth:`stop` (from another thread or a signal)."""
        try:
            asyncio.run(self._serve())
        finally:
            self._ready.set()
            self._done.set()
            self._sock.close()

    def start(self) -> DetServer:
        """Serve in a background thread; returns once the receiver accepts connections."""
        self._thread = threading.Thread(target=self.serve_forever, name="fit-det", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def shutdown(self) -> None:
        """Ask the receiver to stop (returns at once; safe from any thread or a signal)."""
        self._stop_requested = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(stop.set)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, close every connection and the socket."""
        self.shutdown()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._loop is None:  # never served
            self._sock.close()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connected, sock=self._sock, limit=READ_LIMIT)
        self._ready.set()
        async with server:
            if not self._stop_requested:
                await self._stop.wait()
        for task in list(self._active):
            task.cancel()
        await asyncio.gather(*self._active, return_exceptions=True)

    # --- one connection -----------------------------------------------------------------------

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._active[task] = None
        if len(self._active) > self.max_connections:
            self._drop_oldest()
        try:
            status, text = await self._request(reader)
            writer.write(_response(status, text))
            async with asyncio.timeout(self.request_timeout):
                await writer.drain()
        except (asyncio.CancelledError, TimeoutError, OSError):
            pass  # dropped, stopped, too slow to read the answer, or gone: nothing to answer
        finally:
            self._active.pop(task, None)
            writer.transport.abort()

    def _drop_oldest(self) -> None:
        oldest = next(iter(self._active))
        self._active.pop(oldest)
        oldest.cancel()
        self.dropped += 1
        now = time.monotonic()
        if now - self._last_drop_log > 60:
            self._last_drop_log = now
            log.warning(
                "DET receiver: more than %d connections at once; dropping the oldest unfinished "
                "ones (slow or idle clients, or a flood)",
                self.max_connections,
            )

    async def _request(self, reader: asyncio.StreamReader) -> tuple[int, str]:
        """Read and handle one request; the (status, text) to answer."""
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER)
        try:
            async with asyncio.timeout(self.request_timeout):
                event = await _next_event(conn, reader)
                if not isinstance(event, h11.Request):
                    return 400, "bad request"
                status, text = self._check(event)
                if status:
                    return status, text
                body = bytearray()
                while True:
                    event = await _next_event(conn, reader)
                    if isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    else:
                        return 400, "incomplete body"
        except TimeoutError:
            return 408, "request took too long"
        except h11.RemoteProtocolError as exc:
            return exc.error_status_hint, "bad request"
        self.notice(bytes(body))  # routing and queueing only: the sync runs in the worker
        return 200, "ok"  # at once: REDCap waits at most 15 s

    def _check(self, request: h11.Request) -> tuple[int, str]:
        """(0, "") when the request may send its body; else the status to answer with."""
        if request.method != b"POST":
            return 405, "POST only"
        if not self.path_ok(request.target.decode("ascii", "replace")):
            return 404, "not found"
        headers = {name: value for name, value in request.headers}
        length = headers.get(b"content-length")
        if length is None:  # h11 has refused a negative or non-numeric one (400)
            return 411, "Content-Length required"
        if int(length) > MAX_BODY:
            return 413, "too large"
        if b"application/x-www-form-urlencoded" not in headers.get(b"content-type", b""):
            return 415, "form-encoded bodies only"
        return 0, ""


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await reader.read(READ_CHUNK))


def _response(status: int, text: str) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection."""
    body = text.encode()
    head = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if status == 405:
        head.append("Allow: POST")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body
