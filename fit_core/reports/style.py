"""Colours, markers and sizes shared by the charts and the HTML (no plotting import here).

Colours come from the Okabe–Ito palette, which stays distinguishable with the common colour
vision deficiencies; status is never shown by colour alone: each status also has its own marker
shape and a word in the tables (grey / green / orange / red).
"""

from __future__ import annotations

from dataclasses import dataclass

#: a point's marker (see :attr:`fit_core.reports.client_data.Point.marker`) → (colour,
#: matplotlib marker, words shown in legends and tables). With a trajectory model: the three
#: statuses; the intake; and past the model's last session (no expectation), squares filled by
#: the reliable change from intake, which the point's place against the blue zone also shows
MARKER_STYLE: dict[str, tuple[str, str, str]] = {
    "green": ("#009E73", "o", "On track"),
    "orange": ("#E69F00", "v", "Not on track (below range)"),
    "red": ("#D55E00", "X", "Well off track (below severe line)"),
    "intake": ("#8C8C8C", "D", "Intake"),
    "rc_improved": ("#56B4E9", "s", "No expectation: reliably improved"),
    "rc_none": ("#FFFFFF", "s", "No expectation: no reliable change"),
    "rc_deteriorated": ("#D55E00", "s", "No expectation: reliably deteriorated"),
}
#: kept for plugins that read it: the three statuses and grey
STATUS_STYLE: dict[str, tuple[str, str, str]] = {
    **{k: MARKER_STYLE[k] for k in ("green", "orange", "red")},
    "grey": ("#8C8C8C", "D", "Intake / no expectation"),
}
#: the status tile's words for a marker
STATUS_WORD: dict[str, str] = {
    "green": "on track",
    "orange": "not on track",
    "red": "well off track",
    "grey": "—",
    "intake": "—",
    "rc_improved": "reliably improved",
    "rc_none": "no reliable change",
    "rc_deteriorated": "reliably deteriorated",
}
#: the status tile's colour class for a marker
STATUS_CSS: dict[str, str] = {
    "green": "st-green",
    "orange": "st-orange",
    "red": "st-red",
    "rc_improved": "st-green",
    "rc_none": "st-grey",
    "rc_deteriorated": "st-red",
}

#: severity → (tag face colour, tag text colour, word)
SEVERITY_STYLE: dict[str, tuple[str, str, str]] = {
    "alert": ("#D55E00", "#FFFFFF", "alert"),
    "warning": ("#F0C05A", "#1A1A1A", "warning"),
    "info": ("#FFFFFF", "#1A1A1A", "info"),
}

#: one style per rater, in order of appearance (the primary rater first)
#: (markers unlike the status ones: squares, diamonds and down-triangles mean a status)
RATER_STYLES: tuple[tuple[str, str, str], ...] = (
    ("#0072B2", "-", "o"),  # blue, solid, circle
    ("#7B3F99", "--", "^"),  # purple, dashed, triangle
    ("#5C4033", "-.", "P"),  # brown, dash-dot, plus
    ("#333333", ":", "h"),  # near-black, dotted, hexagon
)

CUTOFF_COLOUR = "#333333"
RC_ZONE_COLOUR = "#D6E4F0"
BAND_COLOUR = "#BFE3D3"
EXPECTED_COLOUR = "#1E6B52"
SEVERE_COLOUR = "#D55E00"
SRS_LOW_COLOUR = "#FBE3C8"

#: outcome classes of the clinic report → (colour, hatch, label)
CLASS_STYLE: dict[str, tuple[str, str, str]] = {
    "recovered": ("#0072B2", "", "Recovered"),
    "improved": ("#56B4E9", "", "Improved"),
    "no_change": ("#BBBBBB", "", "No reliable change"),
    "deteriorated": ("#D55E00", "xx", "Deteriorated"),
}
#: how ended episodes ended, as the data show it (see fit_core.agency) → (colour, hatch, label)
ENDING_STYLE: dict[str, tuple[str, str, str]] = {
    "reached": ("#0072B2", "", "Target reached"),
    "not_reached": ("#E69F00", "//", "Target not reached"),
    "dropout": ("#D55E00", "xx", "Dropout: missed the last appointment"),
    "unknown": ("#BBBBBB", "..", "Target unknown (1 ORS)"),
}

FONT_FAMILY = ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica", "sans-serif"]


@dataclass(frozen=True, slots=True)
class Variant:
    """A chart size: ``wide`` for desktop and tablet, ``narrow`` for phones, ``print`` for
    paper (flatter, so a client page fits one A4/Letter sheet)."""

    name: str
    width: float  # inches
    height: float
    font_size: float
    legend_cols: int
    value_labels: bool


WIDE = Variant("wide", 9.0, 4.3, 11.5, 3, True)
NARROW = Variant("narrow", 4.0, 5.0, 11.5, 1, False)
PRINT = Variant("print", 10.0, 3.2, 10.5, 3, True)
VARIANTS = (WIDE, NARROW)
CLIENT_VARIANTS = (WIDE, NARROW, PRINT)
