"""A loopback fake of the REDCap API, as REDCap's API documentation has it (docs/integrations.md).

:class:`RedcapFake` runs a ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) in a thread; the
:func:`redcap_fake` fixture starts fakes and stops them after the test. What it reproduces:

- one endpoint, ``POST /api/``; other methods 501; other paths a 404 **HTML page**;
- form-encoded bodies parsed with **PHP semantics**: ``fields[0]=a&fields[1]=b`` is an array,
  ``fields=a,b`` is split on commas, and a repeated plain key keeps only the **last** value
  (``fields=a&fields=b`` asks for ``b`` only);
- ``returnFormat`` json or xml (xml is the default, and errors follow it); ``format`` json, csv
  or xml for exports;
- a bad token gets **403**; errors are ``{"error": "..."}``, 400s join their messages with ``\\n``;
- every hit counts toward a site-wide threshold (default 600 a minute); past it the client is
  **banned permanently**: every request gets 429 with a plain-text body;
- optional memory limits counted the way the server runs out: an export of more **rows** than
  ``row_limit`` or more **cells** (rows x columns) than ``memory_limit`` gets 500 "REDCap ran out
  of server memory..." (so an export of the record ids alone can run out too); the data
  dictionary counts its rows (fields) against ``row_limit``; an import of more cells than
  ``import_memory_limit`` runs out as well;
- ``filterLogic`` (a subset of REDCap's logic, see :mod:`.redcap_logic`), evaluated per row;
- Data Access Groups: ``content=dag``; ``exportDataAccessGroups=true`` adds
  ``redcap_data_access_group`` (not for a user in a group); a token of a user in a group
  (``dag_tokens``) sees and writes only that group's records: importing into another group's
  record fails (400), a new record joins the user's group;
- ``content=instrument`` (the instruments, in order) and ``metadata`` by ``forms``/``fields``;
- an optional redirect (302 to another location) for every POST;
- longitudinal projects (events, instrument designations), repeating instruments and repeating
  events, with ``redcap_repeat_instance`` as the integer 1.. (or the string, optionally) and
  ``""`` on non-repeating rows; forms never started export status ``"0"``;
- survey fields (``exportSurveyFields=true``): ``redcap_survey_identifier`` and
  ``<form>_timestamp``, which may be ``"[not completed]"``;
- a modification time per record (server-local, whole seconds) so ``dateRangeBegin`` /
  ``dateRangeEnd`` work; an import changes it only when a value really changed;
- import with ``overwriteBehavior=normal`` (blank never erases) or ``overwrite``,
  ``returnContent=ids|count``, validation errors as ``"record","field","value","message"`` lines,
  and 403 when the project is in Analysis/Cleanup status;
- deleting: ``content=record&action=delete&records[0]=..`` (optionally ``instrument`` with
  ``event`` and ``repeat_instance``: only that form's data on that row) answers with the count;
  a deleted record vanishes from every export (date-range exports included); unknown ids are a
  400 and nothing is deleted; without the Delete right (``rights``) a 403;
- Export Logging (``content=log``, ``logtype``, ``beginTime``/``endTime`` as server-local
  ``YYYY-MM-DD HH:MM``, ``record``): rows ``timestamp, username, action, details, record``, newest
  first; a record deletion is a ``Delete record <id>`` action (``logtype=record_delete``), other
  changes ``Update record <id>`` / ``Create record <id>`` (a record renamed in the web
  interface too, under its new name: :meth:`RedcapFake.rename_record`); without the Logging right
  an error (403), never an empty list. :meth:`RedcapFake.delete_record` deletes as a person would
  in the web interface (logged the same way);
- a request log (:attr:`RedcapFake.hits`, monotonic times, no token) so tests can assert request
  counts and spacing.

Synthetic data only: :func:`clinic_project` builds a longitudinal clinic with ORS/SRS surveys.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import ipaddress
import json
import random
import re
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import pytest

from .redcap_logic import LogicError, compile_logic

TOKEN = "0123456789ABCDEF0123456789ABCDEF"
OOM_TEXT = (
    "REDCap ran out of server memory. The request cannot be processed. Please try importing/"
    "exporting a smaller amount of data."
)
BAN_TEXT = (
    "You have been banned from this REDCap server because of too many requests in a short time. "
    "Please contact your REDCap administrator."
)
NOT_COMPLETED = "[not completed]"
NOT_FOUND_PAGE = (
    "<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1>"
    "<p>The requested URL was not found on this server.</p></body></html>"
)
RowKey = tuple[str, str, int | None]  # (event or "", repeat instrument or "", instance or None)
NUMERIC = ("number", "number_1dp", "number_2dp", "integer", "float")


# --- the project ---------------------------------------------------------------------------------


@dataclass
class FakeField:
    """One data-dictionary row."""

    name: str
    form: str
    field_type: str = "text"
    label: str = ""
    choices: str = ""
    validation: str = ""
    vmin: str = ""
    vmax: str = ""

    def metadata(self) -> dict[str, str]:
        return {
            "field_name": self.name,
            "form_name": self.form,
            "section_header": "",
            "field_type": self.field_type,
            "field_label": self.label or self.name,
            "select_choices_or_calculations": self.choices,
            "field_note": "",
            "text_validation_type_or_show_slider_number": self.validation,
            "text_validation_min": self.vmin,
            "text_validation_max": self.vmax,
            "identifier": "",
            "branching_logic": "",
            "required_field": "",
            "custom_alignment": "",
            "question_number": "",
            "matrix_group_name": "",
            "matrix_ranking": "",
            "field_annotation": "",
        }

    def codes(self) -> set[str]:
        return {c.split(",", 1)[0].strip() for c in self.choices.split("|") if c.strip()}


@dataclass
class FakeProject:
    """A REDCap project: dictionary, events, repeats, surveys and data.

    ``data[record][(event, repeat_instrument, instance)]`` holds the stored values (strings),
    including ``<form>_complete`` and ``<form>_timestamp``; ``modified[record]`` is server-local.
    """

    fields: list[FakeField]
    events: list[str] = field(default_factory=list)  # unique event names; empty: classic
    form_events: dict[str, list[str]] = field(default_factory=dict)
    repeating_forms: set[tuple[str, str]] = field(default_factory=set)  # (event or "", form)
    repeating_events: set[str] = field(default_factory=set)
    surveys: set[str] = field(default_factory=set)
    project_id: int = 4242
    title: str = "Synthetic FIT clinic"
    cleanup_status: bool = False
    data: dict[str, dict[RowKey, dict[str, str]]] = field(default_factory=dict)
    modified: dict[str, dt.datetime] = field(default_factory=dict)
    dags: dict[str, str] = field(default_factory=dict)  # unique group name -> label
    record_dag: dict[str, str] = field(default_factory=dict)  # record -> unique group name

    @property
    def id_field(self) -> str:
        return self.fields[0].name

    @property
    def longitudinal(self) -> bool:
        return bool(self.events)

    @property
    def has_repeats(self) -> bool:
        return bool(self.repeating_forms or self.repeating_events)

    @property
    def forms(self) -> list[str]:
        return list(dict.fromkeys(f.form for f in self.fields))

    def field(self, name: str) -> FakeField | None:
        cache = self.__dict__.get("_by_name")
        if cache is None or cache[0] != len(self.fields):  # fields may be added by a test
            cache = (len(self.fields), {f.name: f for f in self.fields})
            self.__dict__["_by_name"] = cache
        return cache[1].get(name)

    def form_of(self, name: str) -> str | None:
        f = self.field(name)
        if f is not None:
            return f.form
        if name.endswith("_complete") and name[: -len("_complete")] in self.forms:
            return name[: -len("_complete")]
        return None

    def designated(self, event: str, form: str) -> bool:
        return not self.longitudinal or form in self.form_events.get(event, [])

    def repeats(self, event: str, form: str) -> bool:
        return (event if self.longitudinal else "", form) in self.repeating_forms

    def put(
        self,
        record: str,
        values: Mapping[str, Any],
        *,
        event: str = "",
        repeat_instrument: str = "",
        instance: int | None = None,
        modified: dt.datetime | None = None,
    ) -> None:
        """Store values on one row (seeding: no validation); sets the record's modified time."""
        row = self.data.setdefault(record, {}).setdefault((event, repeat_instrument, instance), {})
        row[self.id_field] = record
        row.update({k: str(v) for k, v in values.items()})
        if modified is not None:
            self.modified[record] = modified.replace(microsecond=0)

    def value(
        self,
        record: str,
        name: str,
        *,
        event: str = "",
        repeat_instrument: str = "",
        instance: int | None = None,
    ) -> str:
        return self.data.get(record, {}).get((event, repeat_instrument, instance), {}).get(name, "")

    def form_rows(self, form: str) -> dict[tuple[str, RowKey], dict[str, str]]:
        """Every stored row holding a value of ``form``'s fields: (record, key) -> values."""
        names = {f.name for f in self.fields if f.form == form}
        out: dict[tuple[str, RowKey], dict[str, str]] = {}
        for record, rows in self.data.items():
            for key, row in rows.items():
                vals = {k: v for k, v in row.items() if k in names and v != ""}
                if vals:
                    out[(record, key)] = vals
        return out


