"""Scores → import rows of the scoring instrument, keyed like the administration they score.

For an administration read from record ``r``, event ``E``, instrument ``I``, instance ``n``:

- ``I`` a repeating instrument on ``E``: the row is ``{id: r, redcap_event_name: E,
  redcap_repeat_instrument: <scoring instrument>, redcap_repeat_instance: n}``: the scoring
  instrument must repeat on ``E`` too, and its instance ``n`` holds the scores of ``I``'s
  instance ``n`` (each mapped instrument writes its own fields, so ORS #3 and SRS #3 share a row);
- ``E`` a repeating event: ``redcap_repeat_instrument: "", redcap_repeat_instance: n``;
- otherwise no repeat keys at all.

Values are text as REDCap imports them. ``overwriteBehavior=normal`` never erases a value with a
blank, so "nothing" is written as ``none`` (status without a trajectory model, no open flags).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fit_core.errors import ConfigError
from fit_core.models import OutboxItem

from .discovery import Placement
from .options import InstrumentMap
from .rows import EVENT, REPEAT_INSTANCE, REPEAT_INSTRUMENT

MESSAGE_LIMIT = 500
NONE = "none"


def score_values(payload: Mapping[str, Any], score_fields: Mapping[str, str]) -> dict[str, str]:
    """The scoring instrument's field → text value for one administration's payload."""
    out: dict[str, str] = {}
    for key, name in score_fields.items():
        if key == "total":
            out[name] = _number(payload.get("total"))
        elif key == "session":
            session = payload.get("session")
            out[name] = "" if session is None else str(int(session))
        elif key == "status":
            out[name] = str(payload.get("status") or NONE)
        elif key == "flags":
            flags = payload.get("flags") or []
            out[name] = ", ".join(str(f) for f in flags) or NONE
        elif key == "message":
            message = str(payload.get("flag_message") or "").strip() or NONE
            if len(message) > MESSAGE_LIMIT:
                message = message[: MESSAGE_LIMIT - 3].rstrip() + "..."
            out[name] = message
        elif key == "change":
            out[name] = _number(payload.get("change_from_intake"))
        elif key == "rc_class":
            out[name] = str(payload.get("rc_class") or "")
    return out


def _number(value: Any) -> str:
    if value is None or value == "":
        return ""
    return f"{float(value):.1f}"


class ImportBuilder:
    """Builds import rows for one project (its id field and placement)."""

    def __init__(
        self,
        *,
        id_field: str,
        scores_instrument: str,
        instruments: Sequence[InstrumentMap],
        placement: Placement,
    ) -> None:
        self.id_field = id_field
        self.scores = scores_instrument
        self.instruments = {i.instrument: i for i in instruments}
        self.placement = placement

    def build(self, items: Sequence[OutboxItem]) -> tuple[list[dict[str, Any]], list[list[str]]]:
        """Rows (merged per record/event/instance) and the source keys each row carries.

        Raises ConfigError when the scoring instrument is not set up like the instrument being
        scored (not designated on the event, or repeating differently); items of instruments
        that are no longer mapped are left out (not confirmed).
        """
        merged: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        keys: dict[tuple[str, str, str, str], list[str]] = {}
        problems: list[str] = []
        for item in items:
            extra = item.extra
            inst = self.instruments.get(str(extra.get("instrument", "")))
            if inst is None:
                continue
            record = str(extra.get("record", ""))
            event = str(extra.get(EVENT) or "")
            repeat_of = str(extra.get(REPEAT_INSTRUMENT) or "")
            instance = str(extra.get(REPEAT_INSTANCE) or "")
            problem = self._placement_problem(inst, event, repeat_of, instance)
            if problem:
                problems.append(problem)
                continue
            if repeat_of:
                ident = (record, event, self.scores, instance)
            elif instance:
                ident = (record, event, "", instance)
            else:
                ident = (record, event, "", "")
            row = merged.get(ident)
            if row is None:
                row = merged[ident] = {self.id_field: record}
                if event:
                    row[EVENT] = event
                if ident[3]:
                    row[REPEAT_INSTRUMENT] = ident[2]
                    row[REPEAT_INSTANCE] = int(instance)
                keys[ident] = []
            row.update(score_values(item.payload, inst.score_fields))
            keys[ident].append(item.source_key)
        if problems:
            unique = list(dict.fromkeys(problems))
            raise ConfigError(
                f"the scoring instrument {self.scores!r} is not set up like the instruments it "
                f"scores: {'; '.join(unique[:3])}"
                + (f" (and {len(unique) - 3} more)" if len(unique) > 3 else ""),
                hint="in REDCap's Project Setup, designate it on the same events and make it "
                "repeat where they repeat; see docs/redcap.md",
            )
        return list(merged.values()), [keys[i] for i in merged]

    def _placement_problem(
        self, inst: InstrumentMap, event: str, repeat_of: str, instance: str
    ) -> str | None:
        p = self.placement
        on = f" on event {event}" if event else ""
        if not p.designated(event, self.scores):
            return f"it is not designated on event {event} (where {inst.instrument} is)"
        scores_repeat = p.repeats(event, self.scores)
        if repeat_of:
            if not scores_repeat:
                return f"{inst.instrument} is a repeating instrument{on} but {self.scores} is not"
        elif instance:
            if scores_repeat:
                return f"{self.scores} repeats on its own{on}, inside a repeating event"
        elif scores_repeat:
            return f"{self.scores} is a repeating instrument{on} but {inst.instrument} is not"
        return None
