"""fit_core.stats: Jacobson–Truax oracle, helpers against numpy, property tests."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fit_core.stats import (
    cutoff_c,
    mean,
    ols,
    pearson_r,
    percentile,
    pre_post_effect_size,
    rci,
    reliable_change,
    sample_sd,
    sdiff,
    standard_error,
)

scores = st.floats(min_value=0, max_value=40, allow_nan=False, allow_infinity=False)
sds = st.floats(min_value=0.5, max_value=20)
reliabilities = st.floats(min_value=0.0, max_value=0.99)


# --- Jacobson & Truax -------------------------------------------------------------------------


def test_jt_oracle() -> None:
    """Jacobson & Truax 1991 (docs/clinical.md): SD 10.5, r .931 → SE 2.758124, Sdiff 3.900577,
    RC 7.645131."""
    assert round(standard_error(10.5, 0.931), 6) == 2.758124
    assert round(sdiff(10.5, 0.931), 6) == 3.900577
    assert round(reliable_change(10.5, 0.931), 6) == 7.645131


def test_ors_reliable_change_check() -> None:
    """docs/clinical.md: 1.96·√2·6.8·√(1−.93) ≈ 4.99 (Miller et al. 2003's "rounded to 5")."""
    rc = reliable_change(6.8, 0.93)
    assert rc == pytest.approx(1.96 * math.sqrt(2) * 6.8 * math.sqrt(1 - 0.93))
    assert round(rc, 2) == 4.99


def test_rci_hand_checked() -> None:
    # Sdiff 3.900577: a change of 7.645131 is exactly RCI 1.96
    assert rci(10.0, 17.645131, 10.5, 0.931) == pytest.approx(1.96, abs=1e-6)
    assert rci(20, 20, 10.5, 0.931) == 0
    with pytest.raises(ValueError, match="Sdiff is 0"):
        rci(10, 12, 10.5, 1.0)


@given(scores, scores, sds, reliabilities)
def test_rci_sign_symmetry(pre: float, post: float, sd: float, r: float) -> None:
    assert rci(pre, post, sd, r) == pytest.approx(-rci(post, pre, sd, r), abs=1e-12)
    assert math.copysign(1, rci(pre, post, sd, r)) == math.copysign(1, post - pre) or pre == post


@given(scores, scores, sds, reliabilities)
def test_rci_agrees_with_rc(pre: float, post: float, sd: float, r: float) -> None:
    """|RCI| > 1.96 exactly when |post − pre| > RC (same criterion, two scales)."""
    diff, rc = abs(post - pre), reliable_change(sd, r)
    if abs(diff - rc) > 1e-9:
        assert (abs(rci(pre, post, sd, r)) > 1.96) == (diff > rc)


@given(sds, reliabilities, st.floats(min_value=0.5, max_value=3))
def test_jt_chain(sd: float, r: float, z: float) -> None:
    se = standard_error(sd, r)
    assert se == pytest.approx(sd * math.sqrt(1 - r))
    assert sdiff(sd, r) == pytest.approx(math.sqrt(2 * se * se))
    assert reliable_change(sd, r, z) == pytest.approx(z * sdiff(sd, r))


@pytest.mark.parametrize(
    ("sd", "r"), [(-1, 0.9), (10, 1.5), (10, -1.1), (math.nan, 0.9), (10, math.inf)]
)
def test_jt_rejects_bad_parameters(sd: float, r: float) -> None:
    with pytest.raises(ValueError):
        standard_error(sd, r)


def test_reliable_change_rejects_bad_z() -> None:
    with pytest.raises(ValueError):
        reliable_change(10, 0.9, z=0)


def test_cutoff_c() -> None:
    # (SD0·M1 + SD1·M0)/(SD0 + SD1) with M1 19.6, SD1 7.0, M0 28.0, SD0 6.0
    assert cutoff_c(19.6, 7.0, 28.0, 6.0) == pytest.approx((6.0 * 19.6 + 7.0 * 28.0) / 13.0)
    assert cutoff_c(10, 5, 30, 5) == 20  # equal SDs: the midpoint
    with pytest.raises(ValueError):
        cutoff_c(10, 0, 30, 0)


@given(scores, sds, scores, sds)
def test_cutoff_c_is_equidistant_in_sd_units(m1: float, s1: float, m0: float, s0: float) -> None:
    c = cutoff_c(m1, s1, m0, s0)
    assert min(m1, m0) - 1e-9 <= c <= max(m1, m0) + 1e-9
    assert (c - m1) / s1 == pytest.approx((m0 - c) / s0, abs=1e-9)


# --- helpers against numpy --------------------------------------------------------------------

samples = st.lists(scores, min_size=2, max_size=60)


@given(samples)
def test_mean_and_sd_match_numpy(xs: list[float]) -> None:
    assert mean(xs) == pytest.approx(float(np.mean(xs)), abs=1e-9)
    assert sample_sd(xs) == pytest.approx(float(np.std(xs, ddof=1)), abs=1e-9)


@given(st.lists(scores, min_size=1, max_size=60), st.floats(min_value=0, max_value=100))
def test_percentile_matches_numpy_linear(xs: list[float], p: float) -> None:
    assert percentile(xs, p) == pytest.approx(float(np.percentile(xs, p)), abs=1e-9)


def test_percentile_hand_checked() -> None:
    xs = [4, 1, 3, 2]  # sorted 1 2 3 4, h = 3p/100
    assert percentile(xs, 0) == 1
    assert percentile(xs, 100) == 4
    assert percentile(xs, 50) == 2.5
    assert percentile(xs, 25) == 1.75
    assert percentile([7], 10) == 7
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile(xs, 101)


def test_helpers_reject_empty_and_non_finite() -> None:
    with pytest.raises(ValueError):
        mean([])
    with pytest.raises(ValueError):
        sample_sd([1.0])
    with pytest.raises(ValueError, match="finite"):
        mean([1.0, math.nan])
    assert sample_sd([0.1, 0.1, 0.1]) == 0.0  # exactly, despite float rounding of the mean


@given(st.lists(st.tuples(scores, scores), min_size=3, max_size=40))
def test_pearson_matches_numpy(pairs: list[tuple[float, float]]) -> None:
    x, y = [p[0] for p in pairs], [p[1] for p in pairs]
    if np.ptp(x) < 1e-6 or np.ptp(y) < 1e-6:
        return
    assert pearson_r(x, y) == pytest.approx(float(np.corrcoef(x, y)[0, 1]), abs=1e-9)


def test_pearson_errors() -> None:
    with pytest.raises(ValueError, match="constant"):
        pearson_r([0.1, 0.1, 0.1], [1, 2, 3])
    with pytest.raises(ValueError, match="paired"):
        pearson_r([1, 2], [1, 2, 3])


# --- OLS --------------------------------------------------------------------------------------


@given(
    st.floats(min_value=-20, max_value=20),
    st.floats(min_value=-3, max_value=3),
    st.lists(scores, min_size=2, max_size=50, unique=True),
)
def test_ols_recovers_exact_lines(a: float, b: float, xs: list[float]) -> None:
    if max(xs) - min(xs) < 0.5:
        return
    ys = [a + b * x for x in xs]
    fa, fb, resid = ols(xs, ys)
    assert fa == pytest.approx(a, abs=1e-7)
    assert fb == pytest.approx(b, abs=1e-8)
    assert all(abs(e) < 1e-8 for e in resid)


def test_ols_matches_numpy_polyfit() -> None:
    rng = random.Random(7)
    xs = [rng.uniform(0, 40) for _ in range(500)]
    ys = [3 + 0.7 * x + rng.gauss(0, 4) for x in xs]
    a, b, resid = ols(xs, ys)
    nb, na = np.polyfit(xs, ys, 1)
    assert a == pytest.approx(na, abs=1e-9)
    assert b == pytest.approx(nb, abs=1e-10)
    expected_resid = np.asarray(ys) - (na + nb * np.asarray(xs))
    assert np.allclose(resid, expected_resid, atol=1e-9)
    assert abs(math.fsum(resid)) < 1e-8  # OLS residuals sum to 0


def test_ols_errors() -> None:
    with pytest.raises(ValueError, match="same"):
        ols([2, 2, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least 2"):
        ols([1], [1])
    with pytest.raises(ValueError, match="paired"):
        ols([1, 2], [1])


# --- pre–post effect size ---------------------------------------------------------------------


def _numpy_effect_size(pre: list[float], post: list[float]) -> tuple[float, float, float]:
    """Independent computation of d and its 95% CI (Becker 1988 large-sample SE)."""
    a, b = np.asarray(pre), np.asarray(post)
    n = len(a)
    d = (b - a).mean() / a.std(ddof=1)
    r = np.corrcoef(a, b)[0, 1]
    se = np.sqrt(2 * (1 - r) / n + d**2 / (2 * n))
    z = 1.959963984540054
    return float(d), float(d - z * se), float(d + z * se)


def test_effect_size_matches_numpy() -> None:
    rng = random.Random(11)
    pre = [rng.gauss(19, 6.5) for _ in range(300)]
    post = [x + rng.gauss(5, 6) for x in pre]
    es = pre_post_effect_size(pre, post)
    d, lo, hi = _numpy_effect_size(pre, post)
    assert es.n == 300
    assert es.d == pytest.approx(d, abs=1e-12)
    assert es.ci_low == pytest.approx(lo, abs=1e-12)
    assert es.ci_high == pytest.approx(hi, abs=1e-12)
    assert es.ci_low < es.d < es.ci_high
    assert es.mean_change == pytest.approx(float(np.mean(np.subtract(post, pre))))


def test_effect_size_hand_checked() -> None:
    pre, post = [10.0, 20.0, 30.0], [15.0, 24.0, 38.0]
    es = pre_post_effect_size(pre, post)
    # mean change 17/3, SD(pre) 10 → d 0.5667
    assert es.d == pytest.approx(17 / 30)
    assert es.sd_pre == pytest.approx(10.0)
    r = float(np.corrcoef(pre, post)[0, 1])
    assert es.r == pytest.approx(r)
    assert es.se == pytest.approx(math.sqrt(2 * (1 - r) / 3 + (17 / 30) ** 2 / 6))


def test_effect_size_degenerate_cases() -> None:
    es = pre_post_effect_size([10, 20], [15, 30])  # n = 2: d, but no r and no CI
    assert es.d == pytest.approx(7.5 / math.sqrt(50))  # mean change 7.5, SD(pre) √50
    assert es.r is None and es.ci_low is None and es.ci_high is None
    es = pre_post_effect_size([10, 20, 30], [25, 25, 25])  # constant post: r undefined
    assert es.ci_low is None
    with pytest.raises(ValueError, match="same"):
        pre_post_effect_size([20, 20, 20], [25, 26, 27])
    with pytest.raises(ValueError, match="at least 2"):
        pre_post_effect_size([20], [25])


@pytest.mark.parametrize("module", ["fit_core.stats", "fit_core.trajectories", "fit_core.agency"])
def test_package_code_does_not_import_numpy(module: str) -> None:
    import ast
    import importlib
    import inspect

    tree = ast.parse(inspect.getsource(importlib.import_module(module)))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add((node.module or "").split(".")[0])
    assert not imported & {"numpy", "scipy", "pandas"}
