"""The hooks a fit-sync plugin can implement (marker ``"fit"``).

A plugin is a module or object with functions decorated by :data:`hookimpl`, published through
the ``fit`` entry-point group::

    [project.entry-points.fit]
    my_adapter = "my_package.plugin"

Collection hooks receive a ``register`` callback (as in llm and tox): call it once per thing you
provide. Notification hooks are called one implementation at a time inside ``try/except``: a
failing plugin is named in the log and never stops a sync.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from .adapter import Adapter
    from .measures import Measure
    from .models import Administration, Flag, Scored
    from .notify.channel import Notifier
    from .scoring import Rule

hookspec = pluggy.HookspecMarker("fit")
hookimpl = pluggy.HookimplMarker("fit")


@hookspec
def fit_register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    """Register adapter classes: ``register(MyAdapter)``.

    An adapter is a subclass of :class:`fit_core.adapter.Adapter` with a unique ``name``; a source
    in the config selects it with ``adapter = "<name>"``. Two plugins registering the same name is
    an error that names both packages. To keep the adapter's module (and its dependencies)
    unimported until a source uses it, register it by name and place instead:
    ``register(LazyAdapter("my_api", "my_package.adapter:MyAdapter"))`` (see
    :class:`fit_core.plugins.LazyAdapter`).
    """


@hookspec
def fit_register_rules(register: Callable[[Rule], None]) -> None:
    """Register alert rules: ``register(rule)``.

    A rule has ``id`` (``"<family>.<name>"``, unique), ``version``, ``family`` (``"ORS"`` or
    ``"SRS"``), ``severity``, ``description``, ``opt_in`` and a pure
    ``evaluate(history) -> Flag | None`` (see :class:`fit_core.scoring.History`).
    """


@hookspec
def fit_register_measures(register: Callable[[Measure], None]) -> None:
    """Register questionnaires: ``register(Measure(...))`` (see :mod:`fit_core.measures`).

    Ship neutral item keys and short labels only, never copyrighted item wording.
    """


@hookspec
def fit_register_notifiers(register: Callable[[type[Notifier]], None]) -> None:
    """Register notification channels: ``register(MyNotifier)``.

    A notifier is a subclass of :class:`fit_core.notify.channel.Notifier` with a unique ``name``;
    a channel in the config selects it with ``[notify.channels.<channel>] type = "<name>"``.
    Its ``options_schema`` validates the channel's other keys, ``secret_keys`` names the secrets
    it may look up (``fit keys set notify_<channel> <key>``), and ``send(message)`` delivers
    one :class:`fit_core.notify.channel.Message` or raises
    :class:`fit_core.notify.channel.DeliveryError`. The built-in ones are ``email`` (SMTP) and
    ``webhook`` (JSON over HTTPS). Two plugins registering the same name is an error that names
    both packages. To keep the notifier's module (and its dependencies) unimported until a
    channel uses it, register it by name and place instead:
    ``register(LazyNotifier("pager", "my_package.pager:PagerNotifier"))`` (see
    :class:`fit_core.plugins.LazyNotifier`).
    """


@hookspec
def fit_register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``fit`` command: ``cli.add_command(my_command)``."""


@hookspec
def fit_register_privacy_places(register: Callable[[Any], None]) -> None:
    """Register places that hold client data, so ``fit client erase`` and ``fit client export``
    reach them: ``register(factory)``, where ``factory(job)`` returns the places for one
    client (objects with ``name``, ``order``, ``survey(job)``, ``erase(job)``; see
    :mod:`fit_core.erasure`). E.g. a notification ledger or caseload pages a plugin writes.
    """


@hookspec(firstresult=True)
def fit_resolve_secret(source: str, key: str) -> str | None:
    """Return the secret ``key`` of ``source`` (e.g. from a vault), or None to pass.

    Called after the environment (``FIT_<SOURCE>_<KEY>``) and systemd credentials, before the
    keyring. The first non-None answer wins. Never log the value.
    """


@hookspec
def fit_sync_started(run_id: int, sources: Sequence[str], dry_run: bool) -> None:
    """A sync run started (notification): ``run_id`` identifies it in ``runs``; ``sources``
    are the source names it will sync, in order."""


@hookspec
def fit_scored(source: str, scored: Sequence[Scored]) -> None:
    """A batch of administrations was (re)scored during a sync (notification).

    Called once per batch of clients, not per record. ``scored`` holds PHI: do not log it.
    """


@hookspec
def fit_alert_raised(flag: Flag, administration: Administration) -> None:
    """A new alert opened during a sync (notification); route or digest it here.

    Called once per alert, when its condition starts to hold: not again while the same alert
    is carried forward to later sessions (see :mod:`fit_core.alerts`). Transitions after that
    (acknowledged, superseded, closed) are in the store: ``Store.alert_events(since=...)``."""


@hookspec
def fit_sync_finished(run_id: int, summary: dict[str, Any]) -> None:
    """A sync run finished (notification). ``summary`` holds counts and outcomes, no PHI."""
