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

import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fit_core.errors import FitError, LockedError

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
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
    """The HTTP receiver. ``path`` plus ``/<secret>`` when a secret is set; POST only."""

    def __init__(
        self,
        sources: Sequence[DetSource],
        queue: SyncQueue,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        path: str = "/",
        secret: str | None = None,
    ) -> None:
        self.sources = list(sources)
        self.queue = queue
        base = "/" + path.strip("/")
        self.expected = (base.rstrip("/") + "/" + secret) if secret else base
        owner = self

        class Handler(_DetHandler):
            server_owner = owner

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port) (port 0 picks a free one)."""
        host, port = self.httpd.server_address[:2]
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
        record = fields.get("record", "")
        if not names:
            log.warning("DET ignored (record %s): %s", record or "?", reason)
            return
        for name in names:
            self.queue.submit(name, record)
        log.info("DET: record %s queued for %s", record, ", ".join(names))

    def serve_forever(self) -> None:
        """Serve until :meth:`stop` (or ``httpd.shutdown()``) from another thread."""
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> DetServer:
        self._thread = threading.Thread(target=self.serve_forever, name="fit-det", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()


class _DetHandler(BaseHTTPRequestHandler):
    server_owner: DetServer
    timeout = 10  # seconds per connection: a slow client cannot hold a thread

    def do_POST(self) -> None:
        owner = self.server_owner
        if not owner.path_ok(self.path):
            self._answer(404, "not found")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._answer(413, "too large")
            return
        if "application/x-www-form-urlencoded" not in self.headers.get("Content-Type", ""):
            self._answer(415, "form-encoded bodies only")
            return
        body = self.rfile.read(length) if length else b""
        owner.notice(body)  # routing and queueing only: the sync runs in the worker
        self._answer(200, "ok")  # at once: REDCap waits at most 15 s

    def do_GET(self) -> None:
        self._answer(405, "POST only")

    do_PUT = do_DELETE = do_PATCH = do_GET

    def _answer(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        if status == 405:
            self.send_header("Allow", "POST")
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        # the path may hold the shared secret: log the method and status only
        log.debug("DET receiver: %s -> %s", self.command, args[1] if len(args) > 1 else "")
