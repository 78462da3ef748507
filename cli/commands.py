"""The built-in `fit` sub-commands (keys lives in keys.py)."""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fit_core.config import Config, default_config_path, load_config
from fit_core.errors import ConfigError, ExitCode, FitError
from fit_core.logsafe import escape_controls
from fit_core.measures import COPYRIGHT_LINES
from fit_core.plugins import Registry
from fit_core.settings import check_rule_ids
from fit_core.store import Store

from .app import App, echo_json, handle_errors
from .templates import CONFIG_TEMPLATE


def _config(ctx: click.Context) -> Config:
    return App.of(ctx).config


def _secret_lookup(registry: Registry) -> Callable[[str, str], str]:
    from fit_core.secrets import SecretStore

    return SecretStore(resolver=registry.resolve_secret).get


# --- init -------------------------------------------------------------------------------------


@click.command()
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@click.pass_context
@handle_errors
def init(ctx: click.Context, force: bool) -> None:
    """Write a commented config file to start from (mode 0600)."""
    path: Path = App.of(ctx).config_path or default_config_path()
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", hint="edit it, or pass --force to overwrite")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(CONFIG_TEMPLATE)
    click.echo(f"wrote {path}")
    click.echo("next: edit it, then run `fit check` and `fit sync`", err=True)


# --- check ------------------------------------------------------------------------------------


@click.command()
@click.option("--source", "sources", multiple=True, help="Only this source (repeatable).")
@click.pass_context
@handle_errors
def check(ctx: click.Context, sources: tuple[str, ...]) -> None:
    """Validate the config, the secrets and that every source answers.

    With notification routes configured, each channel is also connected to (and logged in to)
    without sending anything, and messages that failed or were never confirmed are listed.
    """
    from fit_core.adapter import SourceContext
    from fit_core.config import adapter_options
    from fit_core.state import StoreState

    config = _config(ctx)
    registry = App.of(ctx).registry
    check_rule_ids(config.settings, registry.rules)
    secret = _secret_lookup(registry)
    names = list(sources) or list(config.sources)
    worst = ExitCode.OK
    store = Store.open(config.store_path)
    ctx.call_on_close(store.close)
    click.echo(f"config: {config.path} ok")
    if config.sync.timezone is None:
        click.echo(
            f"  note: [sync] timezone is not set, so the machine's ({config.sync.tzinfo()}) is "
            "used, and cron may see another one than your shell: set it before the first sync "
            "(a change applies only to records read after it)"
        )
    orphans = {s: n for s, n in store.sources_held().items() if s not in config.sources}
    if orphans:
        from fit_core.sync import orphan_message

        worst = ExitCode.PARTIAL
        click.echo(f"store: {config.store_path} PARTIAL")
        for source, n in sorted(orphans.items()):
            click.echo(f"  {orphan_message(source, n)}")
    else:
        click.echo(f"store: {config.store_path} ok")
    for name in names:
        src = config.source(name)
        try:
            adapter_cls = registry.adapter(src.adapter)
            options = adapter_options(src, adapter_cls)
            adapter = adapter_cls(
                SourceContext(
                    name=name,
                    namespace=src.namespace,
                    options=options,
                    timezone=config.sync.tzinfo(),
                    run_started=dt.datetime.now(dt.UTC),
                    secret=functools.partial(secret, name),
                    state_dir=config.store_path.parent,
                    state=StoreState(store, name, read_only=True),
                )
            )
            try:
                adapter.check()
                problems = list(adapter.problems())
            finally:
                adapter.close()
            if problems:
                worst = max(worst, ExitCode.PARTIAL)
                click.echo(f"source {name} ({src.adapter}): PARTIAL")
                for text in problems:
                    click.echo(f"  {text}")
                continue
            click.echo(f"source {name} ({src.adapter}): ok")
        except FitError as exc:
            click.echo(f"source {name} ({src.adapter}): FAILED: {escape_controls(exc.message)}")
            if exc.hint:
                click.echo(f"  hint: {escape_controls(exc.hint)}")
            worst = max(worst, exc.exit_code)
    if not sources:
        from .notify import check_notify_lines

        lines, code = check_notify_lines(config, registry, store)
        for line in lines:
            click.echo(line)
        worst = max(worst, code)
    sys.exit(int(worst))


# --- sync -------------------------------------------------------------------------------------