# --- PHP-style form parsing ------------------------------------------------------------------

_ARRAY_KEY = re.compile(r"^([^\[\]]+)\[([^\[\]]*)\]$")


def php_parse(body: str, pairs: Sequence[tuple[str, str]] | None = None) -> dict[str, Any]:
    """Parse a form body as PHP fills ``$_POST``: ``a[0]=x`` arrays; a repeated key: last wins.
    ``pairs``: the body already split by ``parse_qsl``."""
    out: dict[str, Any] = {}
    for key, value in pairs if pairs is not None else parse_qsl(body, keep_blank_values=True):
        m = _ARRAY_KEY.match(key)
        if m:
            name, index = m.groups()
            current = out.get(name)
            if not isinstance(current, dict):
                current = {}
            if index == "":
                index = str(len(current))
            current[index] = value
            out[name] = current
        else:
            out[key] = value
    return {k: list(v.values()) if isinstance(v, dict) else v for k, v in out.items()}


def array_param(params: Mapping[str, Any], name: str) -> list[str] | None:
    """An array parameter: a PHP array, or a comma-separated string."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(",") if v.strip()]


# --- the server -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One request as the fake saw it (never the token or the values)."""

    at: float  # time.monotonic() when the request arrived
    method: str
    path: str
    status: int
    content: str = ""
    action: str = ""
    keys: tuple[str, ...] = ()  # form keys in order, e.g. ("token", "content", "fields[0]")
    records: int | None = None  # records exported or imported
    since: str | None = None  # dateRangeBegin
    until: str | None = None  # dateRangeEnd
    rows: int | None = None  # rows exported
    logic: str | None = None  # filterLogic
    events: tuple[str, ...] = ()  # the events asked for


