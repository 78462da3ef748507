"""The built-in ``email`` channel: messages over SMTP with STARTTLS or implicit TLS.

.. code-block:: toml

    [notify.channels.clinic_mail]
    type = "email"
    host = "smtp.clinic.example"
    port = 587                      # default: 587 (starttls), 465 (tls), 25 (none)
    security = "starttls"           # "starttls" (default), "tls" (implicit, port 465) or "none"
    username = "fit-alerts@clinic.example"   # password: fit keys set notify_clinic_mail password
    from = "FIT alerts <fit-alerts@clinic.example>"

The password comes from the secret chain under ``notify_<channel>`` (environment
``FIT_NOTIFY_CLINIC_MAIL_PASSWORD``, the systemd credential ``notify_clinic_mail.password``, a
plugin, or the keyring); it never lives in the config. ``security = "none"`` is only for a
relay on the same machine or a trusted network and refuses a login (the password would cross
the network in clear). Certificates are checked against the system's trust store, or
``cafile`` for a relay with a private CA.

Each message is a ``multipart/alternative`` (plain text and HTML) with a stable
``Message-ID`` (a resend after a killed run carries the same one), ``Auto-Submitted:
auto-generated`` so auto-replies stay away, and nothing else about the clinic.
"""

from __future__ import annotations

import contextlib
import email.policy
import email.utils
import logging
import smtplib
import socket
import ssl
from email.message import EmailMessage
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..errors import ConfigError
from ..redact import redact
from .channel import DeliveryError, Message, Notifier
from .config import _EMAIL

log = logging.getLogger(__name__)

__all__ = ["EmailNotifier", "EmailOptions"]

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def _sender(value: str) -> None:
    _name, addr = email.utils.parseaddr(value)
    if not addr or not _EMAIL.match(addr):
        raise ValidationError('must be an address, e.g. "FIT alerts <fit@clinic.example>"')


class EmailOptions(Schema):
    """The options of an ``email`` channel (unknown keys are refused)."""

    host = fields.String(required=True, validate=validate.Length(min=1))
    port = fields.Integer(load_default=None, validate=validate.Range(min=1, max=65535))
    security = fields.String(
        load_default="starttls", validate=validate.OneOf(("starttls", "tls", "none"))
    )
    username = fields.String(load_default=None, validate=validate.Length(min=1))
    sender = fields.String(required=True, data_key="from", validate=_sender)
    reply_to = fields.String(load_default=None, validate=_sender)
    subject_prefix = fields.String(load_default="[FIT]")
    timeout = fields.Float(load_default=30.0, validate=validate.Range(min=1, max=600))
    cafile = fields.String(load_default=None, validate=validate.Length(min=1))

    @validates_schema
    def _no_login_in_clear(self, data: dict[str, Any], **_kw: Any) -> None:
        if data.get("security") == "none" and data.get("username"):
            raise ValidationError(
                'security = "none" would send the password in clear: use "starttls" or "tls"',
                "security",
            )


