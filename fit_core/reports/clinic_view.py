"""The words and numbers of the clinic report: summary cards and the tables.

Pure functions over :class:`~fit_core.reports.clinic_data.ClinicData`; small groups are marked
(``small=True`` and a "small" badge), never dropped; their effect sizes are withheld below the
minimum n (:func:`~fit_core.reports.clinic_data.effect_shown`), saying so in the cell.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..agency import GroupStats
from .clinic_data import ClinicData, effect_shown

__all__ = [
    "ClinicRow",
    "ClinicTable",
    "clinic_cards",
    "clinic_tables",
    "effect_text",
    "group_name",
]


@dataclass(frozen=True, slots=True)
class ClinicRow:
    name: str
    cells: tuple[str, ...]
    small: bool
    css: str


@dataclass(frozen=True, slots=True)
class ClinicTable:
    """One table: title, column headers (the first names the rows), rows and a note under it."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[ClinicRow, ...]
    note: str = ""
    key: str = ""


@dataclass(frozen=True, slots=True)
class ClinicCard:
    label: str
    value: str
    note: str = ""
    css: str = ""


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.0f} %"


def _f(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}f}".replace("-", "−")


def _signed(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v:+.{digits}f}".replace("-", "−")


def _withheld(n: int, min_n: int) -> str:
    return f"withheld (n={n} < {min_n})"


def effect_text(g: GroupStats, min_n: int = 0) -> str:
    """``0.95 [0.80, 1.10]``, ``withheld (n=3 < 10)`` below the minimum n, or ``—``."""
    if g.effect_size is None:
        return "—"
    if not effect_shown(g, min_n):
        return _withheld(g.n_outcome, min_n)
    if g.effect_size_ci_low is None or g.effect_size_ci_high is None:
        return _f(g.effect_size, 2)
    return f"{_f(g.effect_size, 2)} [{_f(g.effect_size_ci_low, 2)}, {_f(g.effect_size_ci_high, 2)}]"


def severity_text(g: GroupStats, min_n: int) -> str:
    """The severity-adjusted effect size with the n it rests on: ``0.12 (n=45)``."""
    if g.severity_adjusted_effect_size is None:
        return "—"
    if g.n_severity_adjusted < min_n:
        return _withheld(g.n_severity_adjusted, min_n)
    return f"{_f(g.severity_adjusted_effect_size, 2)} (n={g.n_severity_adjusted})"


def residual_text(g: GroupStats, min_n: int) -> str:
    """Change against the agency's line for the same intakes: ``+1.2 [−0.3, 2.7]`` points."""
    if g.residual_change is None:
        return "—"
    if g.n_residual < min_n:
        return _withheld(g.n_residual, min_n)
    if g.residual_change_ci_low is None or g.residual_change_ci_high is None:
        return _signed(g.residual_change)
    lo, hi = _signed(g.residual_change_ci_low), _signed(g.residual_change_ci_high)
    return f"{_signed(g.residual_change)} [{lo}, {hi}]"


def _share(k: int, n: int) -> str:
    return "—" if not n else f"{100 * k / n:.0f} % ({k}/{n})"


def group_name(g: GroupStats) -> str:
    """The row label: ``All`` for the agency row, else the group value."""
    return "All" if g.by == "all" else g.group


def clinic_cards(data: ClinicData) -> list[ClinicCard]:
    o = data.overall
    shown = effect_shown(o, data.min_n)
    pop = "ended, 2+ ORS" if data.ended_only else "2+ ORS"
    dropout = ClinicCard(
        "Dropout",
        _pct(o.pct_dropout),
        f"of {o.n_ended_attendance} ended with attendance data"
        if o.n_ended_attendance
        else "needs attendance data",
        "st-orange",
    )
    return [
        ClinicCard("Episodes", str(o.n_episodes), f"{o.n_clients} clients"),
        ClinicCard(
            "Effect size (95% CI)",
            _f(o.effect_size, 2) if shown else "—",
            (
                "—"
                if o.effect_size_ci_low is None
                else f"{_f(o.effect_size_ci_low, 2)} to {_f(o.effect_size_ci_high, 2)}"
            )
            if shown
            else _withheld(o.n_outcome, data.min_n),
            "st-blue",
        ),
        ClinicCard(
            "Reliably improved",
            _pct(o.pct_reliably_improved),
            f"of {o.n_outcome} with {pop}",
            "st-green",
        ),
        ClinicCard(
            "Deteriorated", _pct(o.pct_deteriorated), f"{o.n_deteriorated} episodes", "st-red"
        ),
        ClinicCard(
            "Closed cases at target",
            _pct(o.pct_closed_reached_target),
            f"of {o.n_closed_outcome} ended with 2+ ORS",
            "st-green",
        ),
        ClinicCard("Mean SRS", _f(o.mean_srs), "alliance, all sessions"),
        dropout,
    ]


