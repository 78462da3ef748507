"""``fit google inspect``'s content: a form's question table and a proposed TOML mapping.

The proposal is a starting point to check, never applied silently: numeric questions (linear
scales, ratings, grids and choices of whole numbers) are taken four at a time in form order, and
each group's measure is decided from the evidence, strongest first:

1. the questions' own titles naming a measure (``ORS 1 — …``, ``Session Rating Scale: …``);
2. the questions' titles holding a measure's domain labels (``Individually``, ``Socially``: ORS);
3. the title of the group's section, then of the form, naming a measure;
4. only when none of these says anything: a vague word in a section or form title (``session``,
   ``outcome``), then the order (ORS, then SRS).

When two kinds of evidence name different measures (questions saying ORS in a section titled
SRS), no measure is proposed for that group: its lines are left commented out with the reason.
A form title such as "Session feedback" is weak evidence and never outweighs the questions.
Every guess is marked ``# check`` with what it was based on: the measure of each group, the
client-id, clinician and session-date questions. Mappings use questionIds (stable when a title
is reworded) with the title as a comment.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from fit_core.measures import BUILTIN_MEASURES

from .formdef import FormInfo, Question

#: a measure named outright (acronyms between non-letters, or the scale's name)
NAMED: tuple[tuple[str, str], ...] = (
    ("CSRS", r"(?<![a-z])csrs(?![a-z])|child session rating"),
    ("GSRS", r"(?<![a-z])gsrs(?![a-z])|group session rating"),
    ("CORS", r"(?<![a-z])cors(?![a-z])|child outcome rating"),
    ("SRS", r"(?<![a-z])srs(?![a-z])|(?<!child )(?<!group )session rating"),
    ("ORS", r"(?<![a-z])ors(?![a-z])|(?<!child )outcome rating"),
)
#: weak hints, used only when nothing above says anything
VAGUE: tuple[tuple[str, str], ...] = (
    ("CSRS", r"child session"),
    ("GSRS", r"group session"),
    ("CORS", r"child outcome"),
    ("SRS", r"\bsession"),
    ("ORS", r"\boutcome"),
)
MEASURE_WORDS = NAMED  # the patterns that name a measure (kept for plugins that import it)
_CLIENT = re.compile(r"client|record|participant|\bid\b|code", re.IGNORECASE)
_CLINICIAN = re.compile(r"clinician|therapist|counsel|provider|practitioner", re.IGNORECASE)
_DATE = re.compile(r"date|session", re.IGNORECASE)


def _domain_labels() -> dict[str, frozenset[str]]:
    """Domain label (lower case) → the measures that use it; labels shared by every measure
    ("Overall") and short ones ("Me") say nothing and are left out."""
    users: dict[str, set[str]] = {}
    for m in BUILTIN_MEASURES:
        for label in m.item_labels:
            users.setdefault(label.lower(), set()).add(m.key)
    return {
        label: frozenset(keys)
        for label, keys in users.items()
        if len(label) >= 6 and label != "overall"
    }


DOMAIN_LABELS = _domain_labels()


def named_measures(text: str) -> set[str]:
    """Every measure ``text`` names outright."""
    low = text.lower()
    return {key for key, pattern in NAMED if re.search(pattern, low)}


def _vague(text: str) -> str | None:
    low = text.lower()
    return next((key for key, pattern in VAGUE if re.search(pattern, low)), None)


def _domain(text: str) -> frozenset[str]:
    low = text.lower()
    found: set[str] = set()
    for label, keys in DOMAIN_LABELS.items():
        if re.search(r"\b" + re.escape(label) + r"\b", low):
            found |= keys
    return frozenset(found)


@dataclass(frozen=True)
class Verdict:
    """The measure proposed for a group of four questions, or why none is."""

    measure: str | None
    basis: str  # what it was decided from, for the ``# check`` comment
    conflict: str = ""  # why nothing is proposed


def decide_measure(group: Sequence[Question], form_title: str, taken: Sequence[str]) -> Verdict:
    """The measure of a group of four numeric questions (see the module docstring)."""
    evidence: list[tuple[str, str]] = []  # (measure, where), strongest first
    named = [named_measures(q.title) for q in group]
    by_question = set().union(*named)
    if len(by_question) > 1:
        return Verdict(
            None,
            "",
            f"the question titles name different measures ({', '.join(sorted(by_question))})",
        )
    if by_question:
        evidence.append((next(iter(by_question)), "the question titles"))
    votes: Counter[str] = Counter()
    for q in group:
        votes.update(_domain(q.title))
    top = max(votes.values(), default=0)
    if top >= 2:  # two of the four questions at least
        best = {k for k, n in votes.items() if n == top}
        if best == {"SRS", "GSRS"}:
            best = {"SRS"}  # the same domains: the individual scale unless a title says group
        if len(best) > 1:
            labels = ", ".join(sorted(best))
            return Verdict(None, "", f"the question titles hold domain labels of {labels}")
        evidence.append((best.pop(), "the domain labels in the question titles"))
    sections = {q.section for q in group if q.section}
    for section in sorted(sections):
        for key in sorted(named_measures(section)):
            evidence.append((key, f"the section title {section!r}"))
    form_named = named_measures(form_title)
    if len(form_named) == 1:
        evidence.append((next(iter(form_named)), "the form title"))
    strong = {key for key, _where in evidence}
    if len(strong) > 1:
        said = "; ".join(f"{where} say {key}" for key, where in evidence)
        return Verdict(None, "", f"the evidence disagrees: {said}")
    if evidence:
        key, where = evidence[0]
        if key in taken:
            return Verdict(None, "", f"{where} say {key}, which an earlier group already is")
        return Verdict(key, where)
    hints = [(s, f"the section title {s!r}") for s in sorted(sections)]
    for text, where in [*hints, (form_title, "the form title")]:
        weak = _vague(text)
        if weak is not None and weak not in taken:
            return Verdict(weak, f"a word in {where} (weak)")
    free = next((k for k in ("ORS", "SRS") if k not in taken), None)
    if free is None:
        return Verdict(None, "", "nothing names a measure and ORS and SRS are taken")
    return Verdict(free, "the order of the groups only")


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
    """The measure a title names outright, if any and not yet used."""
    return next((k for k, _p in NAMED if k not in taken and k in named_measures(text)), None)


def propose(form: FormInfo, source: str) -> str:
    """A TOML block mapping the form, with ``# check`` comments on every guess."""
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
        how = "its title" if _CLIENT.search(client.title) else "the first text question"
        lines.append(
            f"client_id = {{ id = {_s(client.question_id)} }}  # check: {_c(client.title)} "
            f"(guessed from {how})"
        )
    clinician = next(
        (q for q in form.questions if _CLINICIAN.search(q.title) and q is not client), None
    )
    if clinician is not None:
        lines.append(
            f"clinician = {{ id = {_s(clinician.question_id)} }}  # check: {_c(clinician.title)}"
            " (guessed from its title)"
        )
    date = next(
        (q for q in form.questions if q.kind in ("date", "datetime") and _DATE.search(q.title)),
        None,
    )
    if date is not None:
        lines.append(
            f"administered_at = {{ id = {_s(date.question_id)} }}  # check: {_c(date.title)}"
            " (without it: createTime, the first submission)"
        )
    groups = [numeric[i : i + 4] for i in range(0, len(numeric) - len(numeric) % 4, 4)]
    taken: list[str] = []
    for group in groups:
        verdict = decide_measure(group, form.title, taken)
        if verdict.measure is None:
            lines.append(f"# check: not proposed: {verdict.conflict}; map these four by hand")
            lines.append(f"# [sources.{source}.forms.measures.MEASURE]")
            lines.extend("# " + line for line in _item_lines(group))
            continue
        taken.append(verdict.measure)
        lines.append(
            f"[sources.{source}.forms.measures.{verdict.measure}]  # check: measure from "
            f"{verdict.basis}; q1-q4 in form order"
        )
        lines.extend(_item_lines(group))
    if not groups:
        lines.append("# check: fewer than four numeric questions; map q1-q4 or total by hand")
    left = len(numeric) % 4
    if left:
        lines.append(f"# check: {left} numeric question(s) left over, not mapped")
    return "\n".join(lines)


def _item_lines(group: Sequence[Question]) -> list[str]:
    out = []
    for key, q in zip(("q1", "q2", "q3", "q4"), group, strict=True):
        scale = q.auto_scale or "points"
        out.append(f"{key} = {{ id = {_s(q.question_id)}, scale = {_s(scale)} }}  # {_c(q.title)}")
    return out


def _s(value: str) -> str:
    """A TOML basic string (JSON escaping is valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


def _c(title: str) -> str:
    """A title on one comment line."""
    return " ".join(title.split())[:80]
