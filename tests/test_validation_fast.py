"""The validation fast path gives exactly what the marshmallow schema gives: the same
Administration for a valid record, the same errors (from the schema itself) for any other."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fit_core import validation
from fit_core.measures import BUILTIN_MEASURES
from fit_core.models import Administration, Record
from fit_core.synthetic import bad_rows, generate_rows
from fit_core.validation import Validator

MEASURES = {m.key: m for m in BUILTIN_MEASURES}
TODAY = dt.date(2026, 3, 1)
ZONES = ("UTC", "Europe/Berlin", "Pacific/Kiritimati", "America/Los_Angeles")


def validators(tz: str, keep_case: bool = False) -> tuple[Validator, Validator]:
    """(with the fast path, schema only) for the same source."""
    common: dict[str, Any] = {"source": "s", "namespace": "ns", "keep_case": keep_case}
    return (
        Validator(MEASURES, tz, today=TODAY, **common),
        Validator(MEASURES, tz, today=TODAY, fast_path=False, **common),
    )


def same(a: Any, b: Any) -> bool:
    """Equal, and equal as shown (an aware datetime compares equal across zones)."""
    return a == b and repr(a) == repr(b)


# --- values: mostly plausible (so the fast path has work), often a little off, sometimes anything


def mix(plausible: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``plausible`` about nine times in ten, else ``odd``."""
    return st.integers(0, 9).flatmap(lambda n: plausible if n < 9 else odd)


ODD_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from("\n\t\u202e\x00"),
    max_size=8,
)
ODD_NUMBER = st.one_of(
    st.sampled_from(
        [
            *("-0", "-1", "11", "10.01", "9.999", "3.333", "+4", ".5", "5.", "1e1", "inf"),
            *("nan", "١", "５", "1,000", "0,125", "4 5", "abc", " ", "10.00", "07.50", " 6.25 "),
        ]
    ),
    st.decimals(min_value=-1, max_value=41, places=3).map(str),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 50),
    st.none(),
    st.booleans(),
    ODD_TEXT,
)
ITEM = mix(
    st.one_of(
        st.integers(0, 100).map(lambda n: f"{n / 10:g}"),
        st.integers(0, 100).map(lambda n: f"{n / 10:.1f}".replace(".", ",")),
        st.integers(0, 1000).map(lambda n: f"{n / 100:g}"),
    ),
    ODD_NUMBER,
)
WHEN = mix(
    st.one_of(
        st.dates(dt.date(1990, 1, 1), dt.date(2026, 3, 2)).map(dt.date.isoformat),
        st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2026, 3, 2, 23, 59)).map(
            lambda d: d.isoformat(timespec="seconds")
        ),
        st.sampled_from(["2024-01-02T10:00:00Z", "2024-01-02T23:30:00-08:00", " 2024-01-02 "]),
        st.sampled_from(["2026-03-02T23:59:59", "2026-03-02T12:00:00+14:00", "1990-01-01"]),
    ),
    st.one_of(
        st.sampled_from(["1989-12-31", "0001-01-01", "9999-12-31", "9999-12-31T23:00:00"]),
        st.sampled_from(["20240102", "2024-13-01", "02/01/2024", "", "2026-03-04"]),
        st.dates(dt.date(2020, 1, 1), dt.date(2026, 1, 1)),
        st.none(),
        ODD_TEXT,
    ),
)
CLIENT = mix(
    st.sampled_from(["C1", "c1", " C1 ", "Ｃ１", "G 01", "g\u00a001", "ß1", "a" * 128, "C2"]),
    st.one_of(
        st.sampled_from(["", "  ", "a\nb", "x\u202ey", "\x1b[31m", "a" * 129]),
        st.integers(0, 9),
        st.none(),
        ODD_TEXT,
    ),
)
MEASURE = mix(
    st.sampled_from(["ORS", "SRS", "ors", " cors ", "CSRS", "GSRS"]),
    st.one_of(st.sampled_from(["PHQ9", "", "SRS2"]), st.none(), ODD_TEXT),
)
OPTIONAL_ID = mix(
    st.sampled_from(["", "T01", " T01 ", "E-1", "client", "Parent", None]),
    st.one_of(st.sampled_from(["x" * 129, "a\tb"]), st.integers(0, 3), ODD_TEXT),
)
WHOLE = mix(
    # ages and sessions, the ends of their ranges included
    st.sampled_from(["", "34", " 34 ", "34.0", "0", "7", None, "120", "121", "9999", "10000"]),
    st.one_of(
        st.sampled_from(["12.5", "-1", "200", "-0"]),
        st.integers(-3, 130),
        ODD_NUMBER,
    ),
)
BIRTH = mix(
    st.sampled_from(["", "1990-05-06", " 2010-02-28 ", None]),
    st.one_of(st.sampled_from(["2030-01-01", "1990-02-30", "soon"]), ODD_TEXT),
)
SCALE = mix(st.sampled_from(["points", "cm"]), st.sampled_from(["mm", "percent", "range:0:7", "x"]))
KEY = mix(
    st.sampled_from(["k1", "k2", "nk:C1|2024-01-02|ORS|client", "k" * 1024]),
    st.one_of(st.sampled_from(["", "k" * 1025, "\ud800", "a\udcffb"]), ODD_TEXT),
)


