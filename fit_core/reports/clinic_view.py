"""The words and numbers of the clinic report: summary cards and the two tables.

Pure functions over :class:`~fit_core.reports.clinic_data.ClinicData`; small groups are marked
(``small=True`` and a "small" badge), never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..agency import GroupStats
from .clinic_data import ClinicData

__all__ = ["ClinicRow", "ClinicTable", "clinic_cards", "clinic_tables", "group_name"]


@dataclass(frozen=True, slots=True)
class ClinicRow:
    name: str
    cells: tuple[str, ...]
    small: bool
    css: str


@dataclass(frozen=True, slots=True)
class ClinicTable:
    title: str
    columns: tuple[str, ...]
    rows: tuple[ClinicRow, ...]


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


def effect_text(g: GroupStats) -> str:
    """``0.95 [0.80, 1.10]`` (or ``—``)."""
    if g.effect_size is None:
        return "—"
    if g.effect_size_ci_low is None or g.effect_size_ci_high is None:
        return _f(g.effect_size, 2)
    return f"{_f(g.effect_size, 2)} [{_f(g.effect_size_ci_low, 2)}, {_f(g.effect_size_ci_high, 2)}]"


def group_name(g: GroupStats) -> str:
    """The row label: ``All`` for the agency row, else the group value."""
    return "All" if g.by == "all" else g.group


def clinic_cards(data: ClinicData) -> list[ClinicCard]:
    o = data.overall
    ended = o.n_planned + o.n_unplanned
    return [
        ClinicCard("Episodes", str(o.n_episodes), f"{o.n_clients} clients"),
        ClinicCard(
            "Effect size (95% CI)",
            _f(o.effect_size, 2),
            "—"
            if o.effect_size_ci_low is None
            else f"{_f(o.effect_size_ci_low, 2)} to {_f(o.effect_size_ci_high, 2)}",
            "st-blue",
        ),
        ClinicCard(
            "Reliably improved",
            _pct(o.pct_reliably_improved),
            f"of {o.n_outcome} with 2+ ORS",
            "st-green",
        ),
        ClinicCard(
            "Deteriorated", _pct(o.pct_deteriorated), f"{o.n_deteriorated} episodes", "st-red"
        ),
        ClinicCard("Mean SRS", _f(o.mean_srs), "alliance, all sessions"),
        ClinicCard(
            "Unplanned endings",
            _pct(o.pct_unplanned),
            f"of {ended} ended with a known ending" if ended else "no ended episodes",
            "st-orange",
        ),
    ]


OUTCOME_COLUMNS = (
    "Episodes",
    "Outcome n",
    "Recovered",
    "Improved",
    "No change",
    "Deteriorated",
    "Reached target",
    "Effect size [95% CI]",
    "Severity-adj. ES",
)
ALLIANCE_COLUMNS = (
    "Clients",
    "Collateral ratings",
    "Mean intake ORS",
    "Mean intake SRS",
    "Mean SRS",
    "Mean sessions",
    "Mean days",
    "Ended",
    "Planned",
    "Unplanned",
)


def _outcome_cells(g: GroupStats) -> tuple[str, ...]:
    return (
        str(g.n_episodes),
        str(g.n_outcome),
        _pct(g.pct_recovered),
        _pct(g.pct_improved),
        _pct(g.pct_no_change),
        _pct(g.pct_deteriorated),
        _pct(g.pct_reached_target),
        effect_text(g),
        _f(g.severity_adjusted_effect_size, 2),
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
        str(g.n_ended),
        _pct(g.pct_planned),
        _pct(g.pct_unplanned),
    )


def _row(g: GroupStats, cells: tuple[str, ...]) -> ClinicRow:
    css = "all" if g.by == "all" else ("small" if g.small else "")
    return ClinicRow(group_name(g), cells, g.small and g.by != "all", css)


def clinic_tables(data: ClinicData) -> list[ClinicTable]:
    """Outcomes, then alliance, sessions and endings: one row per group, "All" first."""
    label = data.by_label.capitalize()
    return [
        ClinicTable(
            "Outcomes",
            (label, *OUTCOME_COLUMNS),
            tuple(_row(g, _outcome_cells(g)) for g in data.rows),
        ),
        ClinicTable(
            "Alliance, sessions and endings",
            (label, *ALLIANCE_COLUMNS),
            tuple(_row(g, _alliance_cells(g)) for g in data.rows),
        ),
    ]
