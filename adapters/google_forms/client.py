"""HTTP calls to the Forms and Sheets APIs: throttles, retries and error messages.

Every call goes through :func:`fit_core.http.send`. Reads and idempotent writes are retried on
429 and 500/502/503/504 with truncated exponential backoff and full jitter, honouring
``Retry-After``, for at most ``max_retry_seconds``. ``values:append`` is sent once only
(:meth:`GoogleApi.append_once`): whether a failed append was applied is unknown, so the caller
checks the sheet before it appends again (see :mod:`.sheet`).

400/401/403/404 are never retried: they become a ConfigError (401, 403, 404: fix the
credentials, the scopes, the id or the sharing) or a SourceError (400) whose message names the
real cause and the next step. A 403 is told apart by Google's ErrorInfo reason: missing OAuth
scopes (``ACCESS_TOKEN_SCOPE_INSUFFICIENT``), an API not enabled (``SERVICE_DISABLED``), or no
access to the file. A refused token grant (``invalid_grant``, ``invalid_scope``, ...) is
explained for the kind of credential in use: a refresh token is re-consented, a service
account's key replaced.
Per-minute call budgets (Forms 180, Sheets 60 by default) are kept by sliding-window throttles.
Logs name the call and the HTTP status, never a query string, a body or a token.
"""

from __future__ import annotations

import collections
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import requests

from fit_core.errors import ConfigError, FitError, SourceError, SourceUnavailable
from fit_core.http import DEFAULT_TIMEOUT, RetryPolicy, Throttle, send
from fit_core.redact import redact

from .auth import SCOPES
from .options import Connection

try:  # google-auth is the optional `google` extra; without it no session is ever made
    from google.auth.exceptions import RefreshError, TransportError
except ImportError:  # pragma: no cover - exercised by tests that hide google-auth

    class RefreshError(Exception):  # type: ignore[no-redef]
        """Stand-in: never raised without google-auth."""

    class TransportError(Exception):  # type: ignore[no-redef]
        """Stand-in: never raised without google-auth."""


log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: the scope each call needs (the one fit-sync asks for)
CALL_SCOPES = {
    "forms.get": SCOPES[0],
    "forms.responses.list": SCOPES[1],
}


