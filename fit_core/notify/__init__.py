"""Alerts that reach people: notification channels, routes, digests and the delivery ledger.

An alert lives in the store (:mod:`fit_core.alert_store`); this package tells the people who
should act on it, by e-mail or a webhook, at the moment the clinic chose. The parts:

- :mod:`.channel` — the :class:`~.channel.Notifier` plugin interface (``fit_register_notifiers``)
  and the :class:`~.channel.Message` a channel sends; :mod:`.email` (SMTP) and :mod:`.webhook`
  (JSON over HTTPS, with Slack- and Teams-compatible formats) are the built-in channels;
- :mod:`.config` — the ``[notify]`` section: channels, routes, clinicians' addresses;
- :mod:`.schedule` — when a route is due (``immediate``, or a digest at clinic-local times,
  quiet days); pure functions of an injected "now";
- :mod:`.digest` — what a message says: new alerts since the last message of the route and
  the alerts it told about that have ended since, with only the minimum necessary (pure);
- :mod:`.render` — a message as plain text, HTML and the documented JSON payload (pure);
- :mod:`.ledger` — what was sent on which route, kept in the store: record the intent, send,
  confirm; a run killed in between resends the same message (same Message-ID / idempotency
  key) and never loses one;
- :mod:`.deliver` — the run: recover unconfirmed messages, plan what is due, send, record.

A failing channel never fails a sync: the failure is kept in the ledger, retried at the next
run, and shown by ``fit notify status`` and ``fit check``. Importing this package imports no
network library.
"""

from __future__ import annotations

__all__: list[str] = []
