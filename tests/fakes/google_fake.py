"""A loopback fake of Google's Forms API v1, Sheets API v4 and OAuth token endpoint.

It follows the documented behaviour of the real APIs, oddities included: every answer is a
string, unanswered questions are absent, ``filter`` supports only ``timestamp >`` and
``timestamp >=``, a page token is valid only with the filter (and form) it
came from, an empty list has no ``responses`` key, a ``values.get`` of an empty range has no
``values`` key, a range on a missing tab is a 400 "Unable to parse range", ``RAW`` stores text
as text while ``USER_ENTERED`` turns ``=...`` into a formula, and errors carry Google's bodies
(``{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": ...}}``).

Data changes over time as it does at Google: a form can be edited after responses exist
(:meth:`GoogleFake.set_scale`, :meth:`GoogleFake.delete_question`, :meth:`GoogleFake.add_question`;
``forms.get`` then returns only the current form, a new ``revisionId``, and responses keep the
answers they were given), a respondent can edit a response (``createTime`` stays the first
submission, ``lastSubmittedTime`` moves), and a deleted response simply stops being listed
(:meth:`GoogleFake.delete_response`). ``spreadsheets.batchUpdate`` applies ``addSheet`` and
``deleteDimension`` (0-based, end exclusive; the rows below move up; a range past the grid,
deleting every row, or an unknown sheetId is a 400 and nothing of the batch is applied).

Scopes: every access token carries the scopes it was granted (a service account's JWT asks for
them; a refresh token keeps the ones its user consented to, :attr:`GoogleFake.granted`), and a
call whose token holds none of the scopes the method accepts gets Google's 403
``PERMISSION_DENIED`` with the ``ACCESS_TOKEN_SCOPE_INSUFFICIENT`` ErrorInfo and a
``WWW-Authenticate: Bearer … error="insufficient_scope"`` header. A refresh request asking for
scopes beyond the grant gets ``400 invalid_scope``; a revoked or expired refresh token gets
``400 invalid_grant`` "Token has been expired or revoked.", a service account whose key was
deleted ``400 invalid_grant`` "Invalid JWT Signature.".

One :class:`GoogleFake` serves everything on ``http://127.0.0.1:<port>`` (a
``ThreadingHTTPServer`` in a thread): point ``forms_endpoint`` and ``sheets_endpoint`` at
:attr:`GoogleFake.url` and ``token_uri`` at :attr:`GoogleFake.token_uri`. The token endpoint
accepts a service-account JWT grant (the assertion's ``iss`` becomes the caller) or a refresh
token grant, and hands out bearer tokens the other endpoints then require (401 without one).

Faults are injected per operation (:meth:`GoogleFake.inject`): any status with Google's error
body, optionally *after applying* the call (a response lost on the way back), or a dropped
connection (status 0). Every call is logged (:attr:`GoogleFake.calls`) for assertions.
Synthetic data only: :func:`measure_form` builds forms with neutral labels.

Operations: ``token``, ``forms.get``, ``forms.responses.list``, ``spreadsheets.get``,
``spreadsheets.batchUpdate``, ``values.get``, ``values.update``, ``values.batchUpdate``,
``values.append``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import hashlib
import itertools
import json
import random
import re
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

#: the rows of a new tab's grid (a tab added through the API has 1000)
GRID_ROWS = 1000
SHEETS_WRITES = ("values.batchUpdate", "values.append", "values.update", "spreadsheets.batchUpdate")
FORMS_SCOPE = "https://www.googleapis.com/auth/forms.body.readonly"
RESPONSES_SCOPE = "https://www.googleapis.com/auth/forms.responses.readonly"
SHEETS_SCOPE = "https://www.googleapis.com/auth/spreadsheets"
_DRIVE = (
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/drive.file",
)
#: the scopes each method accepts (any one of them will do), service and RPC name for errors
METHOD_SCOPES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "forms.get": (
        (FORMS_SCOPE, "https://www.googleapis.com/auth/forms.body", *_DRIVE),
        "forms.googleapis.com",
        "google.apps.forms.v1.FormsService.GetForm",
    ),
    "forms.responses.list": (
        (RESPONSES_SCOPE, *_DRIVE),
        "forms.googleapis.com",
        "google.apps.forms.v1.FormsService.ListFormResponses",
    ),
    "spreadsheets.get": (
        (SHEETS_SCOPE, "https://www.googleapis.com/auth/spreadsheets.readonly", *_DRIVE),
        "sheets.googleapis.com",
        "google.apps.sheets.v4.SpreadsheetsService.GetSpreadsheet",
    ),
    "values.get": (
        (SHEETS_SCOPE, "https://www.googleapis.com/auth/spreadsheets.readonly", *_DRIVE),
        "sheets.googleapis.com",
        "google.apps.sheets.v4.SpreadsheetsService.GetValues",
    ),
    "spreadsheets.batchUpdate": (
        (SHEETS_SCOPE, *_DRIVE),
        "sheets.googleapis.com",
        "google.apps.sheets.v4.SpreadsheetsService.BatchUpdateSpreadsheet",
    ),
    "values.update": (
        (SHEETS_SCOPE, *_DRIVE),
        "sheets.googleapis.com",
        "google.apps.sheets.v4.SpreadsheetsService.UpdateValues",
    ),
    "values.batchUpdate": (
        (SHEETS_SCOPE, *_DRIVE),
        "sheets.googleapis.com",
        "google.apps.sheets.v4.SpreadsheetsService.BatchUpdateValues",
    ),
    "values.append": (
        (SHEETS_SCOPE, *_DRIVE),
        "sheets.googleapis.com",
        "google.apps.sheets.v4.SpreadsheetsService.AppendValues",
    ),
}
STATUS_TEXT = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "BAD_GATEWAY",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
DEFAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute "
    "per user' of service 'sheets.googleapis.com'.",
    500: "Internal error encountered.",
    502: "Bad gateway.",
    503: "The service is currently unavailable.",
    504: "The request timed out.",
}


class GoogleHttpError(Exception):
    """An error answer: HTTP status, Google's status name and message (and optional extras:
    the legacy ``errors`` list, ``details`` such as an ErrorInfo, response headers)."""

    def __init__(
        self,
        code: int,
        message: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or DEFAULT_MESSAGES.get(code, "error"))
        self.code = code
        self.message = message or DEFAULT_MESSAGES.get(code, "error")
        self.errors = errors
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors:
            err["errors"] = self.errors
        err["status"] = STATUS_TEXT.get(self.code, "UNKNOWN")
        if self.details:
            err["details"] = self.details
        return {"error": err}


def scope_error(op: str, scopes: tuple[str, ...]) -> GoogleHttpError:
    """Google's answer to a token that lacks every scope ``op`` accepts."""
    _accepted, service, method = METHOD_SCOPES[op]
    return GoogleHttpError(
        403,
        "Request had insufficient authentication scopes.",
        errors=[
            {
                "message": "Insufficient Permission",
                "domain": "global",
                "reason": "insufficientPermissions",
            }
        ],
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                "domain": "googleapis.com",
                "metadata": {"service": service, "method": method},
            }
        ],
        headers={
            "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
            f'error="insufficient_scope", scope="{" ".join(scopes)}"'
        },
    )


