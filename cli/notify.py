"""`fit notify status|send|preview|test|skip`: alerts by e-mail and webhook.

Routes, channels and clinicians' addresses live in the config's ``[notify]`` section (see the
README, "Alerts by e-mail and webhook"); `fit sync` delivers what is due after every run.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from fit_core.config import Config
from fit_core.errors import ConfigError, ExitCode
from fit_core.plugins import Registry
from fit_core.store import Store

from .app import App, echo_json, handle_errors

__all__ = ["NOTIFY_COMMANDS", "check_notify_lines", "notify"]


def _config(ctx: click.Context) -> Config:
    config = App.of(ctx).config
    if not config.notify.routes:
        raise ConfigError(
            "no notification routes are configured",
            hint="add [notify.channels.NAME] and [notify.routes.NAME] tables (README: "
            '"Alerts by e-mail and webhook")',
        )
    return config


def _dispatcher(config: Config, registry: Registry, store: Store | None) -> Any:
    from fit_core.notify.deliver import Dispatcher

    return Dispatcher(config, registry, store)


@click.group("notify")
def notify() -> None:
    """Alerts by e-mail and webhook: what was sent, what is next, tests.

    `fit sync` sends what is due after each run: `immediate` routes at once, digests at their
    clinic-local times. Each open alert goes out at most once per route; a failed message is
    kept and retried at the next run, and shows here and in `fit check`.
    """


@notify.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@handle_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """Each route: channel, timing, last message, what waits, what failed.

    Exits 1 when a message is failing or an open alert has no address (for monitoring).
    """
    from fit_core.notify.ledger import Ledger

    config = _config(ctx)
    registry = App.of(ctx).registry
    store = Store.open(config.store_path)
    try:
        d = _dispatcher(config, registry, store)
        previews = d.preview()
        ledger = Ledger(store)
        rows = []
        for p in previews:
            r = p.route
            problems = ledger.problems(r.name)
            rows.append(
                {
                    "route": r.name,
                    "channel": r.channel,
                    "type": config.notify.channels[r.channel].type,
                    "to": _to_words(config, r),
                    "timing": r.timing(),
                    "enabled": r.enabled,
                    "when": p.when,
                    "last_sent": ledger.last_sent(r.name),
                    "waiting_new": sum(
                        1 for m in p.plan.messages for i in m.items if i.event == "new"
                    ),
                    "waiting_ended": sum(
                        1 for m in p.plan.messages for i in m.items if i.event == "ended"
                    ),
                    "unrouted": {c: len(ids) for c, ids in p.plan.unrouted.items()},
                    "problems": [
                        {
                            "message_id": m.message_id,
                            "recipient": m.recipient,
                            "state": m.state,
                            "attempts": m.attempts,
                            "created_at": m.created_at,
                            "last_attempt_at": m.last_attempt_at,
                            "error": m.error,
                        }
                        for m in problems
                    ],
                }
            )
    finally:
        store.close()
    bad = any(r["problems"] or r["unrouted"] for r in rows)
    if as_json:
        echo_json(rows)
        sys.exit(int(ExitCode.PARTIAL if bad else ExitCode.OK))
    for r in rows:
        off = "" if r["enabled"] else " [disabled]"
        click.echo(f"route {r['route']}{off}: {r['type']} channel {r['channel']} → {r['to']}")
        click.echo(f"  timing: {r['timing']}; {r['when']}")
        click.echo(f"  last message: {r['last_sent'] or 'none yet'}")
        click.echo(
            f"  waiting: {r['waiting_new']} new alert(s), {r['waiting_ended']} ending(s) "
            "not told yet"
        )
        for cid, n in sorted(r["unrouted"].items()):
            who = f"clinician {cid}" if cid else "alerts without a clinician"
            click.echo(
                f"  NOT ADDRESSED: {n} open alert(s) of {who}: add an address to "
                "[notify.clinicians] or a fallback to the route"
            )
        for m in r["problems"]:
            what = "FAILED" if m["state"] == "failed" else "UNCONFIRMED"
            click.echo(
                f"  {what}: message to {_who(m['recipient'])} of {m['created_at']} "
                f"({m['attempts']} attempt(s), last {m['last_attempt_at'] or 'never'}): "
                f"{m['error'] or 'the run sending it was stopped'}; retried at the next run"
            )
    sys.exit(int(ExitCode.PARTIAL if bad else ExitCode.OK))


def _who(key: str) -> str:
    from fit_core.notify.digest import recipient_words

    return recipient_words(key)


def _to_words(config: Config, route: Any) -> str:
    if route.per_clinician:
        n = len(config.notify.clinicians)
        extra = f", else {', '.join(route.fallback)}" if route.fallback else ""
        return f"each alert's clinician ({n} with addresses{extra})"
    if route.to:
        return ", ".join(route.to)
    return "the channel"


@notify.command("send")
@click.option("--route", "routes", multiple=True, help="Only this route (repeatable).")
@click.option("--now", "now", is_flag=True, help="Send digests now, whatever the time.")
@click.option("--json", "as_json", is_flag=True, help="Print what happened as JSON.")
@click.pass_context
@handle_errors
def send(ctx: click.Context, routes: tuple[str, ...], now: bool, as_json: bool) -> None:
    """Send what is due now without a sync (`fit sync` does this after every run).

    Exits 1 when a message could not be delivered (it is kept and retried).
    """
    from fit_core.aftersync import delivery_notes

    config = _config(ctx)
    registry = App.of(ctx).registry
    store = Store.open(config.store_path)
    try:
        report = _dispatcher(config, registry, store).deliver(routes=routes or None, now=now)
    finally:
        store.close()
    if as_json:
        echo_json(report.as_dict())
    else:
        if report.skipped:
            click.echo(f"nothing sent: {report.skipped}")
        for r in report.routes:
            line = f"route {r.route}: sent {r.sent} message(s) ({r.alerts} new, {r.ended} ended)"
            if r.resent:
                line += f", {r.resent} from an earlier run sent again"
            if r.failed:
                line += f", {r.failed} FAILED"
            if r.held and not r.sent:
                line += f"; {r.held}"
            click.echo(line)
    for note in delivery_notes(report):
        click.echo(f"warning: {note}", err=True)
    bad = report.failed or any(r.unrouted for r in report.routes)
    sys.exit(int(ExitCode.PARTIAL if bad else ExitCode.OK))


@notify.command("preview")
@click.option("--route", "routes", multiple=True, help="Only this route (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the messages' JSON payloads.")
@click.pass_context
@handle_errors
def preview(ctx: click.Context, routes: tuple[str, ...], as_json: bool) -> None:
    """Print what the next message of each route would say, without sending or recording.

    For a digest that is not due yet: what it would hold if it went now.
    """
    from fit_core.notify.render import message_of, payload

    config = _config(ctx)
    registry = App.of(ctx).registry
    store = Store.open(config.store_path)
    try:
        previews = _dispatcher(config, registry, store).preview(routes=routes or None)
    finally:
        store.close()
    if as_json:
        echo_json(
            [
                {
                    "route": p.route.name,
                    "when": p.when,
                    "messages": [payload(m.content, m.message_id) for m in p.plan.messages],
                }
                for p in previews
            ]
        )
        return
    for p in previews:
        n = len(p.plan.messages)
        click.echo(f"=== route {p.route.name} ({p.when}): {n} message(s) ===")
        if not n:
            click.echo("nothing new to tell")
        for m in p.plan.messages:
            msg = message_of(m.content, m.message_id)
            to = f" <{', '.join(msg.addresses)}>" if msg.addresses else ""
            click.echo(f"--- to {msg.recipient}{to}")
            click.echo(f"Subject: {msg.subject}")
            click.echo("")
            click.echo(msg.text)


@notify.command("test")
@click.argument("route")
@click.option("--to", "to", multiple=True, help="Send to this address instead (repeatable).")
@click.pass_context
@handle_errors
def test(ctx: click.Context, route: str, to: tuple[str, ...]) -> None:
    """Send a test message on ROUTE (no patient information) to its recipients.

    For a route to each clinician, every clinician in [notify.clinicians] gets one; --to sends
    to the given address only. Exits 1 when the channel fails, saying why. Needs no store.
    """
    from fit_core.notify.channel import DeliveryError

    config = _config(ctx)
    registry = App.of(ctx).registry
    try:  # no store: a test needs none, so it can run as any user who can read the config
        sent = _dispatcher(config, registry, None).test(route, list(to))
    except DeliveryError as exc:
        raise DeliveryError(
            f"test message on route {route} failed: {exc.message}", hint=exc.hint
        ) from None
    for who in sent:
        click.echo(f"sent a test message to {who}")


@notify.command("skip")
@click.argument("route")
@click.option("--yes", is_flag=True, help="Do not ask.")
@click.pass_context
@handle_errors
def skip(ctx: click.Context, route: str, yes: bool) -> None:
    """Record every open alert as already told on ROUTE, without sending anything.

    For starting a new route on a store that has open alerts already: only alerts raised
    from now on are sent. `fit notify preview --route ROUTE` shows what would be skipped.
    """
    config = _config(ctx)
    config.notify.route(route)
    if not yes:
        click.confirm(f"record every open alert as told on route {route}?", abort=True)
    registry = App.of(ctx).registry
    store = Store.open(config.store_path)
    try:
        n = _dispatcher(config, registry, store).skip(route)
    finally:
        store.close()
    click.echo(f"route {route}: {n} open alert(s) recorded as told (not sent)")


def check_notify_lines(
    config: Config, registry: Registry, store: Store
) -> tuple[list[str], ExitCode]:
    """`fit check`'s notification lines and worst exit code: each channel connects (and logs
    in) without sending; failing or unconfirmed messages are listed."""
    from fit_core.errors import FitError
    from fit_core.notify.config import check_notify
    from fit_core.notify.deliver import Dispatcher, _Channels
    from fit_core.notify.ledger import Ledger

    lines: list[str] = []
    worst = ExitCode.OK
    if not config.notify.routes:
        return lines, worst
    try:
        options = check_notify(config.notify, registry)
    except FitError as exc:
        return [f"notify: FAILED: {exc.message}"], exc.exit_code
    channels = _Channels(Dispatcher(config, registry, store), options)
    try:
        for name, ch in config.notify.channels.items():
            try:
                notifier = channels.get(name)
                notifier.check()
                lines.append(f"notify channel {name} ({ch.type}, {notifier.describe()}): ok")
            except FitError as exc:
                lines.append(f"notify channel {name} ({ch.type}): FAILED: {exc.message}")
                if exc.hint:
                    lines.append(f"  hint: {exc.hint}")
                worst = max(worst, exc.exit_code)
    finally:
        channels.close()
    for m in Ledger(store).problems():
        if m.route not in config.notify.routes:
            continue
        what = "failing" if m.state == "failed" else "unconfirmed"
        lines.append(
            f"notify route {m.route}: a message to {_who(m.recipient)} is {what} since "
            f"{m.created_at} ({m.attempts} attempt(s)): {m.error or 'its run was stopped'}; "
            "retried at the next sync (`fit notify status`)"
        )
        worst = max(worst, ExitCode.PARTIAL)
    return lines, worst


NOTIFY_COMMANDS = (notify,)
