"""Figures as they stood on a past day (``--as-of DATE``): what the data held up to that day.

``fit stats``, ``fit trajectories fit`` and ``fit report`` accept ``--as-of`` so a figure shown
in a past meeting can be reproduced: "today" becomes that date (which episodes had ended, which
alerts held), administrations dated after it are left out, and so are appointments dated after
it (a booking made since cannot be told from one made before). The trajectory models are those
that were in force at the end of that day (:func:`fit_core.sync.load_active_model`). What was
corrected or deleted since is not brought back: a store keeps the current data, not its history.

Pure functions over plain data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import replace

from .models import Administration, ClientContext

__all__ = ["context_until", "until"]


def until(admins: Iterable[Administration], as_of: dt.date | None) -> list[Administration]:
    """The administrations dated on or before ``as_of`` (all of them when it is None)."""
    if as_of is None:
        return list(admins)
    return [a for a in admins if a.local_date <= as_of]


def context_until(context: ClientContext | None, as_of: dt.date | None) -> ClientContext | None:
    """Practice data as of ``as_of``: appointments dated after it left out."""
    if context is None or as_of is None:
        return context
    kept = tuple(a for a in context.appointments if a.local_date <= as_of)
    return (
        context if len(kept) == len(context.appointments) else replace(context, appointments=kept)
    )
