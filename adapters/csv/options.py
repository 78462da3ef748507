"""The CSV adapter's options: a strict marshmallow schema and the parsed, typed form.

The schema's output is plain data with the same keys as its input, so loading already-loaded
options again gives the same result (the engine validates options before the adapter sees them;
tests may hand raw options straight to the adapter).
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from fit_core.config import PathOption
from fit_core.errors import ConfigError
from fit_core.measures import ScaleError, check_scale

ITEM_FIELDS = ("q1", "q2", "q3", "q4")
#: fit field names a header column can map onto (``columns`` keys)
FIELDS = (
    "client_id",
    "administered_at",
    "measure",
    *ITEM_FIELDS,
    "total",
    "clinician_id",
    "episode_id",
    "rater",
    "age",
    "session",
    "date_of_birth",
    "site",
    "source_key",
)
#: fields that come from the ``wide`` map in wide mode, so ``columns`` must not map them
WIDE_OWNED = ("measure", *ITEM_FIELDS, "total")


def _delimiter(value: str) -> None:
    if value != "auto" and (len(value) != 1 or value in '"\r\n'):
        raise ValidationError('must be "auto" or a single character such as "," or ";"')


def _encoding(value: str) -> None:
    try:
        codecs.lookup(value)
    except LookupError:
        raise ValidationError(f"unknown encoding {value!r} (e.g. utf-8-sig, cp1252)") from None


def _scale(value: str) -> None:
    try:
        check_scale(value)
    except ScaleError as exc:
        raise ValidationError(str(exc)) from None


def _nonempty(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be empty")


def _header() -> fields.String:
    """A header name (a fresh field each time: marshmallow binds field instances)."""
    return fields.String(validate=_nonempty)


class CsvOptionsSchema(Schema):
    """``[sources.<name>]`` keys of a CSV source (unknown keys are errors that name them)."""

    class Meta:
        unknown = RAISE

    path = PathOption(required=True)
    scores_path = PathOption(required=True)
    delimiter = fields.String(load_default="auto", validate=_delimiter)
    encoding = fields.String(load_default="utf-8-sig", validate=_encoding)
    scores_encoding = fields.String(load_default="utf-8-sig", validate=_encoding)
    decimal_comma = fields.Boolean(load_default=True)
    scale = fields.String(load_default="points", validate=_scale)
    columns = fields.Dict(keys=fields.String(), values=_header(), load_default=dict)
    wide = fields.Dict(keys=fields.String(), values=fields.List(_header()), load_default=dict)
    wide_totals = fields.Dict(keys=fields.String(), values=_header(), load_default=dict)
    max_shrink = fields.Float(
        load_default=0.25,
        validate=validate.Range(min=0, max=1, min_inclusive=False, max_inclusive=True),
    )

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        columns: Mapping[str, str] = data.get("columns") or {}
        wide: Mapping[str, list[str]] = data.get("wide") or {}
        totals: Mapping[str, str] = data.get("wide_totals") or {}
        for key in columns:
            if key not in FIELDS:
                raise ValidationError(
                    f"unknown field {key!r} (known: {', '.join(FIELDS)})", "columns"
                )
        measures = [m.strip().upper() for m in wide]
        if len(set(measures)) != len(measures):
            raise ValidationError("a measure is listed twice (names are case-insensitive)", "wide")
        for measure, items in wide.items():
            if len(items) > len(ITEM_FIELDS):
                raise ValidationError(f"{measure}: at most {len(ITEM_FIELDS)} item columns", "wide")
        total_keys = {m.strip().upper() for m in totals}
        for measure in totals:
            if measure.strip().upper() not in measures:
                raise ValidationError(f"{measure}: not a measure of the wide table", "wide_totals")
        for measure, items in wide.items():
            if not items and measure.strip().upper() not in total_keys:
                raise ValidationError(
                    f"{measure}: give item columns or a wide_totals entry", "wide"
                )
        if wide:
            owned = sorted(k for k in columns if k in WIDE_OWNED)
            if owned:
                raise ValidationError(
                    f"{', '.join(owned)} cannot be mapped in wide mode (the wide table sets them)",
                    "columns",
                )


@dataclass(frozen=True, slots=True)
class WideMeasure:
    """One measure of a wide export: its item headers (q1.. in order) and total header."""

    measure: str
    items: tuple[str, ...]
    total: str | None


@dataclass(frozen=True, slots=True)
class CsvOptions:
    """The loaded options, typed. Header names are lower-cased and stripped."""

    path: Path
    scores_path: Path
    delimiter: str
    encoding: str
    scores_encoding: str
    decimal_comma: bool
    scale: str
    columns: Mapping[str, str]
    wide: tuple[WideMeasure, ...]
    fingerprint: str  # hash of the options that change how a file is read
    #: a file with more than this share fewer rows than when last read is refused
    max_shrink: float = 0.25

    @classmethod
    def load(cls, raw: Mapping[str, Any], source: str) -> CsvOptions:
        """Validate ``raw`` with :class:`CsvOptionsSchema`; a bad key raises ConfigError."""
        try:
            d = CsvOptionsSchema().load(dict(raw))
        except ValidationError as exc:
            key, msg = _first(exc.messages)
            raise ConfigError(
                f"[sources.{source}] {key}: {msg}",
                hint="see the README section on the csv adapter",
            ) from None
        totals = {k.strip().upper(): _hdr(v) for k, v in d["wide_totals"].items()}
        wide = tuple(
            WideMeasure(key, tuple(_hdr(h) for h in items), totals.get(key))
            for key, items in ((m.strip().upper(), items) for m, items in d["wide"].items())
        )
        reading = {
            k: d[k]
            for k in (
                "delimiter",
                "encoding",
                "decimal_comma",
                "scale",
                "columns",
                "wide",
                "wide_totals",
            )
        }
        blob = json.dumps(reading, sort_keys=True, separators=(",", ":"))
        return cls(
            path=Path(d["path"]).expanduser(),
            scores_path=Path(d["scores_path"]).expanduser(),
            delimiter=d["delimiter"],
            encoding=d["encoding"],
            scores_encoding=d["scores_encoding"],
            decimal_comma=d["decimal_comma"],
            scale=d["scale"],
            columns={k: _hdr(v) for k, v in d["columns"].items()},
            wide=wide,
            fingerprint=hashlib.sha256(blob.encode()).hexdigest()[:16],
            max_shrink=d["max_shrink"],
        )


def _hdr(name: str) -> str:
    return name.strip().lower()


def _first(messages: Any, prefix: str = "") -> tuple[str, str]:
    """The first (key, message) of marshmallow's nested error messages."""
    if isinstance(messages, Mapping):
        key, value = next(iter(messages.items()))
        name = "" if key == "_schema" else str(key)
        return _first(value, f"{prefix}.{name}" if prefix and name else prefix or name)
    if isinstance(messages, list) and messages and not all(isinstance(m, str) for m in messages):
        return _first(messages[0], prefix)
    text = "; ".join(messages) if isinstance(messages, list) else str(messages)
    return prefix or "options", "unknown key" if text == "Unknown field." else text
