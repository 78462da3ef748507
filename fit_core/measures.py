"""Measure specifications as data, and item-scale conversion.

The ORS/SRS family is copyrighted: only neutral item keys and the short domain labels
live here, never item wording. A plugin adds a measure by registering a
:class:`Measure` through ``fit_register_measures`` (for example a PHQ-9 with ``scored=True``,
``family="PHQ"``); nothing in the core needs to change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from . import exact

COPYRIGHT_LINES: tuple[str, ...] = (
    "ORS © 2000 Scott D. Miller and Barry L. Duncan.",
    "SRS © 2002 Scott D. Miller, Barry L. Duncan & Lynn Johnson.",
)
"""The adult measures' notices (what a page of ORS/SRS scores carries)."""


@dataclass(frozen=True, slots=True)
class AgeBand:
    """A cutoff for ages ``min_age``..``max_age`` inclusive (None = open-ended)."""

    name: str
    min_age: int | None
    max_age: int | None
    cutoff: float

    def contains(self, age: int) -> bool:
        return (self.min_age is None or age >= self.min_age) and (
            self.max_age is None or age <= self.max_age
        )


@dataclass(frozen=True, slots=True)
class Measure:
    """One questionnaire.

    ``family`` groups measures that share rules and a trajectory: ``"ORS"`` (ORS, CORS) and
    ``"SRS"`` (SRS, CSRS, GSRS). ``default_band`` names the age band used when the age is unknown.
    Items keep the precision they were given up to ``decimals`` places (0.01); the total is their
    exact sum (see :mod:`fit_core.exact`).
    """

    key: str
    family: str
    title: str
    item_keys: tuple[str, ...]
    item_labels: tuple[str, ...]
    bands: tuple[AgeBand, ...]
    default_band: str
    reliable_change: float | None = None
    item_min: float = 0.0
    item_max: float = 10.0
    resolution: float = 0.1  # the paper form's reading precision (a ruler's mm); not a rounding
    decimals: int = exact.ITEM_DECIMALS  # item values finer than this are a validation error
    scored: bool = True
    copyright: str | None = None  # the measure's own notice, shown wherever its scores are

    @property
    def n_items(self) -> int:
        return len(self.item_keys)

    @property
    def total_max(self) -> float:
        return self.item_max * self.n_items

    @property
    def total_min(self) -> float:
        return self.item_min * self.n_items

    def band_for(self, age: int | None) -> AgeBand:
        """The age band for ``age``; the default band when the age is unknown or not covered."""
        if age is not None:
            for band in self.bands:
                if band.contains(age):
                    return band
        for band in self.bands:
            if band.name == self.default_band:
                return band
        raise LookupError(f"measure {self.key}: default band {self.default_band!r} is not defined")


ORS = Measure(
    key="ORS",
    family="ORS",
    title="Outcome Rating Scale",
    item_keys=("individually", "interpersonally", "socially", "overall"),
    item_labels=("Individually", "Interpersonally", "Socially", "Overall"),
    bands=(
        AgeBand("adult", 18, None, 25.0),
        AgeBand("adolescent", 13, 17, 28.0),
    ),
    default_band="adult",
    reliable_change=5.0,
    copyright=COPYRIGHT_LINES[0],
)
CORS = Measure(
    key="CORS",
    family="ORS",
    title="Child Outcome Rating Scale",
    item_keys=("me", "family", "school", "everything"),
    item_labels=("Me", "Family", "School", "Everything"),
    bands=(AgeBand("child", 6, 12, 32.0),),
    default_band="child",
    reliable_change=5.0,
    copyright="CORS © 2003 Barry L. Duncan, Scott D. Miller & Jacqueline A. Sparks.",
)
SRS = Measure(
    key="SRS",
    family="SRS",
    title="Session Rating Scale",
    item_keys=("relationship", "goals", "approach", "overall"),
    item_labels=("Relationship", "Goals and topics", "Approach or method", "Overall"),
    bands=(AgeBand("all", None, None, 36.0),),
    default_band="all",
    copyright=COPYRIGHT_LINES[1],
)
CSRS = Measure(
    key="CSRS",
    family="SRS",
    title="Child Session Rating Scale",
    item_keys=("listening", "important", "approach", "overall"),
    item_labels=("Listening", "How important", "What we did", "Overall"),
    bands=(AgeBand("all", None, None, 36.0),),
    default_band="all",
    copyright="CSRS © 2003 Barry L. Duncan, Scott D. Miller & Jacqueline A. Sparks.",
)
GSRS = Measure(
    key="GSRS",
    family="SRS",
    title="Group Session Rating Scale",
    item_keys=("relationship", "goals", "approach", "overall"),
    item_labels=("Relationship", "Goals and topics", "Approach or method", "Overall"),
    bands=(AgeBand("all", None, None, 36.0),),
    default_band="all",
    copyright="GSRS © Barry L. Duncan and Scott D. Miller.",
)

