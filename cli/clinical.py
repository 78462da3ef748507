"""`fit rules`, `fit trajectories ...` and `fit stats`: the clinical engine's commands."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click

from fit_core.agency import GROUP_BY, EpisodeSummary, agency_stats
from fit_core.as_of import context_until, until
from fit_core.config import Config
from fit_core.episodes import episodes_of, is_ended, latest_views, summarize, trajectory_series
from fit_core.errors import ConfigError, ExitCode
from fit_core.measures import COPYRIGHT_LINES, Measure
from fit_core.models import ClientContext
from fit_core.plugins import Registry, load_plugins
from fit_core.scoring import Scorer, rule_active
from fit_core.settings import Settings
from fit_core.store import Store
from fit_core.sync import load_active_model

from .app import App, echo_json, handle_errors
from .asof import as_of_option, models_for, resolve_as_of


def _config(ctx: click.Context) -> Config:
    return App.of(ctx).config


def _today(config: Config) -> dt.date:
    return dt.datetime.now(config.sync.tzinfo()).date()


def _as_of(config: Config, given: dt.datetime | None) -> tuple[dt.date, dt.date | None]:
    return resolve_as_of(config, given)


# --- rules ------------------------------------------------------------------------------------

RULE_SETTINGS: dict[str, tuple[str, ...]] = {
    "srs.below_cutoff": ("srs_cutoff", "cutoffs", "clinical_comparison"),
    "srs.drop": ("srs_drop",),
    "srs.low_item": ("srs_low_item",),
    "ors.reliable_deterioration": ("ors_reliable_change", "reliable_change"),
    "ors.checkpoint": ("checkpoint_sessions", "ors_reliable_change"),
    "ors.last_chance": ("last_chance_sessions", "ors_reliable_change"),
    "ors.high_intake": ("cutoffs", "clinical_comparison"),
    "attendance.dropout_risk": (
        "dropout_days",
        "dropout_missed",
        "dropout_window",
        "episode_end_days",
        "episode_gap_days",
    ),
}


@click.command("rules")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@handle_errors
def rules_cmd(ctx: click.Context, as_json: bool) -> None:
    """List alert rules, whether each is on, and its current settings."""
    app = App.of(ctx)
    settings = app.config.settings if app.config_path or _default_config_exists() else Settings()
    registry = app.registry
    rows: list[dict[str, Any]] = []
    for rule_id, rule in sorted(registry.rules.items()):
        keys = RULE_SETTINGS.get(rule_id, ())
        rows.append(
            {
                "id": rule_id,
                "version": rule.version,
                "family": rule.family,
                "severity": getattr(rule, "severity", None),
                "enabled": rule_active(rule, settings),
                "opt_in": rule.opt_in,
                "description": rule.description,
                "package": registry.owners.get(("rule", rule_id)),
                "settings": {k: _jsonable(getattr(settings, k)) for k in keys},
                "effective": {
                    k: effective_setting(k, settings, registry.measures, rule.family) for k in keys
                },
            }
        )
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        state = "on " if r["enabled"] else "off"
        click.echo(
            f"{state} {r['id']:<27} v{r['version']} {r['severity'] or '':<8} {r['description']}"
        )
        if r["effective"]:
            click.echo("      " + ", ".join(f"{k}={_show(v)}" for k, v in r["effective"].items()))


def effective_setting(
    key: str, settings: Settings, measures: Mapping[str, Measure], family: str
) -> Any:
    """The value a rule really uses for ``key``: a setting left unset (None, {}) is shown as
    the measures' own defaults, per measure (and age band for cutoffs)."""
    from fit_core.scoring import cutoff_for, reliable_change_for

    value = getattr(settings, key)
    of_family = [m for m in measures.values() if m.scored and (family in ("ANY", m.family))]
    if key in ("ors_reliable_change", "reliable_change"):
        return {m.key: reliable_change_for(m, settings) for m in of_family if m.family == "ORS"}
    if key in ("cutoffs", "srs_cutoff"):
        out: dict[str, float] = {}
        for m in of_family:
            if key == "srs_cutoff" and m.family != "SRS":
                continue
            for band in m.bands:
                name = m.key if len(m.bands) == 1 else f"{m.key} {band.name}"
                age = band.min_age if band.min_age is not None else band.max_age
                out[name] = cutoff_for(m, age, settings)[1]
        return out
    return _jsonable(value)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(
                f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items()
            )
            + "}"
        )
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _default_config_exists() -> bool:
    from fit_core.config import default_config_path

    return default_config_path().exists()