CLASS_COLUMNS = (
    "Episodes",
    "Outcome n",
    "Recovered",
    "Improved",
    "No change",
    "Deteriorated",
    "Reached target",
)
EFFECT_COLUMNS = (
    "Outcome n",
    "Effect size [95% CI]",
    "Severity-adjusted ES (n)",
    "Change vs. agency, points [95% CI]",
    "Closed cases reaching target",
)
ALLIANCE_COLUMNS = (
    "Clients",
    "Collateral ratings",
    "Mean intake ORS",
    "Mean intake SRS",
    "Mean SRS",
    "Mean sessions",
    "Mean days",
)
ENDING_COLUMNS = (
    "Ended",
    "With attendance data",
    "Dropout",
    "Target reached",
    "Target not reached",
    "Target unknown",
)
COLLATERAL_COLUMNS = (
    "Rater",
    "Episodes",
    "Outcome n",
    "Mean intake ORS",
    "Mean change",
    "Reliably improved",
    "Deteriorated",
    "Effect size",
)


def _class_cells(g: GroupStats) -> tuple[str, ...]:
    return (
        str(g.n_episodes),
        str(g.n_outcome),
        _pct(g.pct_recovered),
        _pct(g.pct_improved),
        _pct(g.pct_no_change),
        _pct(g.pct_deteriorated),
        _pct(g.pct_reached_target),
    )


def _effect_cells(g: GroupStats, min_n: int) -> tuple[str, ...]:
    return (
        str(g.n_outcome),
        effect_text(g, min_n),
        severity_text(g, min_n),
        residual_text(g, min_n),
        _share(g.n_closed_reached_target, g.n_closed_outcome),
    )


def _alliance_cells(g: GroupStats) -> tuple[str, ...]:
    return (
        str(g.n_clients),
        str(g.n_collateral),
        _f(g.mean_intake_ors),
        _f(g.mean_intake_srs),
        _f(g.mean_srs),
        _f(g.mean_sessions),
        _f(g.mean_days, 0),
    )


def _ending_cells(g: GroupStats) -> tuple[str, ...]:
    e = g.endings
    return (
        str(g.n_ended),
        str(g.n_ended_attendance),
        _share(g.n_dropout, g.n_ended_attendance) if g.n_ended_attendance else "no data",
        _share(e.get("reached", 0), g.n_ended),
        _share(e.get("not_reached", 0), g.n_ended),
        _share(e.get("unknown", 0), g.n_ended),
    )


def _row(g: GroupStats, cells: tuple[str, ...]) -> ClinicRow:
    css = "all" if g.by == "all" else ("small" if g.small else "")
    return ClinicRow(group_name(g), cells, g.small and g.by != "all", css)


def _collateral_rows(data: ClinicData) -> tuple[ClinicRow, ...]:
    rows = []
    for g in data.rows:
        for rater, c in g.collateral.items():
            n = int(c["n_outcome"])
            es = c["effect_size"]
            es_text = (
                "—" if es is None else _withheld(n, data.min_n) if n < data.min_n else _f(es, 2)
            )
            cells = (
                rater.replace("_", " "),
                str(c["n_episodes"]),
                str(n),
                _f(c["mean_intake_ors"]),
                _signed(c["mean_change"]),
                _pct(c["pct_reliably_improved"]),
                _pct(c["pct_deteriorated"]),
                es_text,
            )
            rows.append(_row(g, cells))
    return tuple(rows)


