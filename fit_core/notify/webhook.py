"""The built-in ``webhook`` channel: one JSON POST per message.

.. code-block:: toml

    [notify.channels.team_chat]
    type = "webhook"
    format = "slack"       # "json" (default, the documented payload), "slack" or "teams"
    # url = "https://hooks.example/..."  or, for URLs that are secrets (Slack, Teams):
    #   fit keys set notify_team_chat url

Formats:

- ``json``: the payload documented in docs/notify.md (``type`` ``"fit.alerts"``, ``version`` 1,
  ``id``, ``route``, ``kind``, ``recipient``, ``new``, ``ended``, ``open``, ``text``, ...);
- ``slack``: ``{"text": ...}``, which Slack's incoming webhooks take, and so do Mattermost,
  Rocket.Chat and Google Chat;
- ``teams``: a ``message`` with one Adaptive Card, which Microsoft Teams' incoming webhooks
  and Workflows ("when a Teams webhook request is received") take.

Every request carries ``Idempotency-Key: <message id>`` (the same on a resend after a killed
run) and ``User-Agent: fit-sync/<version>``; with the secret ``token`` also
``Authorization: Bearer <token>``. The URL may be in the config (``url``) or, because a
chat tool's webhook URL *is* a secret, in the secret chain (``notify_<channel>.url``). Only
``https://`` URLs are accepted, except to this machine (``http://127.0.0.1``, ``localhost``).
A 2xx answer confirms the message; any other answer, or no connection, is a failure that is
retried at the next run; a timeout after the request went out leaves the outcome unknown, so
the same message (same key) is sent again.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validate

from .. import __version__
from ..errors import ConfigError
from .channel import DeliveryError, Message, Notifier

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "WebhookNotifier", "WebhookOptions", "body_for"]

FORMATS = ("json", "slack", "teams")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be used, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https:// URL"
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        return "must be https:// (plain http is only allowed to this machine)"
    return None


def _url(value: str) -> None:
    problem = url_problem(value)
    if problem:
        raise ValidationError(problem)


class WebhookOptions(Schema):
    """The options of a ``webhook`` channel (unknown keys are refused)."""

    url = fields.String(load_default=None, validate=_url)
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))
    timeout = fields.Float(load_default=15.0, validate=validate.Range(min=1, max=300))
    cafile = fields.String(load_default=None, validate=validate.Length(min=1))


def body_for(fmt: str, message: Message) -> dict[str, Any]:
    """The JSON body of ``message`` in a format."""
    if fmt == "slack":
        return {"text": message.text}
    if fmt == "teams":
        blocks: list[dict[str, Any]] = [
            {"type": "TextBlock", "text": message.subject, "weight": "Bolder", "wrap": True}
        ]
        for para in message.text.split("\n\n")[1:]:
            if para.strip():
                text = para.strip().replace("\n", "\n\n")  # a line break needs a blank line
                blocks.append({"type": "TextBlock", "text": text, "wrap": True})
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": blocks,
                    },
                }
            ],
        }
    return dict(message.payload)


class WebhookNotifier(Notifier):
    """POSTs each message as JSON to one URL."""

    name: ClassVar[str] = "webhook"
    description: ClassVar[str] = "JSON webhook (generic, Slack- or Teams-compatible)"
    options_schema: ClassVar[type[Schema]] = WebhookOptions
    secret_keys: ClassVar[tuple[str, ...]] = ("url", "token")
    optional_secret_keys: ClassVar[tuple[str, ...]] = ("url", "token")
    addresses: ClassVar[str] = "none"

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._session: Any = None
        self._target: str | None = None

    def _url(self) -> str:
        if self._target is None:
            url = self.options.get("url") or self.context.optional_secret("url")
            if not url:
                src = self.context.secret_source
                raise ConfigError(
                    f"[notify.channels.{self.context.name}] has no url",
                    hint=f"add url = ... to the channel, or keep it secret: `fit keys set {src} "
                    f"url` (or FIT_{src.upper()}_URL, or the systemd credential {src}.url)",
                )
            problem = url_problem(url)
            if problem:
                raise ConfigError(f"the url of channel {self.context.name} {problem}")
            self._target = url
        return self._target

    def describe(self) -> str:
        where = self.options.get("url")
        host = urlsplit(where).hostname if where else "secret URL"
        return f"webhook {host} ({self.options['format']})"

    def check(self) -> None:
        self._url()
        self.context.optional_secret("token")

    def send(self, message: Message) -> None:
        import requests

        url = self._url()
        if self._session is None:
            self._session = requests.Session()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.message_id,
            "User-Agent": f"fit-sync/{__version__}",
        }
        token = self.context.optional_secret("token")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = json.dumps(body_for(self.options["format"], message), ensure_ascii=False)
        host = urlsplit(url).hostname
        try:
            resp = self._session.post(
                url,
                data=body.encode("utf-8"),
                headers=headers,
                timeout=self.options["timeout"],
                allow_redirects=False,
                verify=self.options.get("cafile") or True,
            )
        except requests.exceptions.ConnectTimeout:
            raise DeliveryError(
                f"the webhook at {host} did not accept a connection", channel_down=True
            ) from None
        except requests.exceptions.SSLError:
            raise DeliveryError(
                f"the certificate of the webhook at {host} cannot be trusted",
                hint="for a server with a private CA set cafile in the channel",
                channel_down=True,
            ) from None
        except requests.exceptions.ReadTimeout:
            raise DeliveryError(
                f"the webhook at {host} did not answer in time", maybe_delivered=True
            ) from None
        except requests.exceptions.ConnectionError as exc:
            sent = not _refused(exc)
            raise DeliveryError(
                f"the webhook at {host} "
                + ("closed the connection" if sent else "cannot be reached"),
                maybe_delivered=sent,
                channel_down=not sent,
            ) from None
        except requests.exceptions.RequestException as exc:
            raise DeliveryError(f"the webhook at {host} failed: {type(exc).__name__}") from None
        if 200 <= resp.status_code < 300:
            return
        hint = None
        if resp.status_code in (401, 403):
            hint = f"check the token: `fit keys set {self.context.secret_source} token`"
        elif resp.status_code in (404, 410) or 300 <= resp.status_code < 400:
            hint = "check the webhook URL"
        raise DeliveryError(
            f"the webhook at {host} answered {resp.status_code} {resp.reason or ''}".rstrip(),
            hint=hint,
        )

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def _refused(exc: BaseException) -> bool:
    """Did the connection fail before the request went out (refused, no route, DNS)?"""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        name = type(cur).__name__
        if isinstance(cur, ConnectionRefusedError) or name in (
            "NewConnectionError",
            "NameResolutionError",
        ):
            return True
        nxt = getattr(cur, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = cur.__cause__ or cur.__context__
        if nxt is None and cur.args and isinstance(cur.args[0], BaseException):
            nxt = cur.args[0]
        cur = nxt
    return False
