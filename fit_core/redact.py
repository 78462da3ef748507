"""Keep secrets out of logs, error messages and ``--json`` output.

A process-wide registry holds every secret value this process has looked up
(:class:`fit_core.secrets.SecretStore` registers each value it returns). :func:`redact`
replaces each registered value with ``***``, whatever its letter case (a server may echo a
token upper- or lower-cased); :func:`redact_obj` does the same through nested dicts and lists.
As a safety net, values that are secret by their name are masked even if nobody registered
them: ``token=...``, ``access_token=...``, ``password=...``, ``api_key=...`` (form-encoded or
in a URL), ``"client_secret": "..."`` (JSON) and ``Bearer ...``, names matched in any case.

Output: :func:`install_stream_redaction` wraps ``sys.stdout`` and ``sys.stderr`` so that
everything a command prints (``error:`` lines, ``--json``, tables, tracebacks) is redacted on
its way out, whichever code path printed it. The CLI installs it before anything is printed.

Logging: :class:`RedactingFilter` rewrites each record's message and exception text.
:func:`install_log_redaction` attaches it to the handlers a logger has *now*, so call it once
after the CLI has configured its logging handlers (and again if it adds another handler)::

    logging.basicConfig(level=..., stream=sys.stderr)
    install_log_redaction()
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import threading
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_LENGTH = 4

_SECRET_NAME = r"[\w.-]*(?:token|secret|password|passwd|api[_-]?key|private[_-]?key)[\w.-]*"
# name=value in a form body, a URL or a message; the value ends at &, space, quote or bracket
_ASSIGNED = re.compile(rf"\b({_SECRET_NAME})(\s*=\s*)([^\s&\"'<>;,)\]]+)", re.IGNORECASE)
# "name": "value" in JSON, the whole string value
_JSON_ASSIGNED = re.compile(rf"(\"{_SECRET_NAME}\"\s*:\s*\")((?:[^\"\\]|\\.)*)(\")", re.IGNORECASE)
_BEARER = re.compile(r"\b(bearer\s+)([A-Za-z0-9._~+/=-]{4,})", re.IGNORECASE)
# JSON secrets (e.g. a Google service-account file): these members are secret on their own.
_SECRET_MEMBER = re.compile(r"key|secret|token|password", re.IGNORECASE)

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that :func:`redact` masks it from now on.

    Values shorter than :data:`MIN_LENGTH` characters are ignored (masking them would garble
    ordinary text). The URL-encoded forms are registered too, since request bodies are
    form-encoded, and so are the secret members of a JSON object value (``private_key`` ...).
    """
    if not value or len(value) < MIN_LENGTH:
        return
    forms = {value, quote(value, safe=""), quote_plus(value)}
    forms.update(_json_members(value))
    global _pattern
    with _lock:
        before = len(_values)
        _values.update(f for f in forms if len(f) >= MIN_LENGTH)
        if len(_values) != before:
            _pattern = None


def clear_secrets() -> None:
    """Forget every registered value (for tests)."""
    global _pattern
    with _lock:
        _values.clear()
        _pattern = None


def _json_members(value: str) -> set[str]:
    """The string members of a JSON object whose names look secret, raw and JSON-escaped."""
    if not value.lstrip().startswith("{"):
        return set()
    try:
        data = json.loads(value)
    except ValueError:
        return set()
    out: set[str] = set()
    if isinstance(data, dict):
        for name, member in data.items():
            if isinstance(member, str) and _SECRET_MEMBER.search(str(name)):
                out.update({member, json.dumps(member)[1:-1]})
    return out


def _compiled() -> re.Pattern[str] | None:
    global _pattern
    with _lock:
        if _pattern is None and _values:
            # Longest first, so a value containing another is masked whole.
            alternatives = sorted(_values, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(v) for v in alternatives), re.IGNORECASE)
        return _pattern


def redact(text: str) -> str:
    """``text`` with every registered secret (in any letter case) and every value of a
    secret-named parameter (``token=...``, ``"password": "..."``, ``Bearer ...``) masked."""
    if not text:
        return text
    pattern = _compiled()
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _ASSIGNED.sub(_mask_value, text)
    text = _JSON_ASSIGNED.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
    return _BEARER.sub(lambda m: m.group(1) + MASK, text)


def _mask_value(m: re.Match[str]) -> str:
    return f"{m.group(1)}{m.group(2)}{MASK}"


def redact_obj(obj: Any) -> Any:
    """A copy of ``obj`` with every string (keys included) inside dicts, lists and tuples redacted.

    Other values (numbers, None, booleans) are returned unchanged. Use it on ``--json`` output.
    """
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact_obj(k): redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_obj(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact_obj(v) for v in obj)
    return obj


class RedactingFilter(logging.Filter):
    """A handler filter that masks secrets in the message, the exception and the stack text.

    The message is rendered (``getMessage()``), redacted and stored back in ``record.msg`` with
    ``record.args = ()``; the exception is formatted into ``record.exc_text`` (which formatters
    use as is) and redacted. It never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let logging report it as usual
            return True
        record.msg = redact(message)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Add the redacting filter to every handler of ``logger`` (default: the root logger).

    Handler filters see records propagated from every child logger, which logger filters do not.
    Handlers added later are not covered: call this again after adding one. Idempotent. The
    ``logging.lastResort`` handler (used when no handler is configured) is covered too.
    """
    target = logger if logger is not None else logging.getLogger()
    handlers = list(target.handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(_FILTER)


class RedactingStream(io.TextIOBase):
    """A text stream that writes everything through :func:`redact` to another stream.

    It has no ``buffer``: writers that look for one (click, for bytes) fall back to text, so
    nothing reaches the terminal around the redaction.
    """

    def __init__(self, inner: TextIO) -> None:
        super().__init__()
        self.inner = inner

    def write(self, text: str | bytes | bytearray) -> int:
        if isinstance(text, bytes | bytearray):
            text = bytes(text).decode(self.encoding or "utf-8", "replace")
        self.inner.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    def writable(self) -> bool:
        return True

    def close(self) -> None:  # the wrapped stream belongs to someone else
        self.flush()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.inner, "encoding", None) or "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.inner, "errors", None)


def install_stream_redaction() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` in :class:`RedactingStream` (idempotent).

    Call it before a logging handler is created on ``sys.stderr``, so the handler writes
    through the wrapper too.
    """
    if sys.stdout is not None and not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)
    if sys.stderr is not None and not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)
