"""The client charts: ORS by session and SRS by session, drawn with matplotlib as inline SVG.

Input is a :class:`fit_core.reports.client_data.ChartData` (decided elsewhere, tested without
drawing); this module only draws it. What the ORS chart shows, back to front:

- the reliable-change zone (intake ± RC, pale blue): inside it, no reliable change yet;
- the trajectory model's expected range (pale green band), expected line (dashed green) and
  severe line (dotted vermillion), lighter where projected past the last session;
- the clinical cutoff for the client's age band (dashed dark line, labelled on the chart);
- one line per rater (the client solid blue; collateral raters in other colours, dash styles
  and marker shapes); the primary rater's points coloured *and shaped* by status when a model
  exists; each point's total written above it on wide charts;
- flags: one numbered tag per alert above the plot, at the session where it holds now, with a
  bracket back to the session where its run began, packed into lanes so no two tags overlap
  (:mod:`.lanes`); a ring around each flagged point; the numbers refer to the list under the
  charts.

The SRS chart shows the 36 cutoff with the zone below it shaded, one line per rater and its
flags the same way.

Layout is fixed in inches (no constrained layout: it doubles the drawing time), and the legend
is HTML under the chart (:mod:`.legend`); only a standalone SVG (``--format svg``) draws the
legend and a title into the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..exact import show
from .client_data import ChartData, Line
from .lanes import ROW_PT, TAG_FONT, TAG_PAD, PlacedTag, cutoff_spot, place_tags, tag_rows
from .legend import MPL_DASH, LegendItem, chart_legend
from .style import (
    BAND_COLOUR,
    CUTOFF_COLOUR,
    EXPECTED_COLOUR,
    MARKER_STYLE,
    RATER_STYLES,
    RC_ZONE_COLOUR,
    SEVERE_COLOUR,
    SEVERITY_STYLE,
    SRS_LOW_COLOUR,
    Variant,
)
from .svg import chart_style, to_svg

if TYPE_CHECKING:  # pragma: no cover
    import datetime as dt

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SEVERITY_RANK = {"alert": 0, "warning": 1, "info": 2}


def _num(v: float) -> str:
    return f"{v:g}" if float(v).is_integer() else f"{v:.1f}"


def _total(v: float) -> str:
    """A total as written on the chart: as everywhere else on the page (one decimal, two when
    the score has them: :func:`fit_core.exact.show`)."""
    return show(v)


@dataclass(frozen=True, slots=True)
class Layout:
    """Figure size and axes margins, in inches."""

    width: float
    height: float
    left: float
    right: float
    top: float
    bottom: float

    def apply(self, fig: Figure) -> None:
        fig.subplots_adjust(
            left=self.left / self.width,
            right=1 - self.right / self.width,
            top=1 - self.top / self.height,
            bottom=self.bottom / self.height,
        )


def dated(chart: ChartData, v: Variant) -> bool:
    """Dates under the session numbers: wide charts of up to 12 sessions (not the printed SRS
    chart: the ORS chart above it and the table carry them)."""
    if chart.x_max > 12 or v.name == "narrow":
        return False
    return not (v.name == "print" and chart.family == "SRS")


def _left(chart: ChartData, v: Variant) -> float:
    return (0.72 if chart.family == "ORS" else 0.88) + (0.12 if v.name == "narrow" else 0.0)


RIGHT_MARGIN = 0.18


def flag_tags(chart: ChartData, v: Variant) -> list[PlacedTag]:
    """The chart's flag tags, placed in lanes for this drawing's width (:mod:`.lanes`)."""
    axes_w = v.width - _left(chart, v) - RIGHT_MARGIN
    return place_tags(chart.runs, chart.x_max, axes_w, v.font_size)


def _row_in(v: Variant) -> float:
    return v.font_size * ROW_PT / 72


def layout(chart: ChartData, v: Variant, *, legend_items: int = 0, title: bool = False) -> Layout:
    """Margins for the flag lanes, two-line date ticks, axis labels and (standalone) a legend."""
    axes_h = {
        ("ORS", "wide"): 2.85,
        ("ORS", "narrow"): 3.5,
        ("ORS", "print"): 2.2,
        ("SRS", "wide"): 1.9,
        ("SRS", "narrow"): 2.4,
        ("SRS", "print"): 1.05,
    }[(chart.family, v.name)]
    rows = tag_rows(flag_tags(chart, v))
    top = 0.2 + rows * _row_in(v) if rows else 0.3  # room for a value label at 40
    top += 0.42 if title else 0.0
    bottom = (0.5 if dated(chart, v) else 0.32) + 0.3
    if legend_items:
        n_rows = -(-legend_items // max(1, v.legend_cols))
        bottom += 0.12 + 0.27 * n_rows
    left = _left(chart, v)
    return Layout(v.width, top + axes_h + bottom, left, RIGHT_MARGIN, top, bottom)


def _x_axis(ax: Axes, chart: ChartData, dates: Mapping[int, dt.date], v: Variant) -> None:
    ticks = list(range(1, chart.x_max + 1))
    step = 1 if len(ticks) <= (10 if v.name == "narrow" else 20) else 2
    shown = ticks[::step]
    labels = [str(k) for k in shown]
    if dated(chart, v):
        labels = []
        for k in shown:
            d = dates.get(k)
            labels.append(f"{k}\n{d.day} {_MONTHS[d.month]}" if d else str(k))
    ax.set_xticks(shown, labels)  # always both: a reused axes must not keep old labels
    ax.set_xlim(0.5, chart.x_max + 0.5)
    ax.set_xlabel("Session")


def mark_scale(chart: ChartData, v: Variant) -> float:
    """How much to shrink markers and rings so neighbouring sessions' marks stay apart (1 when
    a session has 16 points of width or more: desktop; about 0.7 for 20 sessions on a phone)."""
    per_session = (v.width - _left(chart, v) - RIGHT_MARGIN) * 72 / max(chart.x_max, 1)
    return max(0.55, min(1.0, per_session / 16))


def _draw_line(ax: Axes, line: Line, index: int, v: Variant, scale: float = 1.0) -> None:
    colour, dash, marker = RATER_STYLES[index % len(RATER_STYLES)]
    xs = [p.session for p in line.points]
    ys = [p.total for p in line.points]
    by_status = line.primary and line.has_status
    lw = 2.6 if line.primary else 2.0
    ax.plot(
        xs,
        ys,
        color=colour,
        linestyle=dash,
        linewidth=lw,
        marker=None if by_status else marker,
        markersize=8 * scale,
        markerfacecolor=colour if line.primary else "white",
        markeredgecolor=colour,
        markeredgewidth=1.8,
        zorder=4,
        clip_on=False,  # a point at the last session is never cut at the plot's edge
    )
    if by_status:
        for key, (scolour, smarker, _words) in MARKER_STYLE.items():
            pts = [p for p in line.points if p.marker == key]
            if not pts:
                continue
            ax.scatter(
                [p.session for p in pts],
                [p.total for p in pts],
                marker=smarker,
                s=95 * scale * scale,
                c=scolour,
                edgecolors="#1A1A1A",
                linewidths=0.9,
                zorder=5,
                clip_on=False,
            )
    if line.primary and v.value_labels:
        for p in line.points:
            ax.annotate(
                _total(p.total),
                (p.session, p.total),
                # above the ring of a flagged point, not on it
                xytext=(0, 9 + (4 * scale if p.flags else 0)),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=v.font_size * 0.85,
                color="#1A1A1A",
                bbox={"boxstyle": "round,pad=0.08", "fc": "white", "ec": "none", "alpha": 0.75},
                zorder=7,
            )


def _flags(ax: Axes, chart: ChartData, v: Variant) -> None:
    """Rings around flagged points, and one numbered tag per alert in the lanes above."""
    scale = mark_scale(chart, v)
    for line in chart.lines:
        pts = [p for p in line.points if p.flags]
        if pts:
            ax.scatter(
                [p.session for p in pts],
                [p.total for p in pts],
                s=330 * scale * scale,
                facecolors="none",
                edgecolors="#1A1A1A",
                linewidths=1.6 if scale > 0.8 else 1.2,
                zorder=6,
                clip_on=False,
            )
    tags = flag_tags(chart, v)
    if not tags:
        return
    ax.annotate(
        "Flags",
        xy=(0, 1),
        xycoords="axes fraction",
        xytext=(-6, 7),
        textcoords="offset points",
        ha="right",
        va="bottom",
        fontsize=v.font_size * 0.9,
        color="#333333",
        annotation_clip=False,
    )
    for tag in tags:
        _tag(ax, tag, v)


def tag_label(numbers: Sequence[int]) -> str:
    """``1`` or ``2,5``: rule keys as written in the scores table's Flags column."""
    return ",".join(str(n) for n in numbers)