def _jsonable(v: Any) -> Any:
    if isinstance(v, frozenset | tuple):
        return sorted(v) if isinstance(v, frozenset) else list(v)
    if isinstance(v, dict) or hasattr(v, "items"):
        return dict(v)
    return v


# --- scoring everything in the store ----------------------------------------------------------


def _scored_clients(
    store: Store,
    config: Config,
    as_of: dt.date,
    given: dt.date | None = None,
    registry: Registry | None = None,
) -> Iterator[tuple[list[Any], ClientContext | None]]:
    """Each client's scored administrations (no rules) and practice data, client by client.

    ``given`` (an explicit ``--as-of``) leaves out what is dated after it (:mod:`fit_core.as_of`)
    and uses the models in force that day."""
    registry = registry or load_plugins()
    scorer = Scorer(
        registry.measures, config.settings.with_(as_of=as_of), (), models_for(store, config, given)
    )
    for client, admins in itertools.groupby(store.iter_administrations(), lambda a: a.client):
        kept = until(admins, given)
        if not kept:
            continue
        context = context_until(store.client_contexts([client]).get(client), given)
        yield list(scorer.score(kept, context).scored), context


def _views(scored: list[Any]) -> list[Any]:
    """A client's episode views, with whether each is the client's latest episode."""
    return latest_views(episodes_of(scored))


# --- trajectories -----------------------------------------------------------------------------


@click.group("trajectories")
def trajectories() -> None:
    """Expected trajectories: fit one from the clinic's own closed episodes, or load a table.

    Without a model there is no on-track status (green/orange/red); every other rule works.
    Proprietary curves of commercial systems are not shipped or imitated.
    """


@trajectories.command("fit")
@click.option(
    "--measure",
    default="ORS",
    show_default=True,
    help="The ORS-family measure to fit (ORS or CORS); each measure keeps its own model.",
)
@click.option(
    "--rater",
    default="client",
    show_default=True,
    help="Whose ratings to fit (client, or a collateral rater such as parent).",
)
@click.option("--max-session", default=10, show_default=True, help="Fit sessions 2..N.")
@click.option("--min-n", default=30, show_default=True, help="Episodes needed per session.")
@click.option("--low-pct", default=25.0, show_default=True, help="Lower band percentile.")
@click.option("--high-pct", default=75.0, show_default=True, help="Upper band percentile.")
@click.option("--severe-pct", default=10.0, show_default=True, help="Severe line percentile.")
@click.option("--dry-run", is_flag=True, help="Fit and show, but do not store the model.")
@as_of_option
@click.option("--json", "as_json", is_flag=True, help="Print the model as JSON.")
@click.pass_context
@handle_errors
def trajectories_fit(
    ctx: click.Context,
    measure: str,
    rater: str,
    max_session: int,
    min_n: int,
    low_pct: float,
    high_pct: float,
    severe_pct: float,
    dry_run: bool,
    as_of: dt.datetime | None,
    as_json: bool,
) -> None:
    """Fit expected_k = a_k + b_k * intake per session k from one measure's closed episodes.

    One model per measure and rater: fitting CORS leaves the ORS model in force.
    """
    from fit_core.trajectories import InsufficientData, fit_clinic_model

    config = _config(ctx)
    registry = App.of(ctx).registry
    measure = _ors_measure(measure, registry.measures)
    today, given = _as_of(config, as_of)
    store = Store.open(config.store_path)
    try:
        series = []
        for scored, context in _scored_clients(store, config, today, given, registry):
            for view, latest in _views(scored):
                if is_ended(view, today, config.settings, context, latest=latest):
                    s = trajectory_series(view, registry.measures, measure, rater=rater)
                    if s is not None:
                        series.append(s)
        try:
            model = fit_clinic_model(
                series,
                max_session=max_session,
                min_n=min_n,
                low_pct=low_pct,
                high_pct=high_pct,
                severe_pct=severe_pct,
                measure=measure,
                rater=rater,
                fitted_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            )
        except InsufficientData as exc:
            raise ConfigError(
                f"cannot fit a trajectory model: {exc}",
                hint="wait for more closed episodes, or lower --min-n (the bands get unreliable)",
            ) from None
        except ValueError as exc:
            raise ConfigError(f"cannot fit a trajectory model: {exc}") from None
        if not dry_run:
            model_id = store.save_model("clinic", model.to_dict())
            store.mark_all_dirty()
            click.echo(
                f"stored model #{model_id} for {measure} ({rater} ratings); the next `fit sync` "
                "rescores every client",
                err=True,
            )
    finally:
        store.close()
    _show_model(model, as_json)


