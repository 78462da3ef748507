"""Exact arithmetic: items keep the precision they were given, totals are exact sums, ranges and
classes compare exact values, and rounding happens only for display."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from fit_core import exact
from fit_core.measures import BUILTIN_MEASURES
from fit_core.models import Administration, Record
from fit_core.rules import fmt
from fit_core.rules.builtin import BUILTIN_RULES
from fit_core.scoring import score_client
from fit_core.settings import Settings
from fit_core.validation import Validator

MEASURES = {m.key: m for m in BUILTIN_MEASURES}
V = Validator(MEASURES, "UTC", source="t")


def check(day: str = "2026-01-05", scale: str = "points", key: str = "k", **data: object):
    base = {"client_id": "C1", "administered_at": day, "measure": "ORS"}
    return V.validate(Record(key, {**base, **data}, scale=scale))


def items(value: str) -> dict[str, str]:
    return {f"q{i}": value for i in range(1, 5)}


def test_items_of_3_75_total_exactly_15() -> None:
    a = check(**items("3.75"))
    assert isinstance(a, Administration)
    assert a.items == (3.75, 3.75, 3.75, 3.75) and a.total == 15.0


def test_15_to_20_is_exactly_the_reliable_change() -> None:
    first = check(key="a", **items("3.75"))  # 15.0
    later = [check(day=f"2026-01-{5 + 7 * i:02d}", key=f"b{i}", **items("5")) for i in (1, 2)]
    result = score_client([first, *later], MEASURES, Settings(), BUILTIN_RULES)
    last = max(result.scored, key=lambda s: s.admin.local_date)
    assert last.score.change_from_intake == 5.0
    assert last.score.rc_class == "improved"  # 20 is still below the adult cutoff of 25
    assert not any(f.rule_id == "ors.checkpoint" for s in result.scored for f in s.flags)


def test_range_applies_to_the_value_as_given() -> None:
    assert check(q1="10.04", q2="1", q3="1", q4="1") == {"q1": "out of range (items are 0-10)"}
    assert set(check(total="40.01")) == {"total"}
    assert set(check(q1="-0.01", q2="1", q3="1", q4="1")) == {"q1"}
    assert isinstance(check(q1="10", q2="10", q3="10", q4="10"), Administration)
    # on a converted scale the range is checked on the exact converted value
    assert set(check(scale="percent", q1="100.4", q2="1", q3="1", q4="1")) == {"q1"}


def test_more_than_two_decimals_is_an_error_never_a_silent_rounding() -> None:
    e = check(q1="1.004", q2="1", q3="1", q4="1")
    assert set(e) == {"q1"} and "2 decimals" in e["q1"] and "1.004" not in e["q1"]
    assert set(check(total="20.125")) == {"total"}
    assert check(q1="1.250", q2="1", q3="1", q4="1").items[0] == 1.25  # trailing zeros are fine
    assert set(check(scale="mm", q1="37.55", q2="1", q3="1", q4="1")) == {"q1"}


def test_converted_scales_keep_exact_values_or_round_half_up_to_hundredths() -> None:
    assert check(scale="percent", **items("37.5")).items == (3.75,) * 4
    assert check(scale="percent", **items("37.5")).total == 15.0
    sevenths = check(scale="range:0:7", q1="3", q2="7", q3="0", q4="1")
    assert sevenths.items == (4.29, 10.0, 0.0, 1.43)
    assert sevenths.total == 15.72  # the exact sum of the stored items


def test_a_total_that_disagrees_with_the_exact_sum_is_an_error() -> None:
    ok = check(q1="3.75", q2="3.75", q3="3.75", q4="3.8", total="15.1")
    assert isinstance(ok, Administration) and ok.total == 15.05  # the sum, not the given total
    assert set(check(q1="3.75", q2="3.75", q3="3.75", q4="3.8", total="15.11")) == {"total"}


def test_classification_compares_exact_values() -> None:
    s = Settings()
    assert s.is_clinical(24.99, 25.0) and not s.is_clinical(25.0, 25.0)
    assert Settings(clinical_comparison="at_or_below").is_clinical(25.0, 25.0)
    assert exact.diff(15.2, 10.1) == 5.1 and exact.at_least(exact.diff(15.2, 10.2), 5.0)
    assert not exact.at_least(exact.diff(15.19, 10.2), 5.0)


def test_display_rounds_only_computed_values() -> None:
    assert fmt(15.0) == "15.0" and fmt(15.25) == "15.25" and fmt(None) == "-"
    assert fmt(4.987) == "4.99"  # a computed RC, not a score


hundredths = st.integers(min_value=0, max_value=1000).map(lambda i: Decimal(i) / 100)


@settings(max_examples=300, deadline=None)
@given(st.tuples(hundredths, hundredths, hundredths, hundredths))
def test_total_is_the_exact_sum_of_any_items_in_hundredths(values: tuple[Decimal, ...]) -> None:
    a = check(**{f"q{i + 1}": str(v) for i, v in enumerate(values)})
    assert isinstance(a, Administration)
    assert exact.dec(a.total) == sum(values)
    assert tuple(exact.dec(v) for v in a.items) == values


@settings(max_examples=200, deadline=None)
@given(hundredths.map(lambda d: d * 4), hundredths.map(lambda d: d * 4))
def test_reliable_change_class_matches_the_exact_difference(
    intake: Decimal, later: Decimal
) -> None:
    first = check(key="a", total=str(intake))
    second = check(day="2026-01-12", key="b", total=str(later))
    result = score_client([first, second], MEASURES, Settings(as_of=dt.date(2026, 1, 13)))
    s = next(x for x in result.scored if x.admin.source_key == "b").score
    assert exact.dec(s.change_from_intake) == later - intake
    delta = later - intake
    expected = (
        "deteriorated"
        if delta <= -5
        else "no_reliable_change"
        if delta < 5
        else ("recovered" if intake < 25 <= later else "improved")
    )
    assert s.rc_class == expected


@settings(max_examples=500, deadline=None)
@given(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
)
def test_float_comparisons_are_comparisons_of_the_decimals_they_stand_for(
    a: float, b: float
) -> None:
    assert exact.at_least(a, b) == (exact.dec(a) >= exact.dec(b))
    assert exact.below(a, b) == (exact.dec(a) < exact.dec(b))
    assert exact.at_most(a, b) == (exact.dec(a) <= exact.dec(b))


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e4, max_value=1e4))
def test_show_keeps_two_decimals_and_rounds_only_beyond(value: float) -> None:
    d = exact.dec(value)
    shown = exact.show(value)
    expected = exact.quantize(d, min(max(1, exact.decimals(d)), 2))
    assert Decimal(shown) == expected