def _tag(ax: Axes, tag: PlacedTag, v: Variant) -> None:
    """One alert: its tag at ``tag.x`` in lane ``tag.row``, a bracket back to its first session."""
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    face, text_colour, _word = SEVERITY_STYLE.get(tag.run.severity, SEVERITY_STYLE["info"])
    size = v.font_size * TAG_FONT
    base = 7 + tag.row * v.font_size * ROW_PT  # points above the plot
    if tag.first < tag.last:
        # the bracket: a line at the tag's height from the run's first session to the tag,
        # with a tick where the run began
        mid = (base + size * (0.5 + TAG_PAD)) / 72
        trans = blended_transform_factory(ax.transData, ax.transAxes) + ScaledTranslation(
            0, mid, ax.figure.dpi_scale_trans
        )
        ax.plot(
            [tag.first, tag.x],
            [1, 1],
            transform=trans,
            color="#1A1A1A",
            linewidth=1.3,
            marker="|",
            markevery=[0],
            markersize=9,
            markeredgewidth=1.6,
            clip_on=False,
            zorder=7,
            gid=f"flagrun-{tag.run.number}-{tag.first}-{tag.last}",
        )
    ax.annotate(
        tag.label,
        xy=(tag.x, 1),
        xycoords=("data", "axes fraction"),
        xytext=(0, base),
        textcoords="offset points",
        ha="center",
        va="bottom",
        fontsize=size,
        fontweight="bold",
        color=text_colour,
        bbox={
            "boxstyle": f"{'square' if tag.run.severity == 'alert' else 'round'},pad={TAG_PAD}",
            "fc": face,
            "ec": "#1A1A1A",
            "lw": 0.9,
        },
        annotation_clip=False,
        zorder=8,
        gid=f"flagtag-{tag.run.number}-{tag.first}-{tag.last}",
    )


