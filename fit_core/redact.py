"""Keep secrets out of logs, error messages and ``--json`` output.

A process-wide registry holds every secret value this process has looked up
(:class:`fit_core.secrets.SecretStore` registers each value it returns). :func:`redact`
replaces each registered value with ``***``; :func:`redact_obj` does the same through nested
dicts and lists. As a safety net, REDCap API tokens (32 or 64 hex digits) in a form-encoded
``token=...`` body are masked even if nobody registered them.

Logging: :class:`RedactingFilter` rewrites each record's message and exception text.
:func:`install_log_redaction` attaches it to the handlers a logger has *now*, so call it once
after the CLI has configured its logging handlers (and again if it adds another handler)::

    logging.basicConfig(level=..., stream=sys.stderr)
    install_log_redaction()
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_LENGTH = 4

_REDCAP_TOKEN = re.compile(r"(token=)([0-9A-Fa-f]{64}|[0-9A-Fa-f]{32})(?![0-9A-Fa-f])")
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
            _pattern = re.compile("|".join(re.escape(v) for v in alternatives))
        return _pattern


def redact(text: str) -> str:
    """``text`` with every registered secret, and every ``token=<REDCap token>``, masked."""
    if not text:
        return text
    pattern = _compiled()
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _REDCAP_TOKEN.sub(lambda m: m.group(1) + MASK, text)


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
