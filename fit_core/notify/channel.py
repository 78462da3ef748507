"""The notification channel interface: what a notifier plugin implements.

A channel is configured as ``[notify.channels.<name>]`` with ``type = "<notifier name>"``; the
other keys are the notifier's options, validated by its ``options_schema`` (marshmallow, with
unknown keys refused). Secrets never live in the config: a notifier declares the keys it may
look up in ``secret_keys`` and gets them from :attr:`ChannelContext.secret` — the same chain as
source secrets, under the name ``notify_<channel>`` (``fit keys set notify_clinic_mail
password``, ``FIT_NOTIFY_CLINIC_MAIL_PASSWORD``, or the systemd credential
``notify_clinic_mail.password``).

Per delivery run a notifier is created once per channel, asked to ``send`` each message, and
closed. ``send`` either returns (the server accepted the message) or raises
:class:`DeliveryError`; ``maybe_delivered=True`` says the outcome is unknown (the connection
broke after the message went out), so the same message is sent again, with the same
:attr:`Message.message_id`, at the next run. The receiving side can use that id to drop a
repeat (an e-mail's Message-ID, a webhook's ``Idempotency-Key`` header).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from marshmallow import Schema

from ..errors import ExitCode, FitError

__all__ = ["ChannelContext", "DeliveryError", "Message", "Notifier"]


class DeliveryError(FitError):
    """A message was not delivered. ``maybe_delivered``: the outcome is unknown (the server may
    have accepted it before the connection broke), so it is resent as the same message.
    ``channel_down``: the server could not be reached at all, so the run does not try the
    channel's other messages (they fail at once and are retried with it next time).

    The message names the channel, the server's answer (status or SMTP code) and what to do;
    never message content, never a secret."""

    exit_code = ExitCode.PARTIAL

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        maybe_delivered: bool = False,
        channel_down: bool = False,
    ) -> None:
        super().__init__(message, hint=hint)
        self.maybe_delivered = maybe_delivered
        self.channel_down = channel_down


@dataclass(frozen=True)
class ChannelContext:
    """What a notifier gets: its channel name, validated options and the secret lookups."""

    name: str
    options: Mapping[str, Any]
    #: ``secret(key)``: the value, or a ConfigError naming every way to set it
    secret: Callable[[str], str] = field(repr=False)
    #: ``optional_secret(key)``: the value, or None when it is set nowhere
    optional_secret: Callable[[str], str | None] = field(repr=False)

    @property
    def secret_source(self) -> str:
        """The name secrets of this channel are kept under: ``notify_<channel>``."""
        return secret_source(self.name)


def secret_source(channel: str) -> str:
    """``notify_<channel>``: the "source" part of a channel's secret names."""
    return f"notify_{channel}"


@dataclass(frozen=True)
class Message:
    """One message to send: already rendered, with the structured payload beside it.

    ``message_id`` is stable across resends of the same message (a UUID, hex). ``addresses``
    are the recipients' addresses for channels that have them (e-mail); ``recipient`` says who
    the message is for in words (``"clinician T03"``, ``"route supervisors"``). ``payload`` is
    the documented JSON object (see docs/notify.md); ``text`` and ``html`` the two renderings.
    """

    message_id: str
    route: str
    kind: str  # "immediate", "digest" or "test"
    recipient: str
    addresses: tuple[str, ...]
    subject: str
    text: str
    html: str
    payload: Mapping[str, Any]
    created_at: dt.datetime


class Notifier:
    """Base class for notification channels; register subclasses with
    ``fit_register_notifiers``.

    ``addresses``: ``"required"`` when a route on this channel must name recipients' addresses
    (e-mail), ``"none"`` when the channel has one fixed destination (a webhook URL; a route may
    still split its messages per clinician).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options_schema: ClassVar[type[Schema] | None] = None
    #: the secret keys this channel may look up (``fit keys list`` shows them)
    secret_keys: ClassVar[tuple[str, ...]] = ()
    #: those of ``secret_keys`` a channel can do without (listed as optional)
    optional_secret_keys: ClassVar[tuple[str, ...]] = ()
    addresses: ClassVar[str] = "none"

    def __init__(self, context: ChannelContext) -> None:
        self.context = context
        self.options = context.options

    @classmethod
    def check_address(cls, address: str) -> str | None:
        """Why ``address`` is not usable on this channel, or None when it is."""
        return None

    def check(self) -> None:
        """Connect and authenticate without sending anything (``fit check``); raise a FitError
        (:class:`DeliveryError` for an unreachable server) when the channel cannot work."""

    def send(self, message: Message) -> None:
        """Deliver ``message``; raise :class:`DeliveryError` when it was not accepted."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where messages go, for status lines (no secrets: no passwords, no secret URLs)."""
        return self.context.name

    def close(self) -> None:
        """Release connections."""