def _cutoff_lines(
    ax: Axes, chart: ChartData, v: Variant, lay: Layout, ylim: tuple[float, float]
) -> None:
    """The cutoff lines, each labelled where no point or value label is (:func:`cutoff_spot`)."""
    axes_w = lay.width - lay.left - lay.right
    axes_h = lay.height - lay.top - lay.bottom
    for c in chart.cutoffs:
        ax.axhline(c.value, color=CUTOFF_COLOUR, linestyle=(0, (6, 3)), linewidth=1.7, zorder=3)
        text = f"cutoff {_num(c.value)}"
        left, where = cutoff_spot(
            chart,
            c.value,
            text,
            axes_width_in=axes_w,
            axes_height_in=axes_h,
            ylim=ylim,
            font_pt=v.font_size,
            value_labels=v.value_labels,
        )
        ax.annotate(
            text,
            xy=(left, c.value),
            xycoords=("axes fraction", "data"),
            xytext=(4, 3 if where == "above" else -3),
            textcoords="offset points",
            ha="left",
            va="bottom" if where == "above" else "top",
            gid=f"cutoff-label-{where}",
            fontsize=v.font_size * 0.88,
            fontweight="bold",
            color=CUTOFF_COLOUR,
            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
            zorder=7,
        )


def _expected(ax: Axes, chart: ChartData) -> None:
    band = chart.band
    if not band:
        return
    seen = [b for b in band if not b.projected]
    ahead = [b for b in band if b.projected]
    if seen and ahead:
        ahead = [seen[-1], *ahead]
    for part, alpha in ((seen, 0.95), (ahead, 0.45)):
        if not part:
            continue
        xs = [b.session for b in part]
        ax.fill_between(
            xs, [b.low for b in part], [b.high for b in part], color=BAND_COLOUR, alpha=alpha, lw=0
        )
        ax.plot(
            xs,
            [b.expected for b in part],
            color=EXPECTED_COLOUR,
            linestyle=(0, (4, 2)),
            linewidth=1.7,
            alpha=1.0 if alpha > 0.5 else 0.6,
            zorder=2,
        )
        sev = [(b.session, b.severe) for b in part if b.severe is not None]
        if sev:
            ax.plot(
                [session for session, _ in sev],
                [severe for _, severe in sev],
                color=SEVERE_COLOUR,
                linestyle=(0, (1, 2)),
                linewidth=1.8,
                alpha=1.0 if alpha > 0.5 else 0.6,
                zorder=2,
            )


