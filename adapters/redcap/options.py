"""The REDCap adapter's options: a strict marshmallow schema and the typed, loaded form.

The schema's output has the same keys as its input (defaults filled in), so loading options that
were already loaded gives the same result: the engine validates ``[sources.<name>]`` before the
adapter sees it, and tests may hand raw options straight to the adapter.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from fit_core.config import config_path
from fit_core.errors import ConfigError
from fit_core.measures import ScaleError, check_scale

DEFAULT_TOKEN_PATTERN = r"^[0-9A-F]{32}([0-9A-F]{32})?$"
DEFAULT_SCORES_INSTRUMENT = "fit_scores"
#: REDCap variable and instrument names: lowercase letters, digits and underscores
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: fit field names the ``fields`` table can map (record-level context)
CONTEXT_FIELDS = ("client_id", "clinician_id", "episode_id", "rater", "age", "site")
#: what the scoring instrument can receive, and the payload key each one comes from
SCORE_KEYS = ("date", "total", "session", "status", "flags", "message", "change", "rc_class")
#: score keys pushed by default (``status`` only for the ORS family)
DEFAULT_SCORE_KEYS = ("date", "total", "session", "status", "flags", "message")
#: score keys several instruments may write to one field (the row is one session): the date
#: and session number are the same for every measure of a session; flags and messages are
#: written as one labelled part per measure
SHAREABLE_KEYS = ("date", "session", "flags", "message")
#: the default field of the session date, shared by every mapped instrument
DEFAULT_DATE_FIELD = "fit_date"
ORS_FAMILY = ("ORS", "CORS")
#: REDCap's default site-wide ban threshold is 600 hits a minute, i.e. 10 a second: a throttle
#: above it is allowed (test servers) but logged as a warning
BAN_RATE = 10.0
MAX_THROTTLE = 1000.0


def _name(value: str) -> None:
    if not NAME.match(value):
        raise ValidationError(
            f"{value!r} is not a REDCap variable or instrument name "
            "(lowercase letters, digits and _, starting with a letter)"
        )


def _pattern(value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError(f"not a valid regular expression: {exc}") from None


def _timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"{value!r} is not a known IANA timezone (e.g. America/Chicago)"
        ) from None


def _url(value: str) -> None:
    if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", value):
        raise ValidationError("must be an http(s) URL such as https://redcap.example.org/api/")


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _scale(value: str) -> None:
    try:
        check_scale(value)
    except ScaleError as exc:
        raise ValidationError(str(exc)) from None


class _Verify(fields.Field):
    """``true``, ``false`` or the path of a CA bundle file (which must exist)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip():
            path = config_path(value)
            if not path.is_file():
                raise ValidationError(f"CA bundle {str(path)!r} does not exist (or is not a file)")
            return str(path)
        raise ValidationError("must be true, false or the path of a CA bundle (.pem) file")


class InstrumentSchema(Schema):
    """One ORS/SRS-family instrument: ``[sources.<name>.instruments.<instrument>]``."""

    class Meta:
        unknown = RAISE

    measure = fields.String(required=True, validate=validate.Length(min=1))
    items = fields.List(fields.String(validate=_name), load_default=list)
    total = fields.String(load_default=None, allow_none=True, validate=_name)
    scale = fields.String(load_default="percent", validate=_scale)
    date = fields.String(load_default=None, allow_none=True, validate=_name)
    rater = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1))
    score_fields = fields.Dict(
        keys=fields.String(validate=validate.OneOf(SCORE_KEYS)),
        values=fields.String(),
        load_default=dict,
    )

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        items = data.get("items") or []
        if items and len(items) != 4:
            raise ValidationError("give exactly four item fields (in the measure's order)", "items")
        if not items and not data.get("total"):
            raise ValidationError("give the four item fields, a total field, or both", "items")
        for key, value in (data.get("score_fields") or {}).items():
            if value:
                try:
                    _name(value)
                except ValidationError as exc:
                    raise ValidationError(f"{key}: {exc.messages[0]}", "score_fields") from None


