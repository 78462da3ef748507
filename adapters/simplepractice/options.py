"""The SimplePractice bridge's options: a strict marshmallow schema and the typed, loaded form.

The schema's output is plain data with the same keys as its input, so loading loaded options
again gives the same result (the engine validates options before the adapter sees them).
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validates_schema

from fit_core.config import PathOption
from fit_core.errors import ConfigError

from .columns import DEFAULT_COLUMNS, KINDS
from .values import DATE_ORDERS, DEFAULT_DATE_FORMATS, IGNORE, ISO, STATUSES, status_word

UNLINKED_MODES = ("error", "skip")
BILLING_MODES = ("attended", "codes")


def _nonempty(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be empty")


def _encoding(value: str) -> None:
    try:
        codecs.lookup(value)
    except LookupError:
        raise ValidationError(f"unknown encoding {value!r} (e.g. utf-8-sig, cp1252)") from None


def _delimiter(value: str) -> None:
    if value != "auto" and (len(value) != 1 or value in '"\r\n'):
        raise ValidationError('must be "auto" or a single character such as "," or ";"')


def _date_format(value: str) -> None:
    if value != ISO and "%" not in value:
        raise ValidationError(f'{value!r} is neither "iso" nor a strftime format like %m/%d/%Y')


def _date_order(value: str) -> None:
    if value not in DATE_ORDERS:
        raise ValidationError(
            f"must be one of {', '.join(DATE_ORDERS)} (MDY: month first, as in the US; DMY: "
            "day first)"
        )


def _billing(value: str) -> None:
    if value not in BILLING_MODES:
        raise ValidationError(f"must be one of {', '.join(BILLING_MODES)}")


def _unlinked(value: str) -> None:
    if value not in UNLINKED_MODES:
        raise ValidationError(f"must be one of {', '.join(UNLINKED_MODES)}")


class SimplePracticeOptionsSchema(Schema):
    """``[sources.<name>]`` keys of a simplepractice source (unknown keys are errors)."""

    class Meta:
        unknown = RAISE

    path = PathOption(required=True)
    namespace_target = fields.String(validate=_nonempty)
    outbox = PathOption()
    mapping_file = PathOption()
    link_column = fields.String(validate=_nonempty)
    columns = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.Raw()),
        load_default=dict,
    )
    kinds = fields.Dict(
        keys=fields.String(validate=_nonempty), values=fields.String(), load_default=dict
    )
    date_formats = fields.List(fields.String(validate=_date_format))
    date_order = fields.String(load_default="auto", validate=_date_order)
    statuses = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    clinicians = fields.Dict(
        keys=fields.String(validate=_nonempty),
        values=fields.String(validate=_nonempty),
        load_default=dict,
    )
    intake_codes = fields.List(
        fields.String(validate=_nonempty), load_default=lambda: ["90791", "90792"]
    )
    billing_rows = fields.String(load_default="attended", validate=_billing)
    unlinked = fields.String(load_default="error", validate=_unlinked)
    encoding = fields.String(load_default="utf-8-sig", validate=_encoding)
    delimiter = fields.String(load_default="auto", validate=_delimiter)
    sheet = fields.String(validate=_nonempty)
    report_page = fields.Boolean(load_default=True)

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        for kind, table in (data.get("columns") or {}).items():
            if kind not in KINDS:
                raise ValidationError(
                    f"unknown report kind {kind!r} (known: {', '.join(KINDS)})", "columns"
                )
            for field, value in table.items():
                if field not in DEFAULT_COLUMNS[kind]:
                    known = ", ".join(DEFAULT_COLUMNS[kind])
                    raise ValidationError(
                        f"{kind}: unknown field {field!r} (known: {known})", "columns"
                    )
                names = [value] if isinstance(value, str) else value
                if (
                    not isinstance(names, list)
                    or not names
                    or not all(isinstance(n, str) and n.strip() for n in names)
                ):
                    raise ValidationError(
                        f"{kind}.{field}: give a header name or a list of header names", "columns"
                    )
        for glob, kind in (data.get("kinds") or {}).items():
            if kind not in KINDS:
                raise ValidationError(
                    f"{glob}: {kind!r} is not a report kind ({', '.join(KINDS)})", "kinds"
                )
        for word, status in (data.get("statuses") or {}).items():
            if status not in (*STATUSES, IGNORE):
                raise ValidationError(
                    f"{word!r}: {status!r} is not one of {', '.join((*STATUSES, IGNORE))}",
                    "statuses",
                )
        if not data.get("date_formats", True):
            raise ValidationError("give at least one format", "date_formats")
        if data.get("date_formats") and data.get("date_order", "auto") != "auto":
            raise ValidationError(
                "date_order reads the built-in formats; with date_formats set, the formats "
                "decide the order (leave one of them out)",
                "date_order",
            )


@dataclass(frozen=True, slots=True)
class SpOptions:
    """The loaded options, typed, with defaults resolved against the source's context."""

    source: str
    path: Path
    namespace: str
    outbox: Path
    mapping_file: Path
    accepted_file: Path  # `fit exports accept`: the exports a person accepted as they are
    link_column: str | None
    columns: Mapping[str, Mapping[str, tuple[str, ...]]]
    kinds: tuple[tuple[str, str], ...]
    date_formats: tuple[str, ...]
    date_order: str  # auto | MDY | DMY (of the built-in formats; "MDY" with date_formats set)
    statuses: Mapping[str, str]
    clinicians: Mapping[str, str]
    intake_codes: frozenset[str]
    billing_rows: str
    unlinked: str
    encoding: str
    delimiter: str
    sheet: str | None
    report_page: bool
    fingerprint: str  # hash of the options that change what a pull yields

    @classmethod
    def load(
        cls, raw: Mapping[str, Any], source: str, namespace: str, state_dir: Path
    ) -> SpOptions:
        """Validate ``raw``; a bad key raises ConfigError naming it."""
        try:
            d = SimplePracticeOptionsSchema().load(dict(raw))
        except ValidationError as exc:
            key, msg = _first(exc.messages)
            raise ConfigError(
                f"[sources.{source}] {key}: {msg}",
                hint="see docs/simplepractice.md (the simplepractice adapter's options)",
            ) from None
        columns = {
            kind: {f: tuple([v] if isinstance(v, str) else v) for f, v in table.items()}
            for kind, table in d["columns"].items()
        }
        reading = {
            k: d.get(k)
            for k in (
                "namespace_target",
                "link_column",
                "columns",
                "kinds",
                "date_formats",
                "date_order",
                "statuses",
                "clinicians",
                "intake_codes",
                "billing_rows",
                "unlinked",
                "encoding",
                "delimiter",
                "sheet",
            )
        }
        blob = json.dumps(reading, sort_keys=True, separators=(",", ":"))
        return cls(
            source=source,
            path=Path(d["path"]).expanduser(),
            namespace=d.get("namespace_target") or namespace,
            outbox=Path(d["outbox"]).expanduser()
            if d.get("outbox")
            else state_dir / f"{source}-outbox",
            mapping_file=Path(d["mapping_file"]).expanduser()
            if d.get("mapping_file")
            else state_dir / f"{source}.links.csv",
            accepted_file=state_dir / f"{source}.accepted-exports.json",
            link_column=d.get("link_column"),
            columns=columns,
            kinds=tuple(d["kinds"].items()),
            date_formats=tuple(d.get("date_formats") or DEFAULT_DATE_FORMATS),
            date_order="MDY" if d.get("date_formats") else d["date_order"],
            statuses={status_word(k): v for k, v in d["statuses"].items()},
            clinicians={
                " ".join(k.split()).casefold(): v.strip() for k, v in d["clinicians"].items()
            },
            intake_codes=frozenset(c.strip().upper() for c in d["intake_codes"]),
            billing_rows=d["billing_rows"],
            unlinked=d["unlinked"],
            encoding=d["encoding"],
            delimiter=d["delimiter"],
            sheet=d.get("sheet"),
            report_page=d["report_page"],
            fingerprint=hashlib.sha256(blob.encode()).hexdigest()[:16],
        )

    def clinician(self, name: str) -> str | None:
        """The clinician id for a clinician as SimplePractice names them (mapped, else as is)."""
        shown = " ".join(name.split())
        if not shown:
            return None
        return self.clinicians.get(shown.casefold(), shown)


def _first(messages: Any, prefix: str = "") -> tuple[str, str]:
    """The first (key, message) of marshmallow's nested error messages."""
    if isinstance(messages, Mapping):
        key, value = next(iter(messages.items()))
        name = "" if key == "_schema" else str(key)
        return _first(value, f"{prefix}.{name}" if prefix and name else prefix or name)
    if (
        isinstance(messages, Sequence)
        and not isinstance(messages, str)
        and messages
        and not all(isinstance(m, str) for m in messages)
    ):
        return _first(messages[0], prefix)
    text = "; ".join(messages) if isinstance(messages, list) else str(messages)
    return prefix or "options", "unknown key" if text == "Unknown field." else text
