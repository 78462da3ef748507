"""The REDCap API over HTTP: form-encoded POSTs, PHP-style arrays, and errors mapped to exit codes.

Every request goes through :func:`fit_core.http.send` with the server's :class:`~.gate.Gate` held
(one request at a time in this process) and a :class:`~.gate.GateThrottle` (default 2 requests/s).
Retried: connection errors and HTTP 502/503/504, with backoff. Never retried: 429 (the server may
have banned this IP: the source stops at once), other statuses, TLS failures. Redirects are never
followed (a 301/302 turns a POST into a GET and loses the body): the new location is reported.

The token travels in the body, so bodies are never logged, and no message here holds a body
value: REDCap's import errors (``"record","field","value","message"`` lines) lose their value.
"""

from __future__ import annotations

import email.utils
import html
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from fit_core.errors import ConfigError, SourceError, SourceUnavailable
from fit_core.http import RetryPolicy, make_session, send

from .gate import Gate, gate_for, make_throttle

log = logging.getLogger(__name__)

Params = Sequence[tuple[str, str]]

#: retried with backoff: connection errors and gateway errors, nothing else (never 429)
RETRY = RetryPolicy(
    statuses=frozenset({502, 503, 504}),
    connection_errors=True,
    max_attempts=4,
    backoff_base=2.0,
    backoff_cap=30.0,
    max_elapsed=120.0,
)
OOM_MARKER = "ran out of server memory"
MAX_ERROR_LINES = 5
#: a 400 naming one of these is about the mapping or the project setup (exit 3, CONFIG)
CONFIG_WORDS = re.compile(
    r"\b(fields?|forms?|instruments?|events?|arms?|repeat\w*|designated|record id field)\b",
    re.IGNORECASE,
)


class ServerOutOfMemory(SourceError):
    """HTTP 500 "REDCap ran out of server memory": the caller should make its batch smaller."""


class _TlsFailure(Exception):
    """A TLS error, raised outside ``requests.ConnectionError`` so that it is never retried."""


class _TlsAdapter(HTTPAdapter):
    """Turns ``requests.exceptions.SSLError`` (a ConnectionError) into :class:`_TlsFailure`."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().send(request, *args, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise _TlsFailure(_tls_reason(exc)) from None


def php_array(name: str, values: Iterable[str]) -> list[tuple[str, str]]:
    """``name[0]=a&name[1]=b``: the array encoding PHP reads (repeated keys keep only the last)."""
    return [(f"{name}[{i}]", str(v)) for i, v in enumerate(values)]


def safe_url(url: str) -> str:
    """``scheme://host[:port]/path`` without credentials, query or fragment (for messages)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


