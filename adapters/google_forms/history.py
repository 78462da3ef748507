"""The mapping in force for each form, over time, and how the form compares with it.

A form can change after responses exist: a scale edited from 0-10 to 1-10, a question deleted and
another added. ``forms.get`` returns only the form as it is now, while every answer keeps the
value it was given on the form as it was then. So the adapter keeps, per form, a history of
*epochs* in the source's state (see :mod:`fit_core.state`; one JSON value per form, written in
one transaction, so a killed run keeps the old or the new history, never half of one):

- an epoch is a mapping in questionIds with each item's scale (a :class:`ResolvedForm`), what the
  form said about each mapped question when it was put in force (type, low, high), and the
  moment after which it applies: answers last submitted after it are read with it, earlier ones
  with the epoch before (the first epoch applies from the start);
- ``newest_read`` is the newest ``lastSubmittedTime`` read while the last epoch was in force:
  the default start of the next epoch (every answer up to it was given on the old form).

The first sync of a form puts the mapping of the config in force (epoch 0). Every later run
compares each mapped question with the form (:func:`review`):

- a question that is gone stops that form only (its responses cannot be read as mapped);
- a question whose type, low or high changed, or a config that maps the form differently from
  the epoch in force, stops the whole source with a ConfigError (exit 3) before anything is
  written. ``fit google remap`` shows the difference and, when told, starts a new epoch.

Stored as ``form:<formId>`` →
``{"v": 1, "epochs": [{"after": null | "<RFC 3339>", "accepted_at": "…", "mapping": {…},
"questions": {"<questionId>": ["scale", 0, 10]}}], "newest_read": null | "…", "reread": 0}``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fit_core.errors import ConfigError
from fit_core.state import SourceState

from .formdef import FormInfo, Question
from .mapping import ResolvedForm, form_from_json, resolve
from .options import FormMap, fingerprint

log = logging.getLogger(__name__)
VERSION = 1


@dataclass(frozen=True, slots=True)
class Spec:
    """What a form says about one question: its type and, for whole-number scales, low/high."""

    kind: str
    low: int | None = None
    high: int | None = None

    @classmethod
    def of(cls, q: Question) -> Spec:
        return cls(q.kind, q.low, q.high)

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"a {self.low}-{self.high} {self.kind}"
        return f"a {self.kind} question"


@dataclass(frozen=True, slots=True)
class Epoch:
    """A mapping in force for the answers last submitted after ``after`` (None: from the start)."""

    after: dt.datetime | None
    mapping: ResolvedForm
    questions: Mapping[str, Spec]
    accepted_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "after": self.after.isoformat() if self.after else None,
            "accepted_at": self.accepted_at,
            "mapping": self.mapping.to_json(),
            "questions": {
                qid: [s.kind, s.low, s.high] for qid, s in sorted(self.questions.items())
            },
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Epoch:
        after = doc.get("after")
        return cls(
            after=dt.datetime.fromisoformat(after) if after else None,
            mapping=form_from_json(doc["mapping"]),
            questions={str(q): Spec(str(v[0]), v[1], v[2]) for q, v in doc["questions"].items()},
            accepted_at=str(doc.get("accepted_at") or ""),
        )

    def since_text(self) -> str:
        return "the start" if self.after is None else _text(self.after)


@dataclass
class FormHistory:
    """The epochs of one form, oldest first, and the newest answer read under the last one."""

    form_id: str
    epochs: list[Epoch] = field(default_factory=list)
    newest_read: dt.datetime | None = None
    #: bumped when a remap must read answers already read again (see :attr:`fingerprint`)
    reread: int = 0

    @property
    def latest(self) -> Epoch:
        return self.epochs[-1]

    def epoch_for(self, submitted: dt.datetime | None) -> Epoch:
        """The epoch whose mapping reads an answer last submitted at ``submitted``."""
        if submitted is not None:
            for epoch in reversed(self.epochs):
                if epoch.after is None or submitted > epoch.after:
                    return epoch
        return self.latest

    @property
    def fingerprint(self) -> str:
        """What the form's bookmark is kept for: a new value makes the next pull read every
        response again. A new epoch after the newest answer read needs no re-read (no answer
        read so far changes), so only the first epoch and :attr:`reread` count."""
        first = self.epochs[0].mapping.fingerprint
        return first if not self.reread else fingerprint([first, self.reread])

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": VERSION,
                "epochs": [e.to_json() for e in self.epochs],
                "newest_read": self.newest_read.isoformat() if self.newest_read else None,
                "reread": self.reread,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, form_id: str, text: str) -> FormHistory:
        doc = json.loads(text)
        if doc.get("v") != VERSION or not doc.get("epochs"):
            raise ValueError("unknown version")
        newest = doc.get("newest_read")
        return cls(
            form_id,
            [Epoch.from_json(e) for e in doc["epochs"]],
            dt.datetime.fromisoformat(newest) if newest else None,
            int(doc.get("reread") or 0),
        )

    def with_epoch(self, epoch: Epoch) -> FormHistory:
        """A copy where ``epoch`` applies from its ``after`` on (later epochs are replaced);
        when that reaches back over answers already read, they are read again."""
        if epoch.after is None:
            kept: list[Epoch] = []
        else:
            kept = [e for e in self.epochs if e.after is None or e.after < epoch.after]
        again = self.rereads_for(epoch.after)
        return replace(self, epochs=[*kept, epoch], reread=self.reread + (1 if again else 0))

    def rereads_for(self, after: dt.datetime | None) -> bool:
        """Would an epoch starting after ``after`` cover answers already read?"""
        if self.newest_read is None:
            return False
        return after is None or after < self.newest_read


class Histories:
    """The form histories of one source, in its state."""

    def __init__(self, state: SourceState, source: str) -> None:
        self.state = state
        self.source = source

    @staticmethod
    def key(form_id: str) -> str:
        return f"form:{form_id}"

    def load(self, form_id: str) -> FormHistory | None:
        text = self.state.get(self.key(form_id))
        if text is None:
            return None
        try:
            return FormHistory.from_json(form_id, text)
        except (ValueError, KeyError, TypeError, IndexError):
            raise ConfigError(
                f"source {self.source!r}: the stored mapping history of form {form_id} is "
                "unreadable",
                hint=f"run `fit google remap {self.source} --form {form_id} --from-start` to "
                "put the config's mapping in force for every response",
            ) from None

    def save(self, history: FormHistory) -> None:
        self.state.set(self.key(history.form_id), history.to_json())


# --- comparing the form and the config with the epoch in force --------------------------------


@dataclass
class Review:
    """How one form compares with its history (see :func:`review`)."""

    form_id: str
    history: FormHistory | None
    current: ResolvedForm | None  # the config's mapping on the form as it is; None if unusable
    specs: dict[str, Spec] = field(default_factory=dict)  # the form's word on current's questions
    gone: list[str] = field(default_factory=list)  # mapped questions no longer on the form
    changed: list[str] = field(default_factory=list)  # mapped questions the form changed
    remapped: list[str] = field(default_factory=list)  # the config vs the mapping in force

    @property
    def stopped(self) -> bool:
        """A mapped question is gone: this form cannot be read until it is remapped."""
        return bool(self.gone)

    @property
    def differs(self) -> bool:
        """The form or the config changed under the mapping in force (needs a remap)."""
        return bool(self.changed or self.remapped)

    def first_epoch(self, accepted_at: str) -> FormHistory:
        """The history a form starts with: the config's mapping, from the start."""
        assert self.current is not None
        epoch = Epoch(None, self.current, dict(self.specs), accepted_at)
        return FormHistory(self.form_id, [epoch])


