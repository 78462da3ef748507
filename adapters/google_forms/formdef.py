"""A Google Form's questions, read from ``forms.get`` (``items[]``).

Answers are joined on ``questionId``, never on ``itemId``; each row of a grid is its own question.
Proto3 JSON leaves out fields that hold their default, so a linear scale starting at 0 may come
without ``low``: a missing ``low`` is 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Question:
    """One question of a form. ``low``/``high`` are set for integer scales."""

    question_id: str
    title: str
    kind: str  # scale, rating, text, paragraph, choice, checkbox, dropdown, date, time, grid-row...
    low: int | None = None
    high: int | None = None
    section: str = ""
    required: bool = False

    @property
    def numeric(self) -> bool:
        """True when answers are integers on a known scale (a linear scale, a rating, ...)."""
        return self.low is not None and self.high is not None and self.low < self.high

    @property
    def auto_scale(self) -> str | None:
        """``range:LOW:HIGH`` for an integer scale; None when the form says nothing."""
        return f"range:{self.low}:{self.high}" if self.numeric else None


@dataclass(frozen=True, slots=True)
class FormInfo:
    """What ``forms.get`` says about a form: its title and questions in form order."""

    form_id: str
    title: str
    questions: tuple[Question, ...]

    def by_id(self) -> dict[str, Question]:
        return {q.question_id: q for q in self.questions}


def parse_form(form_id: str, doc: Mapping[str, Any]) -> FormInfo:
    """The questions of a ``forms.get`` document (items that are not questions are skipped)."""
    info = doc.get("info") or {}
    title = str(info.get("title") or info.get("documentTitle") or "")
    return FormInfo(form_id, title, tuple(_questions(doc.get("items") or [])))


def _questions(items: list[Any]) -> Iterator[Question]:
    section = ""
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if "pageBreakItem" in item:
            section = str(item.get("title") or "")
            continue
        title = str(item.get("title") or "")
        if "questionItem" in item:
            question = (item.get("questionItem") or {}).get("question") or {}
            q = _question(question, title, section)
            if q is not None:
                yield q
        elif "questionGroupItem" in item:
            group = item.get("questionGroupItem") or {}
            low, high = _int_range(((group.get("grid") or {}).get("columns") or {}).get("options"))
            for row in group.get("questions") or []:
                qid = row.get("questionId")
                if not qid:
                    continue
                row_title = str((row.get("rowQuestion") or {}).get("title") or "")
                yield Question(
                    str(qid),
                    row_title or title,
                    "grid-row",
                    low,
                    high,
                    section,
                    bool(row.get("required")),
                )


def _question(q: Mapping[str, Any], title: str, section: str) -> Question | None:
    qid = q.get("questionId")
    if not qid:
        return None
    required = bool(q.get("required"))
    low: int | None = None
    high: int | None = None
    if "scaleQuestion" in q:
        sq = q.get("scaleQuestion") or {}
        kind = "scale"
        low, high = _int(sq.get("low", 0)), _int(sq.get("high"))
    elif "ratingQuestion" in q:
        kind = "rating"
        low, high = 1, _int((q.get("ratingQuestion") or {}).get("ratingScaleLevel"))
    elif "textQuestion" in q:
        kind = "paragraph" if (q.get("textQuestion") or {}).get("paragraph") else "text"
    elif "choiceQuestion" in q:
        cq = q.get("choiceQuestion") or {}
        kind = {"RADIO": "choice", "CHECKBOX": "checkbox", "DROP_DOWN": "dropdown"}.get(
            str(cq.get("type")), "choice"
        )
        low, high = _int_range(cq.get("options"))
    elif "dateQuestion" in q:
        kind = "datetime" if (q.get("dateQuestion") or {}).get("includeTime") else "date"
    elif "timeQuestion" in q:
        kind = "time"
    elif "fileUploadQuestion" in q:
        kind = "file"
    else:
        kind = "other"
    return Question(str(qid), title, kind, low, high, section, required)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _int_range(options: Any) -> tuple[int | None, int | None]:
    """(min, max) when every option of a choice or grid is a whole number, else (None, None)."""
    if not isinstance(options, list) or len(options) < 2:
        return None, None
    values = []
    for opt in options:
        text = str((opt or {}).get("value", "")).strip() if isinstance(opt, Mapping) else ""
        if not text.lstrip("-").isdigit():
            return None, None
        values.append(int(text))
    return min(values), max(values)
