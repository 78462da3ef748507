"""A delivery run: recover unconfirmed messages, plan what is due on each route, send, record.

:class:`Dispatcher` is what ``fit sync`` runs after a sync (and ``fit notify send`` on its own);
``preview`` plans without sending or recording, ``test`` sends a test message. One delivery
runs at a time per store (a lock beside it, ``<store>.notify.lock``): a second one finds it
held and leaves the work to the first, or to the next run.

Nothing here raises for a channel that fails: the failure is recorded in the ledger, counted
in the :class:`DeliveryReport`, and retried at the next run. Bad configuration (an unknown
channel type, invalid options) raises :class:`~fit_core.errors.ConfigError` before anything is
sent.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..config import Config
from ..errors import ConfigError, FitError, LockedError
from ..lock import SyncLock
from ..redact import redact
from .channel import ChannelContext, DeliveryError, Notifier, secret_source
from .config import RouteConfig, check_notify
from .digest import ClientScores, RoutePlan, plan_route, recipient_words, selects
from .ledger import Ledger
from .render import message_of, test_content
from .schedule import is_quiet, last_slot, next_slot, slot_due

log = logging.getLogger(__name__)

__all__ = ["DeliveryReport", "Dispatcher", "Preview", "RouteOutcome"]


@dataclass
class RouteOutcome:
    """What one route did in a run (counts and error texts: no patient data)."""

    route: str
    sent: int = 0  # messages confirmed
    alerts: int = 0  # new alerts told in them
    ended: int = 0  # endings told in them
    failed: int = 0  # messages not confirmed (kept and retried)
    resent: int = 0  # unconfirmed messages of an earlier run sent again
    errors: list[str] = field(default_factory=list)
    #: open alerts the route could not address: clinician id ("" none) → count
    unrouted: dict[str, int] = field(default_factory=dict)
    held: str | None = None  # why nothing was due ("quiet day", "next digest at ...")

    def as_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "sent": self.sent,
            "alerts": self.alerts,
            "ended": self.ended,
            "failed": self.failed,
            "resent": self.resent,
            "errors": list(self.errors),
            "unrouted": dict(self.unrouted),
            "held": self.held,
        }


@dataclass
class DeliveryReport:
    routes: list[RouteOutcome] = field(default_factory=list)
    skipped: str | None = None  # the whole run did not happen (another one holds the lock)

    @property
    def failed(self) -> int:
        return sum(r.failed for r in self.routes)

    def as_dict(self) -> dict[str, Any]:
        return {"skipped": self.skipped, "routes": [r.as_dict() for r in self.routes]}


@dataclass
class Preview:
    """What a route would send: its plan, and whether and when it is due."""

    route: RouteConfig
    plan: RoutePlan
    due_now: bool
    when: str


class _Channels:
    """The notifiers of one run, created on first use and closed at the end."""

    def __init__(self, dispatcher: Dispatcher, options: Mapping[str, Mapping[str, Any]]) -> None:
        self.d = dispatcher
        self.options = options
        self.made: dict[str, Notifier] = {}
        self.down: dict[str, str] = {}

    def get(self, name: str) -> Notifier:
        if name not in self.made:
            ch = self.d.config.notify.channels[name]
            cls = self.d.registry.notifier(ch.type)
            src = secret_source(name)
            self.made[name] = cls(
                ChannelContext(
                    name=name,
                    options=self.options[name],
                    secret=lambda key: self.d.secret(src, key),
                    optional_secret=lambda key: self.d.optional_secret(src, key),
                )
            )
        return self.made[name]

    def close(self) -> None:
        for name, notifier in self.made.items():
            try:
                notifier.close()
            except Exception:
                log.exception("notification channel %s: close() failed", name)


class Dispatcher:
    """Delivers the alerts of one store along the routes of one config."""

    def __init__(
        self,
        config: Config,
        registry: Any,
        store: Any,
        *,
        secrets: Any = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        from ..secrets import SecretStore

        self.config = config
        self.registry = registry
        self.store = store
        self._secrets = secrets or SecretStore(resolver=registry.resolve_secret)
        self._clock = clock
        self.tz = config.sync.tzinfo()
        self._key: bytes | None = None

    # --- services ---------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        if self._clock is not None:
            return self._clock()
        from .. import sync

        return sync.utc_now()  # looked up at call time: a test can set "now" for a command

    def secret(self, source: str, key: str) -> str:
        return str(self._secrets.get(source, key))

    def optional_secret(self, source: str, key: str) -> str | None:
        value, _where = self._secrets.find(source, key)
        return value

    def _label(self, route: RouteConfig) -> Callable[[str, str], str]:
        if route.client_label == "id":
            return lambda _ns, cid: cid
        return self._pseudonym

    def _pseudonym(self, namespace: str, client_id: str) -> str:
        from ..reports.pseudonym import load_or_create_key, pseudonym

        if self._key is None:
            self._key = load_or_create_key(self.store.path)
        return pseudonym(self._key, namespace, client_id)

    def _base(self) -> str | None:
        n = self.config.notify
        if n.report_base:
            return n.report_base
        d = self.config.reports.caseload_dir
        return str(d) if d is not None else None

    def _client_link(self, namespace: str, client_id: str) -> str | None:
        from ..reports.caseload_files import client_file, join

        base = self._base()
        return join(base, client_file(self._pseudonym(namespace, client_id))) if base else None

    def _caseload_link(self, clinician: str | None) -> str | None:
        from ..reports.caseload_files import INDEX, clinician_file, join

        base = self._base()
        if not base:
            return None
        return join(base, clinician_file(clinician) if clinician else INDEX)

    def _titles(self) -> tuple[dict[str, str], dict[str, str]]:
        from ..reports.client_view import RULE_TITLES

        descriptions = {rid: r.description for rid, r in self.registry.rules.items()}
        return {**descriptions, **RULE_TITLES}, descriptions

    def _scores(self, routes: Sequence[RouteConfig], alerts: Sequence[Mapping[str, Any]]):
        """Latest scores of the clients of routes with ``detail = "scores"``."""
        wanted = {
            (a["namespace"], a["client_id"])
            for a in alerts
            if any(r.detail == "scores" and selects(r, a) for r in routes)
        }
        return client_scores(self.store, self.registry.measures, self.config, wanted, self.now())

    # --- the run ----------------------------------------------------------------------------

    def routes(self, names: Iterable[str] | None = None) -> list[RouteConfig]:
        n = self.config.notify
        if names:
            return [n.route(name) for name in names]
        return list(n.routes.values())

    def deliver(self, *, routes: Iterable[str] | None = None, now: bool = False) -> DeliveryReport:
        """Send what is due (``now``: digests too, whatever the time). Never raises for a
        failing channel; raises ConfigError for a config that cannot work."""
        report = DeliveryReport()
        chosen = self.routes(routes)
        if not chosen:
            return report
        options = check_notify(self.config.notify, self.registry)
        lock = SyncLock(f"{self.store.path}.notify")
        try:
            lock.acquire()
        except LockedError:
            report.skipped = "another delivery holds the lock; it sends what is due"
            log.info("notifications: %s", report.skipped)
            return report
        channels = _Channels(self, options)
        try:
            self._deliver(report, chosen, channels, force=now)
        finally:
            channels.close()
            lock.release()
        return report

    def _deliver(
        self,
        report: DeliveryReport,
        chosen: list[RouteConfig],
        channels: _Channels,
        *,
        force: bool,
    ) -> None:
        ledger = Ledger(self.store)
        at = self.now()
        outcomes = {r.name: RouteOutcome(r.name) for r in chosen}
        report.routes.extend(outcomes.values())
        configured = self.config.notify.routes
        # 1. what a killed run (or an unknown outcome) left: the same messages again
        for msg in ledger.unconfirmed():
            route = configured.get(msg.route)
            if route is None or not route.enabled or msg.content is None:
                ledger.drop(msg.row_id, at, f"route {msg.route} is no longer configured")
                continue
            outcome = outcomes.get(msg.route)
            if outcome is None:
                continue  # another route: left for a run that delivers it
            outcome.resent += 1
            self._send(ledger, channels, route, msg.row_id, msg.message_id, msg.content, outcome)
        # 2. what is due now
        open_alerts = self.store.list_flags("open")
        titles, descriptions = self._titles()
        scores = self._scores(chosen, open_alerts)
        for route in chosen:
            if not route.enabled:
                outcomes[route.name].held = "disabled"
                continue
            self._route(ledger, channels, route, outcomes[route.name], open_alerts, titles,
                        descriptions, scores, force=force)  # fmt: skip
        ledger.mark_run([r.name for r in chosen], self.now())

    def _timing(
        self, ledger: Ledger | None, route: RouteConfig, at: dt.datetime, *, force: bool
    ) -> tuple[str | None, Callable[[str], bool], set[str], str | None]:
        """(digest slot to record, due(recipient), owed recipients, why held)."""
        local = at.astimezone(self.tz)
        owed = ledger.owed(route.name) if ledger is not None else set()
        if ledger is not None:
            started_text, last_text, _ = ledger.route_state(route.name)
        else:
            started_text, last_text = None, None
        quiet = is_quiet(route, local.date()) and not force
        if route.when == "immediate":
            held = "a quiet day" if quiet else None
            return None, (lambda _k: not quiet), owed, held
        slot: dt.datetime | None = None
        if force:
            slot = last_slot(route, at, self.tz) or at
        else:
            started = dt.datetime.fromisoformat(started_text) if started_text else at
            last = dt.datetime.fromisoformat(last_text) if last_text else None
            slot = slot_due(route, at, self.tz, last_handled=last, started=started)
        held = None
        if slot is None:
            nxt = next_slot(route, at, self.tz)
            held = (
                f"next digest at {nxt.astimezone(self.tz):%Y-%m-%d %H:%M}"
                if nxt
                else "no digest time in the next two weeks"
            )
        slot_text = slot.astimezone(dt.UTC).isoformat(timespec="seconds") if slot else None

        def due(key: str) -> bool:
            if quiet:
                return False
            return slot is not None or key in owed

        return slot_text, due, owed, held

    def _plan(
        self,
        ledger: Ledger | None,
        route: RouteConfig,
        open_alerts: Sequence[Mapping[str, Any]],
        titles: Mapping[str, str],
        descriptions: Mapping[str, str],
        scores: Mapping[tuple[str, str], ClientScores],
        due: Callable[[str], bool],
        owed: set[str],
        slot: str | None,
        at: dt.datetime,
    ) -> RoutePlan:
        told: set[int] = set()
        ended: list[tuple[Mapping[str, Any], str]] = []
        since: dict[str, str] = {}
        if ledger is not None:
            told = ledger.told_new(route.name)
            for alert_id, recipient in ledger.ended_untold(route.name):
                alert = self.store.alert(alert_id)
                if alert is not None:
                    ended.append((alert, recipient))
            since = _last_sent(ledger, route.name)
        cls = self.registry.notifier(self.config.notify.channels[route.channel].type)
        return plan_route(
            route,
            self.config.notify,
            open_alerts=open_alerts,
            told=told,
            ended=ended,
            due=due,
            needs_addresses=cls.addresses == "required",
            label=self._label(route),
            client_link=self._client_link,
            caseload_link=self._caseload_link,
            titles=titles,
            descriptions=descriptions,
            scores=scores,
            since=since,
            owed=owed,
            now=at,
            local_now=at.astimezone(self.tz),
            kind=route.when,
            slot=slot,
        )

    def _route(
        self,
        ledger: Ledger,
        channels: _Channels,
        route: RouteConfig,
        outcome: RouteOutcome,
        open_alerts: Sequence[Mapping[str, Any]],
        titles: Mapping[str, str],
        descriptions: Mapping[str, str],
        scores: Mapping[tuple[str, str], ClientScores],
        *,
        force: bool,
    ) -> None:
        at = self.now()
        ledger.start_route(route.name, at)
        slot, due, owed, held = self._timing(ledger, route, at, force=force)
        outcome.held = held
        plan = self._plan(
            ledger, route, open_alerts, titles, descriptions, scores, due, owed, slot, at
        )
        outcome.unrouted = {cid: len(ids) for cid, ids in plan.unrouted.items()}
        if plan.unrouted:
            from ..aftersync import unrouted_words

            log.warning(
                "route %s: %d open alert(s) not sent: no address for %s in [notify.clinicians] "
                "and no fallback",
                route.name,
                sum(outcome.unrouted.values()),
                unrouted_words(outcome.unrouted),
            )
        settled = [(route.name, k) for k in plan.settled]
        settled += [(route.name, m.recipient) for m in plan.messages if m.recipient in owed]
        slots = [(route.name, slot)] if slot and route.when == "digest" else []
        if not plan.messages and not settled and not slots:
            return
        ids = ledger.record_intent(plan.messages, at, slots=slots, settled=settled)
        for planned, row_id in zip(plan.messages, ids, strict=True):
            self._send(
                ledger, channels, route, row_id, planned.message_id, planned.content, outcome
            )

    def _send(
        self,
        ledger: Ledger,
        channels: _Channels,
        route: RouteConfig,
        row_id: int,
        message_id: str,
        content: Mapping[str, Any],
        outcome: RouteOutcome,
    ) -> None:
        at = self.now()
        ledger.attempt(row_id, at)
        who = recipient_words(content.get("recipient", {}).get("key", ""), route.name)
        down = channels.down.get(route.channel)
        try:
            if down is not None:
                raise DeliveryError(f"not tried: {down}")
            notifier = channels.get(route.channel)
            notifier.send(message_of(content, message_id))
        except DeliveryError as exc:
            text = redact(exc.message)
            if exc.channel_down:
                channels.down[route.channel] = text
            self._failed(ledger, row_id, outcome, route, who, text, exc.maybe_delivered)
        except FitError as exc:  # a missing secret, a bad URL: the channel cannot work now
            text = redact(exc.message)
            channels.down[route.channel] = text
            self._failed(ledger, row_id, outcome, route, who, text, False)
        except Exception as exc:  # a bug in a channel plugin: named, never fatal
            log.exception("channel %s failed while sending", route.channel)
            text = f"internal error in channel {route.channel} ({type(exc).__name__})"
            self._failed(ledger, row_id, outcome, route, who, text, False)
        else:
            ledger.confirm(row_id, self.now())
            outcome.sent += 1
            outcome.alerts += len(content.get("new", ()))
            outcome.ended += len(content.get("ended", ()))
            log.info(
                "route %s: sent %d new and %d ended alert(s) to %s",
                route.name,
                len(content.get("new", ())),
                len(content.get("ended", ())),
                who,
            )

    def _failed(
        self,
        ledger: Ledger,
        row_id: int,
        outcome: RouteOutcome,
        route: RouteConfig,
        who: str,
        text: str,
        maybe: bool,
    ) -> None:
        ledger.fail(row_id, self.now(), text, maybe_delivered=maybe)
        outcome.failed += 1
        line = f"message to {who} not delivered: {text}" + (
            " (it may have arrived; it is sent again as the same message)" if maybe else ""
        )
        if line not in outcome.errors:
            outcome.errors.append(line)
        log.warning("route %s: %s; retried at the next run", route.name, line)

    # --- preview and test -------------------------------------------------------------------

    def preview(self, *, routes: Iterable[str] | None = None) -> list[Preview]:
        """What each route's next message(s) would say, without sending or recording."""
        chosen = self.routes(routes)
        if not chosen:
            return []
        check_notify(self.config.notify, self.registry)
        ledger = Ledger(self.store)
        at = self.now()
        open_alerts = self.store.list_flags("open")
        titles, descriptions = self._titles()
        scores = self._scores(chosen, open_alerts)
        out = []
        for route in chosen:
            slot, _due, owed, held = self._timing(ledger, route, at, force=False)
            due_now = held is None
            plan = self._plan(
                ledger, route, open_alerts, titles, descriptions, scores,
                lambda _k: True, owed, slot, at,
            )  # fmt: skip
            when = "due now" if due_now else f"held: {held}"
            if not route.enabled:
                when = "disabled"
            out.append(Preview(route, plan, due_now and route.enabled, when))
        return out

    def skip(self, route_name: str) -> int:
        """Record every open alert the route would tell now as told, without sending (to start
        a route without its backlog). Returns how many alerts were recorded."""
        route = self.config.notify.route(route_name)
        check_notify(self.config.notify, self.registry)
        ledger = Ledger(self.store)
        at = self.now()
        ledger.start_route(route.name, at)
        titles, descriptions = self._titles()
        plan = self._plan(
            ledger, route, self.store.list_flags("open"), titles, descriptions, {},
            lambda _k: True, set(), None, at,
        )  # fmt: skip
        new_only = [
            replace(p, items=tuple(i for i in p.items if i.event == "new")) for p in plan.messages
        ]
        ledger.record_intent(new_only, at, state="skipped")
        return sum(len(p.items) for p in new_only)

    def test(self, route_name: str, to: Sequence[str] = ()) -> list[str]:
        """Send a test message on a route (to ``to`` instead of its recipients); returns who
        got one. Raises DeliveryError / ConfigError when the channel fails."""
        route = self.config.notify.route(route_name)
        options = check_notify(self.config.notify, self.registry)
        cls = self.registry.notifier(self.config.notify.channels[route.channel].type)
        groups = _test_recipients(self.config, route, cls.addresses == "required", to)
        if not groups:
            raise ConfigError(
                f"route {route_name} has nobody to send a test to",
                hint="give --to ADDRESS, or add addresses to [notify.clinicians]",
            )
        channels = _Channels(self, options)
        at = self.now()
        sent: list[str] = []
        try:
            notifier = channels.get(route.channel)
            from .ledger import new_message_id

            for words, addresses in groups:
                content = test_content(
                    route.name, route.timing(), addresses, at, at.astimezone(self.tz)
                )
                notifier.send(message_of(content, new_message_id()))
                sent.append(words if not addresses else f"{words} ({', '.join(addresses)})")
        finally:
            channels.close()
        return sent