class RedcapOptionsSchema(Schema):
    """``[sources.<name>]`` keys of a REDCap source (unknown keys are errors that name them)."""

    class Meta:
        unknown = RAISE

    url = fields.String(required=True, validate=_url)
    allow_http = fields.Boolean(load_default=False)
    project_id = fields.Integer(load_default=None, allow_none=True, strict=True)
    token_pattern = fields.String(load_default=DEFAULT_TOKEN_PATTERN, validate=_pattern)
    verify = _Verify(load_default=True)
    server_timezone = fields.String(load_default=None, allow_none=True, validate=_timezone)
    throttle = fields.Float(load_default=2.0, validate=validate.Range(min=0.01, max=MAX_THROTTLE))
    timeout = fields.Float(load_default=300.0, validate=validate.Range(min=1, max=3600))
    batch_size = fields.Integer(load_default=500, strict=True, validate=validate.Range(min=1))
    push_batch_size = fields.Integer(load_default=500, strict=True, validate=validate.Range(min=1))
    overlap = fields.Integer(
        load_default=300, strict=True, validate=validate.Range(min=0, max=7 * 86400)
    )
    deletion_check_hours = fields.Integer(
        load_default=24, strict=True, validate=validate.Range(min=0, max=24 * 366)
    )
    complete_statuses = fields.List(
        fields.Integer(strict=True, validate=validate.OneOf((0, 1, 2))),
        load_default=lambda: [2],
        validate=validate.Length(min=1),
    )
    fields_ = fields.Dict(
        data_key="fields",
        keys=fields.String(validate=validate.OneOf(CONTEXT_FIELDS)),
        values=fields.String(validate=_name),
        load_default=dict,
    )
    instruments = fields.Dict(
        keys=fields.String(validate=_name),
        values=fields.Nested(InstrumentSchema),
        load_default=dict,
    )
    scores_instrument = fields.String(load_default=DEFAULT_SCORES_INSTRUMENT, validate=_name)
    scores_complete = fields.Integer(
        load_default=2, strict=True, validate=validate.OneOf((0, 1, 2))
    )
    site = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1))
    site_from_dag = fields.Boolean(load_default=False)
    only_records = fields.List(
        fields.String(validate=validate.Length(min=1)), load_default=None, allow_none=True
    )

    @post_load
    def _rename(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # "fields" cannot be a Schema attribute (Schema.fields is marshmallow's own): the
        # attribute is fields_, and the output uses the config's key again
        data["fields"] = data.pop("fields_", {})
        return data

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        url = str(data.get("url") or "")
        plain = url.lower().startswith("http://")
        if plain and not data.get("allow_http") and not is_loopback(url):
            raise ValidationError(
                "plain http:// would send the API token unencrypted: use https://, or set "
                "allow_http = true if this network really is private",
                "url",
            )
        dag_site = data.get("site_from_dag")
        mapped_site = "site" in (data.get("fields_") or {})
        if sum(bool(x) for x in (data.get("site"), dag_site, mapped_site)) > 1:
            raise ValidationError(
                "give the site one way only: site, site_from_dag or fields.site", "site"
            )
        instruments: Mapping[str, Any] = data.get("instruments") or {}
        scores = data.get("scores_instrument") or DEFAULT_SCORES_INSTRUMENT
        if scores in instruments:
            raise ValidationError(
                "the scoring instrument must not be one of the mapped instruments",
                "scores_instrument",
            )
        seen: dict[str, tuple[str, str]] = {}
        measures = {i: str(s.get("measure", "")).strip().upper() for i, s in instruments.items()}
        for instrument, spec in score_fields_of(instruments).items():
            for key, field_name in spec.items():
                if field_name not in seen:
                    seen[field_name] = (instrument, key)
                    continue
                other, other_key = seen[field_name]
                if key != other_key or key not in SHAREABLE_KEYS:
                    shared = ", ".join(SHAREABLE_KEYS)
                    raise ValidationError(
                        f"score field {field_name!r} is used by {other} ({other_key}) and "
                        f"{instrument} ({key}): only {shared} may be shared, each as the same "
                        "key; give one of them other score_fields",
                        "instruments",
                    )
                if measures.get(other) == measures.get(instrument) and key in ("flags", "message"):
                    raise ValidationError(
                        f"score field {field_name!r} is shared by {other} and {instrument}, "
                        f"which map the same measure: their {key} could not be told apart",
                        "instruments",
                    )


def score_fields_of(instruments: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Per instrument: score key -> field of the scoring instrument (empty keys are not pushed).

    Defaults are ``fit_<measure>_<key>`` (``fit_ors_total`` ...) when a measure is mapped by one
    instrument only, else ``fit_<instrument>_<key>``; ``status`` only for the ORS family; the
    session date is ``fit_date``, shared by every instrument. Explicit ``score_fields`` override
    a default; an empty string switches a key off.
    """
    measures = [str(spec.get("measure", "")).strip().upper() for spec in instruments.values()]
    out: dict[str, dict[str, str]] = {}
    for instrument, spec in instruments.items():
        measure = str(spec.get("measure", "")).strip().upper()
        prefix = f"fit_{measure.lower()}" if measures.count(measure) == 1 else f"fit_{instrument}"
        if not NAME.match(prefix):
            prefix = f"fit_{instrument}"
        keys = [k for k in DEFAULT_SCORE_KEYS if k != "status" or measure in ORS_FAMILY]
        chosen = {k: DEFAULT_DATE_FIELD if k == "date" else f"{prefix}_{k}" for k in keys}
        for key, value in (spec.get("score_fields") or {}).items():
            chosen[key] = value
        out[instrument] = {k: v for k, v in chosen.items() if v}
    return out


@dataclass(frozen=True, slots=True)
class InstrumentMap:
    """One mapped instrument, loaded."""

    instrument: str
    measure: str
    items: tuple[str, ...]
    total: str | None
    scale: str
    date: str | None
    rater: str | None
    score_fields: Mapping[str, str]

    @property
    def complete_field(self) -> str:
        return f"{self.instrument}_complete"

    @property
    def timestamp_field(self) -> str:
        return f"{self.instrument}_timestamp"

    @property
    def answer_fields(self) -> tuple[str, ...]:
        return (*self.items, *((self.total,) if self.total else ()))

    @property
    def own_fields(self) -> tuple[str, ...]:
        """The fields of this instrument that a pull exports (items, total, date, status)."""
        out = [*self.answer_fields]
        if self.date:
            out.append(self.date)
        out.append(self.complete_field)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class RedcapOptions:
    """The loaded options of one REDCap source, typed."""

    url: str
    project_id: int | None
    token_pattern: str
    verify: bool | str
    server_timezone: str | None
    throttle: float
    timeout: float
    batch_size: int
    push_batch_size: int
    overlap: dt.timedelta
    complete_statuses: frozenset[str]
    context_fields: Mapping[str, str]
    instruments: tuple[InstrumentMap, ...]
    scores_instrument: str
    only_records: tuple[str, ...] | None
    allow_http: bool = False
    scores_complete: int = 2
    site: str | None = None
    site_from_dag: bool = False
    #: how often every record id is listed to find deleted records when the logging cannot be
    #: read (0: every sync)
    deletion_check: dt.timedelta = dt.timedelta(hours=24)

    @property
    def score_field_names(self) -> tuple[str, ...]:
        """Every field of the scoring instrument a push writes (each once)."""
        names = (n for inst in self.instruments for n in inst.score_fields.values())
        return tuple(dict.fromkeys(names))

    def sharers(self, field_name: str) -> tuple[InstrumentMap, ...]:
        """The mapped instruments that write ``field_name``."""
        return tuple(i for i in self.instruments if field_name in i.score_fields.values())

    @classmethod
    def load(cls, raw: Mapping[str, Any], source: str) -> RedcapOptions:
        """Validate ``raw`` with :class:`RedcapOptionsSchema`; a bad key raises ConfigError."""
        try:
            d = RedcapOptionsSchema().load(dict(raw))
        except ValidationError as exc:
            key, msg = first_error(exc.messages)
            raise ConfigError(
                f"[sources.{source}] {key}: {msg}",
                hint="see docs/redcap.md for the REDCap adapter's options",
            ) from None
        spec = d["instruments"]
        scores = score_fields_of(spec)
        instruments = tuple(
            InstrumentMap(
                instrument=name,
                measure=str(s["measure"]).strip().upper(),
                items=tuple(s["items"]),
                total=s.get("total"),
                scale=s["scale"],
                date=s.get("date"),
                rater=s.get("rater"),
                score_fields=scores[name],
            )
            for name, s in spec.items()
        )
        only = d.get("only_records")
        return cls(
            url=d["url"],
            project_id=d.get("project_id"),
            token_pattern=d["token_pattern"],
            verify=d["verify"],
            server_timezone=d.get("server_timezone"),
            throttle=float(d["throttle"]),
            timeout=float(d["timeout"]),
            batch_size=d["batch_size"],
            push_batch_size=d["push_batch_size"],
            overlap=dt.timedelta(seconds=d["overlap"]),
            deletion_check=dt.timedelta(hours=d["deletion_check_hours"]),
            complete_statuses=frozenset(str(s) for s in d["complete_statuses"]),
            context_fields=dict(d["fields"]),
            instruments=instruments,
            scores_instrument=d["scores_instrument"],
            only_records=tuple(only) if only is not None else None,
            allow_http=d["allow_http"],
            scores_complete=d["scores_complete"],
            site=d.get("site"),
            site_from_dag=d["site_from_dag"],
        )


def first_error(messages: Any, prefix: str = "") -> tuple[str, str]:
    """The first (dotted key, message) of marshmallow's nested error messages."""
    if isinstance(messages, Mapping):
        key, value = next(iter(messages.items()))
        name = "" if key == "_schema" else str(key)
        if name == "value" and isinstance(value, Mapping):  # Dict(values=Nested) nests "value"
            return first_error(value, prefix)
        joined = f"{prefix}.{name}" if prefix and name else prefix or name
        return first_error(value, joined)
    if isinstance(messages, list) and messages and not all(isinstance(m, str) for m in messages):
        return first_error(messages[0], prefix)
    text = "; ".join(messages) if isinstance(messages, list) else str(messages)
    return prefix or "options", "unknown key" if text == "Unknown field." else text