@dataclass
class Timing:
    """The clock, sleep and random source of retries and throttles (tests inject fakes)."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)


@dataclass
class WindowThrottle(Throttle):
    """At most ``limit`` calls in any ``window`` seconds (a per-minute quota).

    Unlike a fixed interval it lets a short burst through at full speed and waits only when the
    budget of the last window is spent.
    """

    limit: int = 60
    window: float = 60.0
    waited: float = 0.0
    _stamps: collections.deque[float] = field(default_factory=collections.deque, repr=False)

    def wait(self) -> None:
        with self._lock:
            now = self.clock()
            self._expire(now)
            if len(self._stamps) >= self.limit:
                gap = self._stamps[0] + self.window - now
                if gap > 0:
                    log.info("waiting %.1f s to stay within %d calls a minute", gap, self.limit)
                    self.sleep(gap)
                    self.waited += gap
                    now = max(self.clock(), self._stamps[0] + self.window)
                self._expire(now)
            self._stamps.append(now)

    def _expire(self, now: float) -> None:
        while self._stamps and now - self._stamps[0] >= self.window:
            self._stamps.popleft()


@dataclass
class CallStats:
    """How many calls of each kind this adapter made (for logs and benchmarks)."""

    counts: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, name: str) -> None:
        self.counts[name] += 1


class GoogleApi:
    """The few Forms and Sheets calls the adapter needs, over one authorized session."""

    def __init__(
        self,
        session: requests.Session,
        connection: Connection,
        *,
        source: str,
        account: str,
        timing: Timing | None = None,
        kind: str = "service_account",
    ) -> None:
        self.session = session
        self.conn = connection
        self.source = source
        self.account = account
        self.kind = kind  # service_account | oauth | token: decides what error hints say
        self.timing = timing or Timing()
        self.stats = CallStats()
        t = self.timing
        self.policy = RetryPolicy(
            statuses=RETRY_STATUSES,
            connection_errors=True,
            max_attempts=12,
            backoff_base=1.0,
            backoff_cap=32.0,
            max_elapsed=float(connection.max_retry_seconds),
        )
        self.forms_throttle = WindowThrottle(
            0.0, clock=t.clock, sleep=t.sleep, limit=connection.forms_calls_per_minute
        )
        self.sheets_throttle = WindowThrottle(
            0.0, clock=t.clock, sleep=t.sleep, limit=connection.sheets_calls_per_minute
        )

    # --- Forms ---------------------------------------------------------------------------------

    def get_form(self, form_id: str) -> Mapping[str, Any]:
        """``forms.get``: the form's info and items."""
        url = f"{self.conn.forms_endpoint}/v1/forms/{quote(form_id, safe='')}"
        return self._json("forms.get", "forms", "GET", url, f"form {form_id}")

    def list_responses(
        self, form_id: str, filter_text: str | None, page_size: int
    ) -> Iterator[list[Mapping[str, Any]]]:
        """``forms.responses.list``: one list per page, following ``nextPageToken``.

        The same filter goes with every page token (a token is only valid with its filter).
        """
        url = f"{self.conn.forms_endpoint}/v1/forms/{quote(form_id, safe='')}/responses"
        params: dict[str, Any] = {"pageSize": page_size}
        if filter_text:
            params["filter"] = filter_text
        token: str | None = None
        while True:
            if token:
                params["pageToken"] = token
            # spaces as %20, not "+": every server and proxy reads %20 as a space
            query = urlencode(params, quote_via=quote)
            doc = self._json(
                "forms.responses.list", "forms", "GET", url, f"form {form_id}", params=query
            )
            page = doc.get("responses") or []
            yield [r for r in page if isinstance(r, Mapping)]
            token = doc.get("nextPageToken") or None
            if not token:
                return

    # --- Sheets --------------------------------------------------------------------------------

    def values_url(self, spreadsheet_id: str, suffix: str = "") -> str:
        return f"{self.conn.sheets_endpoint}/v4/spreadsheets/{quote(spreadsheet_id, safe='')}" + (
            f"/values{suffix}"
        )

    def get_values(self, spreadsheet_id: str, a1: str, tab: str) -> list[list[Any]] | None:
        """``values.get`` of ``a1`` (rows); None when its tab ``tab`` does not exist.

        Google answers a range on a missing tab with 400 "Unable to parse range"; for any other
        400 or a 404 the spreadsheet's tab list (``spreadsheets.get``) decides.
        """
        url = self.values_url(spreadsheet_id, "/" + quote(a1, safe=""))
        what = f"spreadsheet {spreadsheet_id}"
        response = self._send(
            "values.get", "sheets", "GET", url, what, params={"majorDimension": "ROWS"}
        )
        if response.status_code in (400, 404):
            if "unable to parse range" in _message(response).lower():
                return None
            titles = self.tab_titles(spreadsheet_id)
            if titles is not None and tab not in titles:
                return None
        doc = self._decode(response, what)
        values = doc.get("values") or []  # Google leaves "values" out for an empty range
        return [row if isinstance(row, list) else [] for row in values]

    def tab_titles(self, spreadsheet_id: str) -> list[str] | None:
        """The spreadsheet's tab names (``spreadsheets.get``); None if that call fails."""
        url = f"{self.conn.sheets_endpoint}/v4/spreadsheets/{quote(spreadsheet_id, safe='')}"
        response = self._send(
            "spreadsheets.get",
            "sheets",
            "GET",
            url,
            f"spreadsheet {spreadsheet_id}",
            params={"fields": "sheets.properties.title"},
        )
        if response.status_code != 200:
            return None
        try:
            sheets = response.json().get("sheets") or []
            return [str(s["properties"]["title"]) for s in sheets]
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def batch_update_values(
        self, spreadsheet_id: str, data: Sequence[Mapping[str, Any]]
    ) -> Mapping[str, Any]:
        """``values:batchUpdate`` with ``valueInputOption=RAW`` (idempotent, so retried)."""
        body = {"valueInputOption": "RAW", "data": list(data)}
        url = self.values_url(spreadsheet_id, ":batchUpdate")
        return self._json(
            "values.batchUpdate", "sheets", "POST", url, f"spreadsheet {spreadsheet_id}", json=body
        )

    def append_once(
        self, spreadsheet_id: str, a1: str, rows: Sequence[Sequence[Any]]
    ) -> tuple[Mapping[str, Any] | None, requests.Response | None]:
        """``values:append`` (RAW), sent once: ``(result, None)`` when it succeeded, or
        ``(None, response)`` after a retryable failure whose effect is unknown (the response is
        None after a connection error). Other failures raise."""
        url = self.values_url(spreadsheet_id, "/" + quote(a1, safe="") + ":append")
        what = f"spreadsheet {spreadsheet_id}"
        # insertDataOption is left at its default, OVERWRITE: rows are written below the table
        # and nothing above moves, so the row numbers the adapter knows stay right.
        params = {"valueInputOption": "RAW", "includeValuesInResponse": "false"}
        once = RetryPolicy(connection_errors=False, max_attempts=1)
        try:
            response = self._send(
                "values.append",
                "sheets",
                "POST",
                url,
                what,
                params=params,
                json={"majorDimension": "ROWS", "values": list(rows)},
                policy=once,
            )
        except SourceUnavailable:
            return None, None
        if response.status_code in RETRY_STATUSES:
            return None, response
        return self._decode(response, what), None

    def sheet_id(self, spreadsheet_id: str, tab: str) -> int | None:
        """The numeric id of tab ``tab`` (``spreadsheets.get``); None when there is no such
        tab."""
        url = f"{self.conn.sheets_endpoint}/v4/spreadsheets/{quote(spreadsheet_id, safe='')}"
        doc = self._json(
            "spreadsheets.get",
            "sheets",
            "GET",
            url,
            f"spreadsheet {spreadsheet_id}",
            params={"fields": "sheets.properties(sheetId,title)"},
        )
        for sheet in doc.get("sheets") or []:
            props = sheet.get("properties") if isinstance(sheet, Mapping) else None
            if isinstance(props, Mapping) and props.get("title") == tab:
                value = props.get("sheetId")
                return int(value) if isinstance(value, int) else None
        return None

    def delete_rows_once(
        self, spreadsheet_id: str, sheet_id: int, spans: Sequence[tuple[int, int]]
    ) -> tuple[bool, requests.Response | None]:
        """Delete rows (``spreadsheets.batchUpdate`` with ``deleteDimension``), sent once:
        ``spans`` are 0-based (start, end) row ranges, end exclusive, applied in the order
        given (give them bottom-up). ``(True, None)`` when done; ``(False, response)`` after a
        retryable failure whose effect is unknown (None: the connection was lost); other
        failures raise. A repeat could delete other rows (the rows below move up), so the
        caller reads the tab again before it retries."""
        url = f"{self.conn.sheets_endpoint}/v4/spreadsheets/{quote(spreadsheet_id, safe='')}"
        body = {
            "requests": [
                {
                    "deleteDimension": {
                        "range": {
                            "sheetId": sheet_id,
                            "dimension": "ROWS",
                            "startIndex": start,
                            "endIndex": end,
                        }
                    }
                }
                for start, end in spans
            ]
        }
        what = f"spreadsheet {spreadsheet_id}"
        once = RetryPolicy(connection_errors=False, max_attempts=1)
        try:
            response = self._send(
                "spreadsheets.batchUpdate",
                "sheets",
                "POST",
                url + ":batchUpdate",
                what,
                json=body,
                policy=once,
            )
        except SourceUnavailable:
            return False, None
        if response.status_code in RETRY_STATUSES:
            return False, response
        self._decode(response, what)
        return True, None

    def add_sheet(self, spreadsheet_id: str, title: str) -> bool:
        """Add a tab; False when a tab of that name already exists."""
        url = f"{self.conn.sheets_endpoint}/v4/spreadsheets/{quote(spreadsheet_id, safe='')}"
        body = {"requests": [{"addSheet": {"properties": {"title": title}}}]}
        what = f"spreadsheet {spreadsheet_id}"
        response = self._send(
            "spreadsheets.batchUpdate", "sheets", "POST", url + ":batchUpdate", what, json=body
        )
        if response.status_code == 400 and "already exists" in _message(response):
            return False
        self._decode(response, what)
        return True

    # --- plumbing ------------------------------------------------------------------------------

    def _json(
        self, name: str, api: str, method: str, url: str, what: str, **kwargs: Any
    ) -> Mapping[str, Any]:
        return self._decode(self._send(name, api, method, url, what, **kwargs), what)

    def _send(
        self,
        name: str,
        api: str,
        method: str,
        url: str,
        what: str,
        *,
        policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        throttle = self.forms_throttle if api == "forms" else self.sheets_throttle
        t = self.timing
        self.stats.add(name)
        try:
            response = send(
                self.session,
                method,
                url,
                policy=policy or self.policy,
                throttle=throttle,
                timeout=DEFAULT_TIMEOUT,
                sleep=t.sleep,
                clock=t.clock,
                rng=t.rng,
                **kwargs,
            )
        except RefreshError as exc:
            raise grant_error(exc, self.kind, self.source, self.account) from None
        except TransportError:
            raise SourceUnavailable(
                f"{what}: cannot reach Google's token endpoint ({self.conn.token_uri}) to get an "
                "access token",
                hint="check the network or a proxy, or the token_uri setting; the next run tries "
                "again",
            ) from None
        except requests.RequestException as exc:
            raise SourceUnavailable(
                f"{what}: cannot reach Google ({name}: {type(exc).__name__})",
                hint="check the network, a proxy, or forms_endpoint/sheets_endpoint; the next "
                "run tries again",
            ) from None
        log.debug("%s %s: HTTP %d", name, what, response.status_code)
        return response

    def _decode(self, response: requests.Response, what: str) -> Mapping[str, Any]:
        if response.status_code != 200:
            raise self.error(response, what)
        try:
            doc = response.json()
        except ValueError:
            raise SourceError(f"{what}: Google answered with something that is not JSON") from None
        if not isinstance(doc, dict):
            raise SourceError(f"{what}: Google answered with an unexpected JSON value")
        return doc

    def error(self, response: requests.Response, what: str, call: str = "") -> FitError:
        """The FitError for a failed call, saying what to fix."""
        return api_error(
            response,
            what,
            self.account,
            self.source,
            self.conn.max_retry_seconds,
            kind=self.kind,
            call=call or _call_name(response),
        )


def _call_name(response: requests.Response) -> str:
    """Which call a response answers, from its URL (for the scope a 403 is missing)."""
    path = response.request.path_url if response.request is not None else ""
    path = path.split("?", 1)[0]
    if path.startswith("/v1/forms/"):
        return "forms.responses.list" if path.endswith("/responses") else "forms.get"
    return "sheets" if path.startswith("/v4/") else ""


def _new_credential_hint(kind: str, source: str) -> str:
    """How to store new credentials of the kind in use."""
    if kind == "oauth":
        return (
            "run the OAuth consent flow again (with the scopes "
            f"{', '.join(SCOPES)}) and store the new authorized-user JSON with "
            f"`fit keys set {source} oauth --from-file credentials.json`"
        )
    if kind == "token":
        return "mint a new access token (with the scopes " + ", ".join(SCOPES) + ")"
    return (
        "create a new JSON key for the service account (IAM & Admin → Service accounts → Keys) "
        f"and store it with `fit keys set {source} service_account --from-file key.json`"
    )


def grant_error(exc: RefreshError, kind: str, source: str, account: str) -> ConfigError:
    """The token endpoint refused to mint an access token: say why, for this kind of credential.

    google-auth raises ``RefreshError(text, response_body)``; only the OAuth error code and its
    description are shown, never the exception's tuple or a token.
    """
    body = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], Mapping) else {}
    code = str(body.get("error") or "")
    said = str(body.get("error_description") or "")
    if not code:
        text = str(exc.args[0]) if exc.args else ""
        code, _, rest = text.partition(":")
        code, said = (code.strip(), rest.strip()) if rest else ("", text)
    reason = _short(f"{code}: {said}" if code and said else code or said or "no reason given")
    who = f"source {source!r}"
    lowered = said.lower()
    if code == "invalid_scope":
        return ConfigError(
            f"Google's token endpoint refused the scopes fit-sync asks for ({reason}): the OAuth "
            f"grant of {who} does not include them",
            hint=_new_credential_hint(kind, source),
        )
    if code == "invalid_grant" and kind == "oauth":
        return ConfigError(
            f"Google's token endpoint refused the refresh token of {who} ({reason})",
            hint="the refresh token was revoked or has expired (access removed in the Google "
            "account, a password change, six months unused, or 7 days for an app whose OAuth "
            f"consent screen is in 'Testing'): {_new_credential_hint(kind, source)}",
        )
    if code == "invalid_grant" and ("timeframe" in lowered or re.search(r"\b(iat|exp)\b", lowered)):
        return ConfigError(
            f"Google's token endpoint refused the credentials of {who} ({reason}): this "
            "machine's clock is off",
            hint="set the clock right (enable NTP time sync), then run again",
        )
    if code == "invalid_grant":
        return ConfigError(
            f"Google's token endpoint refused the credentials of {who} ({reason}): the "
            f"service account key of {account} was deleted or disabled, or the account itself",
            hint=_new_credential_hint(kind, source),
        )
    if code in ("invalid_client", "unauthorized_client"):
        return ConfigError(
            f"Google's token endpoint refused the OAuth client of {who} ({reason})",
            hint="the client id or secret in the stored JSON is wrong or the OAuth client was "
            f"deleted: {_new_credential_hint(kind, source)}",
        )
    return ConfigError(
        f"Google's token endpoint refused the credentials of {who} ({reason})",
        hint=_new_credential_hint(kind, source),
    )


