"""The bookmark: a high-water mark per form, and the responses already read at its edge.

A pull lists ``timestamp >= since``, where ``since`` is the core's time bookmark
(:func:`fit_core.adapter.time_bookmark`: the newest ``lastSubmittedTime`` seen, or the run start
if earlier, minus the overlap), rounded down to a whole second. Responses inside the overlap are
listed again on the next run; the bookmark keeps their (responseId, lastSubmittedTime) pairs so
they are skipped, while an edited response (same id, newer time) is read again and replaces the
old administration. The set only holds responses at or after ``since``, so it stays small.

Each form's mark carries the fingerprint of its resolved mapping: a changed mapping reads that
form from the start again. The text is JSON; anything unreadable means "read everything" (the
core dedupes what it already has by content hash)::

    {"v": 1, "forms": {"<formId>": {"since": "2026-01-05T14:25:00+00:00",
                                    "seen": {"<responseId>": "<lastSubmittedTime>"},
                                    "mapping": "<fingerprint>"}}}
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from fit_core.adapter import time_bookmark

from .timestamps import floor_second, parse_rfc3339

log = logging.getLogger(__name__)
VERSION = 1


@dataclass(frozen=True)
class FormMark:
    """Where the next pull of one form starts, and what it has already read there."""

    since: dt.datetime
    seen: Mapping[str, str]
    mapping: str

    def to_json(self) -> dict[str, object]:
        return {
            "since": self.since.isoformat(),
            "seen": dict(sorted(self.seen.items())),
            "mapping": self.mapping,
        }


def load_bookmark(text: str | None) -> dict[str, FormMark]:
    """The marks of a bookmark; ``{}`` for None or anything unreadable (read everything)."""
    if not text:
        return {}
    try:
        doc = json.loads(text)
        forms = doc["forms"] if doc.get("v") == VERSION else None
        if not isinstance(forms, dict):
            raise ValueError("no forms")
        out = {}
        for form_id, mark in forms.items():
            since = dt.datetime.fromisoformat(mark["since"])
            seen = {str(k): str(v) for k, v in dict(mark.get("seen") or {}).items()}
            out[str(form_id)] = FormMark(since, seen, str(mark.get("mapping", "")))
        return out
    except (ValueError, TypeError, KeyError, AttributeError):
        log.info("google_forms bookmark unreadable; reading every response again")
        return {}


def dump_bookmark(marks: Mapping[str, FormMark]) -> str | None:
    """The bookmark text, or None when no form has a mark yet."""
    if not marks:
        return None
    forms = {k: marks[k].to_json() for k in sorted(marks)}
    return json.dumps({"v": VERSION, "forms": forms}, sort_keys=True, separators=(",", ":"))


@dataclass
class FormTracker:
    """Follows one form's pull: the newest time seen and the responses near it.

    Only responses that can still fall inside the next ``since`` are kept (pruned as the newest
    time grows), so memory stays small however many responses a pull lists.
    """

    previous: FormMark | None
    mapping: str
    run_started: dt.datetime
    overlap: dt.timedelta
    newest: dt.datetime | None = None
    listed: int = 0
    skipped: int = 0
    _near: dict[str, tuple[str, dt.datetime]] = field(default_factory=dict)
    _prune_at: int = 1024

    def already_read(self, response_id: str, submitted: str | None) -> bool:
        """True when the previous run read this exact (responseId, lastSubmittedTime)."""
        return (
            self.previous is not None
            and submitted is not None
            and self.previous.seen.get(response_id) == submitted
        )

    def saw(self, response_id: str, submitted: str | None) -> None:
        """Note a listed response (read or skipped)."""
        self.listed += 1
        moment = parse_rfc3339(submitted)
        if moment is None or submitted is None:
            return
        if self.newest is None or moment > self.newest:
            self.newest = moment
        self._near[response_id] = (submitted, moment)
        if len(self._near) >= self._prune_at:
            self._prune()
            self._prune_at = max(1024, 2 * len(self._near))

    def _since(self) -> dt.datetime | None:
        text = time_bookmark(self.newest, self.run_started, self.overlap)
        if text is None:
            return None
        since = floor_second(dt.datetime.fromisoformat(text))
        if self.previous is not None and self.previous.since > since:
            return self.previous.since  # never move back (e.g. the newest response was deleted)
        return since

    def _prune(self) -> None:
        since = self._since()
        if since is not None:
            self._near = {k: v for k, v in self._near.items() if v[1] >= since}

    def mark(self) -> FormMark | None:
        """The form's next mark; the previous one when nothing was listed."""
        since = self._since()
        if since is None:
            return self.previous
        seen = {k: text for k, (text, moment) in self._near.items() if moment >= since}
        return FormMark(since, seen, self.mapping)