def _ors_measure(measure: str, measures: Any) -> str:
    """The measure key, checked: it must be a registered ORS-family measure."""
    key = measure.upper()
    m = measures.get(key)
    if m is None or m.family != "ORS":
        known = sorted(k for k, v in measures.items() if v.family == "ORS")
        raise ConfigError(
            f"--measure {measure}: not an ORS-family measure",
            hint=f"one of {', '.join(known)}",
        )
    return key


@trajectories.command("load")
@click.argument("table", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--measure", default="ORS", show_default=True, help="Measure(s) it applies to.")
@click.option("--rater", default="client", show_default=True, help="Whose ratings it is for.")
@click.pass_context
@handle_errors
def trajectories_load(ctx: click.Context, table: Path, measure: str, rater: str) -> None:
    """Load a supplied table (intake, session, expected, lower, upper[, severe]) as the model
    of a measure (it replaces only that measure's model)."""
    from fit_core.trajectories import SuppliedTableError, load_supplied_table

    config = _config(ctx)
    try:
        model = load_supplied_table(table, measures=measure.upper(), name=table.name, raters=rater)
    except SuppliedTableError as exc:
        raise ConfigError(f"trajectory table {table}: {exc}") from None
    store = Store.open(config.store_path)
    try:
        model_id = store.save_model("table", model.to_dict())
        store.mark_all_dirty()
    finally:
        store.close()
    click.echo(
        f"stored table {table.name} as model #{model_id} for {measure.upper()} ({rater} "
        "ratings); the next `fit sync` rescores"
    )


@trajectories.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@handle_errors
def trajectories_show(ctx: click.Context, as_json: bool) -> None:
    """Show the models in force (one per measure and rater): per session, the coefficients and
    the n behind them. --json prints a list, one object per model, with its id and kind."""
    config = _config(ctx)
    store = Store.open(config.store_path)
    try:
        models = load_active_model(store)
    finally:
        store.close()
    entries = models.entries if models is not None else ()
    if as_json:
        echo_json([{"id": e.id, "kind": e.kind, **e.model.to_dict()} for e in entries])
        return
    if not entries:
        click.echo("no trajectory model: statuses are not computed (see `fit trajectories fit`)")
        return
    for e in entries:
        click.echo(
            f"model #{e.id} ({e.kind}) for {'/'.join(e.measures)}, {'/'.join(e.raters)} ratings"
        )
        _show_model(e.model, False)


@trajectories.command("clear")
@click.option("--measure", default=None, help="Only this measure's model (default: all).")
@click.option("--rater", default=None, help="Only the model for this rater's ratings.")
@click.pass_context
@handle_errors
def trajectories_clear(ctx: click.Context, measure: str | None, rater: str | None) -> None:
    """Switch models off (they stay stored); their statuses go away at the next sync."""
    config = _config(ctx)
    store = Store.open(config.store_path)
    try:
        changed = store.clear_model(measure.upper() if measure else None, rater)
        if changed:
            store.mark_all_dirty()
    finally:
        store.close()
    click.echo(f"{changed} model(s) switched off" if changed else "no active model")


def _show_model(model: Any, as_json: bool) -> None:
    if as_json:
        echo_json(model.to_dict())
        return
    rows = model.describe()
    if not rows:
        click.echo("the model is empty")
        return
    keys = list(rows[0])
    click.echo("  ".join(f"{k:>10}" for k in keys))
    for r in rows:
        click.echo("  ".join(f"{_cell(r.get(k)):>10}" for k in keys))


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


# --- stats ------------------------------------------------------------------------------------


@click.command("stats")
@click.option("--by", type=click.Choice(GROUP_BY), default=None, help="Group the figures.")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Only episodes that started on or after this date.",
)
@click.option("--min-n", default=10, show_default=True, help="Groups below this are marked.")
@click.option(
    "--ended-only",
    is_flag=True,
    help="Outcome figures of ended episodes only (the population published benchmarks use).",
)
@as_of_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print as CSV.")
@click.pass_context
@handle_errors
def stats(
    ctx: click.Context,
    by: str | None,
    since: dt.datetime | None,
    min_n: int,
    ended_only: bool,
    as_of: dt.datetime | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Agency statistics: outcomes, effect sizes, alliance, endings (ICCE indices).

    Groups with fewer than --min-n episodes are shown and marked "small", never hidden.
    Outcome figures are of every episode with two or more ORS, open or ended
    (outcome_population "all"), or of ended ones with --ended-only ("ended").
    """
    config = _config(ctx)
    registry = App.of(ctx).registry
    today, given = _as_of(config, as_of)
    store = Store.open(config.store_path)
    try:
        summaries = list(
            _summaries(
                store, config, registry.measures, today, since.date() if since else None, given
            )
        )
    finally:
        store.close()
    rows = agency_stats(
        summaries,
        by=by,  # type: ignore[arg-type]
        min_n=min_n,
        ended_only=ended_only,
        clinical_comparison=config.settings.clinical_comparison,
    )
    data = [{**r.as_dict(ndigits=3), "as_of": today.isoformat()} for r in rows]
    if as_json:
        echo_json(data)
    elif as_csv:
        click.echo(_to_csv(data), nl=False)
    else:
        _print_stats(data)
        if by is not None and len(rows) == 1:
            click.echo(f"no episode has a {by}: no groups, only the whole agency", err=True)
    sys.exit(int(ExitCode.OK))


def _summaries(
    store: Store,
    config: Config,
    measures: Any,
    today: dt.date,
    since: dt.date | None,
    given: dt.date | None = None,
) -> Iterator[EpisodeSummary]:
    for scored, context in _scored_clients(store, config, today, given):
        for view, latest in _views(scored):
            if since is not None and view.first_date < since:
                continue
            s = summarize(view, measures, config.settings, today, context=context, latest=latest)
            if s is not None:
                yield s


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        elif isinstance(v, list | tuple):
            out[key] = ";".join(str(x) for x in v)
        else:
            out[key] = v
    return out


def _to_csv(data: list[dict[str, Any]]) -> str:
    flat = [_flat(d) for d in data]
    keys: list[str] = []
    for row in flat:
        keys.extend(k for k in row if k not in keys)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(flat)
    return buf.getvalue()


def _print_stats(data: list[dict[str, Any]]) -> None:
    """The statistics as a person reads them: one block per group, words and percentages with the
    numbers behind them (`--json` and `--csv` keep every raw key for machines)."""
    for d in data:
        for line in stats_lines(d):
            click.echo(line)
        click.echo("")
    for line in COPYRIGHT_LINES:
        click.echo(line)


def _n(v: Any) -> str:
    return "-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def _num(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    text = f"{v:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.0"


def _pct(n: Any, pct: Any) -> str:
    return f"{_n(n):>5}  {_num(pct):>5} %" if pct is not None else f"{_n(n):>5}      -"


def _by_band(values: Any, digits: int | None = None) -> str:
    if not values:
        return ""
    shown = [
        f"{band} {_num(v, digits) if digits is not None else _n(v)}"
        for band, v in sorted(values.items())
    ]
    return " (" + ", ".join(shown) + ")"


def stats_lines(d: dict[str, Any]) -> list[str]:
    """The lines of one group of `fit stats` (see :func:`_print_stats`)."""
    title = "the whole agency" if d.get("by") == "all" else f"{d.get('by')} {d.get('group')}"
    lines = [f"== {title}, as of {d.get('as_of')}"]
    if d.get("small"):
        lines.append("   small group (fewer episodes than --min-n): read with care")
    lines.append(
        f"   clients {_n(d.get('n_clients'))}{_by_band(d.get('clients_by_age_band'))}; "
        f"episodes {_n(d.get('n_episodes'))}; collateral raters {_n(d.get('n_collateral'))}"
    )
    lines.append(
        f"   intake ORS mean {_num(d.get('mean_intake_ors'))}"
        f"{_by_band(d.get('mean_intake_ors_by_age_band'), 1)}; intake SRS mean "
        f"{_num(d.get('mean_intake_srs'))}; SRS mean {_num(d.get('mean_srs'))}"
    )
    lines.append(
        f"   sessions per episode {_num(d.get('mean_sessions'))}; "
        f"days per episode {_num(d.get('mean_days'), 0)}"
    )
    which = (
        "ended episodes" if d.get("outcome_population") == "ended" else "open and ended episodes"
    )
    lines.append(f"   outcomes of {_n(d.get('n_outcome'))} {which} (intake and a later ORS):")
    for label, key in (
        ("recovered", "recovered"),
        ("improved", "improved"),
        ("no reliable change", "no_change"),
        ("deteriorated", "deteriorated"),
    ):
        lines.append(f"     {label:<20}{_pct(d.get(f'n_{key}'), d.get(f'pct_{key}'))}")
    lines.append(
        f"     {'reliably improved':<20}{'':>5}  {_num(d.get('pct_reliably_improved')):>5} %"
        "   (published range 65-74 %)"
    )
    es = d.get("effect_size")
    if d.get("small"):
        lines.append("   effect sizes withheld: fewer episodes than --min-n")
    elif es is None:
        lines.append("   effect size: - (too few episodes)")
    else:
        lines.append(
            f"   effect size {es:.2f} [{_num(d.get('effect_size_ci_low'), 2)}, "
            f"{_num(d.get('effect_size_ci_high'), 2)}] (mean change / SD of intakes)"
        )
    sa = None if d.get("small") else d.get("severity_adjusted_effect_size")
    lines.append(
        f"   severity-adjusted effect size {_num(sa, 2)} "
        f"(n {_n(d.get('n_severity_adjusted'))}: clinical-range intakes only)"
    )
    if d.get("by") != "all" and not d.get("small") and d.get("residual_change") is not None:
        lines.append(
            f"   change against the agency (residual) {_num(d.get('residual_change'), 2)} "
            f"[{_num(d.get('residual_change_ci_low'), 2)}, "
            f"{_num(d.get('residual_change_ci_high'), 2)}] points (n {_n(d.get('n_residual'))})"
        )
    lines.append(
        f"   target reached: {_n(d.get('n_reached_target'))} of {_n(d.get('n_outcome'))} "
        f"({_num(d.get('pct_reached_target'))} %); closed cases "
        f"{_n(d.get('n_closed_reached_target'))} of {_n(d.get('n_closed_outcome'))} "
        f"({_num(d.get('pct_closed_reached_target'))} %; published range 64-74 %)"
    )
    lines.append(
        f"   endings: {_n(d.get('n_ended'))} ended; planned {_n(d.get('n_planned'))} "
        f"({_num(d.get('pct_planned'))} %), unplanned {_n(d.get('n_unplanned'))} "
        f"({_num(d.get('pct_unplanned'))} %)"
    )
    if d.get("n_ended_attendance"):
        lines.append(
            f"   dropouts (attendance data, {_n(d.get('n_ended_attendance'))} endings): "
            f"{_n(d.get('n_dropout'))} ({_num(d.get('pct_dropout'))} %)"
        )
    else:
        lines.append(
            "   dropouts: - (no attendance data: planned/unplanned is inferred from the target)"
        )
    for rater, c in sorted((d.get("collateral") or {}).items()):
        lines.append(
            f"   collateral {rater}: {_n(c.get('n_episodes'))} episodes, "
            f"{_n(c.get('n_outcome'))} with outcomes, mean intake ORS "
            f"{_num(c.get('mean_intake_ors'))}, mean change {_num(c.get('mean_change'))}, "
            f"reliably improved {_num(c.get('pct_reliably_improved'))} %"
        )
    return lines


CLINICAL_COMMANDS = (rules_cmd, trajectories, stats)
