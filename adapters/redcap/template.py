"""`fit redcap template`: data-dictionary rows for the scoring instrument (and optional surveys).

REDCap's Data Dictionary upload **replaces the whole dictionary**, so these rows must be appended
to the project's current dictionary (``--merge`` does that through the API and prints the full
dictionary). The optional ORS/SRS-family survey instruments carry neutral labels only: the
measure's short domain labels from :mod:`fit_core.measures` and the copyright line, never item
wording or instructions (administering the measures needs a licence from the rights holders).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fit_core.measures import BUILTIN_MEASURES, COPYRIGHT_LINES, Measure

from .options import ORS_FAMILY, InstrumentMap, RedcapOptions, score_fields_of

#: REDCap's data dictionary CSV header, and the metadata API key of each column
COLUMNS: tuple[tuple[str, str], ...] = (
    ("Variable / Field Name", "field_name"),
    ("Form Name", "form_name"),
    ("Section Header", "section_header"),
    ("Field Type", "field_type"),
    ("Field Label", "field_label"),
    ("Choices, Calculations, OR Slider Labels", "select_choices_or_calculations"),
    ("Field Note", "field_note"),
    ("Text Validation Type OR Show Slider Number", "text_validation_type_or_show_slider_number"),
    ("Text Validation Min", "text_validation_min"),
    ("Text Validation Max", "text_validation_max"),
    ("Identifier?", "identifier"),
    ("Branching Logic (Show field only if...)", "branching_logic"),
    ("Required Field?", "required_field"),
    ("Custom Alignment", "custom_alignment"),
    ("Question Number (surveys only)", "question_number"),
    ("Matrix Group Name", "matrix_group_name"),
    ("Matrix Ranking?", "matrix_ranking"),
    ("Field Annotation", "field_annotation"),
)
STATUS_CHOICES = (
    "green, green (on track) | orange, orange (not on track) | red, red (off track) | "
    "grey, grey (too early to tell) | none, none (no trajectory model)"
)
RC_CHOICES = (
    "intake, intake | recovered, recovered | improved, improved | "
    "no_reliable_change, no reliable change | deteriorated, deteriorated"
)
DEFAULT_INSTRUMENTS: dict[str, dict[str, Any]] = {
    "ors": {"measure": "ORS", "items": [f"ors_{i}" for i in range(1, 5)]},
    "srs": {"measure": "SRS", "items": [f"srs_{i}" for i in range(1, 5)]},
}

Row = dict[str, str]


def _row(name: str, form: str, ftype: str, label: str, **rest: str) -> Row:
    row = {key: "" for _, key in COLUMNS}
    row.update(field_name=name, form_name=form, field_type=ftype, field_label=label, **rest)
    return row


def instruments_for(opts: RedcapOptions | None) -> tuple[InstrumentMap, ...]:
    """The source's mapped instruments, or ORS (``ors``) and SRS (``srs``) when none are."""
    if opts is not None and opts.instruments:
        return opts.instruments
    scores = score_fields_of(DEFAULT_INSTRUMENTS)
    return tuple(
        InstrumentMap(
            name, spec["measure"], tuple(spec["items"]), None, "percent", None, None, scores[name]
        )
        for name, spec in DEFAULT_INSTRUMENTS.items()
    )


def scoring_rows(instruments: Sequence[InstrumentMap], scores_instrument: str) -> list[Row]:
    """The scoring instrument: a note, then the score fields (read-only), each once.

    A field several instruments share (the session date, by default) is labelled for the
    session; the others name their measure."""
    note = "Written by fit-sync through the API, one row per session; do not edit. " + " ".join(
        COPYRIGHT_LINES
    )
    rows = [_row(f"{scores_instrument}_about", scores_instrument, "descriptive", note)]
    users: dict[str, list[InstrumentMap]] = {}
    for inst in instruments:
        for name in inst.score_fields.values():
            users.setdefault(name, []).append(inst)
    done: set[str] = set()
    ordered = sorted(
        ((key, name, inst) for inst in instruments for key, name in inst.score_fields.items()),
        key=lambda t: t[0] != "date",  # the session date first
    )
    for key, name, inst in ordered:
        if name in done:
            continue
        done.add(name)
        shared = len(users[name]) > 1
        m = "Session" if shared else inst.measure
        row = _score_row(key, name, scores_instrument, m)
        row["field_annotation"] = "@READONLY"
        rows.append(row)
    return rows


