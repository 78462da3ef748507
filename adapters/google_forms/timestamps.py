"""RFC 3339 timestamps as Google sends and accepts them.

Google writes ``2026-01-05T14:30:12.123456789Z``: up to nine fractional digits, which
:meth:`datetime.fromisoformat` does not read, so the fraction is cut to microseconds here.
"""

from __future__ import annotations

import datetime as dt
import re

_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339(text: object) -> dt.datetime | None:
    """A timezone-aware UTC datetime, or None when ``text`` is not an RFC 3339 timestamp."""
    if not isinstance(text, str):
        return None
    m = _RFC3339.match(text.strip())
    if not m:
        return None
    day, clock, fraction, offset = m.groups()
    micro = (fraction or "").ljust(6, "0")[:6]
    tz = "+00:00" if offset in ("Z", "z") else offset
    try:
        moment = dt.datetime.fromisoformat(f"{day}T{clock}.{micro}{tz}")
    except ValueError:
        return None
    return moment.astimezone(dt.UTC)


def format_filter_time(moment: dt.datetime) -> str:
    """``2026-01-05T14:30:12Z``: whole seconds (rounded down) in UTC, as the filter wants."""
    return floor_second(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def floor_second(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC without its fraction of a second."""
    return moment.astimezone(dt.UTC).replace(microsecond=0)


def iso_utc(moment: dt.datetime) -> str:
    """ISO 8601 with ``+00:00`` (what the core's validator reads)."""
    return moment.astimezone(dt.UTC).isoformat()