def _srs_item_table(data: ClinicData) -> ClinicTable | None:
    if not data.srs_items:
        return None
    measures = list(data.overall.srs_item_means)
    if not measures:
        return None
    columns: list[str] = []
    keys: list[tuple[str, int]] = []
    for m in measures:
        labels = data.srs_labels.get(m) or tuple(
            f"Item {i + 1}" for i in range(len(data.overall.srs_item_means[m]))
        )
        for i, label in enumerate(labels):
            columns.append(f"{m}: {label}" if len(measures) > 1 else label)
            keys.append((m, i))

    def cells(g: GroupStats) -> tuple[str, ...]:
        out = []
        for m, i in keys:
            values = g.srs_item_means.get(m, ())
            out.append(_f(values[i], 2) if i < len(values) else "—")
        return tuple(out)

    return ClinicTable(
        f"Alliance by domain ({', '.join(measures)})",
        (data.by_label.capitalize(), *columns),
        tuple(_row(g, cells(g)) for g in data.rows),
        "Mean of each SRS domain (0–10) over the episodes' ratings that gave items, by the "
        "measure's short domain labels (the forms' wording is not shown). A domain that lags "
        "the others shows where to ask for feedback.",
        "srs-items",
    )


def clinic_tables(data: ClinicData) -> list[ClinicTable]:
    """Outcome classes, effect sizes, alliance and sessions, endings, collateral raters (when
    any) and SRS domains (when asked for): one row per group, "All" first."""
    label = data.by_label.capitalize()
    n = data.min_n
    tables = [
        ClinicTable(
            "Outcome classes",
            (label, *CLASS_COLUMNS),
            tuple(_row(g, _class_cells(g)) for g in data.rows),
            f"Outcome n: client-rated {data.population}. Percentages of outcome n. Reached "
            "target: a reliable improvement (5 points or more) from intake.",
            "classes",
        ),
        ClinicTable(
            "Effect sizes and targets",
            (label, *EFFECT_COLUMNS),
            tuple(_row(g, _effect_cells(g, n)) for g in data.rows),
            f"Effect sizes need at least {n} episodes (--min-n) and are withheld below. "
            "Severity-adjusted ES: only episodes with an intake in the clinical range and a "
            "trajectory model's expectation for their last session (n of them in brackets); "
            "mean of (latest ORS − expected) / SD of their intakes; 0 is as expected for this "
            "case mix. Change vs. agency: how many points more (or fewer) the group's episodes "
            "changed than the agency's episodes with the same intake (one line over the whole "
            "agency), with a 95% interval; no model needed. Closed cases reaching target: of "
            "the ended episodes with 2+ ORS, whatever the outcome population.",
            "effects",
        ),
        ClinicTable(
            "Alliance and sessions",
            (label, *ALLIANCE_COLUMNS),
            tuple(_row(g, _alliance_cells(g)) for g in data.rows),
            "Episodes are counted once per client and episode. Collateral ratings: rated "
            "episodes by a parent, teacher or other rater (their figures are in their own "
            "table, never mixed in).",
            "alliance",
        ),
        ClinicTable(
            "Endings",
            (label, *ENDING_COLUMNS),
            tuple(_row(g, _ending_cells(g)) for g in data.rows),
            "Ended episodes. Dropout (the client missed the last appointment(s) and did not "
            "come back) can only be seen with attendance data from a practice system; it is "
            "of the ended episodes that have it. Target not reached is not the same as "
            "dropout; target unknown: fewer than 2 ORS.",
            "endings",
        ),
    ]
    collateral = _collateral_rows(data)
    if collateral:
        tables.append(
            ClinicTable(
                "Collateral raters (their own ratings)",
                (label, *COLLATERAL_COLUMNS),
                collateral,
                "Outcome figures from each collateral rater's own ORS/CORS ratings of the client, "
                f"kept apart from the client's. Effect sizes below {n} episodes are withheld.",
                "collateral",
            )
        )
    items = _srs_item_table(data)
    if items is not None:
        tables.append(items)
    return tables