def api_error(
    response: requests.Response,
    what: str,
    account: str,
    source: str,
    retry_seconds: int,
    *,
    kind: str = "service_account",
    call: str = "",
) -> FitError:
    """Map a Google error response onto fit-sync's errors (and so its exit codes)."""
    code = response.status_code
    status, message = _status(response), _message(response)
    detail = f" ({code} {status})" if status else f" ({code})"
    said = f": {message}" if message else ""
    reasons = _reasons(response)
    if code == 401:
        return ConfigError(
            f"{what}: Google refused the access token of {account}{detail}",
            hint=f"the credentials may have been revoked: {_new_credential_hint(kind, source)}",
        )
    if code == 403:
        return _forbidden(response, what, account, source, kind, call, detail, reasons, message)
    if code == 404:
        return ConfigError(
            f"{what} was not found{detail}",
            hint="check the id (a form's id is in its editor URL …/forms/d/<id>/edit; the "
            f"…/d/e/… responder link is not it); Google also answers 404 when it is not "
            f"shared with {account}",
        )
    if code == 400:
        return SourceError(
            f"{what}: Google rejected the request{detail}{said}",
            hint="check the tab name (scores_tab) and the form's mapping; if it persists, "
            "report it with this message",
        )
    if code == 429:
        return SourceError(
            f"{what}: Google's quota is still exhausted after retrying for up to "
            f"{retry_seconds} s{detail}",
            hint="what was confirmed is kept and the rest goes next run; sync less often, lower "
            "sheets_calls_per_minute, or ask Google for a higher quota",
        )
    if code in RETRY_STATUSES:
        return SourceUnavailable(
            f"{what}: Google kept answering HTTP {code} for up to {retry_seconds} s",
            hint="a Google outage or a proxy problem; the next run tries again",
        )
    return SourceError(f"{what}: unexpected HTTP {code} from Google{said}")


