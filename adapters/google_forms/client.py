"""HTTP calls to the Forms and Sheets APIs: throttles, retries and error messages.

Every call goes through :func:`fit_core.http.send`. Reads and idempotent writes are retried on
429 and 500/502/503/504 with truncated exponential backoff and full jitter, honouring
``Retry-After``, for at most ``max_retry_seconds``. ``values:append`` is sent once only
(:meth:`GoogleApi.append_once`): whether a failed append was applied is unknown, so the caller
checks the sheet before it appends again (see :mod:`.sheet`).

400/401/403/404 are never retried: they become a ConfigError (401, 403, 404: fix the
credentials, the id or the sharing) or a SourceError (400) whose message says what to fix.
Per-minute call budgets (Forms 180, Sheets 60 by default) are kept by sliding-window throttles.
Logs name the call and the HTTP status, never a query string, a body or a token.
"""

from __future__ import annotations

import collections
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import google.auth.exceptions
import requests

from fit_core.errors import ConfigError, FitError, SourceError, SourceUnavailable
from fit_core.http import DEFAULT_TIMEOUT, RetryPolicy, Throttle, send
from fit_core.redact import redact

from .options import Connection

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


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
    ) -> None:
        self.session = session
        self.conn = connection
        self.source = source
        self.account = account
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
        except google.auth.exceptions.RefreshError as exc:
            raise ConfigError(
                f"the token endpoint refused the credentials of source {self.source!r}: "
                f"{_short(exc)}",
                hint="the key may be deleted or disabled, or the OAuth grant revoked: store a "
                f"new one with `fit keys set {self.source} service_account --from-file key.json`",
            ) from None
        except (google.auth.exceptions.TransportError, requests.RequestException) as exc:
            raise SourceUnavailable(
                f"{what}: cannot reach Google ({name}: {type(exc).__name__})",
                hint="check the network, a proxy, or forms_endpoint/sheets_endpoint/token_uri",
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

    def error(self, response: requests.Response, what: str) -> FitError:
        """The FitError for a failed call, saying what to fix."""
        return api_error(response, what, self.account, self.source, self.conn.max_retry_seconds)


def api_error(
    response: requests.Response, what: str, account: str, source: str, retry_seconds: int
) -> FitError:
    """Map a Google error response onto fit-sync's errors (and so its exit codes)."""
    code = response.status_code
    status, message = _status(response), _message(response)
    detail = f" ({code} {status})" if status else f" ({code})"
    said = f": {message}" if message else ""
    if code == 401:
        return ConfigError(
            f"{what}: Google refused the credentials{detail}",
            hint="the key may be deleted or disabled, or the OAuth grant revoked: store a new "
            f"one with `fit keys set {source} service_account --from-file key.json`",
        )
    if code == 403:
        if "disabled" in message.lower() or "has not been used" in message.lower():
            return ConfigError(
                f"{what}: an API is not enabled for the credentials' Google Cloud project{detail}",
                hint="enable the Google Forms API and the Google Sheets API (APIs & Services → "
                "Library) in the project of the service account, wait a minute, then retry",
            )
        return ConfigError(
            f"{what}: {account} has no access{detail}",
            hint=f"share the form and the spreadsheet with {account}: add it as a collaborator "
            "(editor) on the form, and as an Editor of the spreadsheet",
        )
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
