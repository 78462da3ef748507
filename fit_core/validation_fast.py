"""The fast path of validation: plain records accepted without marshmallow's per-field cost.

:class:`~fit_core.validation.Validator` hands every record to :meth:`FastPath.accept` first. It
answers with the :class:`~fit_core.models.Administration` the full schema would give, or None
when the record is anything but plainly valid: a value that is not text (or None where the
schema allows it), a value outside the accepted forms, any error at all. Those records, and only
those, go through the marshmallow schema of :mod:`fit_core.validation`, which stays the one
definition of what is accepted and the one source of error messages.

The checks are the schema's own functions (:mod:`fit_core.inputs`, ``parse_when``,
``AdministrationSchema._check_items``); only the common case of the item check (four items, or
the total alone, on the item scale) is restated inline, with the same range, precision and
tolerance rules. A property test (tests/test_validation_fast.py) holds the two paths to the same
answers for arbitrary input, valid or not. What makes this path fast
is memoisation: an export repeats the same texts over and over (item values, dates, client
codes, clinicians, raters), so each distinct text is parsed once per run. Every memo is bounded
(:data:`MEMO_LIMIT` entries, then it starts again), so memory does not grow with the source.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from sys import intern
from typing import Any

from . import exact, inputs
from .identity import normalise_client_id
from .measures import Measure
from .models import Administration, Record
from .validation import TOTAL_TOLERANCE

MEMO_LIMIT = 20_000  # distinct texts kept per memo

_BAD = object()  # a memoised "not plainly valid"
_MISS = object()  # not memoised yet
_ANSWERS = ("q1", "q2", "q3", "q4", "total")
_PLAIN_SCALES = frozenset({"points", "cm"})
_ZERO = Decimal(0)
_CENTS_BOUND = 1e9  # item scales within it: hundredths of their values are exact in a float


class FastPath:
    """Accepts the plainly valid records of one :class:`~fit_core.validation.Validator`."""

    def __init__(
        self,
        measures: Mapping[str, Measure],
        when: Callable[[Any], tuple[dt.datetime, dt.date, bool]],
        check_items: Callable[..., None],
        latest: dt.date,
        *,
        source: str,
        namespace: str,
        keep_case: bool,
        no_extra: Mapping[str, Any],
    ) -> None:
        self._measures = measures
        self._parse_when = when
        self._check_items = check_items
        self._latest = latest
        self._source = intern(source)
        self._namespace = intern(namespace)
        self._keep_case = keep_case
        self._no_extra = no_extra
        # raw value -> what it reads as (values of other types are memoised as _BAD)
        self._numbers: dict[Any, Any] = {}
        self._wholes: dict[Any, Any] = {}
        self._ids: dict[Any, Any] = {}
        self._clients: dict[Any, Any] = {}
        self._whens: dict[Any, Any] = {}
        self._measure_of: dict[Any, Any] = {}

    # --- memoised pieces (each returns _BAD for anything the schema would not accept as is) ---

    def _number(self, value: Any) -> Any:
        """parse_number of a text (None/"" → None); _BAD when it raises or is not text."""
        return _parse_into(self._numbers, value, inputs.parse_number)

    def _whole(self, value: Any) -> Any:
        """parse_whole of a text (None/"" → None); _BAD when it raises or is not text."""
        return _parse_into(self._wholes, value, inputs.parse_whole)

    def _ident(self, value: Any) -> Any:
        """An optional identifier: trimmed text or None; _BAD when id_problem objects."""
        memo = self._ids
        text: Any = None
        if type(value) is not str:
            text = None if value is None else _BAD
        elif text := value.strip():
            text = _BAD if inputs.id_problem(text) else intern(text)
        else:
            text = None
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        memo[value] = text
        return text

    def _client(self, value: Any) -> Any:
        """The normalised client code of a text; _BAD when missing or not acceptable."""
        memo = self._clients
        text = value.strip() if type(value) is str else ""
        out: Any = _BAD
        if text and not inputs.id_problem(text):
            out = intern(normalise_client_id(text, keep_case=self._keep_case))
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        memo[value] = out
        return out

    def _when(self, value: Any) -> Any:
        """(UTC time, local date, date only) of a text inside the accepted window, or _BAD."""
        memo = self._whens
        out: Any = _BAD
        if type(value) is str:
            try:
                out = self._parse_when(value)
            except ValueError:
                out = _BAD
            else:
                if inputs.date_problem(out[1], self._latest):
                    out = _BAD
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        memo[value] = out
        return out

    def _measure(self, value: Any) -> Any:
        """(measure, its name as given: trimmed, upper case) of a scored measure, or _BAD."""
        memo = self._measure_of
        out: Any = _BAD
        if type(value) is str:
            name = intern(value.strip().upper())
            measure = self._measures.get(name)
            if measure is not None and measure.scored:
                out = (measure, name)
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        memo[value] = out
        return out

    # --- one record -------------------------------------------------------------------------

    def accept(self, record: Record) -> Administration | None:
        """The record's Administration when it is plainly valid, else None (use the schema).

        Never raises: a record that breaks a check in an unforeseen way is the schema's too."""
        try:
            return self._accept(record)
        except Exception:
            return None

    def _accept(self, record: Record) -> Administration | None:
        data = record.data
        get = data.get
        # each memo lookup is inlined; a text seen for the first time goes to its filler
        v = get("client_id")
        client = self._clients.get(v, _MISS)
        if client is _MISS:
            client = self._client(v)
        if client is _BAD:
            return None
        v = get("measure")
        named = self._measure_of.get(v, _MISS)
        if named is _MISS:
            named = self._measure(v)
        if named is _BAD:
            return None
        v = get("administered_at")
        when = self._whens.get(v, _MISS)
        if when is _MISS:
            when = self._when(v)
        if when is _BAD:
            return None
        ids = self._ids
        v = get("clinician_id")
        clinician = ids.get(v, _MISS)
        if clinician is _MISS:
            clinician = self._ident(v)
        v = get("episode_id")
        episode = ids.get(v, _MISS)
        if episode is _MISS:
            episode = self._ident(v)
        v = get("rater")
        rater = ids.get(v, _MISS)
        if rater is _MISS:
            rater = self._ident(v)
        v = get("site")
        site = ids.get(v, _MISS)
        if site is _MISS:
            site = self._ident(v)
        if clinician is _BAD or episode is _BAD or rater is _BAD or site is _BAD:
            return None
        wholes = self._wholes
        v = get("age")
        age = wholes.get(v, _MISS)
        if age is _MISS:
            age = self._whole(v)
        v = get("session")
        session = wholes.get(v, _MISS)
        if session is _MISS:
            session = self._whole(v)
        if age is _BAD or session is _BAD:
            return None
        if session is not None and not 0 <= session <= inputs.MAX_SESSION:
            return None
        if age is None and (dob := get("date_of_birth")) is not None:
            age = _age_from(dob, when[1])
            if age is _BAD:
                return None
        if age is not None and not 0 <= age <= 120:
            return None
        numbers = self._numbers
        answers = []
        for name in _ANSWERS:
            v = get(name)
            x = numbers.get(v, _MISS)
            if x is _MISS:
                x = self._number(v)
            if x is _BAD:
                return None
            answers.append(x)
        measure, measure_name = named
        checked = self._items(measure, answers, record.scale)
        if checked is None:
            return None
        key = record.source_key
        if not key or len(key) > inputs.MAX_KEY_LENGTH or not _storable(key):
            return None
        return Administration(
            self._source,
            key,
            self._namespace,
            client,
            measure_name,
            when[0],
            when[1],
            when[2],
            checked[1],
            checked[0],
            clinician,
            episode,
            intern((rater or "client").lower()),
            age,
            session,
            dict(record.extra) if record.extra else self._no_extra,
            site,
        )

    def _items(
        self, measure: Measure, answers: list[Any], scale: str
    ) -> tuple[tuple[float, float, float, float] | None, float] | None:
        """(items, total) as the schema's item check gives them, or None for any error.

        The common case (four items, or the total alone, on the item scale) is checked here
        with the schema's own rules; any other goes through ``_check_items`` itself."""
        q1, q2, q3, q4, total = answers
        if measure.n_items != 4 or scale not in _PLAIN_SCALES:
            out: dict[str, Any] = {}
            errors: dict[str, str] = {}
            self._check_items(measure, tuple(answers), scale, out, errors)
            return None if errors else (out["_items"], out["_total"])
        low, high, places = measure.item_min, measure.item_max, measure.decimals
        if q1 is not None and q2 is not None and q3 is not None and q4 is not None:
            for x in (q1, q2, q3, q4):
                if not low <= x <= high or round(x, places) != x:
                    return None
            if total is None and places <= 2 and low > -_CENTS_BOUND and high < _CENTS_BOUND:
                # each item is the float nearest to a whole number of hundredths, which is the
                # decimal exact.dec reads: the exact sum is that many hundredths, and an integer
                # division is correctly rounded, as float() of the Decimal sum is
                cents = (
                    round(q1 * 100.0) + round(q2 * 100.0) + round(q3 * 100.0) + round(q4 * 100.0)
                )
                return (q1, q2, q3, q4), cents / 100
            dec = exact.dec
            item_sum = _ZERO + dec(q1) + dec(q2) + dec(q3) + dec(q4)
            if total is not None and abs(item_sum - dec(total)) > TOTAL_TOLERANCE:
                return None
            return (q1, q2, q3, q4), float(item_sum)
        if q1 is not None or q2 is not None or q3 is not None or q4 is not None or total is None:
            return None
        if not measure.total_min <= total <= measure.total_max or round(total, places) != total:
            return None
        return None, total


def _parse_into(memo: dict[Any, Any], value: Any, parse: Callable[[str], Any]) -> Any:
    """``parse(value)`` for a text (None → None), remembered in ``memo``; _BAD when it raises
    ValueError or the value is not text."""
    parsed: Any = None
    if type(value) is not str:
        parsed = None if value is None else _BAD
    else:
        try:
            parsed = parse(value)
        except ValueError:
            parsed = _BAD
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[value] = parsed
    return parsed


def _age_from(dob: Any, day: dt.date) -> Any:
    """The age on ``day`` from a date-of-birth text (None when empty), or _BAD."""
    if type(dob) is not str:
        return _BAD
    dob = dob.strip()
    if not dob:
        return None
    try:
        born = dt.date.fromisoformat(dob)
    except ValueError:
        return _BAD
    age = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
    return _BAD if age < 0 else age


def _storable(text: str) -> bool:
    return text.isascii() or inputs.storable(text)
