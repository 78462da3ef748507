"""The google_forms adapter's options: a strict marshmallow schema and the typed, parsed form.

The schema's output has the same shape as its input (question references stay strings or
tables), so loading already-loaded options again gives the same result: the engine validates the
options before the adapter sees them, and the adapter loads them again into
:class:`GoogleOptions`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from fit_core.errors import ConfigError
from fit_core.measures import ScaleError, check_scale

DEFAULT_FORMS_ENDPOINT = "https://forms.googleapis.com"
DEFAULT_SHEETS_ENDPOINT = "https://sheets.googleapis.com"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
DEFAULT_TAB = "Scores"
#: the response timestamps that can serve as the administration time (the first is the default:
#: the first submission, so an edit changes the answers and never the date or the session)
TIME_FIELDS = ("createTime", "lastSubmittedTime")
ITEM_KEYS = ("q1", "q2", "q3", "q4")
AUTH_MODES = ("auto", "service_account", "oauth")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_EDIT_URL = re.compile(r"/d/(?!e/)([A-Za-z0-9_-]{10,})")
_REF_KEYS = frozenset({"id", "title", "scale"})


# --- field validators -------------------------------------------------------------------------


def _google_id(what: str, example: str) -> Callable[[str], None]:
    """A validator for a form or spreadsheet id that explains what to copy from a URL."""

    def check(value: str) -> None:
        if _ID.match(value):
            return
        if "/d/e/" in value:
            raise ValidationError(
                "this is the responder link (…/forms/d/e/…/viewform), not the form id: open the "
                f"form in the editor and copy the id from {example}"
            )
        found = _EDIT_URL.search(value)
        if found:
            raise ValidationError(f"give the id only, here {found.group(1)!r} (from {example})")
        raise ValidationError(f"not a {what} id: copy the part <id> of {example}")

    return check


def _scale(value: str) -> None:
    if value == "auto":
        return
    try:
        check_scale(value)
    except ScaleError as exc:
        raise ValidationError(f"{exc}, or auto (from the form's scale question)") from None


def _endpoint(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError("must be an http(s) URL such as https://forms.googleapis.com")
    if parts.query or parts.fragment:
        raise ValidationError("must not hold a query string or a fragment")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ValidationError(
            "use https: plain http is allowed only on a loopback address (a local proxy or fake)"
        )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tab(value: str) -> None:
    if not value.strip() or len(value) > 100:
        raise ValidationError("must be a tab name of 1 to 100 characters")
    if any(c in value for c in "[]*?:/\\"):
        raise ValidationError("Google Sheets tab names cannot hold [ ] * ? : / \\")


def _nonempty(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be empty")


class QuestionRefField(fields.Field[Any]):
    """A question: a string (a questionId, else an exact title; ids win) or a table with ``id``
    and/or ``title`` (``id`` wins) and an optional ``scale``. Returned unchanged."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                raise ValidationError("must not be empty")
            return value
        if not isinstance(value, Mapping):
            raise ValidationError('give a questionId or title, or a table {id = "…"}')
        unknown = sorted(set(value) - _REF_KEYS)
        if unknown:
            raise ValidationError(f"unknown key {unknown[0]!r} (known: id, title, scale)")
        for key in ("id", "title", "scale"):
            if key in value and (not isinstance(value[key], str) or not value[key].strip()):
                raise ValidationError(f"{key} must be a non-empty string")
        if "id" not in value and "title" not in value:
            raise ValidationError("give id or title")
        if "scale" in value:
            _scale(value["scale"])
        return dict(value)


