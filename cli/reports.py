"""`fit report client`, `clinic` and `caseload`: charts and reports as self-contained files.

Needs the optional extra (`pip install 'fit-sync[reports]'`: matplotlib and jinja2); PNG and
PDF also need headless Chromium. Files are written mode 0600; a folder made for them 0700. The
paths written are printed on stdout, one per line.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from fit_core.agency import GROUP_BY
from fit_core.config import Config
from fit_core.errors import ConfigError
from fit_core.plugins import Registry
from fit_core.reports.deps import require_reports
from fit_core.reports.render import FORMATS
from fit_core.store import Store

from .app import App, handle_errors
from .asof import as_of_option, models_for, resolve_as_of

_OUT_HELP = "Folder for the files (created mode 0700 if missing)."
_FORMAT_HELP = "html (default), png or pdf (need Chromium), or svg (the charts alone)."
_CHROMIUM_HELP = "Chromium to render PNG/PDF (default: $FIT_CHROMIUM, else found on PATH)."


@click.group("report")
def report() -> None:
    """Charts and reports: a client's ORS/SRS page, the clinic's statistics, caseloads.

    Self-contained files (inline charts and styles, nothing fetched) that open on an offline PC,
    written readable by the owner only. Needs `pip install 'fit-sync[reports]'`; PNG and PDF
    also need headless Chromium. The measures' copyright lines are on every page.
    """


def _open_store(config: Config) -> Store:
    path = Path(config.store_path)
    if str(path) != ":memory:" and not path.exists():
        raise ConfigError(f"no store at {path}", hint="run `fit sync` first")
    return Store.open(config.store_path)


def _check_browser(fmt: str, chromium: str | None) -> None:
    """PNG and PDF need Chromium: say so before any work is done."""
    if fmt in ("png", "pdf"):
        from fit_core.reports.browser import find_chromium

        find_chromium(chromium)


def _namespaces(config: Config) -> list[str]:
    """Every namespace a configured source uses (a client id is looked up in each)."""
    return sorted({s.namespace for s in config.sources.values()})


def _stem(client_id: str, label: str, episode_id: str, episode_label: str, pseudo: bool) -> str:
    from fit_core.reports.output import safe_name

    if pseudo:
        return safe_name(f"fit-client-{label}-{episode_label.replace(' ', '-').lower()}")
    name = episode_id if episode_id.startswith(client_id) else f"{client_id}-{episode_id}"
    return safe_name(f"fit-client-{name}")


@report.command("client")
@click.argument("clients", nargs=-1, required=True, metavar="CLIENT...")
@click.option("--episode", default=None, help="Only this episode id (default: every episode).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help=_OUT_HELP,
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="html", help=_FORMAT_HELP)
@click.option(
    "--pseudonym", is_flag=True, help="Show a keyed pseudonym (P-XXXXX-XXXXX), not the id."
)
@click.option("--no-srs", is_flag=True, help="Leave the alliance (SRS) out: client-facing copy.")
@click.option("--namespace", default=None, help="The client's namespace (default: search all).")
@click.option("--srs-items", is_flag=True, help="Add the alliance items by domain (short labels).")
@as_of_option
@click.option("--chromium", default=None, help=_CHROMIUM_HELP)
@click.pass_context
@handle_errors
def client(
    ctx: click.Context,
    clients: tuple[str, ...],
    episode: str | None,
    out: Path,
    fmt: str,
    pseudonym: bool,
    no_srs: bool,
    namespace: str | None,
    srs_items: bool,
    as_of: dt.datetime | None,
    chromium: str | None,
) -> None:
    """One page per episode of each CLIENT: ORS and SRS by session, cutoff, flags.

    The ORS chart shows the clinical cutoff for the client's age band, the reliable-change zone
    around the intake, and (with a trajectory model) the expected range; flags are numbered on
    the sessions that raised them and listed under the charts.
    """
    require_reports()
    from fit_core.reports.charts import FigureCache
    from fit_core.reports.output import ensure_dir
    from fit_core.reports.render import write_client
    from fit_core.reports.source import ClientReportSource

    from .clinical import _config

    _check_browser(fmt, chromium)

    config = _config(ctx)
    registry = App.of(ctx).registry
    today, given = resolve_as_of(config, as_of)
    namespaces = [namespace] if namespace else _namespaces(config)
    store = _open_store(config)
    try:
        source = ClientReportSource(
            store=store,
            measures=registry.measures,
            settings=config.settings.with_(as_of=today),
            model=models_for(store, config, given),
            namespaces=namespaces,
            rule_titles={rid: rule.description for rid, rule in registry.rules.items()},
            store_path=str(config.store_path),
            as_of=given,
            rules=tuple(registry.rules.values()),
        )
        jobs = [
            (cid, page)
            for cid in dict.fromkeys(clients)
            for page in source.pages(
                cid,
                include_srs=not no_srs,
                pseudonymous=pseudonym,
                episode=episode,
                srs_items=srs_items,
            )
        ]
    finally:
        store.close()
    ensure_dir(out)
    cache = FigureCache()
    written: list[tuple[str, Path]] = []
    for cid, page in jobs:
        stem = _stem(cid, page.client_label, page.episode_id, page.episode_label, pseudonym)
        for path in write_client(
            page,
            out,
            stem,
            fmt,
            generated=today,
            rule_titles=source.rule_titles,
            chromium=chromium,
            cache=cache,
        ):
            click.echo(str(path))
            written.append((cid, Path(path)))
    _note_written(config, registry, namespaces, written)


@report.command("clinic")
@click.option(
    "--by",
    type=click.Choice(GROUP_BY),
    default="clinician",
    show_default=True,
    help="Group the figures.",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Only episodes that started on or after this date.",
)
@click.option(
    "--min-n",
    default=10,
    show_default=True,
    help="Groups below this are marked; effect sizes need this many episodes.",
)
@click.option(
    "--ended-only", is_flag=True, help="Outcome figures of ended episodes only (benchmarks)."
)
@click.option("--srs-items", is_flag=True, help="Add the mean alliance item by domain.")
@as_of_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help=_OUT_HELP,
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="html", help=_FORMAT_HELP)
@click.option("--chromium", default=None, help=_CHROMIUM_HELP)
@click.pass_context
@handle_errors
def clinic(
    ctx: click.Context,
    by: str,
    since: dt.datetime | None,
    min_n: int,
    ended_only: bool,
    srs_items: bool,
    as_of: dt.datetime | None,
    out: Path,
    fmt: str,
    chromium: str | None,
) -> None:
    """The agency statistics of `fit stats` as tables and charts, per clinician or site.

    Outcome classes, effect sizes with 95% CIs, the distribution of change, alliance and
    endings. Groups with fewer than --min-n episodes are marked "small", never hidden.
    """
    require_reports()
    from fit_core.reports.clinic_data import clinic_data
    from fit_core.reports.output import ensure_dir, safe_name
    from fit_core.reports.render import write_clinic

    from .clinical import _config, _summaries

    _check_browser(fmt, chromium)

    config = _config(ctx)
    registry = App.of(ctx).registry
    today, given = resolve_as_of(config, as_of)
    since_date = since.date() if since else None
    store = _open_store(config)
    try:
        summaries = list(_summaries(store, config, registry.measures, today, since_date, given))
    finally:
        store.close()
    data = clinic_data(
        summaries,
        by=by,
        as_of=today,
        min_n=min_n,
        since=since_date,
        clinical_comparison=config.settings.clinical_comparison,
        ended_only=ended_only,
        srs_items=srs_items,
        measures=registry.measures,
    )
    ensure_dir(out)
    stem = (
        f"fit-clinic-by-{by}"
        + (f"-since-{since_date.isoformat()}" if since_date else "")
        + ("-ended" if ended_only else "")
        + (f"-as-of-{given.isoformat()}" if given else "")
    )
    paths = list(write_clinic(data, out, safe_name(stem), fmt, generated=today, chromium=chromium))
    for path in paths:
        click.echo(str(path))
    _note_written(config, registry, [], [], clinic_files=len(paths))


def _note_written(
    config: Config,
    registry: Registry,
    namespaces: list[str],
    written: list[tuple[str, Path]],
    *,
    clinic_files: int = 0,
) -> None:
    """Remember the files written for each client (`fit client erase` removes them) and write
    the report to the audit log."""
    from fit_core.audit import auditor_for
    from fit_core.reports.source import find_client

    from .commands import _secret_lookup

    store = Store.open(config.store_path)
    try:
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        clients: set[tuple[str, str]] = set()
        rows = []
        for cid, path in written:
            namespace, admins = find_client(store, cid, namespaces)
            client = (namespace, admins[0].client_id)
            clients.add(client)
            rows.append((*client, str(path.resolve()), "report", at))
        with store.transaction():
            store.note_client_files(rows)
        auditor = auditor_for(store, config, _secret_lookup(registry))
        subjects = auditor.client_subjects(sorted(clients)) if clients else []
        auditor.record(
            "report",
            target="clinic" if clinic_files else "client",
            counts={"files": len(written) + clinic_files, "clients": len(clients)},
            subjects=subjects,
            wanted_subjects=bool(clients),
        )
    finally:
        store.close()


@report.command("caseload")
@click.option(
    "--clinician",
    "clinicians",
    multiple=True,
    help="Only this clinician's page (repeatable; default: every clinician, with an index).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the pages (default: [reports] caseload_dir, else the current folder).",
)
@click.option(
    "--pseudonym/--no-pseudonym",
    default=None,
    help="Keyed pseudonyms instead of client ids (default: [reports] caseload_pseudonym).",
)
@click.option(
    "--stale-days",
    type=click.IntRange(min=1),
    default=None,
    help="No session for this many days counts as no data lately (default: 21).",
)
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Judge the caseload as of this date (default: today, clinic time).",
)
@click.pass_context
@handle_errors
def caseload(
    ctx: click.Context,
    clinicians: tuple[str, ...],
    out: Path | None,
    pseudonym: bool | None,
    stale_days: int | None,
    as_of: dt.datetime | None,
) -> None:
    """One page per clinician: active clients sorted by what needs attention.

    Red (an alert, or well off track), orange (a warning, or not on track), no data lately,
    then the rest. Each client shows the latest ORS and SRS with their change, the session
    count, a small ORS trend line and the alerts that hold now, and links to the client's
    report, written beside it (clients/<pseudonym>.html). Reads on a phone, a desktop and on
    paper. `[reports] caseload_dir` keeps these pages current after every `fit sync`.
    """
    require_reports()
    from fit_core.reports.caseload_write import write_caseload

    from .clinical import _config, _today

    config = _config(ctx)
    registry = App.of(ctx).registry
    today = _today(config)
    target = out or config.reports.caseload_dir or Path(".")
    store = _open_store(config)
    try:
        result = write_caseload(
            config,
            registry,
            store,
            target,
            as_of=as_of.date() if as_of else (config.settings.as_of or today),
            generated=today,
            clinicians=list(clinicians) or None,
            pseudonymous=pseudonym,
            stale_days=stale_days,
        )
        _audit_caseload(config, registry, store, result)
    finally:
        store.close()
    for path in [*result.pages, *result.client_pages]:
        click.echo(str(path))
    if result.removed:
        click.echo(f"removed {len(result.removed)} page(s) of clients no longer active", err=True)


def _audit_caseload(config: Config, registry: Any, store: Store, result: Any) -> None:
    """The caseload pages in the audit log, their clients by keyed hash (the files are in the
    store's record of files written for clients already)."""
    from fit_core.audit import auditor_for

    from .commands import _secret_lookup

    auditor = auditor_for(store, config, _secret_lookup(registry))
    keys = sorted(result.client_keys)
    auditor.record(
        "report",
        target="caseload",
        counts={"files": len(result.pages) + len(result.client_pages), "clients": len(keys)},
        subjects=auditor.client_subjects(keys) if keys else [],
        wanted_subjects=bool(keys),
    )


REPORT_COMMANDS = (report,)
