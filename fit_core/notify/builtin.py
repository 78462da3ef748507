"""The built-in notification channels, registered like a third-party plugin's, and the places
where notifications and caseload pages hold client data (for ``fit client erase``)."""

from __future__ import annotations

from typing import Any

from ..hookspecs import hookimpl


@hookimpl
def fit_register_notifiers(register: Any) -> None:
    from .email import EmailNotifier
    from .webhook import WebhookNotifier

    register(EmailNotifier)
    register(WebhookNotifier)


@hookimpl
def fit_register_privacy_places(register: Any) -> None:
    from .privacy import places

    register(places)