class TimeSourceField(QuestionRefField):
    """``createTime`` (default), ``lastSubmittedTime``, or a date question (a question ref)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and value in TIME_FIELDS:
            return value
        return super()._deserialize(value, attr, data, **kwargs)


# --- schemas ----------------------------------------------------------------------------------


class MeasureSchema(Schema):
    """One measure of a form: its four item questions and/or its total question."""

    class Meta:
        unknown = RAISE

    q1 = QuestionRefField()
    q2 = QuestionRefField()
    q3 = QuestionRefField()
    q4 = QuestionRefField()
    total = QuestionRefField()
    scale = fields.String(load_default="auto", validate=_scale)

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        given = [k for k in ITEM_KEYS if k in data]
        if given and len(given) != len(ITEM_KEYS):
            missing = ", ".join(k for k in ITEM_KEYS if k not in data)
            raise ValidationError(f"map all four items q1-q4 (missing {missing}), or only total")
        if not given and "total" not in data:
            raise ValidationError("map the items q1-q4, or total, or both")


class FormSchema(Schema):
    """One Google Form and how its questions map onto fit-sync's fields."""

    class Meta:
        unknown = RAISE

    form_id = fields.String(
        required=True, validate=_google_id("form", "https://docs.google.com/forms/d/<id>/edit")
    )
    measures = fields.Dict(
        keys=fields.String(validate=_nonempty),
        values=fields.Nested(MeasureSchema),
        required=True,
        validate=validate.Length(min=1, error="map at least one measure"),
    )
    client_id = QuestionRefField(required=True)
    clinician = QuestionRefField()
    age = QuestionRefField()
    administered_at = TimeSourceField(load_default=TIME_FIELDS[0])
    rater = fields.String(load_default="client", validate=_nonempty)

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        keys = [k.strip().upper() for k in data.get("measures", {})]
        if len(set(keys)) != len(keys):
            raise ValidationError(
                "a measure is listed twice (names are case-insensitive)", "measures"
            )


class ConnectionSchema(Schema):
    """The keys that say how to reach Google (used alone by ``fit google inspect``)."""

    class Meta:
        unknown = EXCLUDE

    auth = fields.String(load_default="auto", validate=validate.OneOf(AUTH_MODES))
    forms_endpoint = fields.String(load_default=DEFAULT_FORMS_ENDPOINT, validate=_endpoint)
    sheets_endpoint = fields.String(load_default=DEFAULT_SHEETS_ENDPOINT, validate=_endpoint)
    token_uri = fields.String(load_default=DEFAULT_TOKEN_URI, validate=_endpoint)
    forms_calls_per_minute = fields.Integer(
        load_default=180, validate=validate.Range(min=1, max=10_000)
    )
    sheets_calls_per_minute = fields.Integer(
        load_default=60, validate=validate.Range(min=1, max=10_000)
    )
    max_retry_seconds = fields.Integer(load_default=180, validate=validate.Range(min=1, max=3600))


class GoogleFormsSchema(ConnectionSchema):
    """``[sources.<name>]`` keys of a google_forms source (unknown keys are errors)."""

    class Meta:
        unknown = RAISE

    forms = fields.List(
        fields.Nested(FormSchema),
        required=True,
        validate=validate.Length(min=1, error="list at least one form ([[sources.NAME.forms]])"),
    )
    spreadsheet_id = fields.String(
        required=True,
        validate=_google_id("spreadsheet", "https://docs.google.com/spreadsheets/d/<id>/edit"),
    )
    scores_tab = fields.String(load_default=DEFAULT_TAB, validate=_tab)
    overlap_seconds = fields.Integer(load_default=300, validate=validate.Range(min=0, max=86_400))
    page_size = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=5000))
    deletion_check_hours = fields.Integer(
        load_default=24, validate=validate.Range(min=0, max=24 * 366)
    )

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        ids = [f["form_id"] for f in data.get("forms", [])]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValidationError(f"form {twice[0]} is listed twice: give each form once", "forms")


# --- the typed form ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuestionRef:
    """Where to find a question: ``ref`` (an id, else an exact title), or ``id``/``title``."""

    ref: str | None = None
    id: str | None = None
    title: str | None = None
    scale: str | None = None

    @classmethod
    def parse(cls, value: str | Mapping[str, str]) -> QuestionRef:
        if isinstance(value, str):
            return cls(ref=value.strip())
        return cls(
            id=_strip(value.get("id")), title=_strip(value.get("title")), scale=value.get("scale")
        )

    def describe(self) -> str:
        """For messages: which question was asked for (ids and form titles, never answers)."""
        if self.id:
            return f"questionId {self.id!r}"
        if self.title:
            return f"title {self.title!r}"
        return f"{self.ref!r} (a questionId or an exact title)"


@dataclass(frozen=True, slots=True)
class MeasureMap:
    """The questions of one measure: q1..q4 (None when only the total is mapped) and total."""

    measure: str
    items: tuple[QuestionRef, ...]
    total: QuestionRef | None
    scale: str


@dataclass(frozen=True, slots=True)
class FormMap:
    """One form's mapping. ``administered_at`` is a response timestamp name or a question."""

    form_id: str
    measures: tuple[MeasureMap, ...]
    client_id: QuestionRef
    clinician: QuestionRef | None
    age: QuestionRef | None
    administered_at: str | QuestionRef
    rater: str