@click.command()
@click.option("--source", "sources", multiple=True, help="Only this source (repeatable).")
@click.option(
    "--dry-run", is_flag=True, help="Pull and score, but push nothing and keep bookmarks."
)
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@click.pass_context
@handle_errors
def sync(ctx: click.Context, sources: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Pull new answers, score them, raise alerts and push results back.

    Then, unless --dry-run, send the notifications that are due ([notify]) and update the
    caseload pages ([reports] caseload_dir); a failure there is a warning and never changes the
    exit code. Silent on success (cron mails any output); -v prints a summary.
    """
    from fit_core.sync import SyncEngine

    config = _config(ctx)
    _require_sources(config, sources)  # before the store is opened: a bad config creates none
    registry = App.of(ctx).registry
    check_rule_ids(config.settings, registry.rules)
    store = Store.open(config.store_path)
    try:
        show = sys.stderr.isatty() and not App.of(ctx).quiet
        engine = SyncEngine(
            config,
            registry,
            store,
            secret=_secret_lookup(registry),
            progress=_terminal_progress if show else None,
        )
        summary = engine.run(list(sources) or None, dry_run=dry_run)
        if show:
            click.echo("\r\033[K", err=True, nl=False)
        notes: list[str] = []
        if not dry_run:
            from fit_core.aftersync import after_sync

            # notifications and caseload pages: never change the sync's outcome or exit code
            notes = after_sync(config, registry, store, rescored=summary.rescored)
    finally:
        store.close()
    if as_json:
        echo_json(summary.as_dict())
    elif dry_run or App.of(ctx).verbose:
        _print_summary(summary)
    for s in summary.sources:
        if s.status == "failed":
            click.echo(f"error: source {s.name}: {s.error}", err=True)
        elif s.quarantined:
            click.echo(
                f"warning: source {s.name}: {s.quarantined} record(s) quarantined "
                "(see `fit quarantine`)",
                err=True,
            )
        elif s.outstanding:
            click.echo(
                f"warning: source {s.name}: {s.outstanding} record(s) still quarantined since "
                "its last read (see `fit quarantine`)",
                err=True,
            )
        for text in s.problems if s.status != "failed" else ():
            click.echo(f"warning: source {s.name}: {text}", err=True)
        if s.merged_clients and not (dry_run or App.of(ctx).verbose or as_json):
            click.echo(
                f"note: source {s.name}: {s.merged_clients} client code(s) arrived in a new "
                "spelling (case or spaces) and were merged with the same code "
                "(`fit sync -v` lists them)",
                err=True,
            )
    for note in notes:
        click.echo(f"warning: {note}", err=True)
    sys.exit(int(summary.exit_code))


def _require_sources(config: Config, names: tuple[str, ...]) -> None:
    """ConfigError unless the config has the named sources, or some enabled source."""
    for name in names:
        config.source(name)
    if names:
        return
    where = config.path or "the config"
    if not config.sources:
        raise ConfigError(
            f"{where} has no sources: there is nothing to sync",
            hint='add a [sources.NAME] table (adapter = "csv", path, scores_path ...); '
            "`fit init` writes a commented example",
        )
    if not any(s.enabled for s in config.sources.values()):
        raise ConfigError(
            f"every source in {where} has enabled = false: there is nothing to sync",
            hint="enable one, or name it with --source",
        )


def _terminal_progress(source: str, stage: str, count: int) -> None:
    """One self-overwriting status line on stderr (only when stderr is a terminal)."""
    click.echo(f"\r\033[K{source or 'all'}: {stage} {count:,}", err=True, nl=False)


def _print_summary(summary: Any) -> None:
    for s in summary.sources:
        repeated = f", repeated {s.repeated}" if s.repeated else ""
        repeated += f", refused {s.refused}" if s.refused else ""
        line = (
            f"{s.name}: {s.status}; pulled {s.pulled} (new {s.new}, changed {s.changed}, "
            f"unchanged {s.unchanged}, quarantined {s.quarantined}{repeated})"
        )
        if s.outstanding:
            line += f", still quarantined {s.outstanding}"
        if s.deleted:
            line += f", deleted at the source {s.deleted}"
        line += f", would push {s.would_push}" if summary.dry_run else f", pushed {s.pushed}"
        if s.removed_at_target:
            line += f", removed at the target {s.removed_at_target}"
        click.echo(line)
        if s.merged_clients:
            click.echo(
                f"  client codes typed in more than one way, merged into one client: "
                f"{s.merged_clients}"
            )
            for cid, typed in s.merged_client_ids.items():
                click.echo(f"    {cid}: {', '.join(repr(t) for t in typed)}")
            left = s.merged_clients - len(s.merged_client_ids)
            if left > 0:
                click.echo(f"    … and {left} more")
    if summary.settings_changed:
        click.echo(
            f"scoring changed ({', '.join(summary.settings_changed)}): every client rescored "
            "with the current settings"
        )
    if summary.purged:
        verb = "would purge" if summary.dry_run else "purged"
        click.echo(
            f"retention: {verb} {summary.purged} record(s) of {summary.purged_episodes} ended "
            "episode(s)"
        )
    click.echo(
        f"clients rescored {summary.clients_rescored}; new alerts {summary.flags_raised}; "
        f"closed alerts {summary.alerts_closed}; open alerts {summary.open_flags}"
    )


# --- score ------------------------------------------------------------------------------------


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (see the README).")
@click.option("--timezone", "tz", default=None, help="Clinic timezone (default: config/machine).")
@click.option("--delimiter", default="auto", help="Field delimiter (default: detect , or ;).")
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Today's date for date rules (srs.missing, dropout), for reproducible results.",
)
@click.option(
    "--table",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Expected-trajectory table (CSV: intake, session, expected, lower, upper[, severe]).",
)
@click.pass_context
@handle_errors
def score(
    ctx: click.Context,
    file: Path,
    as_json: bool,
    tz: str | None,
    delimiter: str,
    as_of: dt.datetime | None,
    table: Path | None,
) -> None:
    """Score a FIT long CSV file offline (no store, no network).

    Without --as-of, "today" is the current date in the clinic timezone.
    """
    from zoneinfo import ZoneInfo

    from .offline import score_file

    settings = None
    tzinfo = None
    config_path = App.of(ctx).config_path
    if config_path:
        config = load_config(config_path)
        settings = config.settings
        tzinfo = config.sync.tzinfo()
    if tz:
        tzinfo = ZoneInfo(tz)
    model = _load_table(table) if table else None
    result = score_file(
        file,
        settings=settings,
        tz=tzinfo,
        delimiter=delimiter,
        as_of=as_of.date() if as_of else None,
        model=model,
    )
    for err in result.errors:
        click.echo(f"{err}", err=True)
    if as_json:
        echo_json([s.as_dict() for s in result.scored])
    else:
        _print_scores(result.scored)
    sys.exit(int(ExitCode.PARTIAL if result.errors else ExitCode.OK))


def _load_table(path: Path) -> Any:
    from fit_core.trajectories import SuppliedTableError, load_supplied_table

    try:
        return load_supplied_table(path)
    except SuppliedTableError as exc:
        raise ConfigError(f"trajectory table {path}: {exc}") from None


def _print_scores(scored: list[Any]) -> None:
    click.echo(
        f"{'client':<12} {'episode':<16} {'rater':<8} {'date':<20} {'meas':<5} "
        f"{'sess':>4} {'total':>6} {'class':<18} flags"
    )
    for s in scored:
        d = s.as_dict()
        click.echo(
            f"{d['client_id']:<12.12} {d['episode_id']:<16.16} {d['rater']:<8.8} "
            f"{d['administered_at']:<20.20} {d['measure']:<5} {d['session']:>4} "
            f"{d['total']:>6.1f} {d.get('rc_class') or '':<18} "
            f"{','.join(f['rule_id'] for f in d['flags'])}"
        )
    if scored:
        click.echo("")
        for line in COPYRIGHT_LINES:
            click.echo(line)


# --- demo -------------------------------------------------------------------------------------


@click.command()
@click.option("--clients", default=40, show_default=True, help="Synthetic clients to generate.")
@click.option("--seed", default=7, show_default=True, help="Random seed.")
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the demo files in this folder (default: a temporary folder, removed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@handle_errors
def demo(clients: int, seed: int, keep: Path | None, as_json: bool) -> None:
    """Run the whole loop on bundled synthetic data: no network, no secrets."""
    from .demo import run_demo

    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True, mode=0o700)
        result = run_demo(keep, clients=clients, seed=seed)
    else:
        with tempfile.TemporaryDirectory(prefix="fit-demo-") as tmp:
            result = run_demo(Path(tmp), clients=clients, seed=seed)
    if as_json:
        echo_json(result)
    else:
        _print_demo(result, keep)
    sys.exit(int(ExitCode(result["exit_code"])))


def _print_demo(r: dict[str, Any], keep: Path | None) -> None:
    click.echo("fit demo: synthetic clinic (no real people), CSV source → scores → alerts")
    click.echo(
        f"  administrations: {r['administrations']} from {r['clients']} clients; "
        f"quarantined: {r['quarantined']} (bad rows planted on purpose)"
    )
    for q in r["quarantine"]:
        reasons = "; ".join(f"{k}: {v}" for k, v in q["reasons"].items())
        click.echo(f"    {q['location']}: {reasons}")
    click.echo(f"  scores written: {r['scores_rows']} rows")
    as_of = f" as of {r['as_of']} (the day after the last session)" if r.get("as_of") else ""
    click.echo(f"  open alerts{as_of}: {r['open_alerts']}")
    for rule, n in r["alerts_by_rule"].items():
        click.echo(f"    {rule:<28} {n}")
    click.echo(f"  second sync: pulled {r['resync_pulled']}, pushed {r['resync_pushed']}")
    if keep is not None:
        click.echo(f"  files kept in {keep} (config.toml, admins.csv, scores.csv, fit.sqlite3)")
    for line in COPYRIGHT_LINES:
        click.echo(f"  {line}")


# --- plugins ----------------------------------------------------------------------------------


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@handle_errors
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List installed plugins, their versions and hooks, and what they registered."""
    registry = App.of(ctx).registry
    data: dict[str, Any] = {
        "plugins": [
            {"name": p.name, "package": p.package, "version": p.version, "hooks": list(p.hooks)}
            for p in registry.plugins
        ],
        "adapters": {k: registry.owners[("adapter", k)] for k in sorted(registry.adapters)},
        "rules": {k: registry.owners[("rule", k)] for k in sorted(registry.rules)},
        "measures": {k: registry.owners[("measure", k)] for k in sorted(registry.measures)},
        "notifiers": {k: registry.owners[("notifier", k)] for k in sorted(registry.notifiers)},
        "failed": registry.failures,
    }
    if as_json:
        echo_json(data)
        return
    for p in data["plugins"]:
        click.echo(f"{p['name']} ({p['package']} {p['version'] or ''}): {', '.join(p['hooks'])}")
    click.echo(f"adapters: {', '.join(data['adapters']) or 'none'}")
    click.echo(f"rules: {', '.join(data['rules']) or 'none'}")
    click.echo(f"measures: {', '.join(data['measures']) or 'none'}")
    click.echo(f"notification channels: {', '.join(data['notifiers']) or 'none'}")
    for name, reason in data["failed"].items():
        click.echo(f"FAILED to load {name}: {reason}", err=True)


# --- alerts -----------------------------------------------------------------------------------

_STATE_HELP = (
    "open (default), acknowledged, current (open or acknowledged), superseded, closed, "
    "ended (superseded or closed; also accepted as resolved, its former name), or all."
)


@click.group(invoke_without_command=True)
@click.option(
    "--state",
    type=click.Choice(
        ["open", "acknowledged", "current", "superseded", "closed", "ended", "resolved", "all"]
    ),
    default="open",
    show_default=True,
    help=_STATE_HELP,
)
@click.option("--rule", default=None, help="Only this rule id.")
@click.option("--client", default=None, help="Only this client id.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@handle_errors
def alerts(
    ctx: click.Context, state: str, rule: str | None, client: str | None, as_json: bool
) -> None:
    """List alerts (open by default): what holds now, with what to discuss.

    One alert per condition: it stays the same alert (same ID) while the condition holds at the
    client's latest sessions, is superseded when a later session no longer raises it, and is
    closed when the episode ends. `fit alerts ack ID` acknowledges one, `fit alerts show ID`
    prints its history.
    """
    if ctx.invoked_subcommand:
        return
    config = _config(ctx)
    store = Store.open(config.store_path)
    try:
        rows = store.list_flags(state, rule, client)
        if client and not rows:  # as the sync stores codes: g0001 finds G0001
            from fit_core.identity import normalise_client_id

            folded = normalise_client_id(client)
            if folded != client:
                rows = store.list_flags(state, rule, folded)
    finally:
        store.close()
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo(f"no {state if state != 'all' else ''} alerts".replace("  ", " "))
        return
    by_rule = Counter(r["rule_id"] for r in rows)
    for r in rows:
        click.echo(_alert_line(r))
    click.echo("")
    click.echo(", ".join(f"{k}: {v}" for k, v in sorted(by_rule.items())))


def _alert_line(r: dict[str, Any]) -> str:
    where = f"session {r['session']}" if r.get("session") else ""
    if r.get("first_session") and r.get("session") and r["first_session"] != r["session"]:
        where = f"sessions {r['first_session']}-{r['session']}"
    when = f"{where} ({r['date']})" if where and r.get("date") else where or (r.get("date") or "")
    state = r["state"]
    if r.get("close_reason") and r["close_reason"] != state:
        state += f": {r['close_reason'].replace('_', ' ')}"
    return (
        f"#{r['id']:<6} {r['severity']:<8} {r['rule_id']:<27} client {r['client_id']} "
        f"{when} [{state}]\n        {r['message']}"
    )


class AlertId(click.ParamType):
    """An alert ID as `fit alerts` prints it (`#7`) or without the `#` (`7`)."""

    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().removeprefix("#")
        if not text.isascii() or not text.isdigit():
            self.fail(f"{value!r} is not an alert ID (like #7 or 7; see `fit alerts`)", param, ctx)
        return int(text)


ALERT_ID = AlertId()


def _no_alert(flag_id: int) -> click.BadParameter:
    """An ID that names no alert: a usage error (exit 2), like any other bad argument."""
    return click.BadParameter(
        f"no alert #{flag_id} (list them with `fit alerts --state all`)", param_hint="'ID'"
    )


@alerts.command("show")
@click.argument("flag_id", type=ALERT_ID, metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@handle_errors
def alerts_show(ctx: click.Context, flag_id: int, as_json: bool) -> None:
    """Show alert ID with its history: raised, carried forward, acknowledged, closed."""
    config = _config(ctx.find_root())
    store = Store.open(config.store_path)
    try:
        alert = store.alert(flag_id)
    finally:
        store.close()
    if alert is None:
        raise _no_alert(flag_id)
    if as_json:
        echo_json(alert)
        return
    click.echo(_alert_line(alert))
    for e in alert["history"]:
        at = f"session {e['session']}" if e.get("session") else ""
        detail = e["detail"] if e["event"] in ("superseded", "closed") else ""
        click.echo(f"  {e['at']}  {e['event']:<12} {at} {detail}".rstrip())


@alerts.command("ack")
@click.argument("flag_id", type=ALERT_ID, metavar="ID")
@click.pass_context
@handle_errors
def alerts_ack(ctx: click.Context, flag_id: int) -> None:
    """Acknowledge alert ID: it stays acknowledged while its condition holds, and leaves the
    flags pushed to the sources at the next sync."""
    _set_state(ctx, flag_id, "acknowledged")


@alerts.command("reopen")
@click.argument("flag_id", type=ALERT_ID, metavar="ID")
@click.pass_context
@handle_errors
def alerts_reopen(ctx: click.Context, flag_id: int) -> None:
    """Undo an acknowledgement."""
    _set_state(ctx, flag_id, "open")


def _set_state(ctx: click.Context, flag_id: int, state: str) -> None:
    from fit_core.alert_store import AlertStateError

    config = _config(ctx.find_root())
    store = Store.open(config.store_path)
    try:
        if not store.set_flag_state(flag_id, state):
            raise _no_alert(flag_id)
        _audit_alert(store, App.of(ctx), flag_id, state)
    except AlertStateError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        store.close()
    click.echo(f"alert #{flag_id}: {state}")


def _audit_alert(store: Store, app: App, flag_id: int, state: str) -> None:
    """An acknowledgement (or its undoing) in the audit log, naming the client by hash."""
    from fit_core.audit import auditor_for

    alert = store.alert(flag_id) or {}
    auditor = auditor_for(store, app.config, app.secret())
    client = (alert.get("namespace", ""), alert.get("client_id", ""))
    auditor.record(
        "acknowledge" if state == "acknowledged" else "reopen",
        target=f"alert #{flag_id} {alert.get('rule_id', '')}".strip(),
        subjects=auditor.client_subjects([client]),
        wanted_subjects=True,
    )


# --- quarantine -------------------------------------------------------------------------------


@click.command()
@click.option("--source", default=None, help="Only this source.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@handle_errors
def quarantine(ctx: click.Context, source: str | None, as_json: bool) -> None:
    """List quarantined records: source key, where, and which fields are wrong.

    Each line starts with the record's reference (the hash `fit sync` warnings show instead of
    the key). Control characters in keys and reasons are shown as escapes.
    """
    from fit_core.logsafe import escape_controls, key_ref

    config = _config(ctx)
    store = Store.open(config.store_path)
    try:
        rows = [{"ref": key_ref(r["source_key"]), **r} for r in store.quarantined(source)]
    finally:
        store.close()
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        reasons = "; ".join(f"{k}: {v}" for k, v in r["reasons"].items())
        where = f" ({r['location']})" if r["location"] else ""
        click.echo(escape_controls(f"{r['ref']} {r['source']} {r['source_key']}{where}: {reasons}"))
    if not rows:
        click.echo("nothing quarantined")


COMMANDS = (init, check, sync, score, demo, plugins, alerts, quarantine)
