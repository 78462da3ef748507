"""Exact arithmetic for scores: item values keep the precision they were given.

ORS/SRS items are kept to :data:`ITEM_DECIMALS` decimals (0.01). Scores travel through the code
as floats (the store keeps REAL columns and JSON numbers), but every float that holds a score is
the float nearest to a decimal value with at most two decimals, and every computation that
matters goes through :class:`~decimal.Decimal`:

- :func:`dec` turns a float back into the decimal it stands for (``repr`` gives the shortest text
  that reads back as the same float, which for these values is the text the source gave);
- :func:`total` is the exact sum of items, :func:`diff` the exact difference of two scores;
- :func:`at_least` / :func:`below` compare exactly (a reliable change of exactly 5.0 is a
  reliable change, a total of exactly 25.0 is not below 25), with no tolerance: a comparison of
  two floats is the comparison of the decimals they stand for, so it needs no Decimal; a
  difference does (15.2 − 10.1 in floats is 5.0999…), and :func:`diff` computes it exactly.

Rounding happens only for display (:func:`show`). Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

__all__ = [
    "HUNDREDTH",
    "ITEM_DECIMALS",
    "at_least",
    "at_most",
    "below",
    "dec",
    "decimals",
    "diff",
    "quantize",
    "show",
    "total",
    "within",
]

ITEM_DECIMALS = 2
HUNDREDTH = Decimal("0.01")


@lru_cache(maxsize=65_536)
def _from_float(value: float) -> Decimal:
    return Decimal(repr(value))


def dec(value: float | int | str | Decimal) -> Decimal:
    """The decimal value a number stands for (``0.1`` → ``Decimal("0.1")``, not its binary)."""
    if type(value) is float:  # the common case first: scores travel as floats
        return _from_float(value)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError("a score is not a bool")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        return Decimal(value.strip())
    return _from_float(float(value))


def within(value: float, places: int = ITEM_DECIMALS) -> bool:
    """True when a float stands for a decimal with at most ``places`` decimals.

    ``round(v, places) == v`` exactly then: ``round`` rounds the float's exact value correctly,
    and the float nearest to a short decimal is the one ``repr`` writes that short. The fast
    test for values as parsed from text (no :class:`Decimal` needed)."""
    return round(value, places) == value


def decimals(value: Decimal) -> int:
    """How many decimals a value needs (``Decimal("3.750")`` → 2, ``Decimal("4")`` → 0)."""
    if not value.is_finite():
        return 0
    exponent = value.normalize().as_tuple().exponent
    return max(0, -int(exponent))


def quantize(value: Decimal, places: int = ITEM_DECIMALS) -> Decimal:
    """Round half up to ``places`` decimals (used for converted scales, never for given values)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def total(values: Iterable[float | Decimal]) -> float:
    """The exact sum of item values, as the float nearest to it (3.75 × 4 → 15.0)."""
    return float(sum((dec(v) for v in values), Decimal(0)))


def diff(a: float, b: float) -> float:
    """``a − b`` computed exactly (20.0 − 15.0 → 5.0; 15.2 − 10.1 → 5.1, never 5.0999…)."""
    return float(dec(a) - dec(b))


# Comparisons need no Decimal: for floats, a < b exactly when the decimals they stand for
# (their shortest repr) compare so, because the decimals that read back as a float form an
# interval, and those intervals are ordered like the floats. So a float comparison of two
# values *is* the comparison of the decimal values; only sums and differences need Decimal.


def at_least(value: float, threshold: float) -> bool:
    """``value ≥ threshold``, as the decimal values they stand for (no float tolerance)."""
    return value >= threshold


def at_most(value: float, threshold: float) -> bool:
    """``value ≤ threshold``, as the decimal values they stand for."""
    return value <= threshold


def below(value: float, threshold: float) -> bool:
    """``value < threshold``, as the decimal values they stand for."""
    return value < threshold


def show(value: float | None, places: int = 1) -> str:
    """A score for people: at least ``places`` decimals, two when the value has them.

    ``15.0`` → ``"15.0"``, ``15.25`` → ``"15.25"``, ``None`` → ``"-"``: a score as given is
    never rounded. Only computed values with more decimals (a model's expected value, an RC of
    4.987) are rounded, half up, to :data:`ITEM_DECIMALS`.
    """
    if value is None:
        return "-"
    if type(value) is float:  # fast paths: a float standing for a short decimal prints as it
        if round(value, places) == value:
            return f"{value:.{places}f}"
        if places < ITEM_DECIMALS and round(value, ITEM_DECIMALS) == value:
            return f"{value:.{ITEM_DECIMALS}f}"
    d = dec(value)
    shown = min(max(places, decimals(d)), max(places, ITEM_DECIMALS))
    return f"{quantize(d, shown):.{shown}f}"