def _test_recipients(
    config: Config, route: RouteConfig, needs_addresses: bool, to: Sequence[str]
) -> list[tuple[str, tuple[str, ...]]]:
    if to:
        return [("the given addresses", tuple(to))]
    if not route.per_clinician:
        return [("the route", tuple(route.to) if isinstance(route.to, tuple) else ())]
    if not needs_addresses:
        return [("the channel", ())]
    out = [
        (f"clinician {cid}", addrs)
        for cid, addrs in config.notify.clinicians.items()
        if route.clinicians is None or cid.casefold() in {c.casefold() for c in route.clinicians}
    ]
    if route.fallback:
        out.append(("the fallback addresses", route.fallback))
    return out


def _last_sent(ledger: Ledger, route: str) -> dict[str, str]:
    return {
        r[0]: r[1]
        for r in ledger.conn.execute(
            "SELECT recipient, MAX(sent_at) FROM notify_messages WHERE route = ? "
            "AND state = 'sent' AND kind <> 'test' GROUP BY recipient",
            (route,),
        )
    }


def client_scores(
    store: Any,
    measures: Mapping[str, Any],
    config: Config,
    clients: Iterable[tuple[str, str]],
    at: dt.datetime,
) -> dict[tuple[str, str], ClientScores]:
    """The latest ORS and SRS (client-rated, latest episode) of some clients."""
    from ..episodes import client_summary
    from ..scoring import Scorer
    from ..sync import load_active_model

    wanted = sorted(set(clients))
    if not wanted:
        return {}
    today = at.astimezone(config.sync.tzinfo()).date()
    scorer = Scorer(measures, config.settings.with_(as_of=today), (), load_active_model(store))
    contexts = store.client_contexts(wanted)
    out: dict[tuple[str, str], ClientScores] = {}
    for client, admins in store.client_administrations(wanted).items():
        if not admins:
            continue
        summary = client_summary(scorer.score(admins, contexts.get(client)).scored)
        ors, srs = summary.get("ors"), summary.get("srs")
        out[client] = ClientScores(
            ors_measure=ors["measure"] if ors else None,
            ors_total=ors["total"] if ors else None,
            ors_intake=ors["intake"] if ors else None,
            ors_change=ors["change_from_intake"] if ors else None,
            ors_date=dt.date.fromisoformat(ors["date"]) if ors else None,
            srs_measure=srs["measure"] if srs else None,
            srs_total=srs["total"] if srs else None,
            srs_date=dt.date.fromisoformat(srs["date"]) if srs else None,
        )
    return out