BUILTIN_MEASURES: tuple[Measure, ...] = (ORS, CORS, SRS, CSRS, GSRS)
_BUILTIN = {m.key: m for m in BUILTIN_MEASURES}


def copyright_lines(
    keys: Iterable[str], measures: Mapping[str, Measure] | None = None
) -> tuple[str, ...]:
    """The notices of the measures ``keys`` (each once; outcome measures first, then alliance,
    in the order given), looked up in ``measures`` (default: the built-in ones). A measure
    without a notice adds nothing."""
    known = measures if measures is not None else _BUILTIN
    found = [known[k] for k in dict.fromkeys(keys) if k in known]
    found.sort(key=lambda m: m.family != "ORS")
    return tuple(dict.fromkeys(m.copyright for m in found if m.copyright))


def age_band_name(age: int | None) -> str:
    """A coarse band for reports: child (<13), adolescent (13-17), adult (18+), unknown."""
    if age is None:
        return "unknown"
    if age < 13:
        return "child"
    if age < 18:
        return "adolescent"
    return "adult"


# --- scales -----------------------------------------------------------------------------------

_RANGE = re.compile(r"^range:(-?\d+(?:\.\d+)?):(-?\d+(?:\.\d+)?)$")
SCALES = ("points", "cm", "mm", "percent")


class ScaleError(ValueError):
    """A scale name that fit-sync does not know."""


def check_scale(scale: str) -> None:
    """Raise :class:`ScaleError` unless ``scale`` is one of :data:`SCALES` or ``range:LOW:HIGH``."""
    if scale in SCALES:
        return
    m = _RANGE.match(scale)
    if m and float(m.group(1)) < float(m.group(2)):
        return
    raise ScaleError(
        f"unknown scale {scale!r}: use one of {', '.join(SCALES)} or range:LOW:HIGH "
        "(for example range:0:10 for a Google Forms linear scale)"
    )


def to_points(value: float, scale: str, measure: Measure) -> float:
    """Convert one item value from ``scale`` to the measure's item scale (0-10 for ORS/SRS).

    The float form of :func:`points_exact` (see there).
    """
    return float(points_exact(value, scale, measure)[0])


def points_exact(value: float | Decimal, scale: str, measure: Measure) -> tuple[Decimal, bool]:
    """One item value on the measure's item scale, exactly: ``(points, exact)``.

    ``points`` and ``cm`` are already on the 0-10 scale (a 10 cm line read in cm); ``mm`` and
    ``percent`` (a 0-100 slider) are divided by 10; all three are exact (``exact`` True), so the
    value keeps the precision it was given. ``range:LOW:HIGH`` maps an integer scale linearly
    onto the item range; such a mapping rarely lands on a round number (a 0-7 scale gives
    sevenths), so the result is rounded half up to ``measure.decimals`` places and ``exact`` is
    False. No other rounding happens here: the caller checks range and precision on the result.
    """
    d = exact.dec(value)
    if scale in ("points", "cm"):
        return d, True
    if scale in ("mm", "percent"):
        return d / 10, True
    m = _RANGE.match(scale)
    if not m:
        raise ScaleError(f"unknown scale {scale!r}")
    low, high = Decimal(m.group(1)), Decimal(m.group(2))
    span = exact.dec(measure.item_max) - exact.dec(measure.item_min)
    out = exact.dec(measure.item_min) + (d - low) * span / (high - low)
    return exact.quantize(out, measure.decimals), False
