"""A loopback HTTP server that receives webhooks, answering as the chat tools do.

:class:`WebhookFake` runs a ``ThreadingHTTPServer`` on 127.0.0.1 (port 0). ``POST`` to any path
is a webhook delivery; it is recorded (headers, raw body, parsed JSON) and answered by
``flavour``:

- ``"generic"``: any JSON body gets ``200`` with ``{"ok": true}``;
- ``"slack"``: as Slack's incoming webhooks answer (also Mattermost's): ``200`` with the text
  body ``ok``; a body that is not JSON gets ``400 invalid_payload``, a JSON object without a
  non-empty ``text`` (and no ``blocks``) gets ``400 no_text``;
- ``"teams"``: as Teams' incoming webhooks / Workflows: ``202 Accepted`` with an empty body for
  a ``message`` with at least one Adaptive Card attachment, else ``400``.

Faults for the tests: ``status`` answers every POST with that status instead (e.g. 503, a
server that is down for maintenance), ``hang`` holds the answer after the body was read until
:attr:`release` is set (the client is mid-send), and :meth:`stop` / :meth:`start` take the
port away and back.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class WebhookFake:
    flavour: str = "generic"
    status: int | None = None
    hang: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    hits: list[Hit] = field(default_factory=list)  # every POST that arrived
    accepted: list[Hit] = field(default_factory=list)  # those answered 2xx
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    def start(self) -> WebhookFake:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                hit = Hit(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                fake.hits.append(hit)
                if fake.hang:
                    fake.release.wait(120)
                    self.close_connection = True
                    return
                status, ctype, text = fake._answer(body)
                if 200 <= status < 300:
                    fake.accepted.append(hit)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _answer(self, body: bytes) -> tuple[int, str, str]:
        if self.status is not None:
            return self.status, "text/plain", "unavailable"
        try:
            data = json.loads(body)
        except ValueError:
            return 400, "text/plain", "invalid_payload"
        if self.flavour == "slack":
            if not isinstance(data, dict):
                return 400, "text/plain", "invalid_payload"
            if not (data.get("text") or data.get("blocks")):
                return 400, "text/plain", "no_text"
            return 200, "text/plain", "ok"
        if self.flavour == "teams":
            atts = data.get("attachments") if isinstance(data, dict) else None
            ok = (
                data.get("type") == "message"
                and isinstance(atts, list)
                and any(
                    a.get("contentType") == "application/vnd.microsoft.card.adaptive"
                    and isinstance(a.get("content"), dict)
                    and a["content"].get("type") == "AdaptiveCard"
                    for a in atts
                )
            )
            return (202, "text/plain", "") if ok else (400, "text/plain", "bad card")
        return 200, "application/json", '{"ok": true}'

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/fit"

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_hits(self, n: int, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while len(self.hits) < n:
            if time.monotonic() > end:
                raise AssertionError(f"only {len(self.hits)} of {n} webhook calls arrived")
            time.sleep(0.02)


@pytest.fixture
def webhook_fake() -> Iterator[Any]:
    """``make(flavour=...)`` starts a server; all are stopped after the test."""
    made: list[WebhookFake] = []

    def make(**kwargs: Any) -> WebhookFake:
        fake = WebhookFake(**kwargs).start()
        made.append(fake)
        return fake

    yield make
    for fake in made:
        fake.stop()
