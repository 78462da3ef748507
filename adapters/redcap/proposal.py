"""`fit redcap inspect`: describe a project and propose a mapping, as TOML.

The whole output is valid TOML (the description is in comments), so it can be pasted into the
config or redirected to a file and edited. Guesses use instrument and field names only (never
data): an instrument whose name says ORS/SRS (or outcome/session rating) and holds four numeric
fields (sliders, or text validated as a number) is proposed with its scale from the dictionary.

When the project already has a scoring instrument (the configured ``scores_instrument``, or an
instrument whose name says scores and that holds total-like fields), the proposal maps each
measure's ``score_fields`` onto the fields it has (``fit_session``, ``fit_flags`` ... may be
shared by the measures of a session) instead of asking for new ones. Every guessed line ends in
``# check``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .discovery import Discovery, FieldInfo, Placement, mapping_problems
from .options import (
    DEFAULT_DATE_FIELD,
    DEFAULT_SCORE_KEYS,
    ORS_FAMILY,
    SHAREABLE_KEYS,
    RedcapOptions,
    score_fields_of,
)

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


def propose(disc: Discovery, skip: str | None = None) -> list[Proposal]:
    """Instruments that look like ORS/SRS-family measures, with a proposed mapping each
    (``skip``: the scoring instrument)."""
    out: list[Proposal] = []
    for form, names in disc.forms.items():
        measure = guess_measure(form)
        if measure is None or form == skip:
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


_SCORE_HINTS: tuple[tuple[str, str, str], ...] = (
    # key, a pattern the field name must match, a pattern it must not match
    ("date", r"date|day|when", r"birth|dob"),
    ("total", r"total|sum|score", r"change|diff"),
    ("session", r"session|visit|number", r"date|day"),
    ("status", r"status|colou?r|track|light", r"complete"),
    ("flags", r"flag|alert|rule", r"message|msg|text|note"),
    ("message", r"message|msg|note|text|comment", ""),
    ("change", r"change|diff|improv", ""),
    ("rc_class", r"(^|_)rc(_|$)|reliab|class", ""),
)
_SCORES_FORM = re.compile(r"score|result|(^|_)fit(_|$)", re.IGNORECASE)


def scoring_form(disc: Discovery, configured: str) -> str | None:
    """The project's scoring instrument: the configured one if it exists, else one whose name
    says scores (or results) and that holds a total but not four item-like numeric fields."""
    if configured in disc.forms:
        return configured
    for form, names in disc.forms.items():
        if not _SCORES_FORM.search(form):
            continue
        numeric = [n for n in names if disc.by_name[n].numeric]
        totals = [n for n in numeric if _TOTAL.search(n)]
        if totals and len(numeric) - len(totals) < 4:
            return form
    return None


def propose_score_fields(
    disc: Discovery, form: str, proposals: Sequence[Proposal]
) -> dict[str, dict[str, str]]:
    """Per proposed instrument: score key -> a field of ``form`` (``""``: none found).

    A field naming the measure (or its instrument) is that measure's; a field naming no
    measure is shared by every measure for the shareable keys (date, session, flags,
    message) and given to the ORS family for ``status``."""
    fields = [
        f for f in (disc.by_name[n] for n in disc.forms[form]) if f.field_type != "descriptive"
    ]
    tags = {p.instrument: {p.measure.lower(), p.instrument.lower()} for p in proposals}
    every = {t for ts in tags.values() for t in ts}
    out: dict[str, dict[str, str]] = {}
    for prop in proposals:
        mine: dict[str, str] = {}
        for key, want, avoid in _SCORE_HINTS:
            if key == "status" and prop.measure not in ORS_FAMILY:
                continue
            hits = [
                f.name
                for f in fields
                if re.search(want, f.name, re.IGNORECASE)
                and not (avoid and re.search(avoid, f.name, re.IGNORECASE))
            ]
            own = [n for n in hits if _names(n, tags[prop.instrument])]
            neutral = [n for n in hits if not _names(n, every)]
            pick = own[:1] or (neutral[:1] if key in SHAREABLE_KEYS or key == "status" else [])
            mine[key] = pick[0] if pick else ""
        out[prop.instrument] = mine
    taken: dict[str, str] = {}
    for mine in out.values():  # a field another key already has stays with it
        for key, name in list(mine.items()):
            if name and taken.setdefault(name, key) != key:
                mine[key] = ""
    return out


def _names(field_name: str, tags: set[str]) -> bool:
    parts = set(re.split(r"[_\d]+", field_name.lower()))
    return bool(parts & tags)


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
    found = scoring_form(disc, scores)
    if found == scores:
        lines.append(f"#   scoring instrument {scores}: found")
    elif found is not None:
        lines.append(
            f"#   scoring instrument: {found} looks like one; to use it, add to "
            f'[sources.{source}]:  scores_instrument = "{found}"  # check'
        )
    else:
        lines.append(
            f"#   scoring instrument {scores}: MISSING; `fit redcap template {source}` prints "
            "its data dictionary rows"
        )
    if opts.instruments:
        problems = mapping_problems(opts, disc)
        lines.append("#   current mapping: " + ("ok" if not problems else "PROBLEMS"))
        lines += [f"#     - {problem}" for problem in problems]
    proposals = propose(disc, skip=found)
    lines += ["", f"# Proposed mapping for [sources.{source}]: check every line before use."]
    if not proposals:
        lines.append(
            "# No instrument looks like ORS/SRS (by name, with four numeric fields): map yours "
            "by hand (see docs/redcap.md)."
        )
    context = propose_context(disc)
    if context:
        lines += ["", f"[sources.{source}.fields]"]
        lines += [f'{key} = "{name}"  # check' for key, name in context.items()]
    score_map = propose_score_fields(disc, found, proposals) if found else {}
    own_layout = bool(found) and any(
        name not in disc.by_name or disc.by_name[name].form != found
        for inst in _defaults(proposals).values()
        for name in inst.values()
    )
    sessions = {m.get("session", "") for m in score_map.values()}
    shared_session = len(sessions) == 1 and "" not in sessions
    for prop in proposals:
        lines += ["", f"[sources.{source}.instruments.{prop.instrument}]"]
        lines.append(f'measure = "{prop.measure}"  # check')
        if prop.items:
            items = ", ".join(f'"{i}"' for i in prop.items)
            lines.append(f"items = [{items}]  # check: in the measure's item order")
        if prop.total:
            lines.append(f'total = "{prop.total}"  # check')
        lines.append(f'scale = "{prop.scale}"  # check: {prop.note}')
        if prop.date:
            lines.append(f'date = "{prop.date}"  # check')
        else:
            lines.append("# date: none found; the survey timestamp is used")
        lines.append(f"#{_events_of(prop.instrument, placement)}")
        if own_layout and prop.instrument in score_map:
            lines += ["", f"[sources.{source}.instruments.{prop.instrument}.score_fields]"]
            lines += _score_lines(
                score_map[prop.instrument], found or "", source, shared_session=shared_session
            )
    return "\n".join(lines) + "\n"


def _defaults(proposals: Sequence[Proposal]) -> dict[str, dict[str, str]]:
    spec = {p.instrument: {"measure": p.measure} for p in proposals}
    return score_fields_of(spec)


def _score_lines(
    mapping: dict[str, str], form: str, source: str, *, shared_session: bool
) -> list[str]:
    out = []
    for key, name in mapping.items():
        if name:
            out.append(f'{key} = "{name}"  # check')
        elif key == "date" and not shared_session:
            out.append(
                f'{key} = "{DEFAULT_DATE_FIELD}"  # check: {form} has no session date yet; add it '
                f"(`fit redcap template {source} --merge`): rows are kept one per session by it"
            )
        elif key == "date":
            out.append(
                f'{key} = ""  # check: {form} has no date field, so the rows of a repeating '
                f"instrument are found by session number; a date field ({DEFAULT_DATE_FIELD}) is "
                "safer"
            )
        elif key in DEFAULT_SCORE_KEYS:
            out.append(f'{key} = ""  # check: {form} has no field for it (off)')
    return out


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