@dataclass
class Call:
    """One request the fake answered (bodies kept for assertions; synthetic data only)."""

    op: str
    method: str
    path: str
    params: dict[str, str]
    body: Any
    status: int = 200
    principal: str | None = None


@dataclass
class Fault:
    """An injected failure of one operation (see :meth:`GoogleFake.inject`)."""

    op: str
    status: int
    times: int = 1
    after: int = 0
    apply: bool = False
    retry_after: str | None = None
    message: str | None = None
    seen: int = 0


@dataclass(frozen=True)
class Formula:
    """A cell holding a formula (written with USER_ENTERED): read back as its computed value."""

    text: str

    def value(self) -> str:
        m = re.match(r'^=HYPERLINK\(\s*"[^"]*"\s*,\s*"([^"]*)"\s*\)$', self.text, re.IGNORECASE)
        return m.group(1) if m else "#FORMULA"


@dataclass
class FakeForm:
    doc: dict[str, Any]
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class FakeSpreadsheet:
    tabs: dict[str, list[list[Any]]] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)


# --- A1 notation ------------------------------------------------------------------------------

_A1_CELL = re.compile(r"^\$?([A-Za-z]*)\$?(\d*)$")


def col_number(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ord(ch) - 64)
    return n


def col_letters(n: int) -> str:
    out = ""
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


@dataclass(frozen=True)
class A1:
    """A parsed range: tab title and 1-based bounds (None = open)."""

    tab: str
    col1: int
    row1: int
    col2: int | None
    row2: int | None


def parse_a1(text: str) -> A1:
    """``Tab``, ``Tab!A:A``, ``'My tab'!A1:Q5``, ``Tab!A2:A`` ... (400 when unreadable)."""
    m = re.match(r"^(?:'((?:[^']|'')+)'|([^!']+))(?:!(.+))?$", text)
    if not m:
        raise GoogleHttpError(400, f"Unable to parse range: {text}")
    tab = m.group(1).replace("''", "'") if m.group(1) else m.group(2)
    cells = m.group(3)
    if not cells:
        return A1(tab, 1, 1, None, None)
    first, _, last = cells.partition(":")
    a, b = _A1_CELL.match(first), _A1_CELL.match(last) if last else None
    if not a or (last and not b) or not (a.group(1) or a.group(2)):
        raise GoogleHttpError(400, f"Unable to parse range: {text}")
    col1 = col_number(a.group(1)) if a.group(1) else 1
    row1 = int(a.group(2)) if a.group(2) else 1
    if not last:
        return A1(tab, col1, row1, col1, row1)
    assert b is not None
    col2 = col_number(b.group(1)) if b.group(1) else None
    row2 = int(b.group(2)) if b.group(2) else None
    return A1(tab, col1, row1, col2, row2)


def a1_text(tab: str, col1: int, row1: int, col2: int, row2: int) -> str:
    name = tab if re.fullmatch(r"[A-Za-z0-9_]+", tab) else "'" + tab.replace("'", "''") + "'"
    return f"{name}!{col_letters(col1)}{row1}:{col_letters(col2)}{row2}"


# --- time -------------------------------------------------------------------------------------


