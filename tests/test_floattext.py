"""The memoised text of floats (fit_core.floattext) is the text of each value, whatever came
before it: signed zeros, NaNs and equal values of other signs are never mixed up."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from fit_core import floattext
from fit_core.floattext import FloatText

FLOATS = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 15.25, 1e16, -1e-05, math.inf, -math.inf, math.nan]),
    st.floats(),
    st.integers(-4000, 4000).map(lambda c: c / 100),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(FLOATS, max_size=40))
def test_each_lookup_is_the_text_of_its_value(values: list[float]) -> None:
    texts = FloatText(repr)
    for v in values + values[::-1]:
        assert texts[v] == repr(v)


def test_zeros_and_nans_are_never_kept() -> None:
    texts = FloatText(repr)
    assert texts[0.0] == "0.0" and texts[-0.0] == "-0.0" and texts[0.0] == "0.0"
    assert texts[math.nan] == "nan"
    assert len(texts) == 0
    assert texts[2.5] == "2.5" and len(texts) == 1


def test_the_memo_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(floattext, "LIMIT", 10)
    texts = FloatText(repr)
    for i in range(1, 25):
        assert texts[i / 4] == repr(i / 4)
        assert len(texts) <= 10
