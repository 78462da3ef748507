"""A real SMTP server on loopback (aiosmtpd) for the e-mail channel's tests.

:class:`SmtpFake` runs aiosmtpd's ``Controller`` on 127.0.0.1 in its own thread and event
loop, with a handler that records what it accepted. What it can do, as a mail relay does:

- plain SMTP, STARTTLS (``security="starttls"``: the server offers STARTTLS and refuses AUTH
  before it) or implicit TLS (``security="tls"``), with a certificate from a private CA made by
  ``trustme`` (the client must be told to trust it, as with a clinic's own relay);
- AUTH PLAIN/LOGIN against one user and password (a wrong one gets 535);
- refuse recipients (550), refuse the message at the end of DATA (451, temporary), or **hang**
  at the end of DATA after the message arrived (no reply until released: the client is
  mid-send, which is where a test kills it);
- stop listening and start again on the same port (a relay that is down, then back).

Accepted messages are parsed with the stdlib ``email`` package into :class:`Received`.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def parts(self) -> dict[str, str]:
        """content type → decoded text of each leaf part."""
        out: dict[str, str] = {}
        for part in self.message.walk():
            if not part.is_multipart():
                out[part.get_content_type()] = part.get_content()
        return out

    def everything(self) -> str:
        """Headers and every decoded part: what a test searches for leaks."""
        head = "\n".join(f"{k}: {v}" for k, v in self.message.items())
        return head + "\n" + "\n".join(self.parts().values())


@dataclass
class _Handler:
    fake: SmtpFake

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.fake.reject_rcpt:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = bytes(envelope.original_content or envelope.content)
        msg = email.message_from_bytes(data, policy=email.policy.default)
        rec = Received(envelope.mail_from, list(envelope.rcpt_tos), data, msg)  # type: ignore[arg-type]
        self.fake.arrived.append(rec)
        if self.fake.hang:
            while not self.fake.release.is_set():
                await asyncio.sleep(0.02)
            return "451 4.3.0 try again later"
        if self.fake.data_reply:
            return self.fake.data_reply
        self.fake.accepted.append(rec)
        return "250 2.0.0 OK: queued"


@dataclass
class SmtpFake:
    """One loopback SMTP server; see the module docstring."""

    cert_dir: Path
    security: str = "starttls"  # "starttls", "tls" or "none"
    user: str | None = "fit-alerts@clinic.example"
    password: str = "s3cret-mail-pass"
    port: int = field(default_factory=free_port)
    arrived: list[Received] = field(default_factory=list)  # every message that reached DATA
    accepted: list[Received] = field(default_factory=list)  # those answered 250
    reject_rcpt: set[str] = field(default_factory=set)
    data_reply: str | None = None  # e.g. "451 4.7.1 greylisted"
    hang: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    logins: list[str] = field(default_factory=list)
    _controller: Any = None

    def __post_init__(self) -> None:
        import trustme

        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.server_ctx)
        self.cafile = self.cert_dir / "clinic-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.cafile))

    def _auth(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.user
            and auth_data.password.decode() == self.password
        )
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpFake:
        from aiosmtpd.controller import Controller

        kwargs: dict[str, Any] = {
            "hostname": "127.0.0.1",
            "port": self.port,
            "ready_timeout": 10,
            # aiosmtpd counts only STARTTLS as TLS for AUTH; implicit TLS is TLS from the start
            "auth_require_tls": self.security == "starttls",
        }
        if self.user:
            kwargs["authenticator"] = self._auth
        if self.security == "starttls":
            kwargs["tls_context"] = self.server_ctx
            kwargs["require_starttls"] = True
        elif self.security == "tls":
            kwargs["ssl_context"] = self.server_ctx
        self._controller = Controller(_Handler(self), **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_arrived(self, n: int, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while len(self.arrived) < n:
            if time.monotonic() > end:
                raise AssertionError(f"only {len(self.arrived)} of {n} messages arrived")
            time.sleep(0.02)


@pytest.fixture
def smtp_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``make(security=..., user=...)`` starts a server; all are stopped after the test."""
    made: list[SmtpFake] = []

    def make(**kwargs: Any) -> SmtpFake:
        fake = SmtpFake(tmp_path_factory.mktemp("smtp"), **kwargs).start()
        made.append(fake)
        return fake

    yield make
    for fake in made:
        fake.stop()
