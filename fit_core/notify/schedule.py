"""When a route is due: pure functions of the route's timing and an injected "now".

- ``immediate`` routes are due at every run (after each sync), except on quiet days.
- ``digest`` routes have *slots*: each ``at`` time on each day that is not quiet, in the
  clinic's timezone. A digest is due when a slot has passed since the last slot handled (or,
  for a new route, since the route was first seen): one digest then covers everything since,
  so a machine that was off for a weekend sends one digest, not three.

Local times are turned into instants with :mod:`zoneinfo`, so a digest "at 07:30" stays at
07:30 on the wall clock across daylight-saving changes (on the day clocks spring forward, a
time that does not exist is read as the same time after the jump).
"""

from __future__ import annotations

import datetime as dt

from .config import RouteConfig

__all__ = ["is_quiet", "last_slot", "next_slot", "slot_due"]

_LOOKBACK_DAYS = 15


def is_quiet(route: RouteConfig, day: dt.date) -> bool:
    """Is ``day`` (clinic-local) one of the route's quiet days?"""
    return day.weekday() in route.quiet_weekdays or day in route.quiet_dates


def _local(day: dt.date, t: dt.time, tz: dt.tzinfo) -> dt.datetime:
    """The instant of wall-clock ``t`` on ``day`` in ``tz``. A time skipped by a spring-forward
    change is read with the offset before it (02:30 becomes 03:30); a repeated time is its
    first occurrence (PEP 495, ``fold=0``)."""
    return dt.datetime.combine(day, t).replace(tzinfo=tz).astimezone(dt.UTC)


def last_slot(route: RouteConfig, now: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None:
    """The latest digest slot at or before ``now`` (UTC), or None (none in two weeks)."""
    today = now.astimezone(tz).date()
    for back in range(_LOOKBACK_DAYS):
        day = today - dt.timedelta(days=back)
        if is_quiet(route, day):
            continue
        for t in sorted(route.at, reverse=True):
            at = _local(day, t, tz)
            if at <= now:
                return at
    return None


def next_slot(route: RouteConfig, now: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None:
    """The first digest slot after ``now`` (UTC), or None."""
    today = now.astimezone(tz).date()
    for ahead in range(_LOOKBACK_DAYS):
        day = today + dt.timedelta(days=ahead)
        if is_quiet(route, day):
            continue
        for t in sorted(route.at):
            at = _local(day, t, tz)
            if at > now:
                return at
    return None


def slot_due(
    route: RouteConfig,
    now: dt.datetime,
    tz: dt.tzinfo,
    *,
    last_handled: dt.datetime | None,
    started: dt.datetime,
) -> dt.datetime | None:
    """The slot a digest is due for now, or None. ``last_handled``: the slot of the route's
    last digest; ``started``: when the route was first seen (no digest for slots before)."""
    slot = last_slot(route, now, tz)
    if slot is None:
        return None
    floor = last_handled if last_handled is not None else started
    return slot if slot > floor else None
