"""The clinic report's charts (matplotlib → inline SVG), one row per group, "All" on top.

- outcome classes: stacked horizontal bars (recovered, improved, no reliable change,
  deteriorated; deteriorated also hatched) as % of the outcome episodes;
- effect sizes: a dot per group with its 95% CI as error bars, the agency's value as a
  dotted reference line; withheld (no dot, a note instead) for groups below the minimum n of
  outcome episodes (:func:`~fit_core.reports.clinic_data.effect_shown`), so a tiny group's
  wild estimate neither misleads nor stretches the axis;
- distribution of change: a histogram, bars coloured (and hatched) by region;
- change per group: box plots with every episode as a dot, the no-change zone shaded;
- alliance: mean SRS per group against the 36 line;
- endings: target reached / not reached / dropout (attendance data only) / target unknown as
  % of ended episodes.

Small groups (fewer than ``min_n`` episodes) are drawn like the others but marked: "small" in
their label, lighter hatched bars and hollow markers. Nothing is hidden.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..agency import GroupStats
from .clinic_data import ClinicData, effect_shown
from .clinic_view import group_name
from .style import CLASS_STYLE, ENDING_STYLE, RC_ZONE_COLOUR, VARIANTS, Variant
from .svg import chart_style, to_svg

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FIGURES", "TITLES", "clinic_svgs", "group_label"]

_SMALL_ALPHA = 0.55
_SMALL_HATCH = "////"


def group_label(g: GroupStats, *, n: int | None = None) -> str:
    """``T03 (n=45)``, ``T05 (n=7, small)`` or ``All (n=812)``."""
    count = g.n_episodes if n is None else n
    small = ", small" if g.small and g.by != "all" else ""
    return f"{group_name(g)} (n={count}{small})"


def _frame(
    v: Variant,
    *,
    width: float,
    rows: int,
    labels: Sequence[str] = (),
    legend_rows: int = 0,
    axes_height: float | None = None,
) -> Figure:
    """A figure with fixed margins (in inches) for row labels, the x axis and a legend.

    Constrained layout would fit them too, at twice the drawing time.
    """
    from matplotlib.figure import Figure

    per = 0.42 if v.name == "wide" else 0.46
    axes_h = axes_height if axes_height is not None else per * rows + 0.15
    longest = max((len(s) for s in labels), default=0)
    left = min(0.3 + longest * v.font_size * 0.56 / 72, 0.45 * width) if labels else 0.75
    bottom = 0.66 + (0.12 + 0.3 * legend_rows if legend_rows else 0.0)
    top = 0.3
    height = top + axes_h + bottom
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(
        left=left / width, right=1 - 0.25 / width, top=1 - top / height, bottom=bottom / height
    )
    return fig


def _legend(fig: Figure, handles: Sequence[object], ncol: int) -> None:
    fig.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.04 / fig.get_figheight()),
        ncol=ncol,
        handlelength=2.0,
        columnspacing=1.2,
    )


def _rows_axes(fig: Figure, labels: Sequence[str]) -> tuple[Axes, list[float]]:
    ax = fig.add_subplot()
    ys = [float(len(labels) - 1 - i) for i in range(len(labels))]
    ax.set_yticks(ys)
    ax.set_yticklabels(labels)
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.tick_params(axis="y", length=0)
    return ax, ys


def _mark_small(ax: Axes, rows: Sequence[GroupStats]) -> None:
    """Small groups' tick labels in italics, the All row in bold."""
    for tick, g in zip(ax.get_yticklabels(), rows, strict=False):
        if g.by == "all":
            tick.set_fontweight("bold")
        elif g.small:
            tick.set_fontstyle("italic")
            tick.set_color("#7A5600")


def _small_outline(ax: Axes, x0: float, x1: float, y: float, height: float = 0.66) -> None:
    """A dashed frame around a small group's bar: marked, not hidden."""
    from matplotlib.patches import Rectangle

    ax.add_patch(
        Rectangle(
            (x0, y - height / 2 - 0.04),
            x1 - x0,
            height + 0.08,
            fill=False,
            edgecolor="#7A5600",
            linestyle=(0, (4, 2)),
            linewidth=1.4,
            zorder=5,
            clip_on=False,
        )
    )