def rfc3339(moment: dt.datetime) -> str:
    """Google's timestamp text: microseconds and Z."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> dt.datetime:
    m = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$", text)
    if not m:
        raise ValueError(text)
    frac = (m.group(2) or ".0")[1:7].ljust(6, "0")
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return dt.datetime.fromisoformat(f"{m.group(1)}.{frac}{tz}").astimezone(dt.UTC)


# --- the fake ---------------------------------------------------------------------------------


class GoogleFake:
    """The state of the fake Google and the server that answers for it."""

    def __init__(self) -> None:
        self.forms: dict[str, FakeForm] = {}
        self.spreadsheets: dict[str, FakeSpreadsheet] = {}
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.denied: set[str] = set()  # form or spreadsheet ids answering 403
        self.revoked: set[str] = set()  # principals whose token grant fails (400 invalid_grant)
        self.refresh_tokens: dict[str, str] = {}  # refresh token → principal
        #: scopes a user consented to, per refresh token (absent: every scope)
        self.granted: dict[str, set[str]] = {}
        self.tokens: dict[str, str] = {}  # access token → principal
        self.token_scopes: dict[str, frozenset[str]] = {}  # access token → scopes (absent: all)
        self.quota: dict[str, int] = {}  # "forms"/"sheets" → calls per minute (429 beyond)
        self._quota_log: dict[str, deque[float]] = {}
        self._page_tokens: dict[str, tuple[str, str, int]] = {}
        self._counter = itertools.count(1)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # --- server -------------------------------------------------------------------------------

    def start(self) -> GoogleFake:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @classmethod
    @contextlib.contextmanager
    def running(cls) -> Iterator[GoogleFake]:
        fake = cls().start()
        try:
            yield fake
        finally:
            fake.stop()

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def endpoints(self) -> dict[str, str]:
        """The adapter options that point it at this fake."""
        return {
            "forms_endpoint": self.url,
            "sheets_endpoint": self.url,
            "token_uri": self.token_uri,
        }

    # --- set-up -------------------------------------------------------------------------------

    def add_form(self, form_id: str, doc: Mapping[str, Any]) -> None:
        with self._lock:
            body = dict(doc)
            body["formId"] = form_id
            self.forms[form_id] = FakeForm(body)

    def add_response(
        self,
        form_id: str,
        answers: Mapping[str, str | None],
        *,
        submitted: dt.datetime,
        created: dt.datetime | None = None,
        response_id: str | None = None,
    ) -> str:
        """Add a response; answers that are None or absent are left out (unanswered)."""
        with self._lock:
            rid = response_id or f"ACYDBN{next(self._counter):010d}x{random.getrandbits(24):06x}"
            self.forms[form_id].responses[rid] = {
                "responseId": rid,
                "createTime": rfc3339(created or submitted),
                "lastSubmittedTime": rfc3339(submitted),
                "answers": _answers(answers),
            }
            return rid

    def edit_response(
        self,
        form_id: str,
        response_id: str,
        answers: Mapping[str, str | None],
        *,
        submitted: dt.datetime,
    ) -> None:
        """A respondent edits: answers change (None removes one), lastSubmittedTime moves."""
        with self._lock:
            resp = self.forms[form_id].responses[response_id]
            merged = {
                k: v["textAnswers"]["answers"][0]["value"] for k, v in resp["answers"].items()
            }
            merged.update(answers)
            resp["answers"] = _answers(merged)
            resp["lastSubmittedTime"] = rfc3339(submitted)

    def delete_response(self, form_id: str, response_id: str) -> None:
        """The form owner deletes a response: it is simply no longer listed."""
        with self._lock:
            del self.forms[form_id].responses[response_id]

    def _question(self, form_id: str, question_id: str) -> dict[str, Any]:
        for item in self.forms[form_id].doc.get("items", []):
            question = (item.get("questionItem") or {}).get("question") or {}
            if question.get("questionId") == question_id:
                return question
        raise KeyError(question_id)

    def _revise(self, form_id: str) -> None:
        doc = self.forms[form_id].doc
        doc["revisionId"] = f"{int(doc.get('revisionId') or '0', 16) + 1:08x}"

    def set_scale(self, form_id: str, question_id: str, low: int, high: int) -> None:
        """The owner edits a linear scale's range; answers already given keep their values."""
        with self._lock:
            scale = self._question(form_id, question_id)["scaleQuestion"]
            scale["high"] = high
            if low:
                scale["low"] = low
            else:
                scale.pop("low", None)  # proto3 JSON leaves a 0 out
            self._revise(form_id)

    def delete_question(self, form_id: str, question_id: str) -> None:
        """The owner deletes a question: ``forms.get`` no longer has it (responses keep what
        they were given)."""
        with self._lock:
            doc = self.forms[form_id].doc
            items = doc["items"]
            keep = [
                i
                for i in items
                if ((i.get("questionItem") or {}).get("question") or {}).get("questionId")
                != question_id
            ]
            if len(keep) == len(items):
                raise KeyError(question_id)
            doc["items"] = keep
            self._revise(form_id)

    def add_question(self, form_id: str, item: Mapping[str, Any]) -> None:
        """The owner adds a question item at the end of the form."""
        with self._lock:
            self.forms[form_id].doc["items"].append(json.loads(json.dumps(item)))
            self._revise(form_id)

    def add_spreadsheet(self, spreadsheet_id: str, tabs: Sequence[str] = ("Sheet1",)) -> None:
        with self._lock:
            self.spreadsheets[spreadsheet_id] = FakeSpreadsheet(
                {t: [] for t in tabs}, {t: i for i, t in enumerate(tabs)}
            )

    def inject(
        self,
        op: str,
        status: int,
        *,
        times: int = 1,
        after: int = 0,
        apply: bool = False,
        retry_after: str | None = None,
        message: str | None = None,
    ) -> Fault:
        """Fail ``op`` with ``status`` ``times`` times, after letting ``after`` calls through.

        ``apply=True`` carries the call out before failing (the answer is lost on its way back);
        status 0 drops the connection without an answer.
        """
        fault = Fault(op, status, times, after, apply, retry_after, message)
        with self._lock:
            self.faults.append(fault)
        return fault

    # --- reading the state --------------------------------------------------------------------

    def count(self, op: str | None = None, **params: str) -> int:
        """Calls of ``op`` (every call for None) whose query holds ``params``."""
        return len(self.ops(op, **params))

    def ops(self, op: str | None = None, **params: str) -> list[Call]:
        with self._lock:
            return [
                c
                for c in self.calls
                if (op is None or c.op == op)
                and all(c.params.get(k) == v for k, v in params.items())
            ]

    def writes(self) -> list[Call]:
        """Sheets calls that write (batchUpdate, append, update, addSheet)."""
        with self._lock:
            return [c for c in self.calls if c.op in SHEETS_WRITES]

    def tab(self, spreadsheet_id: str, title: str) -> list[list[Any]] | None:
        """The tab's cells as stored (Formula objects for formulas); None if no such tab."""
        with self._lock:
            grid = self.spreadsheets[spreadsheet_id].tabs.get(title)
            return None if grid is None else [list(r) for r in _trim(grid)]

    def table(self, spreadsheet_id: str, title: str) -> list[dict[str, Any]]:
        """The tab's rows as dicts keyed by the header row."""
        grid = self.tab(spreadsheet_id, title) or []
        if not grid:
            return []
        head = [str(h) for h in grid[0]]
        return [dict(zip(head, r + [""] * (len(head) - len(r)), strict=False)) for r in grid[1:]]

    # --- request handling ---------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(raw_path)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        route = _route(method, parts.path)
        if route is None:
            return _reply(404, GoogleHttpError(404, "Not Found (no such method)").body())
        op, args = route
        try:
            data = (json.loads(body) if body and op != "token" else body) if body else None
        except ValueError:
            return _reply(400, GoogleHttpError(400, "Invalid JSON payload received.").body())
        call = Call(op, method, parts.path, params, data)
        with self._lock:
            self.calls.append(call)
            try:
                if op == "token":
                    return self._token(call, body)
                call.principal = self._auth(headers, op)
                self._check_quota(op)
                fault = self._fault(op)
                if fault is not None and not fault.apply:
                    return self._fail(call, fault)
                result = getattr(self, "_op_" + op.replace(".", "_"))(call, *args)
                if fault is not None:
                    return self._fail(call, fault)
                return _reply(200, result)
            except GoogleHttpError as exc:
                call.status = exc.code
                status, hdrs, payload = _reply(exc.code, exc.body())
                return status, {**hdrs, **exc.headers}, payload
            except Exception as exc:  # a bug in the fake: answer 500 and say so
                call.status = 500
                return _reply(500, GoogleHttpError(500, f"fake: {exc!r}").body())

    def _fault(self, op: str) -> Fault | None:
        """The first fault of ``op`` due now (every fault of ``op`` counts this call)."""
        due = None
        for f in self.faults:
            if f.op != op:
                continue
            f.seen += 1
            if due is None and f.seen > f.after and f.times > 0:
                due = f
        if due is not None:
            due.times -= 1
        return due

    def _fail(self, call: Call, fault: Fault) -> tuple[int, dict[str, str], bytes]:
        call.status = fault.status
        if fault.status == 0:
            return 0, {}, b""
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        status, hdrs, body = _reply(
            fault.status, GoogleHttpError(fault.status, fault.message).body()
        )
        return status, {**hdrs, **headers}, body

    def _check_quota(self, op: str) -> None:
        api = "forms" if op.startswith("forms") else "sheets"
        limit = self.quota.get(api)
        if not limit:
            return
        now = time.monotonic()
        stamps = self._quota_log.setdefault(api, deque())
        while stamps and now - stamps[0] >= 60:
            stamps.popleft()
        if len(stamps) >= limit:
            raise GoogleHttpError(429)
        stamps.append(now)

    def _auth(self, headers: Mapping[str, str], op: str) -> str:
        value = headers.get("authorization", "")
        token = value[7:] if value.lower().startswith("bearer ") else ""
        principal = self.tokens.get(token)
        if principal is None:
            raise GoogleHttpError(
                401,
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        scopes = self.token_scopes.get(token)
        accepted = METHOD_SCOPES[op][0]
        if scopes is not None and not scopes.intersection(accepted):
            raise scope_error(op, accepted)
        return principal

    def _token(self, call: Call, body: bytes) -> tuple[int, dict[str, str], bytes]:
        form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
        call.body = {"grant_type": form.get("grant_type")}  # never keep assertions or secrets
        fault = self._fault("token")
        if fault is not None:
            return self._fail(call, fault)
        grant = form.get("grant_type")
        scopes: frozenset[str] | None = None
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            claims = _jwt_claims(form.get("assertion", ""))
            principal = str(claims.get("iss", ""))
            scopes = frozenset(str(claims.get("scope") or "").split())
            call.body["scope"] = claims.get("scope")
            if principal in self.revoked:  # the key was deleted or disabled
                return self._grant_error(call, "invalid_grant", "Invalid JWT Signature.")
        elif grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            principal = self.refresh_tokens.get(refresh, "")
            if not principal or principal in self.revoked:
                return self._grant_error(
                    call, "invalid_grant", "Token has been expired or revoked."
                )
            consented = self.granted.get(refresh)
            asked = frozenset(form.get("scope", "").split())
            call.body["scope"] = form.get("scope")
            if consented is not None:
                if asked - consented:  # RFC 6749 6: never more than the user granted
                    return self._grant_error(call, "invalid_scope", "Bad Request")
                scopes = asked or frozenset(consented)
            elif asked:
                scopes = asked
        else:
            return self._grant_error(call, "unsupported_grant_type", "Invalid grant_type: ")
        if not principal:
            return self._grant_error(call, "invalid_grant", "Invalid grant: account not found")
        token = f"ya29.fake-{next(self._counter)}"
        self.tokens[token] = principal
        if scopes is not None:
            self.token_scopes[token] = scopes
        call.principal = principal
        out: dict[str, Any] = {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
        if scopes is not None:
            out["scope"] = " ".join(sorted(scopes))
        return _reply(200, out)

    def _grant_error(
        self, call: Call, error: str, description: str
    ) -> tuple[int, dict[str, str], bytes]:
        call.status = 400
        return _reply(400, {"error": error, "error_description": description})

    def _resource(self, kind: str, key: str, table: Mapping[str, Any]) -> Any:
        if key not in table:
            raise GoogleHttpError(404)
        if key in self.denied:
            raise GoogleHttpError(403)
        return table[key]

    # --- Forms --------------------------------------------------------------------------------

    def _op_forms_get(self, call: Call, form_id: str) -> dict[str, Any]:
        return json.loads(json.dumps(self._resource("form", form_id, self.forms).doc))

    def _op_forms_responses_list(self, call: Call, form_id: str) -> dict[str, Any]:
        form: FakeForm = self._resource("form", form_id, self.forms)
        p = call.params
        filter_text = p.get("filter", "")
        keep = _time_filter(filter_text)
        try:
            size = int(p.get("pageSize") or 5000)
        except ValueError:
            raise GoogleHttpError(400, "Invalid value for pageSize") from None
        if size < 0:
            raise GoogleHttpError(400, "page_size must be positive")
        size = min(size or 5000, 5000)
        offset = 0
        if p.get("pageToken"):
            saved = self._page_tokens.get(p["pageToken"])
            if saved is None or saved[0] != form_id:
                raise GoogleHttpError(400, "Invalid page token.")
            if saved[1] != filter_text:
                raise GoogleHttpError(
                    400, "The filter must be the same as in the request of the page token."
                )
            offset = saved[2]
        rows = sorted(
            (r for r in form.responses.values() if keep(parse_time(r["lastSubmittedTime"]))),
            key=lambda r: (r["createTime"], r["responseId"]),
        )
        page = rows[offset : offset + size]
        out: dict[str, Any] = {}
        if page:
            out["responses"] = json.loads(json.dumps(page))
        if offset + size < len(rows):
            token = base64.urlsafe_b64encode(random.randbytes(18)).decode().rstrip("=")
            self._page_tokens[token] = (form_id, filter_text, offset + size)
            out["nextPageToken"] = token
        return out

    # --- Sheets -------------------------------------------------------------------------------

    def _sheet(self, spreadsheet_id: str) -> FakeSpreadsheet:
        return self._resource("spreadsheet", spreadsheet_id, self.spreadsheets)

    def _grid(self, book: FakeSpreadsheet, a1: A1, text: str) -> list[list[Any]]:
        grid = book.tabs.get(a1.tab)
        if grid is None:
            raise GoogleHttpError(400, f"Unable to parse range: {text}")
        return grid

    def _op_spreadsheets_get(self, call: Call, spreadsheet_id: str) -> dict[str, Any]:
        book = self._sheet(spreadsheet_id)
        return {
            "spreadsheetId": spreadsheet_id,
            "sheets": [
                {"properties": {"sheetId": book.ids[t], "title": t, "index": i}}
                for i, t in enumerate(book.tabs)
            ],
        }

    def _op_spreadsheets_batchUpdate(self, call: Call, spreadsheet_id: str) -> dict[str, Any]:
        book = self._sheet(spreadsheet_id)
        replies = []
        requests = (call.body or {}).get("requests") or []
        # a batchUpdate is atomic: every request is checked before any is applied
        for n, req in enumerate(requests):
            if "deleteDimension" in req:
                self._check_delete_dimension(book, n, req["deleteDimension"])
        for n, req in enumerate(requests):
            if "deleteDimension" in req:
                self._delete_dimension(book, req["deleteDimension"])
                replies.append({})
                continue
            add = req.get("addSheet")
            if add is None:
                raise GoogleHttpError(400, f"Invalid requests[{n}]: unsupported by the fake")
            title = (add.get("properties") or {}).get("title") or f"Sheet{len(book.tabs) + 1}"
            if title in book.tabs:
                raise GoogleHttpError(
                    400,
                    f'Invalid requests[{n}].addSheet: A sheet with the name "{title}" '
                    "already exists. Please enter another name.",
                )
            book.tabs[title] = []
            book.ids[title] = 1000 + len(book.ids)
            replies.append(
                {"addSheet": {"properties": {"sheetId": book.ids[title], "title": title}}}
            )
        return {"spreadsheetId": spreadsheet_id, "replies": replies}

    def _check_delete_dimension(self, book: FakeSpreadsheet, n: int, req: Any) -> None:
        """Google's checks of a deleteDimension request (0-based, end exclusive)."""
        where = f"Invalid requests[{n}].deleteDimension"
        rng = req.get("range") if isinstance(req, dict) else None
        if not isinstance(rng, dict):
            raise GoogleHttpError(400, f"{where}: range is required")
        titles = {sid: t for t, sid in book.ids.items()}
        if rng.get("sheetId") not in titles:
            raise GoogleHttpError(400, f"{where}: No grid with id: {rng.get('sheetId')}")
        if rng.get("dimension") != "ROWS":
            raise GoogleHttpError(400, f"{where}: only ROWS is supported by the fake")
        start, end = rng.get("startIndex"), rng.get("endIndex")
        if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end:
            raise GoogleHttpError(400, f"{where}: the range must have startIndex < endIndex")
        grid = book.tabs[titles[rng["sheetId"]]]
        rows = max(len(grid), GRID_ROWS)
        if end > rows:
            raise GoogleHttpError(
                400, f"{where}: Range exceeds grid limits. Max rows: {rows}, max columns: 26"
            )
        if start == 0 and end >= rows:
            raise GoogleHttpError(400, f"{where}: You can't delete all the rows on the sheet.")

    def _delete_dimension(self, book: FakeSpreadsheet, req: Any) -> None:
        """Delete rows: the rows below move up (requests apply one after the other)."""
        rng = req["range"]
        titles = {sid: t for t, sid in book.ids.items()}
        grid = book.tabs[titles[rng["sheetId"]]]
        del grid[rng["startIndex"] : rng["endIndex"]]

    def _op_values_get(self, call: Call, spreadsheet_id: str, text: str) -> dict[str, Any]:
        book = self._sheet(spreadsheet_id)
        a1 = parse_a1(text)
        grid = self._grid(book, a1, text)
        render = call.params.get("valueRenderOption", "FORMATTED_VALUE")
        rows = []
        last_row = a1.row2 or len(grid)
        for r in range(a1.row1, last_row + 1):
            src = grid[r - 1] if r - 1 < len(grid) else []
            last_col = a1.col2 or len(src)
            row = [
                _render(src[c - 1] if c - 1 < len(src) else "", render)
                for c in range(a1.col1, last_col + 1)
            ]
            while row and row[-1] == "":
                row.pop()
            rows.append(row)
        while rows and not rows[-1]:
            rows.pop()
        if call.params.get("majorDimension") == "COLUMNS":
            width = max((len(r) for r in rows), default=0)
            rows = [[r[i] if i < len(r) else "" for r in rows] for i in range(width)]
        out: dict[str, Any] = {
            "range": text,
            "majorDimension": call.params.get("majorDimension", "ROWS"),
        }
        if rows:
            out["values"] = rows
        return out

    def _write(self, book: FakeSpreadsheet, text: str, values: Any, how: str) -> tuple[int, int]:
        a1 = parse_a1(text)
        grid = self._grid(book, a1, text)
        if not isinstance(values, list) or not all(isinstance(r, list) for r in values):
            raise GoogleHttpError(400, "Invalid values: a list of rows is required")
        for i, row in enumerate(values):
            r = a1.row1 + i
            if a1.row2 is not None and r > a1.row2:
                raise GoogleHttpError(
                    400, f"Requested writing within range [{text}], but tried writing to row [{r}]"
                )
            for j, value in enumerate(row):
                c = a1.col1 + j
                if a1.col2 is not None and c > a1.col2:
                    raise GoogleHttpError(
                        400,
                        f"Requested writing within range [{text}], but tried writing to "
                        f"column [{col_letters(c)}]",
                    )
                if value is None:
                    continue  # null leaves the cell as it is
                _put(grid, r, c, _entered(value, how))
        return len(values), max((len(r) for r in values), default=0)

    def _op_values_batchUpdate(self, call: Call, spreadsheet_id: str) -> dict[str, Any]:
        book = self._sheet(spreadsheet_id)
        body = call.body or {}
        how = _input_option(body.get("valueInputOption"))
        rows = cells = 0
        for item in body.get("data") or []:
            n, w = self._write(book, str(item.get("range", "")), item.get("values"), how)
            rows += n
            cells += n * w
        return {
            "spreadsheetId": spreadsheet_id,
            "totalUpdatedRows": rows,
            "totalUpdatedCells": cells,
            "totalUpdatedSheets": 1 if rows else 0,
        }

    def _op_values_update(self, call: Call, spreadsheet_id: str, text: str) -> dict[str, Any]:
        book = self._sheet(spreadsheet_id)
        how = _input_option(call.params.get("valueInputOption"))
        n, w = self._write(book, text, (call.body or {}).get("values"), how)
        return {
            "spreadsheetId": spreadsheet_id,
            "updatedRange": text,
            "updatedRows": n,
            "updatedCells": n * w,
        }

    def _op_values_append(self, call: Call, spreadsheet_id: str, text: str) -> dict[str, Any]:
        book = self._sheet(spreadsheet_id)
        how = _input_option(call.params.get("valueInputOption"))
        option = call.params.get("insertDataOption", "OVERWRITE")
        if option not in ("OVERWRITE", "INSERT_ROWS"):
            raise GoogleHttpError(400, f"Invalid value at 'insert_data_option' ({option})")
        a1 = parse_a1(text)
        grid = self._grid(book, a1, text)
        values = (call.body or {}).get("values")
        if not isinstance(values, list) or not values:
            raise GoogleHttpError(400, "Invalid values: a list of rows is required")
        last = 0  # the table: every row down to the last one holding a value
        for r, row in enumerate(grid, start=1):
            if any(v not in ("", None) for v in row):
                last = r
        start = last + 1
        width = max(len(r) for r in values)
        end_col = a1.col1 + width - 1
        for i, row in enumerate(values):
            for j, value in enumerate(row):
                if value is not None:
                    _put(grid, start + i, a1.col1 + j, _entered(value, how))
        return {
            "spreadsheetId": spreadsheet_id,
            "tableRange": a1_text(a1.tab, a1.col1, 1, end_col, last) if last else "",
            "updates": {
                "spreadsheetId": spreadsheet_id,
                "updatedRange": a1_text(a1.tab, a1.col1, start, end_col, start + len(values) - 1),
                "updatedRows": len(values),
                "updatedColumns": width,
                "updatedCells": len(values) * width,
            },
        }


# --- helpers ----------------------------------------------------------------------------------

_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"^/token$"), "token"),
    ("GET", re.compile(r"^/v1/forms/([^/]+)$"), "forms.get"),
    ("GET", re.compile(r"^/v1/forms/([^/]+)/responses$"), "forms.responses.list"),
    ("GET", re.compile(r"^/v4/spreadsheets/([^/:]+)$"), "spreadsheets.get"),
    ("POST", re.compile(r"^/v4/spreadsheets/([^/:]+):batchUpdate$"), "spreadsheets.batchUpdate"),
    ("POST", re.compile(r"^/v4/spreadsheets/([^/]+)/values:batchUpdate$"), "values.batchUpdate"),
    ("POST", re.compile(r"^/v4/spreadsheets/([^/]+)/values/(.+):append$"), "values.append"),
    ("GET", re.compile(r"^/v4/spreadsheets/([^/]+)/values/(.+)$"), "values.get"),
    ("PUT", re.compile(r"^/v4/spreadsheets/([^/]+)/values/(.+)$"), "values.update"),
)