class RedcapClient:
    """A REDCap API client for one project (one token).

    ``clock``/``sleep`` drive the throttle, ``backoff_sleep`` (default ``sleep``) the waits
    between retries; tests replace them.

    ``requests_sent`` counts HTTP responses received (retries included); ``clock_offsets`` holds,
    per response with a ``Date`` header, the server's clock minus ours in seconds (the header has
    one-second resolution, so same-machine values fall in (-1, 0]).
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        source: str,
        verify: bool | str = True,
        rate: float = 2.0,
        timeout: float = 300.0,
        gate: Gate | None = None,
        retry: RetryPolicy = RETRY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        backoff_sleep: Callable[[float], None] | None = None,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.source = source
        self._token = token
        self.gate = gate or gate_for(url)
        self.throttle = make_throttle(rate, self.gate, clock=clock, sleep=sleep)
        self.timeout = (10.0, timeout)
        self.retry = retry
        self._clock = clock
        self._backoff_sleep = backoff_sleep or sleep
        self._wall = wall
        self._rng = rng or random.Random()
        self.requests_sent = 0
        self.clock_offsets: list[float] = []
        self.verify = verify
        self.session = make_session(verify=verify)
        self.session.mount("https://", _TlsAdapter())
        self.session.hooks["response"].append(self._on_response)
        self.where = f"REDCap at {safe_url(url)}"

    def __repr__(self) -> str:  # never the token
        return f"RedcapClient({safe_url(self.url)!r}, source={self.source!r})"

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    # --- one request ---------------------------------------------------------------------------

    def post(self, what: str, params: Params) -> requests.Response:
        """POST ``params`` (plus token, ``format=json`` and ``returnFormat=json``); checked.

        ``what`` names the call in messages (``"export records"``). Raises ConfigError,
        SourceError (incl. :class:`ServerOutOfMemory`) or SourceUnavailable; returns a 200.
        """
        body = [("token", self._token), *params]
        keys = {k for k, _ in body}
        if "format" not in keys:
            body.append(("format", "json"))
        if "returnFormat" not in keys:
            body.append(("returnFormat", "json"))
        started = self._clock()
        try:
            with self.gate.lock:
                response = send(
                    self.session,
                    "POST",
                    self.url,
                    policy=self.retry,
                    throttle=self.throttle,
                    timeout=self.timeout,
                    sleep=self._backoff_sleep,
                    clock=self._clock,
                    rng=self._rng,
                    data=body,
                    allow_redirects=False,
                    # per request: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override
                    # Session.verify, which would ignore a configured CA bundle
                    verify=self.verify,
                )
        except _TlsFailure as exc:
            raise ConfigError(
                f"{self.where}: the TLS certificate could not be verified ({exc})",
                hint='if your institution uses its own CA, set verify = "/path/to/ca-bundle.pem" '
                "for this source; do not switch verification off",
            ) from None
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ) as exc:
            raise ConfigError(
                f"[sources.{self.source}] url is not usable ({type(exc).__name__})",
                hint="use the API address, e.g. https://redcap.example.org/api/",
            ) from None
        except requests.Timeout as exc:
            raise SourceUnavailable(
                f"{self.where} did not answer {what} in time ({type(exc).__name__})",
                hint="try again later; a big batch can be slow: lower batch_size or raise timeout",
            ) from None
        except requests.ConnectionError as exc:
            raise SourceUnavailable(
                f"cannot reach {self.where} for {what} ({type(exc).__name__}, after retries)",
                hint="check the network, any proxy settings and the url",
            ) from None
        log.debug(
            "%s: %s -> HTTP %d in %.2fs",
            self.source,
            what,
            response.status_code,
            self._clock() - started,
        )
        self._raise_for(response, what)
        return response

    def call_json(self, what: str, params: Params) -> Any:
        """:meth:`post` and decode the JSON answer (an HTML page is a wrong URL)."""
        response = self.post(what, params)
        try:
            return response.json()
        except ValueError:
            if _is_html(response):
                raise self._not_api(what, response.status_code) from None
            raise SourceError(
                f"{self.where} answered {what} with something that is not JSON",
                hint="check that url is the REDCap API address (ending in /api/)",
            ) from None

    # --- the calls fit-sync uses ---------------------------------------------------------------

    def project(self) -> dict[str, Any]:
        """``content=project``: project id, title, longitudinal and repeating flags."""
        data = self.call_json("export project info", [("content", "project")])
        if not isinstance(data, dict):
            raise SourceError(f"{self.where}: project info is not a JSON object")
        return data

    def metadata(self, forms: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """``content=metadata``: the data dictionary (its first field is the record id), or
        only the fields of ``forms``."""
        params = [("content", "metadata"), *php_array("forms", forms or ())]
        data = self.call_json("export metadata", params)
        if not isinstance(data, list) or (not data and not forms):
            raise SourceError(f"{self.where}: the data dictionary is empty or not a list")
        return data

    def instruments(self) -> list[str]:
        """``content=instrument``: the instruments' unique names, in the project's order."""
        data = self.call_json("export instruments", [("content", "instrument")])
        if not isinstance(data, list):
            raise SourceError(f"{self.where}: the instrument list is not a list")
        return [str(r.get("instrument_name")) for r in data if isinstance(r, dict)]

    def form_event_mapping(self) -> list[dict[str, Any]]:
        """``content=formEventMapping``: which instruments sit on which events."""
        data = self.call_json("export instrument-event mappings", [("content", "formEventMapping")])
        return data if isinstance(data, list) else []

    def repeating_forms_events(self) -> list[dict[str, Any]]:
        """The repeating instruments and events; ``[]`` when REDCap says there are none (400)."""
        try:
            data = self.call_json(
                "export repeating instruments and events", [("content", "repeatingFormsEvents")]
            )
        except BadRequest:
            return []
        return data if isinstance(data, list) else []

    def export_records(
        self,
        *,
        fields: Sequence[str],
        records: Sequence[str] | None = None,
        since: str | None = None,
        until: str | None = None,
        events: Sequence[str] | None = None,
        logic: str | None = None,
        survey_fields: bool = True,
        groups: bool = False,
    ) -> list[dict[str, Any]]:
        """Flat raw rows of ``records`` (default all) with ``fields``; ``since``/``until`` are
        ``dateRangeBegin``/``dateRangeEnd`` in server-local ``YYYY-MM-DD HH:MM:SS``; ``events``
        limits the events, ``logic`` is a ``filterLogic``; ``groups`` adds
        ``redcap_data_access_group``."""
        params: list[tuple[str, str]] = [
            ("content", "record"),
            ("action", "export"),
            ("type", "flat"),
            ("rawOrLabel", "raw"),
            ("rawOrLabelHeaders", "raw"),
            ("exportCheckboxLabel", "false"),
            ("exportSurveyFields", "true" if survey_fields else "false"),
            ("exportDataAccessGroups", "true" if groups else "false"),
        ]
        params += php_array("fields", fields)
        if records is not None:
            params += php_array("records", records)
        if events is not None:
            params += php_array("events", events)
        if since is not None:
            params.append(("dateRangeBegin", since))
        if until is not None:
            params.append(("dateRangeEnd", until))
        if logic:
            params.append(("filterLogic", logic))
        data = self.call_json("export records", params)
        if not isinstance(data, list):
            raise SourceError(f"{self.where}: the record export is not a JSON list")
        return data

    def import_records(
        self, rows: Sequence[Mapping[str, Any]], *, overwrite: bool = False
    ) -> list[str]:
        """Import ``rows``; the record ids REDCap reports as imported (``returnContent=ids``).

        ``overwriteBehavior`` is ``normal`` (a blank never erases) unless ``overwrite`` (a
        blank in a row erases that field; fields not in the row are left alone)."""
        params = [
            ("content", "record"),
            ("action", "import"),
            ("type", "flat"),
            ("overwriteBehavior", "overwrite" if overwrite else "normal"),
            ("forceAutoNumber", "false"),
            ("returnContent", "ids"),
            ("data", json.dumps(list(rows), separators=(",", ":"), ensure_ascii=False)),
        ]
        data = self.call_json("import records", params)
        if isinstance(data, dict) and "count" in data:
            raise SourceError(f"{self.where} answered the import with a count, not the ids")
        if not isinstance(data, list):
            raise SourceError(f"{self.where}: the import answer is not a list of record ids")
        return [str(x) for x in data]

    def export_log(
        self, logtype: str, begin: str | None = None, end: str | None = None
    ) -> list[dict[str, Any]]:
        """Export Logging (``content=log``): rows ``timestamp, username, action, details,
        record`` of ``logtype`` (e.g. ``record_delete``), newest first; ``begin``/``end`` are
        server-local ``YYYY-MM-DD HH:MM``. Needs the token user's Logging right: without it
        REDCap answers with an error (ConfigError here), not an empty list."""
        params: list[tuple[str, str]] = [("content", "log"), ("logtype", logtype)]
        if begin is not None:
            params.append(("beginTime", begin))
        if end is not None:
            params.append(("endTime", end))
        data = self.call_json("export logging", params)
        if not isinstance(data, list):
            raise SourceError(f"{self.where}: the logging export is not a JSON list")
        return [r for r in data if isinstance(r, dict)]

    # --- responses and errors ------------------------------------------------------------------

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.throttle.done()
        self.requests_sent += 1
        date = response.headers.get("Date")
        if date:
            try:
                server = email.utils.parsedate_to_datetime(date).timestamp()
            except (TypeError, ValueError):
                return
            self.clock_offsets.append(server - self._wall())

    def _raise_for(self, response: requests.Response, what: str) -> None:
        status = response.status_code
        if status == 200:
            if _is_html(response):
                raise self._not_api(what, status)
            return
        if 300 <= status < 400:
            location = response.headers.get("Location", "(no Location header)")
            raise ConfigError(
                f"{self.where} redirects {what} (HTTP {status}) to {safe_url(location)}",
                hint="set url to that address: a redirect would turn the POST into a GET and "
                "lose the request, so fit-sync never follows one",
            )
        message = _error_message(response)
        if status == 429:
            raise SourceError(
                f"{self.where} answered 429 Too Many Requests: the server may have banned this "
                "machine's IP address. fit-sync stopped this source at once and will not retry",
                hint="only a REDCap administrator can lift the ban; ask them, then keep "
                "throttle at 2 or below",
            )
        if status in (401, 403):
            importing = what.startswith("import")
            raise ConfigError(
                f"{self.where} refused {what} (HTTP {status}): {message or 'forbidden'}",
                hint=(
                    "the token's user needs the API Import/Update right in this project's User "
                    "Rights, and the project must not be in Analysis/Cleanup status"
                    if importing
                    else f"check the token (`fit keys set {self.source} token`) and that its "
                    "user has API Export rights (and Full Data Set export) in User Rights"
                ),
            )
        if status == 404:
            raise self._not_api(what, status)
        if status == 400:
            text = f"{self.where} rejected {what} (HTTP 400): {message or 'bad request'}"
            if CONFIG_WORDS.search(message):
                raise BadRequestConfig(
                    text,
                    hint="check this source's instrument and field names against "
                    "`fit redcap inspect`; `fit redcap template` prints the scoring instrument",
                )
            raise BadRequestSource(text)
        if status == 500 and OOM_MARKER in message.lower():
            raise ServerOutOfMemory(f"{self.where} ran out of server memory during {what}")
        if status in (502, 503, 504):
            raise SourceUnavailable(
                f"{self.where} answered {what} with HTTP {status} after retries",
                hint="the server or its proxy is overloaded or down; try again later",
            )
        raise SourceError(
            f"{self.where} answered {what} with HTTP {status}"
            + (f": {message}" if message else ""),
        )

    def _not_api(self, what: str, status: int) -> ConfigError:
        return ConfigError(
            f"{self.where} answered {what} with a web page (HTTP {status}): the url is probably "
            "not the REDCap API endpoint",
            hint="use the API address ending in /api/, e.g. https://redcap.example.org/api/",
        )


class BadRequest(Exception):
    """HTTP 400 from REDCap (its message, without values, is the exception's message)."""


class BadRequestConfig(BadRequest, ConfigError):
    """A 400 naming fields, forms, events or the project: the config needs fixing (exit 3)."""


class BadRequestSource(BadRequest, SourceError):
    """Any other 400 (exit 1)."""


# --- helpers -------------------------------------------------------------------------------------


def _is_html(response: requests.Response) -> bool:
    ctype = response.headers.get("Content-Type", "").lower()
    if "html" in ctype:
        return True
    head = response.content[:200].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


_ERROR_LINE = re.compile(r'^"(?P<rec>[^"]*)","(?P<field>[^"]*)","(?P<value>.*)","(?P<msg>.*)"$')
_XML_ERROR = re.compile(r"<error>(.*?)</error>", re.DOTALL | re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")


def _error_message(response: requests.Response) -> str:
    """REDCap's error text (JSON, XML or plain), with submitted values removed."""
    text = response.text or ""
    raw: str
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and "error" in data:
        raw = str(data["error"])
    elif (m := _XML_ERROR.search(text)) is not None:
        raw = html.unescape(m.group(1))
    elif _is_html(response):
        raw = ""
    else:
        raw = _TAGS.sub(" ", text)
    return sanitize_error(raw)


def sanitize_error(message: str) -> str:
    """At most :data:`MAX_ERROR_LINES` lines, each short; ``"rec","field","value","msg"`` lines
    (REDCap's import validation errors) become ``record rec, field: msg`` without the value."""
    lines = [ln.strip() for ln in message.replace("\r", "\n").split("\n") if ln.strip()]
    out: list[str] = []
    for line in lines[:MAX_ERROR_LINES]:
        m = _ERROR_LINE.match(line)
        if m:
            text = f"record {m['rec']}, field {m['field']}: {m['msg']}"
            value = m["value"]
            if len(value) >= 3:
                text = text.replace(value, "...")
        else:
            text = line
        out.append(text if len(text) <= 300 else text[:297] + "...")
    if len(lines) > MAX_ERROR_LINES:
        out.append(f"and {len(lines) - MAX_ERROR_LINES} more")
    return "; ".join(out)


def _tls_reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in (
        "certificate verify failed",
        "self-signed",
        "self signed",
        "hostname mismatch",
        "unable to get local issuer",
        "certificate has expired",
        "wrong version",
    ):
        i = text.lower().find(marker)
        if i >= 0:
            end = text.find(")", i)
            return text[i : end if end > 0 else i + 80].strip(" ('\"")
    return type(exc).__name__
