"""The built-in notification channels, registered like a third-party plugin's, and the places
where notifications and caseload pages hold client data (for ``fit client erase``)."""

from __future__ import annotations

from typing import Any

from ..hookspecs import hookimpl
from ..plugins import LazyNotifier


@hookimpl
def fit_register_notifiers(register: Any) -> None:
    # by name and place: their modules (the e-mail one brings smtplib and ssl) are imported
    # when a channel of their type is checked or used, not by every sync
    register(LazyNotifier("email", "fit_core.notify.email:EmailNotifier"))
    register(LazyNotifier("webhook", "fit_core.notify.webhook:WebhookNotifier"))


@hookimpl
def fit_register_privacy_places(register: Any) -> None:
    from .privacy import places

    register(places)