class _FakeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RedcapFake:
    """The fake server. Use as a context manager, or :meth:`start` / :meth:`stop`.

    Knobs: ``hit_limit`` (hits a minute before the permanent ban), ``row_limit`` (rows an
    export may hold), ``memory_limit`` and ``import_memory_limit`` (cells, i.e. rows x columns,
    an export or an import may hold) before a 500 "ran out of server memory", ``dag_tokens``
    (token -> unique group name: users in a Data Access Group), ``redirect_to`` (answer every
    POST with 302),
    ``latency`` (seconds slept per request), ``instance_as_text`` (``"1"`` instead of 1),
    ``fail_next`` (statuses to answer the next requests with, e.g. 503), ``tls`` (an SSL context:
    HTTPS), ``clock`` (epoch seconds for modification times), ``tz`` (the server's timezone).
    """

    def __init__(
        self,
        project: FakeProject,
        *,
        token: str = TOKEN,
        tz: str = "America/Chicago",
        clock: Callable[[], float] = time.time,
        hit_limit: int = 600,
        row_limit: int | None = None,
        memory_limit: int | None = None,
        import_memory_limit: int | None = None,
        redirect_to: str | None = None,
        latency: float = 0.0,
        instance_as_text: bool = False,
        tls: ssl.SSLContext | None = None,
        dag_tokens: Mapping[str, str] | None = None,
        rights: Mapping[str, bool] | None = None,
    ) -> None:
        self.project = project
        #: the token user's rights: "logging" (Export Logging), "delete" (delete records)
        self.rights = {"logging": True, "delete": True, **dict(rights or {})}
        #: the project's logging, oldest first: (server-local time, username, action, details,
        #: record, logtype)
        self.log: list[tuple[dt.datetime, str, str, str, str, str]] = []
        self.token = token
        self.dag_tokens = dict(dag_tokens or {})
        self.row_limit = row_limit
        self.tz = ZoneInfo(tz)
        self.clock = clock
        self.hit_limit = hit_limit
        self.memory_limit = memory_limit
        self.import_memory_limit = import_memory_limit
        self.redirect_to = redirect_to
        self.latency = latency
        self.instance_as_text = instance_as_text
        self.tls = tls
        self.fail_next: deque[int] = deque()
        self.hits: list[Hit] = []
        self.banned = False
        self.lock = threading.RLock()
        self._recent: deque[float] = deque()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/api/"

    def start(self) -> RedcapFake:
        fake = self

        class Handler(_Handler):
            owner = fake

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="redcap-fake",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> RedcapFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- helpers for tests -------------------------------------------------------------------

    def now_local(self) -> dt.datetime:
        """The server's local time (naive, whole seconds), from ``clock``."""
        moment = dt.datetime.fromtimestamp(self.clock(), self.tz)
        return moment.replace(tzinfo=None, microsecond=0)

    def api_hits(self, since: float = 0.0) -> list[Hit]:
        """POST hits to the API path at or after monotonic time ``since``."""
        return [h for h in self.hits if h.at >= since and h.method == "POST"]

    def delete_record(
        self,
        record: str,
        *,
        instrument: str | None = None,
        event: str = "",
        instance: int | None = None,
        user: str = "site_admin",
    ) -> None:
        """A person deletes a record (or one form's data on one row) in the web interface."""
        with self.lock:
            self._delete([record], instrument, event, instance, user)

    def _delete(
        self,
        records: Sequence[str],
        instrument: str | None,
        event: str,
        instance: int | None,
        user: str,
    ) -> int:
        p = self.project
        now = self.now_local()
        for record in records:
            if instrument is None:
                p.data.pop(record, None)
                p.modified.pop(record, None)
                p.record_dag.pop(record, None)
                self.log.append((now, user, f"Delete record {record}", "", record, "delete"))
                continue
            names = {f.name for f in p.fields if f.form == instrument} | {
                f"{instrument}_complete",
                f"{instrument}_timestamp",
            }
            ri = instrument if p.repeats(event, instrument) else ""
            row = p.data.get(record, {}).get((event, ri, instance))
            if row is None:
                continue
            cleared = [n for n in names if row.pop(n, None) not in (None, "")]
            p.modified[record] = now
            details = ", ".join(f"{n} = ''" for n in sorted(cleared))
            self.log.append((now, user, f"Update record {record}", details, record, "edit"))
        return len(records)

    def rename_record(self, record: str, new: str, *, user: str = "site_admin") -> None:
        """A person renames a record in the web interface (Record Home Page, "Rename
        record"): its data, group and modification time move to ``new``. REDCap logs this as a
        change of the record (``Update record``), not as a deletion: ``logtype=record_delete``
        never lists the old name."""
        with self.lock:
            p = self.project
            now = self.now_local()
            rows = p.data.pop(record)
            for row in rows.values():
                if p.id_field in row:
                    row[p.id_field] = new
            p.data[new] = rows
            p.modified.pop(record, None)
            p.modified[new] = now
            if record in p.record_dag:
                p.record_dag[new] = p.record_dag.pop(record)
            details = f"{p.id_field} = '{new}'"
            self.log.append((now, user, f"Update record {new}", details, new, "edit"))

    def touch(self, record: str) -> None:
        """Mark a record as modified now (an outside change)."""
        with self.lock:
            self.project.modified[record] = self.now_local()

    # --- the request -------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes, Hit]:
        """One request → (status, headers, body, log entry). Serialised, as a small server is."""
        arrived = time.monotonic()
        with self.lock:
            self._recent.append(arrived)
            while self._recent and self._recent[0] < arrived - 60.0:
                self._recent.popleft()
            if self.banned or len(self._recent) > self.hit_limit:
                self.banned = True
                return self._out(429, BAN_TEXT, "text/plain", Hit(arrived, method, path, 429))
            if self.latency:
                time.sleep(self.latency)
            if self.fail_next:
                status = self.fail_next.popleft()
                text = OOM_TEXT if status == 500 else f"<html><body>HTTP {status}</body></html>"
                ctype = "text/plain" if status == 500 else "text/html"
                return self._out(status, text, ctype, Hit(arrived, method, path, status))
            if method != "POST":
                return self._out(
                    501, "Not Implemented", "text/plain", Hit(arrived, method, path, 501)
                )
            if path.split("?", 1)[0] not in ("/api/", "/api/index.php"):
                return self._out(404, NOT_FOUND_PAGE, "text/html", Hit(arrived, method, path, 404))
            if self.redirect_to:
                status, hdrs, out, hit = self._out(
                    302, "", "text/html", Hit(arrived, method, path, 302)
                )
                hdrs["Location"] = self.redirect_to
                return status, hdrs, out, hit
            ctype = headers.get("Content-Type", "")
            text = body.decode("utf-8", "replace")
            pairs = parse_qsl(text, keep_blank_values=True)
            keys = tuple(k for k, _ in pairs)
            form = "application/x-www-form-urlencoded" in ctype
            params = php_parse(text, pairs) if form else {}
            return_format = str(params.get("returnFormat", "xml"))
            content = str(params.get("content", ""))
            action = str(params.get("action", "export"))
            hit = Hit(
                arrived,
                method,
                path,
                200,
                content,
                action,
                keys,
                since=params.get("dateRangeBegin"),
                until=params.get("dateRangeEnd"),
                logic=params.get("filterLogic"),
                events=tuple(array_param(params, "events") or ()),
            )
            try:
                token = params.get("token")
                if token != self.token and token not in self.dag_tokens:
                    raise _FakeError(403, "You do not have permissions to use the API")
                dag = self.dag_tokens.get(str(token))
                status, out, out_type, n, rows = self._dispatch(content, action, params, dag)
            except _FakeError as exc:
                return self._error(exc.status, exc.message, return_format, hit)
            hit = dataclasses.replace(hit, status=status, records=n, rows=rows)
            return self._out(status, out, out_type, hit)

    def _out(
        self, status: int, text: str, ctype: str, hit: Hit
    ) -> tuple[int, dict[str, str], bytes, Hit]:
        self.hits.append(hit)
        return status, {"Content-Type": f"{ctype}; charset=utf-8"}, text.encode("utf-8"), hit

    def _error(
        self, status: int, message: str, return_format: str, hit: Hit
    ) -> tuple[int, dict[str, str], bytes, Hit]:
        hit = dataclasses.replace(hit, status=status, records=None, rows=None)
        if status == 500 and message == OOM_TEXT:
            return self._out(500, OOM_TEXT, "text/plain", hit)
        if return_format == "json":
            return self._out(status, json.dumps({"error": message}), "application/json", hit)
        escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        xml = (
            f'<?xml version="1.0" encoding="UTF-8" ?>\n<hash>\n  <error>{escaped}</error>\n</hash>'
        )
        return self._out(status, xml, "text/xml", hit)

    def _dispatch(
        self, content: str, action: str, params: Mapping[str, Any], dag: str | None
    ) -> tuple[int, str, str, int | None, int | None]:
        """(status, body, content type, records, rows) of one authorised request."""
        p = self.project
        fmt = str(params.get("format", "xml"))
        if content == "version":
            return 200, "14.5.0", "text/html", None, None
        if content == "project":
            info = {
                "project_id": p.project_id,
                "project_title": p.title,
                "creation_time": "2024-01-02 09:00:00",
                "production_time": "2024-01-05 09:00:00",
                "in_production": 1,
                "project_language": "English",
                "purpose": 0,
                "is_longitudinal": 1 if p.longitudinal else 0,
                "has_repeating_instruments_or_events": 1 if p.has_repeats else 0,
                "surveys_enabled": 1 if p.surveys else 0,
                "record_autonumbering_enabled": 0,
                "missing_data_codes": "",
            }
            return 200, *self._format(info, fmt), None, None
        if content == "metadata":
            wanted = array_param(params, "fields")
            forms = array_param(params, "forms")
            rows = [
                f.metadata()
                for f in p.fields
                if (not wanted or f.name in wanted) and (not forms or f.form in forms)
            ]
            self._check_memory(len(rows), 0)  # a dictionary counts its fields (rows)
            return 200, *self._format(rows, fmt), None, len(rows)
        if content == "instrument":
            rows = [
                {"instrument_name": f, "instrument_label": f.replace("_", " ")} for f in p.forms
            ]
            return 200, *self._format(rows, fmt), None, len(rows)
        if content == "dag":
            rows = [
                {
                    "data_access_group_name": label,
                    "unique_group_name": name,
                    "data_access_group_id": i,
                }
                for i, (name, label) in enumerate(sorted(p.dags.items()), start=1)
            ]
            return 200, *self._format(rows, fmt), None, len(rows)
        if content == "formEventMapping":
            if not p.longitudinal:
                raise _FakeError(400, "You cannot export form/event mappings for classic projects")
            rows = [
                {"arm_num": 1, "unique_event_name": e, "form": form}
                for e in p.events
                for form in p.form_events.get(e, [])
            ]
            return 200, *self._format(rows, fmt), None, len(rows)
        if content == "repeatingFormsEvents":
            if not p.has_repeats:
                raise _FakeError(400, "There are no repeated instruments or events in this project")
            rows = []
            for event, form in sorted(p.repeating_forms):
                row = {"form_name": form, "custom_form_label": ""}
                if p.longitudinal:
                    row = {"event_name": event, **row}
                rows.append(row)
            rows += [
                {"event_name": e, "form_name": "", "custom_form_label": ""}
                for e in sorted(p.repeating_events)
            ]
            return 200, *self._format(rows, fmt), None, len(rows)
        if content == "record" and action == "export":
            rows = self._export(params, dag)
            return 200, *self._format(rows, fmt), len({r[p.id_field] for r in rows}), len(rows)
        if content == "record" and action == "import":
            return (*self._import(params, dag), None)
        if content == "record" and action == "delete":
            return self._delete_request(params, dag)
        if content == "log":
            rows = self._log_rows(params)
            return 200, *self._format(rows, fmt), None, len(rows)
        raise _FakeError(400, 'The value of the parameter "content" is not valid')

    def _delete_request(
        self, params: Mapping[str, Any], dag: str | None
    ) -> tuple[int, str, str, int | None, int | None]:
        p = self.project
        if not self.rights["delete"]:
            raise _FakeError(403, "You do not have Delete Record privileges")
        records = array_param(params, "records") or []
        if not records:
            raise _FakeError(400, "No records were provided to delete")
        unknown = [r for r in records if r not in p.data or (dag and p.record_dag.get(r) != dag)]
        if unknown:
            raise _FakeError(
                400, f"One or more of the records provided cannot be deleted: {', '.join(unknown)}"
            )
        instrument = params.get("instrument")
        raw = str(params.get("repeat_instance") or "")
        n = self._delete(
            records,
            str(instrument) if instrument else None,
            str(params.get("event") or ""),
            int(raw) if raw.isdigit() else None,
            "api_user",
        )
        return 200, str(n), "text/html", n, None

    def _log_rows(self, params: Mapping[str, Any]) -> list[dict[str, str]]:
        """Export Logging: needs the Logging right; newest first."""
        if not self.rights["logging"]:
            raise _FakeError(403, "You do not have permissions to export the logging")
        kinds = {
            "record": {"create", "edit", "delete"},
            "record_add": {"create"},
            "record_edit": {"edit"},
            "record_delete": {"delete"},
        }
        logtype = str(params.get("logtype") or "")
        if logtype and logtype not in kinds:
            raise _FakeError(400, f'The value of the parameter "logtype" is not valid: {logtype}')

        def when(name: str) -> dt.datetime | None:
            value = str(params.get(name) or "")
            if not value:
                return None
            try:
                return dt.datetime.strptime(value, "%Y-%m-%d %H:%M")
            except ValueError:
                raise _FakeError(
                    400, f'The value of the parameter "{name}" is not a valid date-time'
                ) from None

        begin, end = when("beginTime"), when("endTime")
        record = str(params.get("record") or "")
        out = []
        for at, user, action, details, rec, kind in reversed(self.log):
            minute = at.replace(second=0)
            if logtype and kind not in kinds[logtype]:
                continue
            if (begin and minute < begin) or (end and minute > end):
                continue
            if record and rec != record:
                continue
            out.append(
                {
                    "timestamp": at.strftime("%Y-%m-%d %H:%M"),
                    "username": user,
                    "action": action,
                    "details": details,
                    "record": rec,
                }
            )
        return out

    def _check_memory(self, rows: int, cells: int) -> None:
        """REDCap runs out of memory past ``row_limit`` rows or ``memory_limit`` cells."""
        if (self.row_limit is not None and rows > self.row_limit) or (
            self.memory_limit is not None and cells > self.memory_limit
        ):
            raise _FakeError(500, OOM_TEXT)

    def _format(self, data: Any, fmt: str) -> tuple[str, str]:
        if fmt == "json":
            return json.dumps(data, ensure_ascii=False), "application/json"
        rows = data if isinstance(data, list) else [data]
        if fmt == "csv":
            buf = io.StringIO()
            if rows:
                writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)
            return buf.getvalue(), "text/csv"
        items = "".join(
            "<item>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in r.items()) + "</item>"
            for r in rows
        )
        return f'<?xml version="1.0" encoding="UTF-8" ?>\n<records>{items}</records>', "text/xml"

    # --- export ------------------------------------------------------------------------------

    def _export(self, params: Mapping[str, Any], dag: str | None) -> list[dict[str, Any]]:
        p = self.project
        wanted = array_param(params, "fields") or []
        forms = array_param(params, "forms") or []
        events = array_param(params, "events") or []
        records = array_param(params, "records")
        known = {f.name for f in p.fields} | {f"{form}_complete" for form in p.forms}
        bad = [f for f in wanted if f not in known]
        if bad:
            raise _FakeError(
                400,
                'The following values in the parameter "fields" are not valid: '
                + ", ".join(f"'{b}'" for b in bad),
            )
        bad = [f for f in forms if f not in p.forms]
        if bad:
            raise _FakeError(
                400,
                f'The following values in the parameter "forms" are not valid: {", ".join(bad)}',
            )
        bad = [e for e in events if e not in p.events]
        if bad:
            raise _FakeError(
                400,
                f'The following values in the parameter "events" are not valid: {", ".join(bad)}',
            )
        begin = _when(params.get("dateRangeBegin"), "dateRangeBegin")
        end = _when(params.get("dateRangeEnd"), "dateRangeEnd")
        if wanted or forms:
            selected = set(wanted)
            for form in forms:
                selected |= {f.name for f in p.fields if f.form == form}
                selected.add(f"{form}_complete")
        else:
            selected = known
        selected.add(p.id_field)
        survey = str(params.get("exportSurveyFields", "false")).lower() == "true"
        groups = str(params.get("exportDataAccessGroups", "false")).lower() == "true"
        ids = (
            sorted(p.data, key=_natural)
            if records is None
            else [r for r in dict.fromkeys(records) if r in p.data]
        )
        if dag is not None:  # a user in a group sees only that group's records
            ids = [r for r in ids if p.record_dag.get(r) == dag]
        if begin is not None or end is not None:
            ids = [
                r
                for r in ids
                if (m := p.modified.get(r)) is not None
                and (begin is None or m >= begin)
                and (end is None or m <= end)
            ]
        logic = str(params.get("filterLogic") or "").strip()
        keep: Callable[[str, RowKey], bool] = lambda r, k: True  # noqa: E731
        if logic:
            try:
                predicate, names = compile_logic(logic)
            except LogicError:
                raise _FakeError(400, "The filter logic is not valid (filterLogic)") from None
            unknown = [n for n in names if p.field(n) is None and p.form_of(n) is None]
            if unknown:
                raise _FakeError(400, f"The filter logic uses unknown fields: {', '.join(unknown)}")

            if names <= {p.id_field}:  # the record id only: one answer per record
                ids = [r for r in ids if predicate({p.id_field: r})]
            else:

                def keep(record: str, key: RowKey) -> bool:
                    return predicate({**p.data[record][key], p.id_field: record})

        columns = self._columns(selected, survey, groups and dag is None)
        self._applies_memo: dict[tuple[str, str, bool, str], bool] = {}
        keys = [(r, k) for r in ids for k in self._row_order(p.data[r], events) if keep(r, k)]
        self._check_memory(len(keys), len(keys) * len(columns))
        return [self._row(r, k, p.data[r][k], columns) for r, k in keys]

    def _columns(
        self, selected: set[str], survey: bool, groups: bool = False
    ) -> list[tuple[str, str, str]]:
        """(column, kind, form) in REDCap's order: id, event, repeat keys, group, survey id,
        forms."""
        p = self.project
        cols: list[tuple[str, str, str]] = [(p.id_field, "id", p.fields[0].form)]
        if p.longitudinal:
            cols.append(("redcap_event_name", "event", ""))
        if p.has_repeats:
            cols += [("redcap_repeat_instrument", "ri", ""), ("redcap_repeat_instance", "rn", "")]
        if groups:
            cols.append(("redcap_data_access_group", "dag", ""))
        if survey:
            cols.append(("redcap_survey_identifier", "sid", ""))
        for form in p.forms:
            names = [
                f.name
                for f in p.fields
                if f.form == form
                and f.name in selected
                and f.name != p.id_field
                and f.field_type != "descriptive"
            ]
            complete = f"{form}_complete" in selected
            if not names and not complete:
                continue
            if survey and form in p.surveys:
                cols.append((f"{form}_timestamp", "stamp", form))
            cols += [(n, "value", form) for n in names]
            if complete:
                cols.append((f"{form}_complete", "complete", form))
        return cols

    def _row_order(self, rows: Mapping[RowKey, Any], events: Sequence[str]) -> list[RowKey]:
        p = self.project
        order = {form: i for i, form in enumerate(p.forms)}
        event_list = [e for e in (p.events or [""]) if not events or e in events]
        out: list[RowKey] = []
        for event in event_list:
            here = [k for k in rows if k[0] == event]
            here.sort(
                key=lambda k: (k[1] != "" or k[2] is not None, order.get(k[1], -1), k[2] or 0)
            )
            out += here
        return out

    def _row(
        self,
        record: str,
        key: RowKey,
        stored: Mapping[str, str],
        columns: Sequence[tuple[str, str, str]],
    ) -> dict[str, Any]:
        event, ri, instance = key
        row: dict[str, Any] = {}
        for col, kind, form in columns:
            if kind == "id":
                row[col] = record
            elif kind == "event":
                row[col] = event
            elif kind == "ri":
                row[col] = ri
            elif kind == "rn":
                row[col] = (
                    ""
                    if instance is None
                    else (str(instance) if self.instance_as_text else instance)
                )
            elif kind == "sid":
                row[col] = ""
            elif kind == "dag":
                row[col] = self.project.record_dag.get(record, "")
            else:
                where = (event, ri, instance is None, form)
                applies = self._applies_memo.get(where)
                if applies is None:
                    applies = self._applies_memo[where] = self._applies(event, ri, instance, form)
                value = stored.get(col, "") if applies else ""
                if kind == "complete" and applies and value == "":
                    value = "0"  # a form never started: REDCap exports its status as 0
                row[col] = value
        return row

    def _applies(self, event: str, ri: str, instance: int | None, form: str) -> bool:
        """Whether ``form``'s values live on the row (event, ri, instance)."""
        p = self.project
        if not p.designated(event, form):
            return False
        if ri:
            return form == ri
        if instance is not None:  # a repeating event: every designated, non-repeating form
            return not p.repeats(event, form)
        return not p.repeats(event, form)

    # --- import ------------------------------------------------------------------------------

    def _import(
        self, params: Mapping[str, Any], dag: str | None
    ) -> tuple[int, str, str, int | None]:
        p = self.project
        if p.cleanup_status:
            raise _FakeError(
                403, "This project is in Analysis/Cleanup status: its data cannot be modified"
            )
        if str(params.get("format", "xml")) != "json":
            raise _FakeError(400, "The fake only imports format=json")
        try:
            data = json.loads(str(params.get("data", "")))
        except ValueError:
            raise _FakeError(400, "The data being imported is not formatted correctly") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise _FakeError(400, "The data being imported is not formatted correctly")
        cells = sum(len(r) for r in data)
        if self.import_memory_limit is not None and cells > self.import_memory_limit:
            raise _FakeError(500, OOM_TEXT)
        overwrite = str(params.get("overwriteBehavior", "normal")) == "overwrite"
        errors: list[str] = []
        planned: list[tuple[str, RowKey, dict[str, str]]] = []
        unknown: list[str] = []
        for row in data:
            planned_row = self._plan(row, errors, unknown)
            if planned_row is None:
                continue
            record = planned_row[0]
            if dag is not None and record in p.data and p.record_dag.get(record) != dag:
                errors.append(
                    f'"{record}","{p.id_field}","{record}","The record belongs to a Data Access '
                    'Group you are not assigned to"'
                )
                continue
            planned.append(planned_row)
        if unknown:
            errors.insert(
                0,
                "The following fields were not found in the project as real data "
                f"fields: {', '.join(dict.fromkeys(unknown))}",
            )
        if errors:
            raise _FakeError(400, "\n".join(errors))
        now = self.now_local()
        for record, key, values in planned:
            if dag is not None and record not in p.data:
                p.record_dag[record] = dag  # a new record joins the user's group
            rows = p.data.setdefault(record, {})
            stored = rows.setdefault(key, {p.id_field: record})
            changed = False
            forms = set()
            for name, value in values.items():
                if value == "" and not overwrite:
                    continue
                if stored.get(name, "") != value:
                    stored[name] = value
                    changed = True
                form = p.form_of(name)
                if form:
                    forms.add(form)
            for form in forms:
                if stored.get(f"{form}_complete", "") == "":
                    stored[f"{form}_complete"] = "0"
                    changed = True
            if changed or record not in p.modified:
                created = record not in p.modified
                p.modified[record] = now
                what = "Create" if created else "Update"
                kind = "create" if created else "edit"
                self.log.append((now, "api_user", f"{what} record {record}", "", record, kind))
        records = list(dict.fromkeys(r for r, _, _ in planned))
        if str(params.get("returnContent", "count")) == "ids":
            return 200, json.dumps(records), "application/json", len(records)
        return 200, json.dumps({"count": len(records)}), "application/json", len(records)

    def _plan(
        self, row: Mapping[str, Any], errors: list[str], unknown: list[str]
    ) -> tuple[str, RowKey, dict[str, str]] | None:
        p = self.project
        record = str(row.get(p.id_field, "")).strip()
        if not record:
            errors.append(f"The record ID field ({p.id_field}) is missing from a row")
            return None
        event = str(row.get("redcap_event_name", "") or "").strip() if p.longitudinal else ""
        if p.longitudinal and event not in p.events:
            errors.append(f'"{record}","redcap_event_name","{event}","The event name is invalid"')
            return None
        ri = str(row.get("redcap_repeat_instrument", "") or "").strip()
        raw_instance = row.get("redcap_repeat_instance", "")
        instance: int | None = None
        if raw_instance not in ("", None):
            try:
                instance = int(str(raw_instance))
            except ValueError:
                instance = 0
            if instance < 1:
                errors.append(
                    f'"{record}","redcap_repeat_instance","{raw_instance}",'
                    '"The instance must be a whole number of 1 or more"'
                )
                return None
        if ri:
            if not p.repeats(event, ri):
                errors.append(
                    f'"{record}","redcap_repeat_instrument","{ri}","This instrument '
                    f'is not a repeating instrument on event {event or "(none)"}"'
                )
                return None
            if instance is None:
                errors.append(
                    f'"{record}","redcap_repeat_instance","","A repeating instrument '
                    'needs redcap_repeat_instance"'
                )
                return None
        elif instance is not None and event not in p.repeating_events:
            errors.append(
                f'"{record}","redcap_repeat_instance","{instance}","Event '
                f'{event or "(none)"} is not a repeating event"'
            )
            return None
        values: dict[str, str] = {}
        skip = {
            p.id_field,
            "redcap_event_name",
            "redcap_repeat_instrument",
            "redcap_repeat_instance",
        }
        for name, raw in row.items():
            if name in skip:
                continue
            value = "" if raw is None else str(raw).strip()
            form = p.form_of(name)
            if form is None:
                unknown.append(name)
                continue
            if not p.designated(event, form):
                errors.append(
                    f'"{record}","{name}","{value}","The instrument {form} is not '
                    f'designated for event {event}"'
                )
                continue
            if ri and form != ri:
                errors.append(
                    f'"{record}","{name}","{value}","The field is not on the '
                    f'repeating instrument {ri}"'
                )
                continue
            if not ri and p.repeats(event, form):
                errors.append(
                    f'"{record}","{name}","{value}","The field is on a repeating '
                    "instrument: give redcap_repeat_instrument and "
                    'redcap_repeat_instance"'
                )
                continue
            problem = self._invalid(name, value)
            if problem:
                errors.append(f'"{record}","{name}","{value}","{problem}"')
                continue
            values[name] = value
        return record, (event, ri, instance), values

    def _invalid(self, name: str, value: str) -> str | None:
        if value == "":
            return None
        if name.endswith("_complete") and self.project.field(name) is None:
            return None if value in ("0", "1", "2") else "The value is not a valid form status"
        f = self.project.field(name)
        assert f is not None
        if f.field_type == "slider":
            low = float(f.vmin or 0)
            high = float(f.vmax or 100)
            if not re.fullmatch(r"-?\d+", value) or not low <= int(value) <= high:
                return f"The value is not an integer between {low:g} and {high:g}"
        elif f.field_type in ("dropdown", "radio"):
            if value not in f.codes():
                return "The value is not one of the choices"
        elif f.field_type == "text" and f.validation == "date_ymd":
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                return "The value is not a date (Y-M-D)"
        elif f.field_type == "text" and f.validation in NUMERIC:
            try:
                number = float(value)
            except ValueError:
                return "The value is not a number"
            if f.validation == "integer" and not number.is_integer():
                return "The value is not an integer"
            if (f.vmin and number < float(f.vmin)) or (f.vmax and number > float(f.vmax)):
                return "The value is out of range"
        return None