def specs_of(mapping: ResolvedForm, form: FormInfo) -> dict[str, Spec]:
    """The form's type/low/high of each question ``mapping`` uses (those still on the form)."""
    ids = form.by_id()
    return {qid: Spec.of(ids[qid]) for _label, qid, _s in mapping.questions() if qid in ids}


def review(mapping: FormMap, form: FormInfo, history: FormHistory | None, source: str) -> Review:
    """Compare ``form`` (as ``forms.get`` has it now) and the config's ``mapping`` with the
    mapping in force. Without a history, a mapping that does not resolve is a ConfigError."""
    out = Review(form.form_id, history, None)
    ids = form.by_id()
    if history is not None:
        latest = history.latest
        for label, qid, _scale in latest.mapping.questions():
            old = latest.questions.get(qid)
            now = ids.get(qid)
            if now is None:
                out.gone.append(f"{label} (question {qid})")
            elif old is not None and Spec.of(now) != old:
                out.changed.append(
                    f"{label} (question {qid}) was {old.describe()}, "
                    f"is now {Spec.of(now).describe()}"
                )
    try:
        out.current = resolve(mapping, form, source)
    except ConfigError:
        if not out.gone and not out.changed:
            raise
        return out  # the config still names what changed or went: the review says so
    out.specs = specs_of(out.current, form)
    if history is not None:
        out.remapped = mapping_changes(history.latest.mapping, out.current)
    return out


def mapping_changes(old: ResolvedForm, new: ResolvedForm) -> list[str]:
    """What reads differently under ``new`` than under ``old``, by config key."""
    before = {k: (q, sc) for k, q, sc in old.questions() if k != "administered_at"}
    after = {k: (q, sc) for k, q, sc in new.questions() if k != "administered_at"}
    out = []
    for label in [*before, *(k for k in after if k not in before)]:
        a, b = before.get(label), after.get(label)
        if a == b:
            continue
        if a is None:
            out.append(f"{label}: added (question {after[label][0]})")
        elif b is None:
            out.append(f"{label}: no longer mapped (was question {a[0]})")
        elif a[0] != b[0]:
            out.append(f"{label}: question {a[0]} → question {b[0]}")
        else:
            out.append(f"{label}: scale {a[1]} → {b[1]}")
    when_old, when_new = _time_text(old), _time_text(new)
    if when_old != when_new:
        out.append(f"administered_at: {when_old} → {when_new}")
    if old.rater != new.rater:
        out.append(f"rater: {old.rater} → {new.rater}")
    return out


def _time_text(form: ResolvedForm) -> str:
    return f"question {form.time_source}" if form.time_is_question else form.time_source


def describe_changes(changes: Sequence[str], limit: int = 6) -> str:
    shown = "; ".join(changes[:limit])
    return shown + (f"; and {len(changes) - limit} more" if len(changes) > limit else "")


def _text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
