"""Validate one adapter :class:`~fit_core.models.Record` into an :class:`Administration`.

Rules (docs/clinical.md; OpenFIT's import rule): all four items and an optional agreeing total,
or the total alone. A partial item set, items with a total that disagrees by more than 0.05,
out-of-range or non-numeric values are errors. An empty cell is missing; 0 is a real score.
A decimal comma is accepted. Error messages name the field and never repeat the value. The
accepted forms of numbers, identifiers and dates are those of :mod:`fit_core.inputs`.

Values are exact (:mod:`fit_core.exact`): an item or total keeps the precision it was given, up to
the measure's ``decimals`` (0.01), and a finer value is an error rather than silently rounded;
range checks apply to the value as given (10.04 is out of range); the stored total is the exact
sum of the items.

Each record is validated exactly once: plainly valid records by the fast path of
:mod:`fit_core.validation_fast` (the same checks, memoised, without marshmallow's per-field
cost), every other record by the one marshmallow schema below, which gives the errors.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from sys import intern
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validates_schema

from . import exact, inputs
from .identity import normalise_client_id
from .measures import Measure, ScaleError, points_exact
from .models import Administration, Record

log = logging.getLogger(__name__)

ITEM_FIELDS = ("q1", "q2", "q3", "q4")
ANSWER_FIELDS = (*ITEM_FIELDS, "total")
TOTAL_TOLERANCE = Decimal("0.05")


def parse_number(value: Any) -> float | None:
    """A number from a cell: ``""``/None → None (missing); ``"7,5"`` → 7.5; else ValueError.

    The accepted forms are those of :func:`fit_core.inputs.parse_number`; the ValueError's
    message is the reason, never the value.
    """
    return inputs.parse_number(value)


def age_on(born: dt.date, day: dt.date) -> int:
    """Whole years of age on ``day`` for someone born on ``born``."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def parse_when(value: Any, tz: dt.tzinfo) -> tuple[dt.datetime, dt.date, bool]:
    """Parse an ISO 8601 date or date-time.

    Returns (UTC datetime, clinic-local date, date_only). A date alone is a clinic-local date; a
    date-time without an offset is clinic-local time.
    """
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        local = dt.datetime.combine(value, dt.time(), tzinfo=tz)
        return local.astimezone(dt.UTC), value, True
    else:
        text = str(value or "").strip()
        if not text:
            raise ValueError("missing")
        if len(text) == 10:
            try:
                day = dt.date.fromisoformat(text)
            except ValueError:
                raise ValueError("not an ISO 8601 date (YYYY-MM-DD)") from None
            local = dt.datetime.combine(day, dt.time(), tzinfo=tz)
            return local.astimezone(dt.UTC), day, True
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("not an ISO 8601 date or date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    try:
        utc = moment.astimezone(dt.UTC)
        return utc, utc.astimezone(tz).date(), False
    except (OverflowError, ValueError):  # year 1 east of UTC, year 9999 west of it
        far = moment.year < inputs.EARLIEST_DATE.year
        raise ValueError(inputs.TOO_EARLY if far else inputs.TOO_LATE) from None


class _Text(fields.Field):
    """A trimmed string; empty → None."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        return _text(value)


class _Raw(fields.Field):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        return value


# The fields below never raise: they return their reasons next to the values, and the one schema
# validator reports every bad field of a record at once. That is also what makes loading a chunk
# with many=True safe (marshmallow skips schema validators for the whole batch as soon as any
# item has a field error).


class _Answers(fields.Field):
    """q1..q4, total and the scale as one tuple (few fields keep marshmallow's cost low)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        out: list[float | None] = []
        errors: dict[str, str] = {}
        for key, raw in zip(ANSWER_FIELDS, value, strict=False):
            try:
                out.append(parse_number(raw))
            except ValueError as exc:
                errors[key] = str(exc)
                out.append(None)
        return tuple(out), value[5], errors


_CONTEXT_TEXT = ("clinician_id", "episode_id", "rater", "date_of_birth", "site")
_CONTEXT_INT = ("age", "session")


class _Context(fields.Field):
    """The optional descriptive fields: clinician_id, episode_id, rater, age, session."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        out: dict[str, Any] = {}
        errors: dict[str, str] = {}
        get = value.get
        for key in _CONTEXT_TEXT:
            text = out[key] = _text(get(key))
            if text is not None and key != "date_of_birth" and (bad := inputs.id_problem(text)):
                errors[key] = bad
        for key in _CONTEXT_INT:
            try:
                out[key] = inputs.parse_whole(get(key))
            except ValueError as exc:
                errors[key] = str(exc)
                out[key] = None
        session = out["session"]
        if session is not None and not 0 <= session <= inputs.MAX_SESSION:
            errors["session"] = f"must be between 0 and {inputs.MAX_SESSION}"
            out["session"] = None
        return out, errors


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


class AdministrationSchema(Schema):
    """The marshmallow schema for one packed record (see :meth:`Validator.validate_many`)."""

    class Meta:
        unknown = EXCLUDE

    client_id = _Text(required=True)
    administered_at = _Raw(required=True)
    measure = _Text(required=True)
    answers = _Answers(required=True)
    context = _Context(required=True)

    def __init__(
        self, measures: Mapping[str, Measure], tz: dt.tzinfo, latest: dt.date | None = None
    ) -> None:
        super().__init__()
        self._measures = measures
        self._tz = tz
        self._latest = latest or inputs.latest_date(dt.datetime.now(tz).date())
        self._when_cache: dict[Any, tuple[dt.datetime, dt.date, bool]] = {}

    def _when(self, value: Any) -> tuple[dt.datetime, dt.date, bool]:
        """parse_when, memoised: an export repeats the same dates many times."""
        cache = self._when_cache
        try:
            return cache[value]
        except (KeyError, TypeError):
            pass
        parsed = parse_when(value, self._tz)
        if len(cache) > 100_000:
            cache.clear()
        with contextlib.suppress(TypeError):  # unhashable input: just don't memoise
            cache[value] = parsed
        return parsed

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        ctx, errors = data["context"]
        errors = dict(errors)
        data["context"] = ctx
        client = data.get("client_id")
        if not client:
            errors["client_id"] = "missing"
        elif bad := inputs.id_problem(client):
            errors["client_id"] = bad
        measure_key = data["measure"] = (data.get("measure") or "").upper()
        measure = self._measures.get(measure_key)
        if not measure_key:
            errors["measure"] = "missing"
        elif measure is None:
            errors["measure"] = f"unknown measure (known: {', '.join(sorted(self._measures))})"
        elif not measure.scored:
            errors["measure"] = f"{measure.key} is not scored (engagement only)"
        try:
            data["administered_at"] = self._when(data.get("administered_at"))
        except ValueError as exc:
            errors["administered_at"] = str(exc)
        else:
            if bad := inputs.date_problem(data["administered_at"][1], self._latest):
                errors["administered_at"] = bad
        dob = ctx.pop("date_of_birth", None)
        if ctx["age"] is None and dob is not None and "administered_at" not in errors:
            try:
                born = dt.date.fromisoformat(dob)
            except ValueError:
                errors["date_of_birth"] = "not an ISO 8601 date (YYYY-MM-DD)"
            else:
                age_then = age_on(born, data["administered_at"][1])
                ctx["age"] = age_then
                if age_then < 0:
                    errors["date_of_birth"] = "after the administration date"
        age = ctx["age"]
        if age is not None and not 0 <= age <= 120 and "date_of_birth" not in errors:
            errors["age"] = "must be between 0 and 120"
        values, scale, answer_errors = data["answers"]
        if answer_errors:
            errors.update(answer_errors)
        elif measure is not None and measure.scored:
            self._check_items(measure, values, scale, data, errors)
        if errors:
            raise ValidationError(errors)

    def _check_items(
        self,
        measure: Measure,
        answers: tuple[float | None, ...],
        scale: str,
        data: dict[str, Any],
        errors: dict[str, str],
    ) -> None:
        """Items and total, exactly: range and precision on the value as given, exact sum."""
        raw = answers[: measure.n_items]
        total = answers[4]
        present = [v is not None for v in raw]
        if all(present):
            if scale in ("points", "cm"):
                item_sum = self._plain_items(measure, raw, data, errors)  # type: ignore[arg-type]
                if item_sum is None:
                    return
            else:
                item_sum = self._converted_items(measure, raw, scale, data, errors)
                if item_sum is None:
                    return
            if total is not None and abs(item_sum - exact.dec(total)) > TOTAL_TOLERANCE:
                errors["total"] = "disagrees with the sum of the items by more than 0.05"
                data.pop("_items", None)
                return
            data["_total"] = float(item_sum)
            return
        if any(present):
            for key, ok in zip(ITEM_FIELDS, present, strict=False):
                if not ok:
                    errors[key] = "missing: give all four items, or the total alone"
            return
        if total is None:
            errors["total"] = "missing: give the four items or the total"
            return
        if not measure.total_min <= total <= measure.total_max:
            errors["total"] = (
                f"out of range (totals are {measure.total_min:g}-{measure.total_max:g})"
            )
            return
        if not exact.within(total, measure.decimals):
            errors["total"] = _too_precise(measure, "")
            return
        data["_items"] = None
        data["_total"] = total

    @staticmethod
    def _plain_items(
        measure: Measure,
        raw: tuple[float, ...],
        data: dict[str, Any],
        errors: dict[str, str],
    ) -> Decimal | None:
        """Items already on the item scale: checked and summed as given (floats that stand for
        short decimals compare exactly; see :func:`fit_core.exact.within`)."""
        low, high, places = measure.item_min, measure.item_max, measure.decimals
        for key, value in zip(ITEM_FIELDS, raw, strict=False):
            if not low <= value <= high:
                errors[key] = f"out of range (items are {low:g}-{high:g})"
            elif not exact.within(value, places):
                errors[key] = _too_precise(measure, "")
        if errors:
            return None
        data["_items"] = tuple(raw)
        return sum(map(exact.dec, raw), Decimal(0))

    @staticmethod
    def _converted_items(
        measure: Measure,
        raw: tuple[float | None, ...],
        scale: str,
        data: dict[str, Any],
        errors: dict[str, str],
    ) -> Decimal | None:
        """Items on another scale, converted exactly (see :func:`points_exact`), then checked."""
        items: list[Decimal] = []
        after = f" after converting from {scale}"
        for key, value in zip(ITEM_FIELDS, raw, strict=False):
            try:
                points, is_exact = points_exact(value, scale, measure)  # type: ignore[arg-type]
            except ScaleError as exc:
                errors[key] = str(exc)
                return None
            if not exact.dec(measure.item_min) <= points <= exact.dec(measure.item_max):
                errors[key] = (
                    f"out of range (items are {measure.item_min:g}-{measure.item_max:g}{after})"
                )
            elif is_exact and exact.decimals(points) > measure.decimals:
                errors[key] = _too_precise(measure, after)
            items.append(points)
        if errors:
            return None
        data["_items"] = tuple(float(v) for v in items)
        return sum(items, Decimal(0))


def _too_precise(measure: Measure, after: str) -> str:
    step = f"{Decimal(1).scaleb(-measure.decimals)}"
    return (
        f"more than {measure.decimals} decimals{after}: fit-sync keeps values to {step} "
        "(round it at the source)"
    )


class Validator:
    """Validates records for one source; build one per source and reuse it."""

    def __init__(
        self,
        measures: Mapping[str, Measure],
        tz: dt.tzinfo | str,
        *,
        source: str,
        namespace: str | None = None,
        keep_case: bool = False,
        today: dt.date | None = None,
        fast_path: bool = True,
    ) -> None:
        """``today`` (default: the current clinic-local date) ends the accepted date window
        one day later (see :mod:`fit_core.inputs`). ``fast_path=False`` sends every record
        through the marshmallow schema (the definition the fast path is tested against)."""
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self.source = source
        self.keep_case = keep_case  # client codes: see fit_core.identity
        self.namespace = namespace or source
        self._measures = {k.upper(): m for k, m in measures.items()}
        latest = inputs.latest_date(today or dt.datetime.now(self.tz).date())
        self._schema = AdministrationSchema(self._measures, self.tz, latest)
        from .validation_fast import FastPath

        self._fast: FastPath | None = None
        if not fast_path:
            return
        self._fast = FastPath(
            self._measures,
            self._schema._when,
            self._schema._check_items,
            latest,
            source=source,
            namespace=self.namespace,
            keep_case=keep_case,
            no_extra=_NO_EXTRA,
        )

    def validate(self, record: Record) -> Administration | dict[str, str]:
        """An :class:`Administration`, or a mapping of field name → reason."""
        return self.validate_many([record])[0]

    def validate_many(self, records: Sequence[Record]) -> list[Administration | dict[str, str]]:
        """Validate a chunk; results in input order.

        Plainly valid records take the fast path; the others are loaded in one marshmallow
        ``load(many=True)``. Never raises for a bad value: a record that breaks validation in an
        unforeseen way (the chunk is then validated record by record) gets a ``record`` error
        of its own.
        """
        if self._fast is None:
            return self._validate_slow(records)
        accept = self._fast.accept
        out: list[Administration | dict[str, str] | None] = [accept(r) for r in records]
        doubtful = [i for i, a in enumerate(out) if a is None]
        if doubtful:
            checked = self._validate_slow([records[i] for i in doubtful])
            for i, result in zip(doubtful, checked, strict=True):
                out[i] = result
        return out  # type: ignore[return-value]

    def _validate_slow(self, records: Sequence[Record]) -> list[Administration | dict[str, str]]:
        """The marshmallow schema for a chunk (see :meth:`validate_many`)."""
        try:
            return self._validate_chunk(records)
        except Exception:
            log.debug("validation of a chunk failed; validating its records one by one")
        out: list[Administration | dict[str, str]] = []
        for record in records:
            try:
                out.extend(self._validate_chunk([record]))
            except Exception as exc:
                log.debug("record %s broke validation", record.source_key, exc_info=True)
                out.append({"record": f"cannot be read ({type(exc).__name__})"})
        return out

    def _validate_chunk(self, records: Sequence[Record]) -> list[Administration | dict[str, str]]:
        packed = [_pack(r) for r in records]
        try:
            loaded = self._schema.load(packed, many=True)
            failed: Mapping[int, Any] = {}
        except ValidationError as exc:
            valid = exc.valid_data  # a list of the records that loaded, with many=True
            loaded = valid if isinstance(valid, list) else []
            failed = exc.messages  # type: ignore[assignment]
            if len(records) > 1 and any(
                i not in failed and "_total" not in d for i, d in enumerate(loaded)
            ):
                # marshmallow skips the schema check of the whole batch when one record has
                # a field error: a record must be judged on its own, so judge each alone
                raise _Skipped from None
        out: list[Administration | dict[str, str]] = []
        for i, (record, d) in enumerate(zip(records, loaded, strict=True)):
            bad_key = inputs.key_problem(record.source_key)
            if i in failed:
                reasons = _flatten(failed[i])
                if bad_key:
                    reasons["source_key"] = bad_key
                out.append(reasons)
            elif bad_key:
                out.append({"source_key": bad_key})
            else:
                out.append(self._make(record, d))
        return out

    def _make(self, record: Record, d: Mapping[str, Any]) -> Administration:
        utc, local_date, date_only = d["administered_at"]
        ctx = d["context"]
        return Administration(
            source=self.source,
            source_key=record.source_key,
            namespace=self.namespace,
            client_id=normalise_client_id(d["client_id"], keep_case=self.keep_case),
            measure=intern(d["measure"]),
            administered_at=utc,
            local_date=local_date,
            date_only=date_only,
            total=d["_total"],
            items=d["_items"],
            clinician_id=_intern_opt(ctx["clinician_id"]),
            episode_id=ctx["episode_id"],
            rater=intern((ctx["rater"] or "client").lower()),
            age=ctx["age"],
            session_hint=ctx["session"],
            extra=dict(record.extra) if record.extra else _NO_EXTRA,
            site=_intern_opt(ctx["site"]),
        )


class _Skipped(Exception):
    """The schema check did not run for every record of a batch."""


# Values shared by many administrations are interned, and an empty ``extra`` is one shared
# read-only mapping: a sync keeps many administrations in memory at once (see RunCache).
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


def _intern_opt(value: str | None) -> str | None:
    return None if value is None else intern(value)


def _pack(record: Record) -> dict[str, Any]:
    src = record.data
    get = src.get
    return {
        "client_id": get("client_id"),
        "administered_at": get("administered_at"),
        "measure": get("measure"),
        "answers": (get("q1"), get("q2"), get("q3"), get("q4"), get("total"), record.scale),
        "context": src,
    }


def _flatten(messages: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            if isinstance(value, list):
                value = "; ".join(str(v) for v in value)
            elif isinstance(value, Mapping):
                out.update(_flatten(value))  # answers/context hold per-field messages
                continue
            name = "record" if key == "_schema" else str(key)
            out[name] = str(value)
    else:
        out["record"] = str(messages)
    return out
