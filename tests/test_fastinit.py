"""The fast ``__init__`` of the per-record dataclasses (fit_core.fastinit) is the dataclass's own.

For every decorated class: the same fields from the same arguments (positional, keyword,
defaults, a fresh default-factory value each time), the same errors for bad calls, and an
object that is still a frozen instance of the class (equality, hashing, repr, replace, pickle).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fit_core import models
from fit_core.fastinit import ORIGINAL_INIT, fast_init

DECORATED = [
    models.Record,
    models.Administration,
    models.Flag,
    models.Score,
    models.Scored,
    models.OutboxItem,
]

VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.tuples(st.floats(allow_nan=False)),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.dates(),
)


def _reference(cls: type, *args: Any, **kwargs: Any) -> Any:
    """An object built by the dataclass's own __init__."""
    obj = object.__new__(cls)
    ORIGINAL_INIT[cls](obj, *args, **kwargs)
    return obj


def _values(obj: Any) -> list[Any]:
    return [getattr(obj, f.name) for f in dataclasses.fields(obj)]


def test_the_per_record_classes_are_decorated() -> None:
    assert set(DECORATED) <= set(ORIGINAL_INIT)
    for cls in DECORATED:
        assert cls.__init__ is not ORIGINAL_INIT[cls]


@pytest.mark.parametrize("cls", DECORATED, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_fields_are_those_the_dataclass_init_sets(cls: type, data: st.DataObject) -> None:
    fields = dataclasses.fields(cls)
    required = [
        f
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    optional = [f for f in fields if f not in required]
    given_args = [data.draw(VALUE) for _ in required]
    n_optional = data.draw(st.integers(0, len(optional)))
    as_keywords = data.draw(st.booleans())
    extra = {f.name: data.draw(VALUE) for f in optional[:n_optional]}
    if as_keywords:
        kwargs = {f.name: v for f, v in zip(required, given_args, strict=True)} | extra
        fast, ref = cls(**kwargs), _reference(cls, **kwargs)
    else:
        args = [*given_args, *extra.values()]
        fast, ref = cls(*args), _reference(cls, *args)
    assert type(fast) is cls
    for got, want in zip(_values(fast), _values(ref), strict=True):
        if isinstance(want, dict) and not want:
            assert got == want  # a fresh default_factory value each
        else:
            assert got is want
    assert repr(fast) == repr(ref)
    assert fast == ref


@pytest.mark.parametrize("cls", DECORATED, ids=lambda c: c.__name__)
def test_bad_calls_fail_as_the_dataclass_init_fails(cls: type) -> None:
    n_fields = len(dataclasses.fields(cls))
    for args, kwargs in (((), {}), ((None,) * (n_fields + 1), {}), ((), {"no_such_field": 1})):
        with pytest.raises(TypeError) as fast:
            cls(*args, **kwargs)
        with pytest.raises(TypeError) as ref:
            _reference(cls, *args, **kwargs)
        assert str(fast.value).split("(")[-1] == str(ref.value).split("(")[-1]


def _administration() -> models.Administration:
    now = dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.UTC)
    return models.Administration("src", "k1", "default", "C1", "ORS", now, now.date(), False, 20.5)


def test_the_object_stays_a_frozen_dataclass_instance() -> None:
    a = _administration()
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.total = 1.0  # type: ignore[misc]
    ref = _reference(models.Administration, *_values(a))
    for obj in (a, ref):  # whatever the dataclass's own __setattr__ does (a TypeError on 3.11)
        with pytest.raises((AttributeError, TypeError)):
            obj.not_a_field = 1  # type: ignore[attr-defined]
    assert a == _administration() and hash(a.key) == hash(("src", "k1"))
    changed = dataclasses.replace(a, total=30.0)
    assert type(changed) is models.Administration and changed.total == 30.0
    assert changed.source_key == "k1" and a.total == 20.5
    for clone in (copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        assert clone == a and type(clone) is models.Administration
    score = models.Score(20.5, 1, "E1", "adult", 25.0, True, None)
    assert hash(score) == hash(_reference(models.Score, *_values(score)))


def test_default_factory_values_are_not_shared() -> None:
    one, two = models.Record("k1", {}), models.Record("k2", {})
    assert one.extra == {} and one.extra is not two.extra


def test_a_subclass_gets_the_dataclass_init() -> None:
    class Sub(models.Administration):
        __slots__ = ("more",)

    now = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    sub = Sub("src", "k1", "default", "C1", "ORS", now, now.date(), False, 20.5)
    assert type(sub) is Sub and sub.total == 20.5 and sub.extra == {}


def test_only_plain_frozen_slotted_dataclasses_are_accepted() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclasses.dataclass(slots=True)
    class NotFrozen:
        x: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class PostInit:
        x: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(frozen=True, slots=True)
    class NotInInit:
        x: int
        y: int = dataclasses.field(default=0, init=False)

    for cls in (NoSlots, NotFrozen, PostInit, NotInInit):
        with pytest.raises(TypeError, match="fast_init needs"):
            fast_init(cls)