def _legend_handles(items: Sequence[LegendItem]) -> list[Any]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = []
    for it in items:
        if it.kind == "zone":
            handles.append(Patch(color=it.colour, label=it.label))
        elif it.kind == "flag":
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker="o",
                    markersize=13,
                    markerfacecolor="none",
                    markeredgecolor=it.colour,
                    label=it.label,
                )
            )
        else:
            handles.append(
                Line2D(
                    [],
                    [],
                    color=it.colour,
                    linestyle="none" if it.kind == "marker" else MPL_DASH[it.dash],
                    linewidth=2.2,
                    marker=it.marker,
                    markersize=8,
                    markerfacecolor=it.colour if it.filled else "white",
                    markeredgecolor=it.edge or it.colour,
                    label=it.label,
                )
            )
    return handles


class FigureCache:
    """One figure per (chart family, size) reused from client to client.

    Building axes and their ticks is half the cost of a chart; reusing them, with the previous
    client's marks removed, makes a report page about twice as fast. Make one per run (e.g. per
    `fit report` command); it is not thread-safe.
    """

    def __init__(self) -> None:
        self._figures: dict[tuple[str, str], tuple[Figure, Axes]] = {}

    def get(self, family: str, v: Variant, lay: Layout) -> tuple[Figure, Axes]:
        """A clean figure of ``lay``'s size with one axes (new, or a reused one emptied)."""
        from matplotlib.figure import Figure

        hit = self._figures.get((family, v.name))
        if hit is None:
            fig = Figure(figsize=(lay.width, lay.height))
            ax = fig.add_subplot()
            self._figures[(family, v.name)] = (fig, ax)
        else:
            fig, ax = hit
            for artist in (*ax.lines, *ax.collections, *ax.patches, *ax.texts):
                artist.remove()
            fig.set_size_inches(lay.width, lay.height)
        lay.apply(fig)
        return fig, ax


