"""``fit google inspect``'s content: a form's question table and a proposed TOML mapping.

The proposal is a starting point to check, never applied silently: numeric questions (linear
scales, ratings, grids and choices of whole numbers) are taken four at a time in form order, and
each group is named after its section title when that names a measure (ORS, SRS, CORS, ...),
else ORS then SRS. The client-id, clinician and date questions are guessed from their titles.
Mappings use questionIds (stable when a title is reworded) with the title as a comment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from .formdef import FormInfo

MEASURE_WORDS: tuple[tuple[str, str], ...] = (
    ("CSRS", r"\bcsrs\b|child session"),
    ("GSRS", r"\bgsrs\b|group session"),
    ("CORS", r"\bcors\b|child outcome"),
    ("SRS", r"\bsrs\b|session rating|session"),
    ("ORS", r"\bors\b|outcome"),
)
_CLIENT = re.compile(r"client|record|participant|\bid\b|code", re.IGNORECASE)
_CLINICIAN = re.compile(r"clinician|therapist|counsel|provider|practitioner", re.IGNORECASE)
_DATE = re.compile(r"date|session", re.IGNORECASE)


def question_rows(form: FormInfo) -> list[dict[str, object]]:
    """One dict per question: title, questionId, type, low, high, section (for tables/JSON)."""
    return [
        {
            "questionId": q.question_id,
            "title": q.title,
            "type": q.kind,
            "low": q.low,
            "high": q.high,
            "section": q.section,
            "required": q.required,
        }
        for q in form.questions
    ]


def question_table(form: FormInfo) -> str:
    """A plain-text table of the form's questions."""
    head = ("questionId", "type", "low", "high", "section", "title")
    rows = [
        (q.question_id, q.kind, _num(q.low), _num(q.high), q.section[:24], q.title)
        for q in form.questions
    ]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head) - 1)]
    lines = []
    for r in [head, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(r[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, str(r[-1])]).rstrip())
    return "\n".join(lines)


def _num(value: int | None) -> str:
    return "" if value is None else str(value)


def guess_measure(text: str, taken: Sequence[str]) -> str | None:
    """The measure a section or form title names, if any and not yet used."""
    low = text.lower()
    for key, pattern in MEASURE_WORDS:
        if key not in taken and re.search(pattern, low):
            return key
    return None


def propose(form: FormInfo, source: str) -> str:
    """A TOML block mapping the form, with ``# check`` comments where it guessed."""
    numeric = [q for q in form.questions if q.numeric]
    text = [q for q in form.questions if q.kind in ("text", "paragraph")]
    lines = [
        f"# {form.title or form.form_id}: proposed mapping — check every line before using it",
        f"[[sources.{source}.forms]]",
        f"form_id = {_s(form.form_id)}",
    ]
    client = next((q for q in text if _CLIENT.search(q.title)), text[0] if text else None)
    if client is None:
        lines.append('client_id = "?"  # check: no text question found for the client id')
    else:
        lines.append(f"client_id = {{ id = {_s(client.question_id)} }}  # {_c(client.title)}")
    clinician = next(
        (q for q in form.questions if _CLINICIAN.search(q.title) and q is not client), None
    )
    if clinician is not None:
        lines.append(f"clinician = {{ id = {_s(clinician.question_id)} }}  # {_c(clinician.title)}")
    date = next(
        (q for q in form.questions if q.kind in ("date", "datetime") and _DATE.search(q.title)),
        None,
    )
    if date is not None:
        lines.append(
            f"# administered_at = {{ id = {_s(date.question_id)} }}  # {_c(date.title)}"
            " (default: lastSubmittedTime)"
        )
    groups = [numeric[i : i + 4] for i in range(0, len(numeric) - len(numeric) % 4, 4)]
    taken: list[str] = []
    for n, group in enumerate(groups):
        name = guess_measure(group[0].section, taken) or guess_measure(form.title, taken)
        note = ""
        if name is None:
            name = next((k for k in ("ORS", "SRS") if k not in taken), f"MEASURE{n + 1}")
            note = "  # check: measure guessed from the order"
        taken.append(name)
        lines.append(f"[sources.{source}.forms.measures.{name}]{note}")
        for key, q in zip(("q1", "q2", "q3", "q4"), group, strict=True):
            scale = q.auto_scale or "points"
            lines.append(
                f"{key} = {{ id = {_s(q.question_id)}, scale = {_s(scale)} }}  # {_c(q.title)}"
            )
    if not groups:
        lines.append("# check: fewer than four numeric questions; map q1-q4 or total by hand")
    left = len(numeric) % 4
    if left:
        lines.append(f"# check: {left} numeric question(s) left over, not mapped")
    return "\n".join(lines)


def _s(value: str) -> str:
    """A TOML basic string (JSON escaping is valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


def _c(title: str) -> str:
    """A title on one comment line."""
    return " ".join(title.split())[:80]
