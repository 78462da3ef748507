"""`fit redcap inspect`: describe a project and propose a mapping, as TOML.

The whole output is valid TOML (the description is in comments), so it can be pasted into the
config or redirected to a file and edited. Guesses use instrument and field names only (never
data): an instrument whose name says ORS/SRS (or outcome/session rating) and holds four numeric
fields (sliders, or text validated as a number) is proposed with its scale from the dictionary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .discovery import Discovery, FieldInfo, Placement, mapping_problems
from .options import RedcapOptions

_MEASURE_HINTS: tuple[tuple[str, str], ...] = (
    (r"(^|_)cors($|_)|child.*outcome|outcome.*child", "CORS"),
    (r"(^|_)csrs($|_)|child.*session|session.*child", "CSRS"),
    (r"(^|_)gsrs($|_)|group.*session|group.*rating", "GSRS"),
    (r"(^|_)srs($|_|\d)|session_?rating|alliance", "SRS"),
    (r"(^|_)ors($|_|\d)|outcome_?rating|outcome", "ORS"),
)
_TOTAL = re.compile(r"total|sum|score", re.IGNORECASE)
_CONTEXT_HINTS: tuple[tuple[str, str], ...] = (
    ("clinician_id", r"clinician|therapist|counsel|provider|staff"),
    ("episode_id", r"episode"),
    ("rater", r"rater|informant|respondent"),
    ("age", r"^age$|_age$|^age_"),
)


@dataclass(frozen=True)
class Proposal:
    """One instrument to map."""

    instrument: str
    measure: str
    items: tuple[str, ...]
    total: str | None
    scale: str
    date: str | None
    note: str


def guess_measure(name: str) -> str | None:
    """ORS, CORS, SRS, CSRS or GSRS from an instrument name, or None."""
    lowered = name.lower()
    for pattern, measure in _MEASURE_HINTS:
        if re.search(pattern, lowered):
            return measure
    return None


def propose(disc: Discovery) -> list[Proposal]:
    """Instruments that look like ORS/SRS-family measures, with a proposed mapping each."""
    out: list[Proposal] = []
    for form, names in disc.forms.items():
        measure = guess_measure(form)
        if measure is None:
            continue
        infos = [disc.by_name[n] for n in names if n != disc.id_field]
        numeric = [f for f in infos if f.numeric]
        items = [f for f in numeric if not _TOTAL.search(f.name)]
        totals = [f for f in numeric if _TOTAL.search(f.name)]
        if len(items) < 4 and not totals:
            continue
        chosen = items[:4] if len(items) >= 4 else []
        scale, note = _scale_of(chosen or totals[:1])
        dates = [f.name for f in infos if f.is_date]
        out.append(
            Proposal(
                instrument=form,
                measure=measure,
                items=tuple(f.name for f in chosen),
                total=totals[0].name if totals else None,
                scale=scale,
                date=dates[0] if dates else None,
                note=note
                + (
                    ""
                    if len(items) in (0, 4)
                    else f"; {len(items)} numeric fields: check which four are the items, in order"
                ),
            )
        )
    return out


def _scale_of(fields: Sequence[FieldInfo]) -> tuple[str, str]:
    if not fields:
        return "percent", "no item fields found"
    first = fields[0]
    expected = first.expected_scale()
    kind = "sliders" if first.field_type == "slider" else f"text ({first.validation})"
    if expected is None:
        return "points", f"{kind} without a range: check the scale"
    if expected.startswith("range:"):
        return expected, f"{kind} {expected[6:].replace(':', '-')}"
    return expected, f"{kind} {'0-100' if expected == 'percent' else '0-10'}"


def propose_context(disc: Discovery) -> dict[str, str]:
    """fit context field → REDCap field, guessed from field names (first match each)."""
    out: dict[str, str] = {}
    for key, pattern in _CONTEXT_HINTS:
        for f in disc.fields[1:]:
            if re.search(pattern, f.name, re.IGNORECASE) and f.field_type != "descriptive":
                out[key] = f.name
                break
    return out


def render(
    source: str,
    url: str,
    disc: Discovery,
    placement: Placement,
    opts: RedcapOptions,
) -> str:
    """The inspect report: the project as TOML comments, then the proposed tables."""
    p = disc.project
    lines = [
        f'# REDCap project {p.project_id} "{p.title}" at {url}',
        f"#   longitudinal: {'yes' if p.longitudinal else 'no'}; repeating instruments or "
        f"events: {'yes' if p.repeating else 'no'}; in production: "
        f"{'yes' if p.in_production else 'no'}",
        f"#   record id field: {disc.id_field} (the first field of the data dictionary)",
        "#   instruments:",
    ]
    for form, names in disc.forms.items():
        lines.append(f"#     {form:<24} {len(names):>3} fields{_events_of(form, placement)}")
    scores = opts.scores_instrument
    if scores in disc.forms:
        lines.append(f"#   scoring instrument {scores}: found")
    else:
        lines.append(
            f"#   scoring instrument {scores}: MISSING; `fit redcap template {source}` prints "
            "its data dictionary rows"
        )
    if opts.instruments:
        problems = mapping_problems(opts, disc)
        lines.append("#   current mapping: " + ("ok" if not problems else "PROBLEMS"))
        lines += [f"#     - {problem}" for problem in problems]
    proposals = propose(disc)
    lines += ["", f"# Proposed mapping for [sources.{source}]: check every line before use."]
    if not proposals:
        lines.append(
            "# No instrument looks like ORS/SRS (by name, with four numeric fields): map yours "
            "by hand (see docs/redcap.md)."
        )
    context = propose_context(disc)
    if context:
        lines += ["", f"[sources.{source}.fields]"]
        lines += [f'{key} = "{name}"' for key, name in context.items()]
    for prop in proposals:
        lines += ["", f"[sources.{source}.instruments.{prop.instrument}]"]
        lines.append(f'measure = "{prop.measure}"')
        if prop.items:
            lines.append("items = [" + ", ".join(f'"{i}"' for i in prop.items) + "]")
        if prop.total:
            lines.append(f'total = "{prop.total}"')
        lines.append(f'scale = "{prop.scale}"  # {prop.note}')
        if prop.date:
            lines.append(f'date = "{prop.date}"')
        else:
            lines.append("# date: none found; the survey timestamp is used")
        lines.append(f"#{_events_of(prop.instrument, placement)}")
    return "\n".join(lines) + "\n"


def _events_of(form: str, placement: Placement) -> str:
    if not placement.longitudinal:
        return " (repeating)" if placement.repeats("", form) else ""
    parts: list[str] = []
    for event, forms in placement.form_events.items():
        if form not in forms:
            continue
        if placement.repeats(event, form):
            parts.append(f"{event} (repeating)")
        elif event in placement.repeating_events:
            parts.append(f"{event} (repeating event)")
        else:
            parts.append(event)
    return f"   events: {', '.join(parts)}" if parts else "   events: none"
