"""Log lines that cannot be forged or leak a key: control characters escaped, keys as hashes.

Text from outside (a client id, a REDCap record id, a server's error message, a file name) may
hold line breaks, ANSI escape sequences or bidirectional overrides. Written to a terminal, a log
file or cron mail as is, such text can forge a convincing ``ERROR`` line or hide part of a
message. :func:`escape_controls` turns every such character into a visible escape (``\\n``,
``\\x1b``, ``\\u202e``); :class:`SafeFormatter` applies it to every log message and indents the
lines of an attached traceback, so every line a log record writes either starts with its level
or is visibly part of the record above it.

:func:`key_ref` is the short, stable reference for a source key in warnings printed at the
default verbosity: a natural key holds a client id and a date, which do not belong in cron mail.
`fit quarantine` shows the same reference next to the full key.
"""

from __future__ import annotations

import hashlib
import logging
import re

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 and C1 controls, DEL, and the format characters that reorder or hide text
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff]"
)


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with control and invisible formatting characters shown as escapes."""
    if text.isprintable():
        return text
    return _UNSAFE.sub(_escape, text)


def key_ref(source_key: str) -> str:
    """An 8-hex-digit reference for a source key (the same in logs and `fit quarantine`)."""
    data = source_key.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=4).hexdigest()


class SafeFormatter(logging.Formatter):
    """A formatter whose output cannot be used to forge log lines.

    The message (after %-formatting) has its control characters escaped; the exception and
    stack text keep their line breaks (a traceback needs them) but every line of it is
    indented and has its other control characters escaped.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: logging._SysExcInfoType) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))

    def format(self, record: logging.LogRecord) -> str:
        original = record.exc_text
        if original:  # formatted earlier (by the redacting filter): indent it here
            record.exc_text = _indented(original)
        try:
            return super().format(record)
        finally:
            if original:
                record.exc_text = original


def _indented(text: str) -> str:
    lines = text.split("\n")
    return "\n".join("  | " + escape_controls(line) for line in lines)
