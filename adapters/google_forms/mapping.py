"""Resolve a configured mapping against a form's questions: references become questionIds.

A reference given as a plain string is looked up as a questionId first and as an exact title
(surrounding spaces ignored) second, so ids win; a table names ``id`` (which wins) or ``title``.
A title that two questions share is an error: the message lists their ids to use instead.
An explicit scale must agree with the form's own scale (``range:0:10`` on a question the form
now asks on 1-10 is an error). Every problem of a form is reported at once, as a ConfigError
naming the form and the question.

A :class:`ResolvedForm` is also what the adapter keeps, per form, as the mapping in force (see
:mod:`.history`): :meth:`ResolvedForm.to_json` and :func:`form_from_json` round-trip it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fit_core.errors import ConfigError

from .formdef import FormInfo, Question
from .options import FormMap, MeasureMap, QuestionRef, fingerprint


@dataclass(frozen=True, slots=True)
class ResolvedMeasure:
    """One measure of a form with questionIds: ``items`` as (questionId, scale), or empty."""

    measure: str
    items: tuple[tuple[str, str], ...]
    total: str | None

    @property
    def shared_scale(self) -> str | None:
        """The scale every item uses, or None when the items use different scales."""
        scales = {scale for _qid, scale in self.items}
        return scales.pop() if len(scales) == 1 else None


@dataclass(frozen=True, slots=True)
class ResolvedForm:
    """A form's mapping in questionIds. ``time_source`` is a timestamp name or a questionId."""

    form_id: str
    measures: tuple[ResolvedMeasure, ...]
    client_id: str
    clinician: str | None
    age: str | None
    time_source: str
    time_is_question: bool
    rater: str

    @property
    def several_measures(self) -> bool:
        """One form holding several measures: source keys then carry the measure."""
        return len(self.measures) > 1

    @property
    def fingerprint(self) -> str:
        """Changes whenever the mapping reads the form differently (bookmarks are per mapping)."""
        return fingerprint(self.to_json())

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (see :func:`form_from_json`)."""
        return {
            "form_id": self.form_id,
            "measures": [
                {"measure": m.measure, "items": [list(i) for i in m.items], "total": m.total}
                for m in self.measures
            ],
            "client_id": self.client_id,
            "clinician": self.clinician,
            "age": self.age,
            "time_source": self.time_source,
            "time_is_question": self.time_is_question,
            "rater": self.rater,
        }

    def questions(self) -> Iterator[tuple[str, str, str | None]]:
        """Every mapped question as (label, questionId, scale): ``measures.ORS.q1``, ..."""
        for m in self.measures:
            for n, (qid, scale) in enumerate(m.items, start=1):
                yield f"measures.{m.measure}.q{n}", qid, scale
            if m.total:
                yield f"measures.{m.measure}.total", m.total, None
        for label, question in (
            ("client_id", self.client_id),
            ("clinician", self.clinician),
            ("age", self.age),
        ):
            if question:
                yield label, question, None
        if self.time_is_question and self.time_source:
            yield "administered_at", self.time_source, None


def form_from_json(doc: Mapping[str, Any]) -> ResolvedForm:
    """The :class:`ResolvedForm` of :meth:`ResolvedForm.to_json` (KeyError/TypeError if not)."""
    return ResolvedForm(
        form_id=str(doc["form_id"]),
        measures=tuple(
            ResolvedMeasure(
                str(m["measure"]),
                tuple((str(q), str(scale)) for q, scale in m["items"]),
                m.get("total"),
            )
            for m in doc["measures"]
        ),
        client_id=str(doc["client_id"]),
        clinician=doc.get("clinician"),
        age=doc.get("age"),
        time_source=str(doc["time_source"]),
        time_is_question=bool(doc["time_is_question"]),
        rater=str(doc["rater"]),
    )


class _Resolver:
    def __init__(self, form: FormInfo) -> None:
        self.form = form
        self.ids = form.by_id()
        self.problems: list[str] = []

    def find(self, ref: QuestionRef, what: str) -> Question | None:
        if ref.id:
            found = self.ids.get(ref.id)
            if found is None:
                self.problems.append(f"{what}: no question with questionId {ref.id!r}")
            return found
        if ref.ref and ref.ref in self.ids:
            return self.ids[ref.ref]
        title = ref.title or ref.ref or ""
        matches = [q for q in self.form.questions if q.title.strip() == title]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            self.problems.append(f"{what}: no question matches {ref.describe()}")
        else:
            ids = ", ".join(q.question_id for q in matches)
            self.problems.append(
                f"{what}: {len(matches)} questions have the title {title!r}: use one of the "
                f"questionIds {ids}"
            )
        return None

    def item_scale(self, q: Question, ref: QuestionRef, m: MeasureMap, what: str) -> str:
        scale = ref.scale or m.scale
        if scale != "auto":
            span = scale_span(scale)
            if q.numeric and span is not None and span != (q.low, q.high):
                self.problems.append(
                    f"{what}: the mapping says {scale} but question {q.question_id} is a "
                    f"{q.low}-{q.high} {q.kind} on the form now"
                )
            return scale
        if q.auto_scale:
            return q.auto_scale
        if q.kind in ("text", "paragraph"):
            return "points"  # a number typed on the measure's own 0-10 scale
        self.problems.append(
            f"{what}: the {q.kind} question {q.question_id} has no numeric scale; give "
            'scale = "range:LOW:HIGH" or "points"'
        )
        return "points"

    def measure(self, m: MeasureMap) -> ResolvedMeasure:
        items: list[tuple[str, str]] = []
        for key, ref in zip(("q1", "q2", "q3", "q4"), m.items, strict=False):
            what = f"measures.{m.measure}.{key}"
            q = self.find(ref, what)
            if q is not None:
                items.append((q.question_id, self.item_scale(q, ref, m, what)))
        total = None
        if m.total is not None:
            q = self.find(m.total, f"measures.{m.measure}.total")
            total = q.question_id if q else None
        return ResolvedMeasure(m.measure, tuple(items), total)

    def optional(self, ref: QuestionRef | None, what: str) -> str | None:
        if ref is None:
            return None
        q = self.find(ref, what)
        return q.question_id if q else None


def scale_span(scale: str) -> tuple[int, int] | None:
    """The whole-number answers a scale expects (``range:1:5`` → (1, 5); ``points`` → (0, 10));
    None when it is not a span of whole numbers."""
    if scale in ("points", "cm"):
        return (0, 10)
    if scale in ("mm", "percent"):
        return (0, 100)
    parts = scale.split(":")
    if len(parts) == 3 and parts[0] == "range":
        try:
            low, high = float(parts[1]), float(parts[2])
        except ValueError:
            return None
        if low.is_integer() and high.is_integer():
            return (int(low), int(high))
    return None


def resolve(mapping: FormMap, form: FormInfo, source: str) -> ResolvedForm:
    """The mapping in questionIds, or a ConfigError listing every reference that failed."""
    r = _Resolver(form)
    measures = tuple(r.measure(m) for m in mapping.measures)
    client = r.optional(mapping.client_id, "client_id")
    clinician = r.optional(mapping.clinician, "clinician")
    age = r.optional(mapping.age, "age")
    if isinstance(mapping.administered_at, QuestionRef):
        time_source = r.optional(mapping.administered_at, "administered_at") or ""
        time_is_question = True
    else:
        time_source, time_is_question = mapping.administered_at, False
    ids = [qid for m in measures for qid, _ in m.items] + [m.total for m in measures if m.total]
    twice = sorted({qid for qid in ids if ids.count(qid) > 1})
    if twice:
        r.problems.append(f"questionId {twice[0]} is mapped to more than one item")
    if r.problems:
        listed = "; ".join(r.problems[:5]) + ("; …" if len(r.problems) > 5 else "")
        raise ConfigError(
            f"[sources.{source}] form {mapping.form_id}: {listed}",
            hint=f"run `fit google inspect {source}` to list the form's questions and ids",
        )
    return ResolvedForm(
        form_id=mapping.form_id,
        measures=measures,
        client_id=client or "",
        clinician=clinician,
        age=age,
        time_source=time_source,
        time_is_question=time_is_question,
        rater=mapping.rater,
    )