class _Handler(BaseHTTPRequestHandler):
    owner: RedcapFake
    protocol_version = "HTTP/1.1"

    def _go(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, out, _ = self.owner.handle(
            self.command, self.path, {k: v for k, v in self.headers.items()}, body
        )
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _go

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


def _natural(record: str) -> tuple[int, int, str]:
    return (0, int(record), "") if record.isdigit() else (1, 0, record)


def _when(value: Any, name: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(str(value), fmt)
        except ValueError:
            continue
    raise _FakeError(400, f'The value of the parameter "{name}" is not a valid date/time')


# --- synthetic projects ------------------------------------------------------------------------

SCORE_FIELDS: dict[str, tuple[str, ...]] = {
    "ors": ("total", "session", "status", "flags", "message"),
    "srs": ("total", "session", "flags", "message"),
}
STATUS_CHOICES = "green, green | orange, orange | red, red | grey, grey | none, none"
#: an existing scoring instrument with its own names: one row per session, shared fields
SESSION_LAYOUT = (
    "fit_ors_total",
    "fit_srs_total",
    "fit_session",
    "fit_status",
    "fit_flags",
    "fit_message",
)


def _score_field(name: str, form: str, key: str) -> FakeField:
    if key == "total":
        return FakeField(name, form, validation="number_1dp", vmin="0", vmax="40")
    if key == "session":
        return FakeField(name, form, validation="integer")
    if key == "status":
        return FakeField(name, form, "dropdown", choices=STATUS_CHOICES)
    if key == "message":
        return FakeField(name, form, "notes")
    if key == "date":
        return FakeField(name, form, validation="date_ymd")
    return FakeField(name, form)


def scoring_fields(layout: str = "fit", form: str = "fit_scores") -> list[FakeField]:
    """The scoring instrument ``form``. ``"fit"``: as `fit redcap template` writes it (the
    session date ``fit_date``, then per measure total, session, status, flags and message);
    ``"legacy"``: the same without ``fit_date`` (written by versions that paired instance *n*
    of each measure); ``"session"``: an instrument a clinic made itself, with other names
    (:data:`SESSION_LAYOUT`: one total per measure, a shared session, status, flags, message)."""
    if layout == "session":
        return [_score_field(n, form, n.rsplit("_", 1)[-1]) for n in SESSION_LAYOUT]
    out = [] if layout == "legacy" else [_score_field("fit_date", form, "date")]
    for measure, keys in SCORE_FIELDS.items():
        out += [_score_field(f"fit_{measure}_{key}", form, key) for key in keys]
    return out


def clinic_fields(
    *, scoring: bool | str = True, scores_form: str = "fit_scores"
) -> list[FakeField]:
    """Demographics, ORS and SRS surveys (0-100 sliders), and the scoring instrument
    (``scoring``: True for the ``"fit"`` layout, a layout name of :func:`scoring_fields`, or
    False for none)."""
    out = [
        FakeField("record_id", "demographics", label="Record ID"),
        FakeField("age", "demographics", validation="integer", vmin="0", vmax="120"),
        FakeField("clinician", "demographics"),
    ]
    for form in ("ors", "srs"):
        out += [
            FakeField(
                f"{form}_{i}", form, "slider", f"{form.upper()} item {i}", validation="number"
            )
            for i in range(1, 5)
        ]
    if scoring:
        out += scoring_fields("fit" if scoring is True else str(scoring), scores_form)
    return out


INTAKE, SESSION, FOLLOWUP = "intake_arm_1", "session_arm_1", "followup_arm_1"


def clinic_project(
    n_records: int = 50,
    *,
    seed: int = 1,
    max_sessions: int = 5,
    modified: dt.datetime | None = dt.datetime(2024, 6, 1, 9, 0, 0),
    longitudinal: bool = True,
    scoring: bool | str = True,
    scores_form: str = "fit_scores",
    skip_srs: float = 0.0,
) -> FakeProject:
    """A synthetic clinic. Longitudinal: ``intake_arm_1`` (demographics, ors, srs, fit_scores;
    not repeating), ``session_arm_1`` (ors, srs, fit_scores as repeating instruments) and
    ``followup_arm_1`` (a repeating event with ors and fit_scores). Classic (not longitudinal):
    ors, srs and fit_scores are repeating instruments. About 5 % of SRS surveys are
    ``[not completed]`` (status 0) and 3 % of ORS are unverified (status 1).

    ``skip_srs``: the share of repeating sessions without an SRS at all; the next SRS then
    takes the next SRS instance, so instance *n* of ``srs`` is no longer the session of
    instance *n* of ``ors``. ``modified``: every record's last change (server-local), or None
    for the time of its last survey (records changed over months). ``scoring`` and
    ``scores_form``: the scoring instrument (see :func:`clinic_fields`)."""
    rng = random.Random(seed)
    fields = clinic_fields(scoring=scoring, scores_form=scores_form)
    forms = ["demographics", "ors", "srs", *([scores_form] if scoring else [])]
    if longitudinal:
        project = FakeProject(
            fields,
            events=[INTAKE, SESSION, FOLLOWUP],
            form_events={
                INTAKE: forms,
                SESSION: [f for f in forms if f != "demographics"],
                FOLLOWUP: ["ors", *([scores_form] if scoring else [])],
            },
            repeating_forms={(SESSION, f) for f in forms if f != "demographics"},
            repeating_events={FOLLOWUP},
            surveys={"ors", "srs"},
        )
    else:
        project = FakeProject(
            fields,
            repeating_forms={("", f) for f in forms if f != "demographics"},
            surveys={"ors", "srs"},
        )
    start = dt.datetime(2024, 1, 8, 9, 0, 0)
    for n in range(1, n_records + 1):
        record = str(1000 + n)
        day = start + dt.timedelta(days=n % 60, minutes=n % 50)
        project.put(
            record,
            {
                "age": rng.randint(18, 70),
                "clinician": rng.choice(["c1", "c2", "c3"]),
                "demographics_complete": 2,
            },
            event=INTAKE if longitudinal else "",
        )
        level = rng.randint(15, 45)
        sessions = rng.randint(0, max_sessions)
        visits: list[tuple[str, bool, int | None]]
        if longitudinal:
            visits = [(INTAKE, False, None)]
            visits += [(SESSION, True, i) for i in range(1, sessions + 1)]
            if rng.random() < 0.2:
                visits += [(FOLLOWUP, False, i) for i in range(1, rng.randint(1, 2) + 1)]
        else:
            visits = [("", True, i) for i in range(1, sessions + 2)]
        srs_instance = 0
        last = day
        for k, (event, ri, instance) in enumerate(visits):
            when = day + dt.timedelta(days=7 * k)
            last = when + dt.timedelta(minutes=50)
            level = max(0, min(100, level + rng.randint(-4, 10)))
            _survey(project, rng, record, "ors", event, ri, instance, when, level)
            if event == FOLLOWUP:
                continue
            if ri and skip_srs and rng.random() < skip_srs:
                continue  # no SRS this session
            if ri:
                srs_instance += 1
            _survey(
                project,
                rng,
                record,
                "srs",
                event,
                ri,
                srs_instance if ri else instance,
                when + dt.timedelta(minutes=50),
                rng.randint(70, 100),
            )
        project.modified[record] = (modified or last).replace(microsecond=0)
    return project


def _survey(
    project: FakeProject,
    rng: random.Random,
    record: str,
    form: str,
    event: str,
    repeating: bool,
    instance: int | None,
    when: dt.datetime,
    level: int,
) -> None:
    values: dict[str, Any] = {
        f"{form}_{i}": max(0, min(100, level + rng.randint(-12, 12))) for i in range(1, 5)
    }
    roll = rng.random()
    if form == "srs" and roll < 0.05:
        values = {f"{form}_1": values[f"{form}_1"], f"{form}_2": values[f"{form}_2"]}
        values[f"{form}_timestamp"] = NOT_COMPLETED
        values[f"{form}_complete"] = 0
    else:
        values[f"{form}_timestamp"] = when.strftime("%Y-%m-%d %H:%M:%S")
        values[f"{form}_complete"] = 1 if form == "ors" and roll < 0.03 else 2
    project.put(
        record, values, event=event, repeat_instrument=form if repeating else "", instance=instance
    )


def source_options(fake: RedcapFake, **extra: Any) -> dict[str, Any]:
    """A ``[sources.<name>]`` table (adapter options) mapping :func:`clinic_project` on ``fake``."""
    return {
        "url": fake.url,
        "throttle": 200,
        "server_timezone": "America/Chicago",
        "fields": {"age": "age", "clinician_id": "clinician"},
        "instruments": {
            form: {"measure": form.upper(), "items": [f"{form}_{i}" for i in range(1, 5)]}
            for form in ("ors", "srs")
        },
        **extra,
    }


def accepted(project: FakeProject) -> dict[tuple[str, RowKey, str], list[int]]:
    """The administrations a sync should score: ORS/SRS rows with status 2 and a timestamp,
    as (record, row key, form) -> the four slider values."""
    out: dict[tuple[str, RowKey, str], list[int]] = {}
    for record, rows in project.data.items():
        for key, row in rows.items():
            for form in ("ors", "srs"):
                stamp = row.get(f"{form}_timestamp", "")
                if row.get(f"{form}_complete") == "2" and stamp and stamp != NOT_COMPLETED:
                    out[(record, key, form)] = [int(row[f"{form}_{i}"]) for i in range(1, 5)]
    return out


def score_key(key: RowKey, form: str) -> RowKey:
    """Where the scores of ``form`` on row ``key`` must land in the scoring instrument."""
    event, ri, instance = key
    return (event, "fit_scores" if ri else "", instance)


def scores_state(project: FakeProject) -> dict[tuple[str, RowKey], dict[str, str]]:
    """What the scoring instrument holds: (record, row key) -> non-empty values."""
    return project.form_rows("fit_scores")


# --- TLS ------------------------------------------------------------------------------------


def self_signed_context(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server SSL context with a fresh self-signed certificate for 127.0.0.1, and its PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-redcap.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "fake-redcap.pem"
    key_path = directory / "fake-redcap.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx, cert_path


# --- the fixture -------------------------------------------------------------------------------


@pytest.fixture
def redcap_fake() -> Iterator[Callable[..., RedcapFake]]:
    """A factory: ``redcap_fake(project=None, **knobs)`` starts a fake; all stop after the test."""
    started: list[RedcapFake] = []

    def start(project: FakeProject | None = None, **knobs: Any) -> RedcapFake:
        fake = RedcapFake(project if project is not None else clinic_project(), **knobs)
        fake.start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()
