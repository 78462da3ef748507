"""What a REDCap project looks like: project info, the data dictionary, events and repeats.

:class:`Discovery` comes from ``content=project`` (kept a day between runs by the adapter) and
``content=metadata`` (every run). :class:`Placement` comes from ``content=formEventMapping``
(longitudinal projects only) and ``content=repeatingFormsEvents`` (projects with repeats only;
REDCap answers 400 when there are none): it is fetched only when something is pushed, or by
``fit redcap inspect``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fit_core.errors import ConfigError

from .options import RedcapOptions

#: text validations that hold a number
NUMERIC_VALIDATIONS = (
    "number",
    "number_1dp",
    "number_2dp",
    "number_1dp_comma_decimal",
    "number_2dp_comma_decimal",
    "number_comma_decimal",
    "integer",
    "float",
    "int",
)


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """One row of the data dictionary (the columns fit-sync reads)."""

    name: str
    form: str
    field_type: str
    label: str = ""
    choices: str = ""
    validation: str = ""
    vmin: str = ""
    vmax: str = ""

    @classmethod
    def from_api(cls, row: Mapping[str, Any]) -> FieldInfo:
        """One ``content=metadata`` row."""

        def get(key: str) -> str:
            value = row.get(key)
            return "" if value is None else str(value).strip()

        return cls(
            name=get("field_name"),
            form=get("form_name"),
            field_type=get("field_type").lower(),
            label=get("field_label"),
            choices=get("select_choices_or_calculations"),
            validation=get("text_validation_type_or_show_slider_number").lower(),
            vmin=get("text_validation_min"),
            vmax=get("text_validation_max"),
        )

    @property
    def numeric(self) -> bool:
        """A slider, or a text field validated as a number."""
        return self.field_type == "slider" or (
            self.field_type == "text" and self.validation in NUMERIC_VALIDATIONS
        )

    @property
    def is_date(self) -> bool:
        """A text field validated as a date or datetime."""
        return self.field_type == "text" and self.validation.startswith(("date", "datetime"))

    def expected_scale(self) -> str | None:
        """The scale this field's values are on, when the dictionary says so clearly."""
        try:
            low = float(self.vmin) if self.vmin else 0.0
            high = float(self.vmax) if self.vmax else None
        except ValueError:
            return None
        if self.field_type == "slider":
            high = 100.0 if high is None else high
        elif not self.numeric or high is None:
            return None
        if low == 0 and high == 100:
            return "percent"
        if low == 0 and high == 10:
            return "points"
        if low < high:
            return f"range:{low:g}:{high:g}"
        return None


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    """``content=project``."""

    project_id: int | None
    title: str
    longitudinal: bool
    repeating: bool
    in_production: bool
    created: dt.datetime | None = None  # creation_time, server-local (naive)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ProjectInfo:
        """The ``content=project`` object."""
        try:
            pid: int | None = int(str(data.get("project_id")))
        except ValueError:
            pid = None
        try:
            created: dt.datetime | None = dt.datetime.strptime(
                str(data.get("creation_time") or ""), "%Y-%m-%d %H:%M:%S"
            )
        except ValueError:
            created = None
        return cls(
            project_id=pid,
            title=str(data.get("project_title") or ""),
            longitudinal=_truthy(data.get("is_longitudinal", 0)),
            repeating=_truthy(data.get("has_repeating_instruments_or_events", 0)),
            in_production=_truthy(data.get("in_production", 0)),
            created=created,
        )


