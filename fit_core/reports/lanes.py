"""Where the marks above and on a client chart go, so they never overlap: pure geometry.

- **Flag tags**: one tag per alert (:class:`~fit_core.reports.client_data.FlagRun`), at the
  session where it holds now (the run's last session), with a bracket back to the session where
  the run began. Tags and brackets are packed into rows ("lanes") above the plot: a run goes in
  the lowest row where it keeps a gap from everything already there, so two tags never touch,
  at desktop width or on a 390 px phone. A tag is kept inside the plot's width (never cut at
  the figure's edge).
- **Cutoff labels** ("cutoff 25"): at the right end of the line, above it, unless a point or a
  point's value label is there; then below it, then at the left end.

Everything is measured in inches of the drawn figure, from the chart's layout and font size,
so the same answer holds for the wide, phone and print drawings. No plotting import.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .client_data import ChartData, FlagRun

__all__ = [
    "CHAR_WIDTH",
    "PlacedTag",
    "cutoff_spot",
    "place_tags",
    "tag_label",
    "tag_rows",
]

#: average width of a digit or letter as a share of the font size (DejaVu Sans, bold digits)
CHAR_WIDTH = 0.64
TAG_PAD = 0.28  # the tag box's padding, as a share of its font size (matplotlib's ``pad``)
TAG_FONT = 0.88  # tag font size as a share of the chart's
GAP_IN = 0.07  # the least space between two marks in one lane, inches
ROW_PT = 1.9  # a lane's height as a share of the chart's font size


@dataclass(frozen=True, slots=True)
class PlacedTag:
    """A flag tag's place: centre ``x`` (in sessions), lane ``row`` (0 is nearest the plot),
    and the bracket of its run from ``first`` to ``last`` (equal for a one-session run)."""

    run: FlagRun
    x: float
    row: int
    width: float  # in sessions

    @property
    def label(self) -> str:
        return tag_label(self.run)

    @property
    def first(self) -> int:
        return self.run.first

    @property
    def last(self) -> int:
        return self.run.last

    @property
    def span(self) -> tuple[float, float]:
        """The part of the lane it occupies, in sessions: tag and bracket."""
        return (min(self.first, self.x - self.width / 2), max(self.last, self.x + self.width / 2))


def tag_label(run: FlagRun) -> str:
    """The text of a tag: the rule's key in the list under the charts."""
    return str(run.number)


def tag_width_in(label: str, font_pt: float) -> float:
    """The drawn width of a tag (text and box), inches."""
    size = font_pt * TAG_FONT
    return (len(label) * CHAR_WIDTH * size + 2 * TAG_PAD * size + 2.0) / 72


def _per_inch(x_max: int, axes_width_in: float) -> float:
    """Sessions per inch: the x axis runs from 0.5 to x_max + 0.5."""
    return x_max / max(axes_width_in, 0.1)


def place_tags(
    runs: Iterable[FlagRun], x_max: int, axes_width_in: float, font_pt: float
) -> list[PlacedTag]:
    """Every run's tag, packed into lanes so that no two marks of a lane come closer than
    :data:`GAP_IN` (see the module docstring). Oldest run first; deterministic."""
    per_in = _per_inch(x_max, axes_width_in)
    gap = GAP_IN * per_in
    lo_edge, hi_edge = 0.5, x_max + 0.5
    ends: list[float] = []  # per lane: where its last mark ends
    placed: list[PlacedTag] = []
    todo = []
    for run in runs:
        w = tag_width_in(tag_label(run), font_pt) * per_in
        x = min(max(float(run.last), lo_edge + w / 2), hi_edge - w / 2)
        todo.append(PlacedTag(run, x, 0, w))
    todo.sort(key=lambda t: (t.span[0], t.run.number, t.last))
    for tag in todo:
        start, end = tag.span
        row = next((i for i, e in enumerate(ends) if e + gap <= start), len(ends))
        if row == len(ends):
            ends.append(end)
        else:
            ends[row] = end
        placed.append(PlacedTag(tag.run, tag.x, row, tag.width))
    return placed


def tag_rows(placed: Sequence[PlacedTag]) -> int:
    """How many lanes the tags need (0 without flags)."""
    return 1 + max((t.row for t in placed), default=-1)


@dataclass(frozen=True, slots=True)
class _Box:
    x0: float
    x1: float
    y0: float
    y1: float

    def hits(self, other: _Box) -> bool:
        return (
            self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1
        )


def cutoff_spot(
    chart: ChartData,
    value: float,
    text: str,
    *,
    axes_width_in: float,
    axes_height_in: float,
    ylim: tuple[float, float],
    font_pt: float,
    value_labels: bool,
) -> tuple[float, str]:
    """Where to write a cutoff's label: (its left edge as a fraction of the plot's width,
    ``"above"`` or ``"below"`` the line). The first clear spot of: the right end above, below,
    the left end above, below, then every half session from right to left; a spot is clear when
    its box misses every point and the primary line's value labels. When none is, the spot that
    touches the fewest."""
    x_in = axes_width_in / chart.x_max  # inches per session

    def xi(session: float) -> float:
        return (session - 0.5) * x_in

    lo, hi = ylim

    def yi(v: float) -> float:
        return (v - lo) / (hi - lo) * axes_height_in

    size = font_pt * 0.88
    width = (len(text) * CHAR_WIDTH * size + 8) / 72
    height = size * 1.35 / 72
    obstacles = []
    marker = 0.1
    for line in chart.lines:
        for p in line.points:
            x, y = xi(p.session), yi(p.total)
            obstacles.append(_Box(x - marker, x + marker, y - marker, y + marker))
            if line.primary and value_labels:
                label_w = (5 * CHAR_WIDTH * font_pt * 0.85) / 72
                base = y + (13 if p.flags else 9) / 72
                obstacles.append(
                    _Box(x - label_w / 2, x + label_w / 2, base, base + font_pt * 0.85 * 1.3 / 72)
                )
    y = yi(value)
    margin = 4 / 72
    right = axes_width_in - margin - width
    lefts = [right, margin]
    step = x_in / 2
    x0 = right - step
    while x0 > margin:
        lefts.append(x0)
        x0 -= step
    best: tuple[int, float, str] | None = None
    for left in lefts:
        for where in ("above", "below"):
            y0 = y + 2 / 72 if where == "above" else y - 2 / 72 - height
            box = _Box(left, left + width, y0, y0 + height)
            hits = sum(box.hits(o) for o in obstacles)
            if hits == 0:
                return left / axes_width_in, where
            if best is None or hits < best[0]:
                best = (hits, left, where)
    assert best is not None
    return best[1] / axes_width_in, best[2]