@st.composite
def records(draw: st.DrawFn) -> Record:
    items = [draw(ITEM) for _ in range(4)]
    total_kind = draw(st.sampled_from(["empty", "empty", "sum", "near", "far", "any", "alone"]))
    total: Any = ""
    if total_kind in ("sum", "near", "far"):
        try:
            exact_sum = sum(float(str(v).replace(",", ".")) for v in items)
            off = {"sum": 0, "near": 0.05, "far": 0.06}[total_kind]
            total = f"{exact_sum + off:.2f}"
        except ValueError:
            total = draw(ITEM)
    elif total_kind == "any":
        total = draw(ODD_NUMBER)
    elif total_kind == "alone":
        items = ["", "", "", ""] if draw(st.booleans()) else [draw(ITEM), "", "", ""]
        total = draw(mix(st.integers(0, 400).map(lambda n: f"{n / 10:g}"), ODD_NUMBER))
    data: dict[str, Any] = {
        "client_id": draw(CLIENT),
        "administered_at": draw(WHEN),
        "measure": draw(MEASURE),
        "q1": items[0],
        "q2": items[1],
        "q3": items[2],
        "q4": items[3],
        "total": total,
    }
    for name, strategy in (
        ("clinician_id", OPTIONAL_ID),
        ("episode_id", OPTIONAL_ID),
        ("rater", OPTIONAL_ID),
        ("site", OPTIONAL_ID),
        ("age", WHOLE),
        ("session", WHOLE),
        ("date_of_birth", BIRTH),
    ):
        if draw(st.booleans()):
            data[name] = draw(strategy)
    extra = draw(st.sampled_from([{}, {"event": "baseline_arm_1", "instance": 2}]))
    return Record(draw(KEY), data, draw(SCALE), None, "file line 2", extra)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.lists(records(), min_size=1, max_size=6),
    tz=st.sampled_from(ZONES),
    keep_case=st.booleans(),
)
def test_the_fast_path_gives_what_the_schema_gives(batch, tz, keep_case) -> None:
    fast, schema = validators(tz, keep_case)
    # the definition: each record judged alone by the schema
    want = [schema.validate(record) for record in batch]
    # a batch judges each record as if it were alone, with or without the fast path
    for got in (fast.validate_many(batch), schema.validate_many(batch)):
        assert len(got) == len(batch)
        for g, w in zip(got, want, strict=True):
            assert same(g, w), (g, w)
    # again one by one (the fast path memoises what it saw)
    for record, w in zip(batch, want, strict=True):
        assert same(fast.validate(record), w)


def test_valid_rows_never_reach_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = list(generate_rows(600, seed=3))
    recs = [Record(r.pop("source_key"), r) for r in rows]
    fast, schema = validators("Europe/Berlin")
    want = schema.validate_many(recs)
    assert all(isinstance(a, Administration) for a in want)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a valid record went to the marshmallow schema")

    monkeypatch.setattr(validation.AdministrationSchema, "load", refuse)
    assert fast.validate_many(recs) == want


def test_bad_rows_keep_the_schemas_messages() -> None:
    good = next(iter(generate_rows(1, seed=5)))
    bad = bad_rows(good)
    recs = [Record(r.pop("source_key", f"k{i}"), r) for i, r in enumerate(bad)]
    fast, schema = validators("UTC")
    got = fast.validate_many(recs)
    assert got == schema.validate_many(recs)
    assert all(isinstance(g, dict) and g for g in got)
