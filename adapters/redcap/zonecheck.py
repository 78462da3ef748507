"""Is ``server_timezone`` right? Our own imports tell.

``dateRangeBegin`` is compared with each record's last change in the REDCap server's **local**
time. fit-sync writes it from a UTC moment and ``server_timezone``: if that zone is east of the
server's real one, the window starts in the server's future and every change made before the
server's clock reaches it is missed, silently. The evidence is at hand: the records fit-sync
imported scores into were changed by those imports, at moments fit-sync knows in UTC
(:class:`~.bookmark.Evidence`). So, after a sync that wrote scores:

- **west check**: asked for the records changed since a little before our first import, REDCap
  must list the records we changed; a record that exists but is not listed means the window
  started in the server's future;
- **east check**: asked for those records changed since a little after our last import, REDCap
  must not list all of them (an edit by someone else moves one record, not all), else survey
  times are read hours off.

A failed check estimates how far off the zone is (a bisection on ``dateRangeBegin`` with one of
those records: about a dozen small requests, only then) and raises :class:`WrongTimezone`
(exit 3) naming the offset the server's clock appears to use and timezones that have it.

The adapter runs the check in ``check()`` (at the start of every sync, and in ``fit check``)
when its last imports (kept in the source's state) were not yet checked against the configured
zone: once after each sync that wrote, and again whenever ``server_timezone`` changes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from fit_core.errors import ConfigError

from .bookmark import Evidence, server_local
from .client import RedcapClient
from .rows import text

log = logging.getLogger(__name__)

#: clock skew and import duration tolerated around our writes
MARGIN = dt.timedelta(minutes=2)
#: the farthest a zone can be off (UTC-12 to UTC+14)
SPAN = dt.timedelta(hours=26)
#: precision of the offset estimate
STEP = dt.timedelta(minutes=1)
#: a few well-known zones to suggest, by their offset at the time of the writes
COMMON_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Halifax",
    "America/St_Johns",
    "America/Bogota",
    "America/Mexico_City",
    "America/Sao_Paulo",
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Helsinki",
    "Europe/Moscow",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Perth",
    "Australia/Adelaide",
    "Australia/Sydney",
    "Pacific/Auckland",
)


class WrongTimezone(ConfigError):
    """The REDCap server's clock is not in ``server_timezone`` (exit 3, CONFIG)."""


def utc_offset_text(offset: dt.timedelta) -> str:
    """``UTC-05:00``."""
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def zones_with_offset(offset: dt.timedelta, at: dt.datetime, limit: int = 3) -> list[str]:
    """Well-known timezones whose UTC offset at ``at`` is ``offset``."""
    out = [z for z in COMMON_ZONES if ZoneInfo(z).utcoffset(at.replace(tzinfo=None)) == offset]
    if not out and offset.total_seconds() % 3600 == 0:
        hours = int(offset.total_seconds() // 3600)
        out = [f"Etc/GMT{-hours:+d}" if hours else "UTC"]
    return out[:limit]


class ZoneChecker:
    """Checks ``server_timezone`` against the evidence of our imports."""

    def __init__(
        self,
        client: RedcapClient,
        *,
        id_field: str,
        server_tz: dt.tzinfo,
        zone_label: str,
        source: str,
    ) -> None:
        self.client = client
        self.id_field = id_field
        self.tz = server_tz
        self.label = zone_label
        self.source = source

    def present(self, records: Sequence[str], since: dt.datetime) -> set[str]:
        """Which of ``records`` REDCap lists as changed at or after ``since`` (UTC)."""
        rows = self.client.export_records(
            fields=[self.id_field],
            records=records,
            since=server_local(since, self.tz),
            survey_fields=False,
        )
        return {text(r.get(self.id_field)) for r in rows}

    def existing(self, records: Sequence[str]) -> set[str]:
        """Which of ``records`` exist (and this token sees)."""
        rows = self.client.export_records(
            fields=[self.id_field], records=records, survey_fields=False
        )
        return {text(r.get(self.id_field)) for r in rows}

    def check(self, ev: Evidence) -> None:
        """Raise :class:`WrongTimezone` when the evidence disagrees with the zone."""
        records = list(ev.records)
        seen = self.present(records, ev.first - MARGIN)
        if not set(records) <= seen:
            alive = self.existing(records)
            absent = [r for r in records if r in alive and r not in seen]
            if absent:
                self._fail(ev, absent[0], west=True)
            records = [r for r in records if r in alive]
            if not records:
                log.info(
                    "%s: the records last written are gone; time zone not checked", self.source
                )
                return
        late = self.present(records, ev.last + MARGIN)
        if records and late >= set(records):
            shift = self.shift(records[0], ev)
            if shift is not None and _plausible(shift):
                self._fail(ev, records[0], west=False, shift=shift)
        log.debug("%s: server_timezone %s agrees with our last imports", self.source, self.label)

    def shift(self, record: str, ev: Evidence) -> dt.timedelta | None:
        """How far the server's local clock is ahead of ``server_timezone`` (negative: behind),
        estimated from when ``record`` last changed; None when it is out of range."""
        low, high = ev.last - SPAN, ev.last + SPAN
        if record not in self.present([record], low):
            return None
        if record in self.present([record], high):
            return None
        while high - low > STEP:  # present at low, absent at high
            middle = low + (high - low) / 2
            if record in self.present([record], middle):
                low = middle
            else:
                high = middle
        return low - ev.last

    def _fail(
        self,
        ev: Evidence,
        record: str,
        *,
        west: bool,
        shift: dt.timedelta | None = None,
    ) -> None:
        if shift is None:
            shift = self.shift(record, ev)
        assumed = ev.last.astimezone(self.tz).utcoffset() or dt.timedelta(0)
        found = ""
        examples: list[str] = []
        if shift is not None:
            quarter = dt.timedelta(minutes=15)
            real = assumed + round(shift / quarter) * quarter
            found = f"; the server's clock appears to run at {utc_offset_text(real)}"
            examples = zones_with_offset(real, ev.last.astimezone(dt.UTC))
        what = (
            "records fit-sync wrote scores into were not listed as changed since just before "
            "it wrote them, so the window REDCap compares with started in the server's future "
            "and edits are being missed"
            if west
            else "records fit-sync wrote scores into are listed as changed since after it wrote "
            "them, so survey times are read hours off"
        )
        raise WrongTimezone(
            f"source {self.source}: server_timezone is {self.label} "
            f"({utc_offset_text(assumed)}) but the REDCap server's clock does not agree: {what}"
            f"{found}",
            hint=f"set server_timezone in [sources.{self.source}] to the server's timezone"
            + (f" (e.g. {', '.join(examples)})" if examples else "")
            + f", then check with `fit check --source {self.source}`; the next sync reads every "
            "record again",
        )


def _plausible(shift: dt.timedelta) -> bool:
    """A shift a wrong timezone explains: at least 30 minutes, close to a quarter hour."""
    minutes = abs(shift.total_seconds()) / 60
    return minutes >= 30 and min(minutes % 15, 15 - minutes % 15) <= 3