def _route(method: str, path: str) -> tuple[str, tuple[str, ...]] | None:
    for verb, pattern, op in _ROUTES:
        m = pattern.match(path)
        if m and verb == method:
            return op, tuple(unquote(g) for g in m.groups())
    return None


def _reply(status: int, doc: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json; charset=UTF-8"}, json.dumps(doc).encode()


def _answers(answers: Mapping[str, str | None]) -> dict[str, Any]:
    return {
        qid: {"questionId": qid, "textAnswers": {"answers": [{"value": str(v)}]}}
        for qid, v in answers.items()
        if v is not None
    }


def _time_filter(text: str) -> Any:
    if not text:
        return lambda moment: True
    m = re.fullmatch(r"\s*timestamp\s*(>=|>)\s*(\S+)\s*", text)
    if not m:
        raise GoogleHttpError(
            400, "Invalid filter: only 'timestamp > N' and 'timestamp >= N' are supported"
        )
    try:
        bound = parse_time(m.group(2))
    except ValueError:
        raise GoogleHttpError(400, "Invalid filter: the timestamp is not RFC 3339") from None
    if m.group(1) == ">=":
        return lambda moment: moment >= bound
    return lambda moment: moment > bound


def _input_option(value: Any) -> str:
    if value not in ("RAW", "USER_ENTERED"):
        raise GoogleHttpError(400, "Invalid valueInputOption: give RAW or USER_ENTERED")
    return str(value)


def _entered(value: Any, how: str) -> Any:
    """A cell as stored: RAW keeps values as sent; USER_ENTERED parses text as if typed."""
    if how == "RAW" or not isinstance(value, str):
        return value
    if value.startswith("="):
        return Formula(value)
    if value.upper() in ("TRUE", "FALSE"):
        return value.upper() == "TRUE"
    with contextlib.suppress(ValueError):
        number = float(value)
        return int(number) if number.is_integer() else number
    return value


def _render(value: Any, how: str) -> Any:
    if isinstance(value, Formula):
        return value.text if how == "FORMULA" else value.value()
    if how in ("UNFORMATTED_VALUE", "FORMULA"):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _put(grid: list[list[Any]], row: int, col: int, value: Any) -> None:
    while len(grid) < row:
        grid.append([])
    line = grid[row - 1]
    while len(line) < col:
        line.append("")
    line[col - 1] = value


def _trim(grid: list[list[Any]]) -> list[list[Any]]:
    rows = [list(r) for r in grid]
    for r in rows:
        while r and r[-1] == "":
            r.pop()
    while rows and not rows[-1]:
        rows.pop()
    return rows


def _jwt_claims(assertion: str) -> dict[str, Any]:
    try:
        payload = assertion.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


class _Handler(BaseHTTPRequestHandler):
    owner: GoogleFake
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # one small answer per request: no 40 ms ACK stalls

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, extra, payload = self.owner.handle(self.command, self.path, headers, body)
        if status == 0:  # drop the connection: the client never hears back
            self.close_connection = True
            return
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return


# --- synthetic forms --------------------------------------------------------------------------

#: neutral item labels (short domain labels, never the measures' item wording)
LABELS = {
    "ORS": ("Individually", "Interpersonally", "Socially", "Overall"),
    "SRS": ("Relationship", "Goals and topics", "Approach or method", "Overall"),
}


def qid(*parts: object) -> str:
    """A questionId in Google's style (8 hex digits), stable for the same parts."""
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class FormLayout:
    """The questionIds of a synthetic form: client, clinician, date and items per measure."""

    form_id: str
    client: str
    clinician: str
    date: str
    items: Mapping[str, tuple[str, ...]]


def measure_form(
    form_id: str, measures: Sequence[str], *, low: int = 0, high: int = 10, title: str = ""
) -> tuple[dict[str, Any], FormLayout]:
    """A form doc: client code (text), clinician (choice), session date, then one section per
    measure with four linear-scale questions ``low``..``high`` (``low`` left out when 0)."""
    client, clinician, date = (qid(form_id, k) for k in ("client", "clinician", "date"))
    items: list[dict[str, Any]] = [
        _item(client, "Client code", {"textQuestion": {}}, required=True),
        _item(
            clinician,
            "Clinician",
            {
                "choiceQuestion": {
                    "type": "DROP_DOWN",
                    "options": [{"value": "T01"}, {"value": "T02"}],
                }
            },
        ),
        _item(date, "Session date", {"dateQuestion": {"includeYear": True}}),
    ]
    ids: dict[str, tuple[str, ...]] = {}
    for m_index, measure in enumerate(measures):
        items.append({"itemId": f"pb{m_index}", "title": f"{measure} section", "pageBreakItem": {}})
        scale: dict[str, Any] = {"high": high, "lowLabel": "low", "highLabel": "high"}
        if low:
            scale["low"] = low
        qids = []
        for i, label in enumerate(LABELS.get(measure, ("A", "B", "C", "D"))):
            q = qid(form_id, measure, i)
            qids.append(q)
            items.append(_item(q, label, {"scaleQuestion": scale}, required=False))
        ids[measure] = tuple(qids)
    doc = {
        "formId": form_id,
        "info": {"title": title or f"{'/'.join(measures)} form", "documentTitle": title or form_id},
        "revisionId": "00000001",
        "items": items,
    }
    return doc, FormLayout(form_id, client, clinician, date, ids)


def _item(
    question_id: str, title: str, kind: dict[str, Any], *, required: bool = False
) -> dict[str, Any]:
    return {
        "itemId": "i" + question_id,
        "title": title,
        "questionItem": {"question": {"questionId": question_id, "required": required, **kind}},
    }


def synthetic_answers(
    layout: FormLayout,
    rng: random.Random,
    *,
    client: str,
    measures: Sequence[str] | None = None,
    low: int = 0,
    high: int = 10,
) -> dict[str, str | None]:
    """Plausible answers (strings) for ``measures`` of a form; occasionally no clinician."""
    answers: dict[str, str | None] = {
        layout.client: client,
        layout.clinician: rng.choice(["T01", "T02", None]),
    }
    for measure in measures or list(layout.items):
        base = rng.randint(low + (high - low) // 4, high)
        for q in layout.items[measure]:
            answers[q] = str(min(high, max(low, base + rng.randint(-2, 1))))
    return answers


def populate(
    fake: GoogleFake,
    layout: FormLayout,
    n: int,
    *,
    seed: int = 1,
    start: dt.datetime = dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.UTC),
    clients: int = 0,
    step: dt.timedelta = dt.timedelta(minutes=7),
    low: int = 0,
    high: int = 10,
) -> list[str]:
    """Add ``n`` synthetic responses to the form (clients ``G0001``...), oldest first."""
    rng = random.Random(seed)
    clients = clients or max(1, n // 6)
    out = []
    for i in range(n):
        answers = synthetic_answers(
            layout, rng, client=f"G{i % clients + 1:04d}", low=low, high=high
        )
        out.append(fake.add_response(layout.form_id, answers, submitted=start + i * step))
    return out


# --- credentials and time for tests ---------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def service_account_json(email: str = "fit-sync@clinic-test.iam.gserviceaccount.com") -> str:
    """A service-account key file (a throwaway RSA key made for the test run)."""
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "clinic-test",
            "private_key_id": "0123456789abcdef",
            "private_key": _private_key_pem(),
            "client_email": email,
            "client_id": "100000000000000000001",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )


@dataclass
class FakeClock:
    """A monotonic clock that only moves when something sleeps (retries never wait)."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


@pytest.fixture
def google_fake() -> Iterator[GoogleFake]:
    """A running :class:`GoogleFake` (stopped after the test)."""
    with GoogleFake.running() as fake:
        yield fake
