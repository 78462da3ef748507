"""Flat REDCap export rows → :class:`~fit_core.models.Record` (one per administration).

A flat export has one row per record × event × repeat instance. A row belongs to instrument
``I`` when its ``redcap_repeat_instrument`` is ``I`` (a repeating instrument) or empty (a
non-repeating row, or a row of a repeating event). Each (record, event, instrument, instance)
gives at most one Record per mapped instrument:

- untouched rows (answers, date and survey timestamp all empty, status ``""`` or ``0``: REDCap
  exports a form never started as ``0``) are skipped silently;
- rows whose ``<instrument>_complete`` is not an accepted status are skipped (counted);
- the date is the mapped date field, else the survey timestamp (``<instrument>_timestamp``,
  server-local time, given to the core with the server's UTC offset); ``"[not completed]"`` with
  no date field value is a RecordError, as is a row with no date at all;
- context (client id if not the record id, clinician, episode, rater, age, site) comes from the
  row itself, else from the first row of the same record that has it (e.g. a demographics form
  on the first event): batches hold whole records, so this join needs no extra request;
- the site is that ``fields.site`` field, or the record's Data Access Group
  (``redcap_data_access_group``, with ``site_from_dag``), or the source's fixed ``site``.

Source keys are ``<record>|<event>|<instrument>|<instance>`` with each part percent-encoded
(``|`` cannot appear inside a part): stable across runs and unique per administration.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from fit_core.errors import ConfigError
from fit_core.models import Record, RecordError

from .options import InstrumentMap

NOT_COMPLETED = "[not completed]"
REPEAT_INSTRUMENT = "redcap_repeat_instrument"
REPEAT_INSTANCE = "redcap_repeat_instance"
EVENT = "redcap_event_name"
DAG = "redcap_data_access_group"


def text(value: Any) -> str:
    """A cell as stripped text: None → ``""``; integers stay integers in text form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def repeat_instance(value: Any) -> int | None:
    """REDCap's instance: the integer 1, the string ``"1"``, or ``""`` (not repeating).

    Raises ValueError for anything else.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("not an instance number")
    if isinstance(value, int):
        number = value
    else:
        s = str(value).strip()
        if not s:
            return None
        if not s.isdigit():
            raise ValueError("not an instance number")
        number = int(s)
    if number < 1:
        raise ValueError("not an instance number")
    return number


def source_key(record: str, event: str, instrument: str, instance: int | None) -> str:
    """``record|event|instrument|instance`` with every part percent-encoded."""
    parts = (record, event, instrument, "" if instance is None else str(instance))
    return "|".join(quote(p, safe="") for p in parts)


class RowMapper:
    """Turns batches of export rows into Records for the mapped instruments.

    ``skipped`` counts rows left out, by reason (``"status"``), for the log.
    """

    def __init__(
        self,
        *,
        id_field: str,
        instruments: Sequence[InstrumentMap],
        statuses: frozenset[str],
        server_tz: dt.tzinfo,
        context_fields: Mapping[str, str],
        site: str | None = None,
        site_from_dag: bool = False,
        source: str = "",
    ) -> None:
        self.id_field = id_field
        self.site = site
        self.site_from_dag = site_from_dag
        self.source = source
        self.instruments = tuple(instruments)
        self.statuses = statuses
        self.server_tz = server_tz
        self.client_field = context_fields.get("client_id", id_field)
        self.context = {k: v for k, v in context_fields.items() if k != "client_id"}
        self.skipped: Counter[str] = Counter()

    def export_fields(self) -> list[str]:
        """The fields a batch export asks for: the id, context fields, then each instrument's."""
        names = [self.id_field, self.client_field, *self.context.values()]
        for inst in self.instruments:
            names.extend(inst.own_fields)
        return list(dict.fromkeys(names))

    def records(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[Record | RecordError]:
        """Records of whole records' rows (rows of one record may come in any order)."""
        by_record: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            by_record.setdefault(text(row.get(self.id_field)), []).append(row)
        for record_id, record_rows in by_record.items():
            if not record_id:
                continue
            shared = self._shared(record_rows)
            for row in record_rows:
                for inst in self.instruments:
                    item = self._one(record_id, row, inst, shared)
                    if item is not None:
                        yield item

    # --- one row, one instrument -------------------------------------------------------------

    def _shared(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        """Per context field: the first non-empty value among a record's rows."""
        out: dict[str, str] = {}
        wanted = {"client_id": self.client_field, **self.context}
        for row in rows:
            for key, name in wanted.items():
                if key not in out:
                    value = text(row.get(name))
                    if value:
                        out[key] = value
            if len(out) == len(wanted):
                break
        return out

    def _one(
        self,
        record_id: str,
        row: Mapping[str, Any],
        inst: InstrumentMap,
        shared: Mapping[str, str],
    ) -> Record | RecordError | None:
        repeat_of = text(row.get(REPEAT_INSTRUMENT))
        if repeat_of and repeat_of != inst.instrument:
            return None
        event = text(row.get(EVENT))
        raw_instance = row.get(REPEAT_INSTANCE)
        try:
            instance = repeat_instance(raw_instance)
        except ValueError:
            key = source_key(record_id, event, inst.instrument, None) + "|?"
            return RecordError(
                key,
                {REPEAT_INSTANCE: "not an instance number"},
                self._where(record_id, event, inst, None),
            )
        answers = [text(row.get(name)) for name in inst.answer_fields]
        status = text(row.get(inst.complete_field))
        stamp = text(row.get(inst.timestamp_field))
        date_value = text(row.get(inst.date)) if inst.date else ""
        if not any(answers) and not stamp and not date_value and status in ("", "0"):
            return None  # a form nobody started
        if status not in self.statuses:
            self.skipped["status"] += 1
            return None
        key = source_key(record_id, event, inst.instrument, instance)
        where = self._where(record_id, event, inst, instance)
        when = date_value or self._timestamp(stamp)
        if not when:
            reason = (
                "the survey was not completed ([not completed]) and the date field is empty"
                if stamp == NOT_COMPLETED
                else "missing: no date field value and no survey timestamp (map a date field "
                "if the instrument is not a survey)"
            )
            return RecordError(key, {"administered_at": reason}, where)
        data: dict[str, Any] = {
            "client_id": record_id
            if self.client_field == self.id_field
            else text(row.get(self.client_field)) or shared.get("client_id", ""),
            "administered_at": when,
            "measure": inst.measure,
        }
        if inst.items:
            for fit_name, value in zip(("q1", "q2", "q3", "q4"), answers, strict=False):
                data[fit_name] = value
        if inst.total:
            data["total"] = answers[-1]
        for key_name, field_name in self.context.items():
            data[key_name] = text(row.get(field_name)) or shared.get(key_name, "")
        if self.site_from_dag:
            if DAG not in row:
                raise ConfigError(
                    f"source {self.source}: REDCap does not export the Data Access Group to "
                    "this token (its user is in a group, and sees only that group)",
                    hint='give each group\'s source its own site = "<name>" instead of '
                    "site_from_dag = true (see docs/redcap.md, multi-site projects)",
                )
            data["site"] = text(row.get(DAG))
        elif self.site:
            data["site"] = self.site
        if inst.rater:
            data["rater"] = inst.rater
        extra = {
            "record": record_id,
            EVENT: event,
            REPEAT_INSTRUMENT: repeat_of,
            REPEAT_INSTANCE: instance if instance is not None else "",
            "instrument": inst.instrument,
        }
        return Record(key, data, scale=inst.scale, location=where, extra=extra)

    def _timestamp(self, stamp: str) -> str:
        """A survey timestamp (server-local) as ISO 8601 with its UTC offset; ``""`` if none."""
        if not stamp or stamp == NOT_COMPLETED:
            return ""
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
            try:
                moment = dt.datetime.strptime(stamp, fmt)
            except ValueError:
                continue
            return moment.replace(tzinfo=self.server_tz).isoformat()
        return stamp  # let the core's validation name it

    @staticmethod
    def _where(record_id: str, event: str, inst: InstrumentMap, instance: int | None) -> str:
        parts = [f"record {record_id}"]
        if event:
            parts.append(f"event {event}")
        parts.append(inst.instrument + (f" #{instance}" if instance is not None else ""))
        return ", ".join(parts)
