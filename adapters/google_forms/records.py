"""Turn one Forms API response into fit-sync records (one per mapped measure).

Every answer arrives as a string (``textAnswers.answers[].value``) and an unanswered question is
absent: both an absent answer and an empty string are missing, never 0 (0 is a real score).
Values are passed to the core as strings; the core parses them and reports bad ones by field
name.

Scales: when a measure's items share one scale, the record carries it (``range:0:10`` for a 0-10
linear scale) and the core converts. When items use different scales, each answer is turned into
its position on its own scale (0 to 1) and the record says ``range:0:1``; for ``points``/``cm``
that position is value/10 and for ``mm``/``percent`` value/100 (ORS/SRS items run 0-10).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

from fit_core.models import Record, RecordError

from .mapping import ResolvedForm, ResolvedMeasure
from .timestamps import iso_utc, parse_rfc3339

log = logging.getLogger(__name__)

_RANGE = re.compile(r"^range:(-?\d+(?:\.\d+)?):(-?\d+(?:\.\d+)?)$")
_SPAN = {"points": 10.0, "cm": 10.0, "mm": 100.0, "percent": 100.0}
FRACTION_SCALE = "range:0:1"


def answer(answers: Mapping[str, Any], question_id: str | None) -> str | None:
    """The first text answer to ``question_id``, stripped; None when absent or empty."""
    if not question_id:
        return None
    entry = answers.get(question_id)
    if not isinstance(entry, Mapping):
        return None
    texts = (entry.get("textAnswers") or {}).get("answers") or []
    for text in texts:
        value = text.get("value") if isinstance(text, Mapping) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def source_key(response_id: str, measure: str, form: ResolvedForm) -> str:
    """The responseId, plus ``:<MEASURE>`` when the form holds several measures."""
    return f"{response_id}:{measure}" if form.several_measures else response_id


def response_records(
    response: Mapping[str, Any], form: ResolvedForm
) -> Iterator[Record | RecordError]:
    """The records of one response. With several measures in a form, a measure left wholly
    unanswered yields nothing (that part of the form was not filled in)."""
    rid = response.get("responseId")
    if not isinstance(rid, str) or not rid:
        log.warning("form %s: a response without a responseId was skipped", form.form_id)
        return
    answers = response.get("answers") or {}
    if not isinstance(answers, Mapping):
        answers = {}
    submitted = response.get("lastSubmittedTime")
    modified = parse_rfc3339(submitted)
    common = {
        "client_id": answer(answers, form.client_id),
        "clinician_id": answer(answers, form.clinician),
        "age": answer(answers, form.age),
        "administered_at": _administered_at(response, answers, form),
        "rater": form.rater,
    }
    location = f"form {form.form_id} response {rid}"
    extra = {"form_id": form.form_id, "response_id": rid}
    for m in form.measures:
        values = [answer(answers, qid) for qid, _scale in m.items]
        total = answer(answers, m.total)
        if form.several_measures and total is None and all(v is None for v in values):
            continue
        key = source_key(rid, m.measure, form)
        items, scale, bad = _items(values, m)
        if bad:
            yield RecordError(key, bad, location)
            continue
        data = {**common, "measure": m.measure, "total": total}
        data.update(zip(("q1", "q2", "q3", "q4"), items, strict=False))
        yield Record(key, data, scale, modified, location, extra)


def _administered_at(
    response: Mapping[str, Any], answers: Mapping[str, Any], form: ResolvedForm
) -> str | None:
    """The session date question's answer, or else the response's timestamp (by default
    ``createTime``, the first submission: an edit never moves a response to another date)."""
    name = form.time_source
    if form.time_is_question:
        given = answer(answers, form.time_source)
        if given is not None:
            return given
        name = "createTime"  # the date question was left empty: the first submission
    raw = response.get(name)
    moment = parse_rfc3339(raw)
    if moment is not None:
        return iso_utc(moment)
    return raw if isinstance(raw, str) else None


def _items(values: list[str | None], m: ResolvedMeasure) -> tuple[list[Any], str, dict[str, str]]:
    """(item values, record scale, errors): raw strings when the scale is shared."""
    shared = m.shared_scale
    if shared is not None or not m.items:
        return list(values), shared or "points", {}
    out: list[Any] = []
    bad: dict[str, str] = {}
    for key, value, (_qid, scale) in zip(("q1", "q2", "q3", "q4"), values, m.items, strict=False):
        if value is None:
            out.append(None)
            continue
        try:
            out.append(_fraction(float(value.replace(",", ".")), scale))
        except ValueError:
            bad[key] = "not a number"
            out.append(None)
    return out, FRACTION_SCALE, bad


def _fraction(value: float, scale: str) -> float:
    """Where ``value`` lies on ``scale``, from 0 (its low end) to 1 (its high end)."""
    m = _RANGE.match(scale)
    if m:
        low, high = float(m.group(1)), float(m.group(2))
        return (value - low) / (high - low)
    return value / _SPAN[scale]