@dataclass(frozen=True, slots=True)
class Connection:
    """How to reach Google: endpoints, auth mode, per-minute call budgets, retry bound."""

    auth: str
    forms_endpoint: str
    sheets_endpoint: str
    token_uri: str
    forms_calls_per_minute: int
    sheets_calls_per_minute: int
    max_retry_seconds: int

    @classmethod
    def from_loaded(cls, d: Mapping[str, Any]) -> Connection:
        return cls(
            auth=d["auth"],
            forms_endpoint=d["forms_endpoint"].rstrip("/"),
            sheets_endpoint=d["sheets_endpoint"].rstrip("/"),
            token_uri=d["token_uri"],
            forms_calls_per_minute=d["forms_calls_per_minute"],
            sheets_calls_per_minute=d["sheets_calls_per_minute"],
            max_retry_seconds=d["max_retry_seconds"],
        )

    @classmethod
    def load(cls, raw: Mapping[str, Any], source: str) -> Connection:
        """Only the connection keys of ``raw`` (other keys are ignored)."""
        return cls.from_loaded(_load(ConnectionSchema(), raw, source))


@dataclass(frozen=True, slots=True)
class GoogleOptions:
    """The loaded options of a google_forms source."""

    connection: Connection
    forms: tuple[FormMap, ...]
    spreadsheet_id: str
    scores_tab: str
    overlap: dt.timedelta
    page_size: int
    #: how often every response is listed to find deleted ones (0: every sync)
    deletion_check: dt.timedelta = dt.timedelta(hours=24)

    @classmethod
    def load(cls, raw: Mapping[str, Any], source: str) -> GoogleOptions:
        """Validate ``raw`` with :class:`GoogleFormsSchema`; a bad key raises ConfigError."""
        d = _load(GoogleFormsSchema(), raw, source)
        return cls(
            connection=Connection.from_loaded(d),
            forms=tuple(_form(f) for f in d["forms"]),
            spreadsheet_id=d["spreadsheet_id"],
            scores_tab=d["scores_tab"],
            overlap=dt.timedelta(seconds=d["overlap_seconds"]),
            page_size=d["page_size"],
            deletion_check=dt.timedelta(hours=d["deletion_check_hours"]),
        )


def _form(d: Mapping[str, Any]) -> FormMap:
    measures = []
    for key, m in d["measures"].items():
        items = tuple(QuestionRef.parse(m[k]) for k in ITEM_KEYS if k in m)
        total = QuestionRef.parse(m["total"]) if "total" in m else None
        measures.append(MeasureMap(key.strip().upper(), items, total, m.get("scale", "auto")))
    when = d.get("administered_at", TIME_FIELDS[0])
    return FormMap(
        form_id=d["form_id"],
        measures=tuple(measures),
        client_id=QuestionRef.parse(d["client_id"]),
        clinician=QuestionRef.parse(d["clinician"]) if d.get("clinician") else None,
        age=QuestionRef.parse(d["age"]) if d.get("age") else None,
        administered_at=when if when in TIME_FIELDS else QuestionRef.parse(when),
        rater=d.get("rater", "client").strip(),
    )


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else None


def _load(schema: Schema, raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(dict(raw))
    except ValidationError as exc:
        key, msg = first_error(exc.messages)
        raise ConfigError(
            f"[sources.{source}] {key}: {msg}",
            hint="see docs/google_forms.md (the option reference) or run `fit google inspect`",
        ) from None
    return loaded


def first_error(messages: Any, prefix: str = "") -> tuple[str, str]:
    """The first (dotted key, message) of marshmallow's nested error messages."""
    if isinstance(messages, Mapping):
        key, value = next(iter(messages.items()))
        name = "" if key == "_schema" else str(key)
        if name == "value" and prefix:  # fields.Dict reports a value's errors under "value"
            name = ""
        joined = f"{prefix}.{name}" if prefix and name else prefix or name
        return first_error(value, joined)
    if isinstance(messages, list) and messages and not all(isinstance(m, str) for m in messages):
        return first_error(messages[0], prefix)
    text = "; ".join(messages) if isinstance(messages, list) else str(messages)
    return prefix or "options", "unknown key" if text == "Unknown field." else text


def fingerprint(obj: Any) -> str:
    """A short stable hash of JSON-able data (used to notice a changed mapping)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