class EmailNotifier(Notifier):
    """Sends each message as one e-mail to its addresses (one connection per run)."""

    name: ClassVar[str] = "email"
    description: ClassVar[str] = "e-mail over SMTP (STARTTLS or TLS)"
    options_schema: ClassVar[type[Schema]] = EmailOptions
    secret_keys: ClassVar[tuple[str, ...]] = ("password",)
    addresses: ClassVar[str] = "required"

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._smtp: smtplib.SMTP | None = None
        o = self.options
        self.host: str = o["host"]
        self.security: str = o["security"]
        self.port: int = o["port"] or DEFAULT_PORTS[self.security]
        self.timeout: float = o["timeout"]

    @classmethod
    def check_address(cls, address: str) -> str | None:
        return None if _EMAIL.match(address) else "not an e-mail address"

    def describe(self) -> str:
        return f"smtp {self.host}:{self.port} ({self.security})"

    # --- connection ----------------------------------------------------------------------

    def _tls(self) -> ssl.SSLContext:
        cafile = self.options.get("cafile")
        try:
            return ssl.create_default_context(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"[notify.channels.{self.context.name}] cafile {cafile!r} cannot be read: "
                f"{getattr(exc, 'strerror', None) or type(exc).__name__}"
            ) from None

    def _connect(self) -> smtplib.SMTP:
        where = f"{self.host}:{self.port}"
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._tls()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            smtp.ehlo()
            if self.security == "starttls":
                if not smtp.has_extn("starttls"):
                    smtp.close()
                    raise DeliveryError(
                        f"the mail server {where} does not offer STARTTLS",
                        hint='use security = "tls" (port 465) if it speaks implicit TLS',
                        channel_down=True,
                    )
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            user = self.options.get("username")
            if user:
                smtp.login(user, self.context.secret("password"))
        except smtplib.SMTPAuthenticationError as exc:
            raise ConfigError(
                f"the mail server {where} refused the login of {self.options['username']!r} "
                f"({exc.smtp_code})",
                hint=f"check the password: `fit keys set {self.context.secret_source} password`",
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"the certificate of the mail server {where} cannot be trusted: "
                f"{exc.verify_message}",
                hint="for a relay with a private CA set cafile in the channel",
                channel_down=True,
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"cannot reach the mail server {where}: {_describe(exc)}",
                hint="check host, port and security; the message is retried at the next run",
                channel_down=True,
            ) from None
        return smtp

    def check(self) -> None:
        smtp = self._connect()
        try:
            smtp.noop()
        finally:
            _quit(smtp)

    # --- sending --------------------------------------------------------------------------

    def _message(self, message: Message) -> EmailMessage:
        o = self.options
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["From"] = o["sender"]
        msg["To"] = ", ".join(message.addresses)
        if o.get("reply_to"):
            msg["Reply-To"] = o["reply_to"]
        prefix = o.get("subject_prefix") or ""
        msg["Subject"] = f"{prefix} {message.subject}".strip()
        msg["Date"] = email.utils.format_datetime(message.created_at)
        domain = email.utils.parseaddr(o["sender"])[1].rpartition("@")[2] or "fit-sync.invalid"
        msg["Message-ID"] = f"<{message.message_id}@{domain}>"
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
        msg.set_content(message.text)
        msg.add_alternative(message.html, subtype="html")
        return msg

    def send(self, message: Message) -> None:
        if not message.addresses:
            raise DeliveryError(f"message for {message.recipient} has no address")
        msg = self._message(message)
        for attempt in (1, 2):
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                self._transfer(self._smtp, msg, message)
                return
            except smtplib.SMTPServerDisconnected as exc:
                self._smtp = None
                if getattr(exc, "fit_in_data", False):
                    raise DeliveryError(
                        f"the mail server {self.host}:{self.port} closed the connection "
                        "during the message",
                        maybe_delivered=True,
                    ) from None
                # before the data: the connection of an earlier message may have timed out
                # meanwhile; connect again once
                if attempt == 2:
                    raise DeliveryError(
                        f"the mail server {self.host}:{self.port} closed the connection",
                        hint="the message is retried at the next run",
                    ) from None

    def _transfer(self, smtp: smtplib.SMTP, msg: EmailMessage, message: Message) -> None:
        where = f"{self.host}:{self.port}"
        sender = email.utils.parseaddr(self.options["sender"])[1]
        try:
            code, _resp = smtp.mail(sender)
            if code != 250:
                _reset(smtp)
                raise DeliveryError(f"the mail server {where} refused the sender ({code})")
            refused = {}
            for address in message.addresses:
                code, _resp = smtp.rcpt(address)
                if code not in (250, 251):
                    refused[address] = code
            if len(refused) == len(message.addresses):
                _reset(smtp)
                codes = ", ".join(sorted({str(c) for c in refused.values()}))
                raise DeliveryError(
                    f"the mail server {where} refused every recipient ({codes})",
                    hint="check the addresses in [notify.clinicians] / the route's to",
                )
        except smtplib.SMTPServerDisconnected:
            raise
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise DeliveryError(f"sending to {where} failed: {_describe(exc)}") from None
        try:
            code, _resp = smtp.data(msg.as_bytes())
        except smtplib.SMTPDataError as exc:  # DATA itself refused: nothing was delivered
            _reset(smtp)
            raise DeliveryError(
                f"the mail server {where} refused the message ({exc.smtp_code})"
            ) from None
        except smtplib.SMTPServerDisconnected as exc:
            exc.fit_in_data = True  # type: ignore[attr-defined]
            raise
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise DeliveryError(
                f"the connection to {where} broke during the message: {_describe(exc)}",
                maybe_delivered=True,
            ) from None
        if code != 250:
            _reset(smtp)
            raise DeliveryError(
                f"the mail server {where} did not accept the message ({code})",
                hint="a 4xx answer is temporary: the message is retried at the next run",
            )
        if refused:
            log.warning(
                "channel %s: the mail server refused %d of %d addresses (%s)",
                self.context.name,
                len(refused),
                len(message.addresses),
                ", ".join(sorted(refused)),
            )

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            _quit(self._smtp)
            self._smtp = None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code}"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return redact(exc.strerror)
    return type(exc).__name__


def _reset(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        smtp.rset()


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