def _forbidden(
    response: requests.Response,
    what: str,
    account: str,
    source: str,
    kind: str,
    call: str,
    detail: str,
    reasons: set[str],
    message: str,
) -> ConfigError:
    """A 403, by its real cause: missing scopes, an API not enabled, or no access."""
    low = message.lower()
    if (
        reasons & {"ACCESS_TOKEN_SCOPE_INSUFFICIENT", "insufficientPermissions"}
        or "insufficient authentication scopes" in low
        or 'error="insufficient_scope"' in response.headers.get("WWW-Authenticate", "")
    ):
        needed = CALL_SCOPES.get(call, SCOPES[2] if call == "sheets" else ", ".join(SCOPES))
        return ConfigError(
            f"{what}: the access token of {account} lacks the OAuth scope {needed}{detail}: "
            "Google refused the call for its scopes, not for sharing",
            hint=_new_credential_hint(kind, source)
            if kind != "service_account"
            else "fit-sync asks for "
            + ", ".join(SCOPES)
            + " itself; if a proxy or an admin policy (domain-wide delegation) limits the "
            "service account's scopes, allow these",
        )
    if reasons & {"SERVICE_DISABLED", "accessNotConfigured"} or (
        "disabled" in low or "has not been used" in low
    ):
        api = "Google Sheets API" if call == "sheets" else "Google Forms API"
        return ConfigError(
            f"{what}: the {api} is not enabled for the credentials' Google Cloud project{detail}",
            hint="enable the Google Forms API and the Google Sheets API (APIs & Services → "
            "Library) in the project the credentials belong to, wait a minute, then retry",
        )
    if kind == "oauth":
        return ConfigError(
            f"{what}: {account} has no access{detail}",
            hint="the Google account that granted fit-sync access cannot open it: share the "
            "form (as a collaborator) and the spreadsheet (as an Editor) with that account, or "
            "grant access again as an account that can",
        )
    return ConfigError(
        f"{what}: {account} has no access{detail}",
        hint=f"share the form and the spreadsheet with {account}: add it as a collaborator "
        "(editor) on the form, and as an Editor of the spreadsheet",
    )


def _reasons(response: requests.Response) -> set[str]:
    """Google's machine-readable reasons: ErrorInfo ``details[].reason`` and the legacy
    ``errors[].reason``."""
    err = _error_doc(response)
    out = set()
    for key in ("details", "errors"):
        for entry in err.get(key) or []:
            if isinstance(entry, Mapping) and entry.get("reason"):
                out.add(str(entry["reason"]))
    return out


def _error_doc(response: requests.Response) -> Mapping[str, Any]:
    try:
        doc = response.json()
    except ValueError:
        return {}
    err = doc.get("error") if isinstance(doc, dict) else None
    return err if isinstance(err, dict) else {}


def _status(response: requests.Response) -> str:
    return str(_error_doc(response).get("status") or "")


def _message(response: requests.Response) -> str:
    """Google's error message (no answers in it), shortened and with secrets masked."""
    return _short(_error_doc(response).get("message") or "")


def _short(value: object, limit: int = 300) -> str:
    text = redact(" ".join(str(value).split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"