def _figure(
    chart: ChartData, v: Variant, title: str | None, cache: FigureCache | None = None
) -> tuple[Figure, Axes, Layout]:
    from matplotlib.figure import Figure

    items = chart_legend(chart) if title else []
    lay = layout(chart, v, legend_items=len(items), title=bool(title))
    if cache is not None and not title:
        fig, ax = cache.get(chart.family, v, lay)
        return fig, ax, lay
    fig = Figure(figsize=(lay.width, lay.height))
    lay.apply(fig)
    ax = fig.add_subplot()
    if title:
        fig.suptitle(title, x=0.02, y=1 - 0.1 / lay.height, ha="left", va="top", fontweight="bold")
        fig.legend(
            handles=_legend_handles(items),
            loc="lower center",
            bbox_to_anchor=(0.5, 0.02 / lay.height),
            ncol=v.legend_cols,
            handlelength=2.4,
            columnspacing=1.2,
        )
    return fig, ax, lay


def _finish(ax: Axes, ylabel: str) -> None:
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", color="#E3E3E3", linewidth=0.8, zorder=0)
    ax.set_axisbelow(True)


def ors_figure(
    chart: ChartData,
    dates: Mapping[int, dt.date],
    v: Variant,
    title: str | None = None,
    cache: FigureCache | None = None,
) -> Figure:
    """The ORS-by-session figure (call inside :func:`fit_core.reports.svg.chart_style`).

    With a ``title`` the figure also carries its legend (for a standalone SVG file).
    """
    fig, ax, lay = _figure(chart, v, title, cache)
    scale = mark_scale(chart, v)
    for i, line in enumerate(chart.lines):
        _draw_line(ax, line, i, v, scale)
    if chart.rc_zone and chart.rc:
        lo, hi = chart.rc_zone
        ax.axhspan(lo, hi, color=RC_ZONE_COLOUR, lw=0, zorder=0.5)
    _expected(ax, chart)
    ylim = (chart.y_min - 0.8, chart.y_max + 0.8)
    _cutoff_lines(ax, chart, v, lay, ylim)
    _flags(ax, chart, v)
    ax.set_ylim(*ylim)
    ax.set_yticks(range(int(chart.y_min), int(chart.y_max) + 1, 5))
    _x_axis(ax, chart, dates, v)
    _finish(ax, f"{chart.title_measure} total 0–40")
    return fig


def srs_figure(
    chart: ChartData,
    dates: Mapping[int, dt.date],
    v: Variant,
    title: str | None = None,
    cache: FigureCache | None = None,
) -> Figure:
    """The SRS-by-session figure (call inside :func:`fit_core.reports.svg.chart_style`)."""
    fig, ax, lay = _figure(chart, v, title, cache)
    scale = mark_scale(chart, v)
    for i, line in enumerate(chart.lines):
        _draw_line(ax, line, i, v, scale)
    cut = max((c.value for c in chart.cutoffs), default=36.0)
    ax.axhspan(chart.y_min - 0.3, cut, color=SRS_LOW_COLOUR, lw=0, zorder=0.5)
    ylim = (chart.y_min - 0.3, chart.y_max + 0.6)
    _cutoff_lines(ax, chart, v, lay, ylim)
    _flags(ax, chart, v)
    ax.set_ylim(*ylim)
    step = 2 if chart.y_max - chart.y_min <= 12 else 5
    ax.set_yticks(range(int(chart.y_min), int(chart.y_max) + 1, step))
    _x_axis(ax, chart, dates, v)
    axis_note = "0–40" if chart.y_min <= 0 else f"axis from {_num(chart.y_min)}"
    _finish(ax, f"{chart.title_measure} total\n({axis_note})")
    return fig


def chart_svg(
    chart: ChartData,
    dates: Mapping[int, dt.date],
    v: Variant,
    chart_id: str,
    title: str,
    *,
    standalone: bool = False,
    cache: FigureCache | None = None,
) -> str:
    """Draw an ORS or SRS chart and return it as SVG text (see :func:`.svg.to_svg`).

    ``cache`` (a :class:`FigureCache`) reuses figures between calls.
    """
    draw = ors_figure if chart.family == "ORS" else srs_figure
    with chart_style(v.font_size, chart_id):
        fig = draw(chart, dates, v, title if standalone else None, cache)
        return to_svg(fig, chart_id, title, standalone=standalone)