def _score_row(key: str, name: str, form: str, m: str) -> Row:
    if key == "date":
        return _row(
            name,
            form,
            "text",
            "Session date" if m == "Session" else f"{m} session date",
            text_validation_type_or_show_slider_number="date_ymd",
        )
    if key == "total":
        return _row(
            name,
            form,
            "text",
            f"{m} total",
            text_validation_type_or_show_slider_number="number_1dp",
            text_validation_min="0",
            text_validation_max="40",
        )
    if key == "session":
        return _row(
            name,
            form,
            "text",
            "Session number" if m == "Session" else f"{m} session number",
            text_validation_type_or_show_slider_number="integer",
            text_validation_min="1",
        )
    if key == "status":
        return _row(
            name,
            form,
            "dropdown",
            f"{m} status colour",
            select_choices_or_calculations=STATUS_CHOICES,
        )
    if key == "flags":
        return _row(name, form, "text", f"{m} open alerts (rule ids)")
    if key == "message":
        return _row(name, form, "notes", f"{m} alert message")
    if key == "change":
        return _row(
            name,
            form,
            "text",
            f"{m} change from intake",
            text_validation_type_or_show_slider_number="number_1dp",
            text_validation_min="-40",
            text_validation_max="40",
        )
    return _row(
        name,
        form,
        "dropdown",
        f"{m} reliable change class",
        select_choices_or_calculations=RC_CHOICES,
    )


def survey_rows(
    instruments: Sequence[InstrumentMap], measures: Mapping[str, Measure] | None = None
) -> list[Row]:
    """An instrument per mapped measure with neutral labels (short domain labels only)."""
    known = {m.key: m for m in BUILTIN_MEASURES}
    known.update(measures or {})
    rows: list[Row] = []
    for inst in instruments:
        measure = known.get(inst.measure)
        labels = measure.item_labels if measure else tuple(f"Item {i}" for i in range(1, 5))
        family = measure.family if measure else inst.measure
        notice = (
            COPYRIGHT_LINES[0]
            if family == "ORS" or inst.measure in ORS_FAMILY
            else (COPYRIGHT_LINES[1])
        )
        rows.append(
            _row(
                f"{inst.instrument}_about",
                inst.instrument,
                "descriptive",
                f"{inst.measure}. {notice} Administering it needs a licence from the "
                "rights holders.",
            )
        )
        points = inst.scale == "points"
        for name, label in zip(inst.items, labels, strict=False):
            if points:
                rows.append(
                    _row(
                        name,
                        inst.instrument,
                        "text",
                        label,
                        text_validation_type_or_show_slider_number="number_1dp",
                        text_validation_min="0",
                        text_validation_max="10",
                    )
                )
            else:
                rows.append(
                    _row(
                        name,
                        inst.instrument,
                        "slider",
                        label,
                        text_validation_type_or_show_slider_number="number",
                    )
                )
        if inst.total:
            rows.append(
                _row(
                    inst.total,
                    inst.instrument,
                    "text",
                    f"{inst.measure} total",
                    text_validation_type_or_show_slider_number="number_1dp",
                    text_validation_min="0",
                    text_validation_max="40",
                )
            )
        if inst.date:
            rows.append(
                _row(
                    inst.date,
                    inst.instrument,
                    "text",
                    "Date",
                    text_validation_type_or_show_slider_number="date_ymd",
                )
            )
    return rows


def merge(existing: Iterable[Mapping[str, Any]], new: Iterable[Row]) -> list[Row]:
    """The current dictionary followed by the new rows whose field names are not in it yet."""
    out: list[Row] = []
    seen: set[str] = set()
    for meta in existing:
        row = {key: "" if meta.get(key) is None else str(meta.get(key)) for _, key in COLUMNS}
        seen.add(row["field_name"])
        out.append(row)
    out += [r for r in new if r["field_name"] not in seen]
    return out


def to_csv(rows: Iterable[Row]) -> str:
    """Rows as REDCap's data dictionary CSV (its header, every cell quoted)."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow([title for title, _ in COLUMNS])
    for row in rows:
        writer.writerow([row.get(key, "") for _, key in COLUMNS])
    return buf.getvalue()
