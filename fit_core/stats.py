"""Statistics for outcome scores: Jacobson–Truax reliable change, and small descriptive helpers.

Pure functions over plain numbers: no I/O, no clock, no globals, no third-party imports.

Reliable change and clinical significance (Jacobson & Truax 1991, *J Consult Clin Psychol*
59(1):12–19):

- standard error of measurement  ``SE = SD·√(1−r)``
- standard error of a difference ``Sdiff = √2·SE``
- reliable change (two-sided, 95%) ``RC = z·Sdiff`` with ``z = 1.96``
- reliable change index          ``RCI = (post − pre)/Sdiff``
- cutoff "c"                     ``c = (SD₀·M₁ + SD₁·M₀)/(SD₀ + SD₁)`` where 1 = clinical and
  0 = non-clinical (functional) population

Oracle (docs/clinical.md): SD 10.5, r .931 → SE 2.758124, Sdiff 3.900577, RC 7.645131. For the ORS,
``reliable_change(6.8, 0.93) ≈ 4.99`` (the "rounded to 5" of Miller et al. 2003).

The helpers (:func:`mean`, :func:`sample_sd`, :func:`percentile`, :func:`pearson_r`,
:func:`ols`, :func:`pre_post_effect_size`) raise :class:`ValueError` on input they cannot
summarise (too few values, no variance) rather than returning a number that looks meaningful.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "EffectSize",
    "cutoff_c",
    "mean",
    "ols",
    "pearson_r",
    "percentile",
    "pre_post_effect_size",
    "rci",
    "reliable_change",
    "sample_sd",
    "sdiff",
    "standard_error",
]

Z_95 = 1.959963984540054  # the exact 97.5th percentile of N(0, 1); J&T round it to 1.96


# --- Jacobson & Truax 1991 --------------------------------------------------------------------


def _check_sd_r(sd: float, r: float) -> None:
    if not math.isfinite(sd) or sd < 0:
        raise ValueError(f"SD must be a finite number >= 0, got {sd!r}")
    if not math.isfinite(r) or not -1.0 <= r <= 1.0:
        raise ValueError(f"reliability r must be between -1 and 1, got {r!r}")


def standard_error(sd: float, r: float) -> float:
    """Standard error of measurement ``SE = SD·√(1−r)`` (Jacobson & Truax 1991).

    ``sd`` is the standard deviation of the (pre-treatment or normative) scores, ``r`` the
    test–retest reliability of the measure.
    """
    _check_sd_r(sd, r)
    return sd * math.sqrt(1.0 - r)


def sdiff(sd: float, r: float) -> float:
    """Standard error of the difference of two scores ``Sdiff = √2·SE = √(2·SE²)``."""
    return math.sqrt(2.0) * standard_error(sd, r)


def reliable_change(sd: float, r: float, z: float = 1.96) -> float:
    """The reliable change ``RC = z·Sdiff``: the smallest change unlikely (p < .05) to be error.

    ``z = 1.96`` (Jacobson & Truax's value) gives the two-sided 95% criterion.
    ``reliable_change(10.5, 0.931)`` = 7.645131; ``reliable_change(6.8, 0.93)`` ≈ 4.99.
    """
    if not math.isfinite(z) or z <= 0:
        raise ValueError(f"z must be a positive number, got {z!r}")
    return z * sdiff(sd, r)


def rci(pre: float, post: float, sd: float, r: float) -> float:
    """Reliable change index ``RCI = (post − pre)/Sdiff``; |RCI| > 1.96 is reliable change.

    Higher is better on the ORS/SRS family, so a positive RCI is improvement. Raises
    :class:`ValueError` when ``Sdiff`` is 0 (SD 0 or r = 1: no measurement error to scale by).
    """
    s = sdiff(sd, r)
    if s == 0:
        raise ValueError("Sdiff is 0 (SD = 0 or r = 1): the RCI is undefined")
    return (post - pre) / s


def cutoff_c(m_clin: float, sd_clin: float, m_nonclin: float, sd_nonclin: float) -> float:
    """Jacobson & Truax's cutoff "c" between a clinical and a non-clinical population.

    ``c = (SD_nonclin·M_clin + SD_clin·M_nonclin)/(SD_nonclin + SD_clin)``: the point equally
    far, in each population's own SDs, from both means (criterion "c" of J&T 1991, p. 13).
    """
    if sd_clin < 0 or sd_nonclin < 0 or sd_clin + sd_nonclin == 0:
        raise ValueError("the SDs must be >= 0 and not both 0")
    return (sd_nonclin * m_clin + sd_clin * m_nonclin) / (sd_nonclin + sd_clin)


# --- descriptive helpers ----------------------------------------------------------------------


def _floats(values: Iterable[float], what: str) -> list[float]:
    out = list(map(float, values))
    if not all(map(math.isfinite, out)):
        bad = next(v for v in out if not math.isfinite(v))
        raise ValueError(f"{what}: values must be finite numbers, got {bad!r}")
    return out


def _ss(xs: Sequence[float], m: float) -> float:
    """Σ(x − m)² (no checks: internal)."""
    return math.fsum([(x - m) ** 2 for x in xs])


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean (``math.fsum`` for accuracy). Raises :class:`ValueError` when empty."""
    xs = _floats(values, "mean")
    if not xs:
        raise ValueError("mean of no values")
    return math.fsum(xs) / len(xs)


def sample_sd(values: Iterable[float]) -> float:
    """Sample standard deviation, ``√(Σ(x − x̄)²/(n − 1))`` (numpy ``std(ddof=1)``).

    Raises :class:`ValueError` with fewer than 2 values.
    """
    xs = _floats(values, "sample_sd")
    n = len(xs)
    if n < 2:
        raise ValueError(f"sample SD needs at least 2 values, got {n}")
    if min(xs) == max(xs):
        return 0.0  # exactly: the mean of equal values need not round back to that value
    return math.sqrt(_ss(xs, math.fsum(xs) / n) / (n - 1))


def percentile(values: Iterable[float], p: float) -> float:
    """The ``p``-th percentile (0–100) by linear interpolation between order statistics.

    With the values sorted as ``x[0] ≤ … ≤ x[n−1]`` and ``h = (n − 1)·p/100``, the result is
    ``x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])`` — Hyndman & Fan (1996) definition 7, the default
    of numpy's ``percentile`` and R's ``quantile``. Raises :class:`ValueError` when empty.
    """
    return percentile_sorted(sorted(_floats(values, "percentile")), p)


def percentile_sorted(xs: Sequence[float], p: float) -> float:
    """:func:`percentile` of values already sorted ascending (no copy, no check of the order)."""
    if not xs:
        raise ValueError("percentile of no values")
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile must be between 0 and 100, got {p!r}")
    h = (len(xs) - 1) * p / 100.0
    lo = math.floor(h)
    if lo >= len(xs) - 1:
        return float(xs[-1])
    frac = h - lo
    return float(xs[lo] + frac * (xs[lo + 1] - xs[lo]))


def pearson_r(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson product-moment correlation of paired values.

    Raises :class:`ValueError` with unequal lengths, fewer than 2 pairs, or a constant variable.
    """
    xs, ys = _pairs(x, y, "pearson_r")
    return _pearson(xs, ys)


def _pairs(x: Sequence[float], y: Sequence[float], what: str) -> tuple[list[float], list[float]]:
    xs, ys = _floats(x, what), _floats(y, what)
    if len(xs) != len(ys):
        raise ValueError(f"{what} needs paired values, got {len(xs)} and {len(ys)}")
    if len(xs) < 2:
        raise ValueError(f"{what} needs at least 2 pairs, got {len(xs)}")
    return xs, ys


def _pearson(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    mx, my = math.fsum(xs) / n, math.fsum(ys) / n
    if min(xs) == max(xs) or min(ys) == max(ys):  # exact test: fsum rounding is not exact
        raise ValueError("pearson_r is undefined when a variable is constant")
    sxx, syy = _ss(xs, mx), _ss(ys, my)
    if sxx == 0 or syy == 0:
        raise ValueError("pearson_r is undefined when a variable is constant")
    sxy = math.fsum([(a - mx) * (b - my) for a, b in zip(xs, ys, strict=True)])
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def ols(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, tuple[float, ...]]:
    """Ordinary least squares line ``y = a + b·x``: returns ``(a, b, residuals)``.

    ``b = Σ(x − x̄)(y − ȳ)/Σ(x − x̄)²`` and ``a = ȳ − b·x̄`` (centred sums, for numerical
    stability); ``residuals[i] = y[i] − (a + b·x[i])`` in input order. Raises
    :class:`ValueError` with unequal lengths, fewer than 2 points, or constant ``x``.
    """
    xs, ys = _pairs(x, y, "ols")
    n = len(xs)
    mx, my = math.fsum(xs) / n, math.fsum(ys) / n
    sxx = _ss(xs, mx)
    if sxx == 0 or min(xs) == max(xs):
        raise ValueError("ols is undefined when every x is the same")
    sxy = math.fsum([(a - mx) * (b - my) for a, b in zip(xs, ys, strict=True)])
    b = sxy / sxx
    a = my - b * mx
    residuals = tuple(yv - (a + b * xv) for xv, yv in zip(xs, ys, strict=True))
    return a, b, residuals


# --- pre–post effect size ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EffectSize:
    """A standardised pre–post change with its confidence interval.

    ``ci_low``/``ci_high`` are None when the pre–post correlation ``r`` is undefined (a
    constant pre or post score, or fewer than 3 pairs).
    """

    d: float
    n: int
    se: float | None
    ci_low: float | None
    ci_high: float | None
    r: float | None
    mean_change: float
    sd_pre: float


def pre_post_effect_size(
    pre: Sequence[float], post: Sequence[float], *, z: float = Z_95
) -> EffectSize:
    """Pre–post effect size ``d = mean(post − pre)/SD(pre)`` with a large-sample CI.

    This is the standardised mean change with the pre-test SD as standardiser (Becker 1988,
    "Synthesizing standardized mean-change measures", *Br J Math Stat Psychol* 41:257–278; the
    "raw-score metric" of Morris & DeShon 2002, *Psychol Methods* 7(1):105–125), i.e. the
    "mean change / SD of intake" agencies report (docs/clinical.md). ``SD(pre)`` is the sample SD.

    Its large-sample standard error (Becker 1988, the asymptotic variance of the standardised
    mean change without the small-sample correction) is::

        SE(d) = √( 2(1 − r)/n + d²/(2n) )

    where ``r`` is the Pearson correlation of pre and post, and the CI is ``d ± z·SE``
    (``z`` defaults to 1.95996…, a two-sided 95% interval). No small-sample bias correction is
    applied. Raises :class:`ValueError` with fewer than 2 pairs or a constant pre score; with
    fewer than 3 pairs, or a constant post score, ``r`` and the CI are None.
    """
    xs, ys = _pairs(pre, post, "pre_post_effect_size")
    n = len(xs)
    sd_pre = math.sqrt(_ss(xs, math.fsum(xs) / n) / (n - 1))
    if sd_pre == 0 or min(xs) == max(xs):
        raise ValueError("an effect size is undefined when every pre score is the same")
    mean_change = math.fsum([b - a for a, b in zip(xs, ys, strict=True)]) / n
    d = mean_change / sd_pre
    r: float | None
    try:
        r = _pearson(xs, ys) if n >= 3 else None
    except ValueError:
        r = None
    if r is None:
        return EffectSize(d, n, None, None, None, None, mean_change, sd_pre)
    se = math.sqrt(2.0 * (1.0 - r) / n + d * d / (2.0 * n))
    return EffectSize(d, n, se, d - z * se, d + z * se, r, mean_change, sd_pre)
