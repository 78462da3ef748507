"""Legends as data: what each mark on a client chart means, for HTML and for standalone SVG.

On the HTML page the legend is HTML under the chart (large type, wraps on a phone, readable by a
screen reader); a standalone SVG chart (``--format svg``) draws the same items with matplotlib.
Pure: no plotting import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..exact import show
from .client_data import ChartData
from .style import (
    BAND_COLOUR,
    CUTOFF_COLOUR,
    EXPECTED_COLOUR,
    MARKER_STYLE,
    RATER_STYLES,
    RC_ZONE_COLOUR,
    SEVERE_COLOUR,
    SRS_LOW_COLOUR,
)

__all__ = ["GLYPHS", "LegendItem", "chart_legend"]

#: matplotlib marker → a text glyph of the same shape (filled, hollow)
GLYPHS: dict[str, tuple[str, str]] = {
    "o": ("●", "○"),
    "s": ("■", "□"),
    "^": ("▲", "△"),
    "v": ("▼", "▽"),
    "D": ("◆", "◇"),
    "X": ("✖", "✖"),
    "P": ("✚", "✚"),
    "h": ("⬢", "⬡"),
}
MPL_DASH: dict[str, Literal["-", "--", ":", "-."]] = {
    "solid": "-",
    "dashed": "--",
    "dotted": ":",
    "dashdot": "-.",
}
_RATER_DASH = {"-": "solid", "--": "dashed", "-.": "dashdot", ":": "dotted"}


@dataclass(frozen=True, slots=True)
class LegendItem:
    """One legend entry. ``kind``: ``line`` (optionally with a marker), ``marker``, ``zone``
    or ``flag`` (the numbered tag and the ring around a flagged point)."""

    label: str
    kind: str
    colour: str
    dash: str = "solid"
    marker: str | None = None
    filled: bool = True
    edge: str | None = None

    @property
    def glyph(self) -> str:
        if self.marker is None:
            return ""
        filled, hollow = GLYPHS.get(self.marker, ("●", "○"))
        return filled if self.filled else hollow


def _num(v: float) -> str:
    return f"{v:g}" if float(v).is_integer() else f"{v:.1f}"


def chart_legend(chart: ChartData) -> list[LegendItem]:
    """The legend of an ORS or SRS chart, in drawing order of importance."""
    items: list[LegendItem] = []
    for i, line in enumerate(chart.lines):
        colour, dash, marker = RATER_STYLES[i % len(RATER_STYLES)]
        by_status = line.primary and line.has_status
        items.append(
            LegendItem(
                line.label,
                "line",
                colour,
                _RATER_DASH[dash],
                None if by_status else marker,
                filled=line.primary,
            )
        )
        if by_status:
            present = {p.marker for p in line.points}
            for key, (scolour, smarker, words) in MARKER_STYLE.items():
                if key in present:
                    items.append(
                        LegendItem(
                            words,
                            "marker",
                            "#555555" if key == "rc_none" else scolour,
                            marker=smarker,
                            edge="#1A1A1A",
                            filled=key != "rc_none",
                        )
                    )
    if chart.family == "ORS":
        if chart.rc_zone and chart.rc:
            p = chart.primary
            intake = p.points[0].total if p else sum(chart.rc_zone) / 2
            label = f"No reliable change: intake {show(intake)} ± {_num(chart.rc)}"
            items.append(LegendItem(label, "zone", RC_ZONE_COLOUR))
        if chart.band:
            items.append(LegendItem("Expected", "line", EXPECTED_COLOUR, "dashed"))
            items.append(LegendItem("Expected range", "zone", BAND_COLOUR))
            if any(b.severe is not None for b in chart.band):
                items.append(LegendItem("Severe line", "line", SEVERE_COLOUR, "dotted"))
        for c in chart.cutoffs:
            items.append(LegendItem(c.label, "line", CUTOFF_COLOUR, "dashed"))
    else:
        cut = max((c.value for c in chart.cutoffs), default=36.0)
        items.append(
            LegendItem(f"Below {_num(cut)}: ask about the alliance", "zone", SRS_LOW_COLOUR)
        )
        for c in chart.cutoffs:
            items.append(LegendItem(f"Cutoff {_num(c.value)}", "line", CUTOFF_COLOUR, "dashed"))
    if chart.runs or chart.flags:
        items.append(
            LegendItem(
                "Flag: where it holds now, bracket back to where it began", "flag", "#1A1A1A"
            )
        )
    return items