@dataclass(frozen=True)
class Discovery:
    """Project info plus the data dictionary. The record id field is the dictionary's first."""

    project: ProjectInfo
    fields: tuple[FieldInfo, ...]
    by_name: Mapping[str, FieldInfo] = field(init=False, repr=False)
    forms: Mapping[str, tuple[str, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_name = {f.name: f for f in self.fields}
        forms: dict[str, list[str]] = {}
        for f in self.fields:
            forms.setdefault(f.form, []).append(f.name)
        object.__setattr__(self, "by_name", by_name)
        object.__setattr__(self, "forms", {k: tuple(v) for k, v in forms.items()})

    @classmethod
    def from_api(
        cls, project: Mapping[str, Any], metadata: Sequence[Mapping[str, Any]]
    ) -> Discovery:
        return cls(ProjectInfo.from_api(project), tuple(FieldInfo.from_api(r) for r in metadata))

    @property
    def id_field(self) -> str:
        """The record id field: the first field of the data dictionary."""
        return self.fields[0].name

    def form_of(self, name: str) -> str | None:
        """The instrument a field belongs to (``<form>_complete``/``_timestamp`` included)."""
        info = self.by_name.get(name)
        if info is not None:
            return info.form
        for suffix in ("_complete", "_timestamp"):
            if name.endswith(suffix) and name[: -len(suffix)] in self.forms:
                return name[: -len(suffix)]
        return None


@dataclass(frozen=True)
class Placement:
    """Which instruments sit on which events, and what repeats."""

    longitudinal: bool
    form_events: Mapping[str, frozenset[str]]  # event -> instruments
    repeating_forms: frozenset[tuple[str, str]]  # (event or "", instrument)
    repeating_events: frozenset[str]

    @classmethod
    def from_api(
        cls,
        longitudinal: bool,
        mapping: Iterable[Mapping[str, Any]],
        repeats: Iterable[Mapping[str, Any]],
    ) -> Placement:
        events: dict[str, set[str]] = {}
        for row in mapping:
            event = str(row.get("unique_event_name") or "")
            form = str(row.get("form") or "")
            if event and form:
                events.setdefault(event, set()).add(form)
        forms: set[tuple[str, str]] = set()
        whole: set[str] = set()
        for row in repeats:
            event = str(row.get("event_name") or "")
            form = str(row.get("form_name") or "")
            if form:
                forms.add((event, form))
            elif event:
                whole.add(event)
        return cls(
            longitudinal,
            {k: frozenset(v) for k, v in events.items()},
            frozenset(forms),
            frozenset(whole),
        )

    def designated(self, event: str, form: str) -> bool:
        """Whether ``form`` is on ``event`` (always, in a classic project)."""
        if not self.longitudinal:
            return True
        return form in self.form_events.get(event, frozenset())

    def repeats(self, event: str, form: str) -> bool:
        """Whether ``form`` is a repeating instrument on ``event``."""
        return (event if self.longitudinal else "", form) in self.repeating_forms


# --- checking a source's mapping against the project ----------------------------------------


def mapping_problems(opts: RedcapOptions, disc: Discovery) -> list[str]:
    """Everything wrong with the source's mapping, as short sentences naming fields (no data)."""
    problems: list[str] = []
    forms = disc.forms
    if not opts.instruments:
        return ["no instruments are mapped"]
    for inst in opts.instruments:
        where = f"instruments.{inst.instrument}"
        if inst.instrument not in forms:
            problems.append(f"{where}: the project has no instrument {inst.instrument!r}")
            continue
        for role, name in (
            *(("item", n) for n in inst.items),
            ("total", inst.total),
            ("date", inst.date),
        ):
            if not name:
                continue
            info = disc.by_name.get(name)
            if info is None:
                problems.append(f"{where}: {role} field {name!r} is not in the data dictionary")
            elif info.form != inst.instrument:
                problems.append(
                    f"{where}: {role} field {name!r} belongs to instrument {info.form!r}"
                )
        for name in inst.items:
            info = disc.by_name.get(name)
            expected = info.expected_scale() if info is not None else None
            if expected is not None and expected != inst.scale:
                problems.append(
                    f"{where}: item {name!r} is a {info.field_type if info else ''} field on "
                    f"the {expected} scale but scale is {inst.scale!r} (set scale = "
                    f'"{expected}")'
                )
                break
    for key, name in opts.context_fields.items():
        if name not in disc.by_name:
            problems.append(f"fields.{key}: {name!r} is not in the data dictionary")
    scores = opts.scores_instrument
    if scores not in forms:
        problems.append(
            f"scores_instrument: the project has no instrument {scores!r} to write scores to"
        )
    else:
        for inst in opts.instruments:
            for key, name in inst.score_fields.items():
                info = disc.by_name.get(name)
                if info is None or info.form != scores:
                    problems.append(
                        f"instruments.{inst.instrument}.score_fields.{key}: {scores} has no "
                        f"field {name!r}"
                    )
    return problems


def check_mapping(opts: RedcapOptions, disc: Discovery, source: str) -> None:
    """Raise ConfigError naming the first problems of :func:`mapping_problems`."""
    problems = mapping_problems(opts, disc)
    if not problems:
        return
    shown = "; ".join(problems[:3]) + (
        f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    )
    if problems == ["no instruments are mapped"]:
        hint = f"run `fit redcap inspect {source}` and add the [sources.{source}.instruments.*] "
        hint += "tables it proposes"
    elif any(p.startswith("scores_instrument") for p in problems):
        hint = (
            f"add the scoring instrument: `fit redcap template {source}` prints its data "
            "dictionary rows (see docs/redcap.md); if the project has one under another name, "
            f"set scores_instrument (`fit redcap inspect {source}` looks for it)"
        )
    elif any("score_fields" in p for p in problems):
        hint = (
            f"map the fields {opts.scores_instrument} has with score_fields (`fit redcap "
            f"inspect {source}` proposes a mapping), or add the missing ones (`fit redcap "
            f"template {source} --merge` prints the whole dictionary with them)"
        )
    else:
        hint = f"compare with `fit redcap inspect {source}`"
    raise ConfigError(f"[sources.{source}] does not match the REDCap project: {shown}", hint=hint)