def _stacked(
    rows: Sequence[GroupStats],
    parts: Sequence[tuple[str, Callable[[GroupStats], float | None]]],
    styles: dict[str, tuple[str, str, str]],
    v: Variant,
    xlabel: str,
    count: Callable[[GroupStats], int],
    empty: str,
) -> Figure:
    """Stacked horizontal 0–100 % bars, one per row, with the share written in wide segments."""
    from matplotlib.patches import Patch

    labels = [group_label(g, n=count(g)) for g in rows]
    ncol = 4 if v.name == "wide" else 2
    fig = _frame(
        v, width=v.width, rows=len(rows), labels=labels, legend_rows=-(-len(parts) // ncol)
    )
    ax, ys = _rows_axes(fig, labels)
    for g, y in zip(rows, ys, strict=True):
        left = 0.0
        if count(g) == 0:
            ax.text(1, y, empty, va="center", ha="left", color="#555555")
            continue
        for key, get in parts:
            pct = get(g) or 0.0
            colour, hatch, _label = styles[key]
            alpha = _SMALL_ALPHA if g.small and g.by != "all" else 1.0
            ax.barh(
                y,
                pct,
                left=left,
                height=0.66,
                color=colour,
                alpha=alpha,
                hatch=hatch or None,
                edgecolor="white",
                linewidth=0.8,
            )
            if pct >= (9 if v.name == "wide" else 14):
                dark = colour in ("#BBBBBB", "#56B4E9")
                ax.text(
                    left + pct / 2,
                    y,
                    f"{pct:.0f}%",
                    ha="center",
                    va="center",
                    color="#1A1A1A" if dark else "white",
                    fontsize=v.font_size * 0.85,
                    fontweight="bold",
                    bbox={"boxstyle": "round,pad=0.15", "fc": colour, "ec": "none"}
                    if hatch
                    else None,
                )
            left += pct
        if g.small and g.by != "all":
            _small_outline(ax, 0, 100, y)
    ax.set_xlim(0, 100)
    ax.set_xlabel(xlabel)
    ax.spines["left"].set_visible(False)
    _mark_small(ax, rows)
    handles = [
        Patch(facecolor=styles[k][0], hatch=styles[k][1] or None, label=styles[k][2])
        for k, _get in parts
    ]
    _legend(fig, handles, ncol)
    return fig


def classes_figure(data: ClinicData, v: Variant) -> Figure:
    parts: list[tuple[str, Callable[[GroupStats], float | None]]] = [
        ("recovered", lambda g: g.pct_recovered),
        ("improved", lambda g: g.pct_improved),
        ("no_change", lambda g: g.pct_no_change),
        ("deteriorated", lambda g: g.pct_deteriorated),
    ]
    return _stacked(
        data.rows,
        parts,
        CLASS_STYLE,
        v,
        "% of episodes with 2+ ORS",
        lambda g: g.n_outcome,
        "no episodes with 2+ ORS",
    )


def endings_figure(data: ClinicData, v: Variant) -> Figure:
    def share(key: str) -> Callable[[GroupStats], float | None]:
        def get(g: GroupStats) -> float | None:
            if not g.n_ended:
                return None
            return 100.0 * g.endings.get(key, 0) / g.n_ended

        return get

    keys = ["reached", "not_reached", "dropout", "unknown"]
    if not any(g.n_ended_attendance for g in data.rows):
        keys.remove("dropout")  # not knowable without attendance data: not drawn as 0 %
    parts = [(k, share(k)) for k in keys]
    return _stacked(
        data.rows,
        parts,
        ENDING_STYLE,
        v,
        "% of ended episodes",
        lambda g: g.n_ended,
        "no ended episodes",
    )


def effect_figure(data: ClinicData, v: Variant) -> Figure:
    from matplotlib.lines import Line2D

    rows = data.rows
    labels = [group_label(g, n=g.n_outcome) for g in rows]
    fig = _frame(
        v, width=v.width, rows=len(rows), labels=labels, legend_rows=1 if v.name == "wide" else 2
    )
    ax, ys = _rows_axes(fig, labels)
    lows: list[float] = [0.0]
    highs: list[float] = [0.0]
    notes: list[tuple[float, str]] = []
    for g, y in zip(rows, ys, strict=True):
        if g.effect_size is None:
            notes.append((y, "not enough data"))
            continue
        if not effect_shown(g, data.min_n):
            notes.append((y, f"withheld: n={g.n_outcome} < {data.min_n}"))
            continue
        lo = g.effect_size_ci_low if g.effect_size_ci_low is not None else g.effect_size
        hi = g.effect_size_ci_high if g.effect_size_ci_high is not None else g.effect_size
        lows.append(lo)
        highs.append(hi)
        is_all = g.by == "all"
        small = g.small and not is_all
        colour = "#1A1A1A" if is_all else "#0072B2"
        ax.errorbar(
            g.effect_size,
            y,
            xerr=[[g.effect_size - lo], [hi - g.effect_size]],
            fmt="D" if is_all else "o",
            markersize=9 if is_all else 8,
            color=colour,
            ecolor=colour,
            elinewidth=2.0,
            capsize=5,
            markerfacecolor="white" if small else colour,
            markeredgewidth=2.0,
            linestyle="none",
            gid="effect-point-" + re.sub(r"[^A-Za-z0-9_-]", "_", group_name(g)),
        )
        if v.value_labels:
            ax.annotate(
                f"{g.effect_size:.2f}",
                (hi, y),
                xytext=(8, 0),
                textcoords="offset points",
                va="center",
                fontsize=v.font_size * 0.85,
            )
    overall = data.overall.effect_size
    if overall is not None and effect_shown(data.overall, data.min_n):
        ax.axvline(overall, color="#1A1A1A", linestyle=(0, (2, 3)), lw=1.2)
    ax.axvline(0, color="#888888", lw=1.0)
    span = max(highs) - min(lows)
    x0, x1 = min(lows) - 0.08 * span - 0.05, max(highs) + 0.22 * span + 0.05
    ax.set_xlim(x0, x1)
    for y, text in notes:
        ax.text(
            x0 + 0.02 * (x1 - x0),
            y,
            text,
            va="center",
            ha="left",
            color="#7A5600",
            fontsize=v.font_size * 0.85,
            fontstyle="italic",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
            gid="effect-withheld",
        )
    ax.set_xlabel(
        "Pre–post effect size d (mean change / SD of intake), 95% CI"
        if v.name == "wide"
        else "Effect size d, 95% CI"
    )
    ax.spines["left"].set_visible(False)
    ax.grid(axis="x", color="#E3E3E3")
    ax.set_axisbelow(True)
    _mark_small(ax, rows)
    handles = [
        Line2D([], [], marker="D", color="#1A1A1A", linestyle="none", label="All (agency)"),
        Line2D([], [], marker="o", color="#0072B2", linestyle="none", label="Group"),
    ]
    # a small group (fewer than min_n episodes) has fewer than min_n outcome episodes too, so
    # its effect size is always withheld: there is no "small group" marker to explain
    _legend(fig, handles, 2)
    return fig


def change_figure(data: ClinicData, v: Variant) -> Figure:
    from matplotlib.patches import Patch

    fig = _frame(
        v,
        width=v.width / 2 if v.name == "wide" else v.width,
        rows=0,
        legend_rows=1,
        axes_height=2.3,
    )
    ax = fig.add_subplot()
    rc = data.rc
    changes = data.changes
    if not changes:
        ax.text(0.5, 0.5, "no episodes with 2+ ORS", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    lo = math.floor(min(changes)) - 1
    hi = math.floor(max(changes)) + 2
    edges = list(range(lo, hi))
    counts = {k: [0] * len(edges) for k in ("deteriorated", "no_change", "improved")}
    for c in changes:
        key = "deteriorated" if c <= -rc + 1e-9 else ("improved" if c >= rc - 1e-9 else "no_change")
        counts[key][min(math.floor(c) - lo, len(edges) - 1)] += 1
    bottom = [0] * len(edges)
    for key, ns in counts.items():
        colour, hatch, _label = CLASS_STYLE[key]
        ax.bar(
            edges,
            ns,
            width=1,
            bottom=bottom,
            align="edge",
            color=colour,
            hatch=hatch or None,
            edgecolor="white",
            linewidth=0.5,
        )
        bottom = [b + n for b, n in zip(bottom, ns, strict=True)]
    for x in (-rc, rc):
        ax.axvline(x, color="#333333", linestyle=(0, (4, 2)), lw=1.3)
    ax.set_xlabel("Change from intake to latest ORS (points)")
    ax.set_ylabel("Episodes")
    handles = [
        Patch(facecolor=CLASS_STYLE[k][0], hatch=CLASS_STYLE[k][1] or None, label=label)
        for k, label in (
            ("deteriorated", f"≤ −{rc:g}"),
            ("no_change", f"within ±{rc:g}"),
            ("improved", f"≥ +{rc:g}"),
        )
    ]
    _legend(fig, handles, 3)
    return fig


def alliance_figure(data: ClinicData, v: Variant) -> Figure:
    rows = data.rows
    labels = [group_label(g) for g in rows]
    width = v.width / 2 if v.name == "wide" else v.width
    fig = _frame(v, width=width, rows=len(rows), labels=labels)
    ax, ys = _rows_axes(fig, labels)
    values = [g.mean_srs for g in rows if g.mean_srs is not None]
    floor = 30.0 if not values or min(values) >= 31 else float(int(min(values) // 5 * 5))
    for g, y in zip(rows, ys, strict=True):
        if g.mean_srs is None:
            ax.text(floor + 0.2, y, "no SRS", va="center", color="#555555")
            continue
        small = g.small and g.by != "all"
        ax.barh(
            y,
            g.mean_srs - floor,
            left=floor,
            height=0.62,
            color="#1A1A1A" if g.by == "all" else "#0072B2",
            alpha=_SMALL_ALPHA if small else 1.0,
            hatch=_SMALL_HATCH if small else None,
            edgecolor="white",
        )
        ax.text(
            g.mean_srs + 0.12,
            y,
            f"{g.mean_srs:.1f}",
            va="center",
            ha="left",
            color="#1A1A1A",
            fontsize=v.font_size * 0.85,
            fontweight="bold",
        )
        if small:
            _small_outline(ax, floor, g.mean_srs, y, 0.62)
    ax.axvline(36, color="#333333", linestyle=(0, (6, 3)), lw=1.6)
    ax.annotate(
        "36",
        (36, 1),
        xycoords=("data", "axes fraction"),
        xytext=(0, 3),
        textcoords="offset points",
        ha="center",
        fontweight="bold",
    )
    ax.set_xlim(floor, 41)
    ax.set_xticks(range(int(floor), 41, 2))
    ax.set_xlabel(f"Mean SRS total (axis from {floor:g})")
    ax.spines["left"].set_visible(False)
    _mark_small(ax, rows)
    return fig


def spread_figure(data: ClinicData, v: Variant) -> Figure:
    groups = [g for g in data.groups if data.changes_by_group.get(g.group)]
    if not groups:
        groups = [data.overall]
    series = [
        list(data.changes_by_group.get(g.group, ())) if g.by != "all" else list(data.changes)
        for g in groups
    ]
    labels = [group_label(g, n=len(s)) for g, s in zip(groups, series, strict=True)]
    fig = _frame(v, width=v.width, rows=len(groups), labels=labels)
    ax, ys = _rows_axes(fig, labels)
    rc = data.rc
    ax.axvspan(-rc, rc, color=RC_ZONE_COLOUR, lw=0, zorder=0)
    ax.axvline(0, color="#888888", lw=1.0, zorder=1)
    ax.boxplot(
        series,
        positions=ys,
        orientation="horizontal",
        widths=0.55,
        showfliers=False,
        patch_artist=True,
        boxprops={"facecolor": "white", "edgecolor": "#333333", "linewidth": 1.3},
        medianprops={"color": "#D55E00", "linewidth": 2.4},
        whiskerprops={"color": "#333333"},
        capprops={"color": "#333333"},
        zorder=2,
    )
    ax.set_yticks(ys)
    ax.set_yticklabels(labels)
    ax.set_ylim(-0.6, len(labels) - 0.4)
    rng = random.Random(0)
    for g, s, y in zip(groups, series, ys, strict=True):
        jitter = [y + rng.uniform(-0.22, 0.22) for _ in s]
        small = g.small and g.by != "all"
        ax.scatter(
            s,
            jitter,
            rasterized=len(s) > 100,  # thousands of dots: one embedded image, not SVG nodes
            s=9 if len(s) > 60 else 16,
            facecolors="none" if small else "#0072B2",
            edgecolors="#0072B2",
            alpha=0.45 if len(s) > 60 else 0.8,
            linewidths=0.7,
            zorder=3,
        )
    ax.set_xlabel("Change from intake to latest ORS (points)")
    ax.spines["left"].set_visible(False)
    _mark_small(ax, groups)
    return fig


FIGURES: dict[str, Callable[[ClinicData, Variant], Figure]] = {
    "classes": classes_figure,
    "effect": effect_figure,
    "change": change_figure,
    "spread": spread_figure,
    "alliance": alliance_figure,
    "endings": endings_figure,
}
TITLES: dict[str, str] = {
    "classes": "Outcome classes per group",
    "effect": "Effect sizes with 95% confidence intervals",
    "change": "Distribution of change",
    "spread": "Change per group",
    "alliance": "Alliance: mean SRS per group",
    "endings": "Endings and dropout",
}


#: charts drawn half-width on wide screens: one drawing serves phones too
HALF_WIDTH = frozenset({"change", "alliance"})


def clinic_svgs(
    data: ClinicData, variants: Sequence[Variant] = VARIANTS, *, standalone: bool = False
) -> dict[str, str]:
    """Every clinic chart as SVG text, keyed ``<chart>_<variant>`` (e.g. ``classes_wide``).

    Half-width charts (:data:`HALF_WIDTH`) are drawn in the first variant only.
    """
    out: dict[str, str] = {}
    for key, draw in FIGURES.items():
        for v in variants[:1] if key in HALF_WIDTH else variants:
            chart_id = f"{key}-{v.name}"
            with chart_style(v.font_size, chart_id):
                fig = draw(data, v)
                if standalone:
                    fig.suptitle(TITLES[key], x=0.02, ha="left", fontweight="bold")
                out[f"{key}_{v.name}"] = to_svg(fig, chart_id, TITLES[key], standalone=standalone)
    return out
