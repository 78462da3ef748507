"""The ``--as-of DATE`` option shared by `fit stats`, `fit trajectories fit` and `fit report`
(a module of its own: the report commands load it without the rest of the CLI)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from fit_core.config import Config
from fit_core.store import Store
from fit_core.sync import load_active_model

AS_OF_HELP = (
    "Compute as of this date (YYYY-MM-DD): 'today' is that day, later data are left out and the "
    "trajectory models in force that day are used, so a past figure is reproduced."
)


def as_of_option(f: Any) -> Any:
    """The ``--as-of DATE`` option (parameter ``as_of``, a datetime or None)."""
    return click.option(
        "--as-of",
        "as_of",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=None,
        help=AS_OF_HELP,
    )(f)


def resolve_as_of(config: Config, given: dt.datetime | None) -> tuple[dt.date, dt.date | None]:
    """(the date to compute as of: the one given, else the clinic's today; the one given)."""
    if given is None:
        return dt.datetime.now(config.sync.tzinfo()).date(), None
    return given.date(), given.date()


def models_for(store: Store, config: Config, as_of: dt.date | None) -> Any:
    """The trajectory models in force now, or at the end of ``as_of`` (clinic time)."""
    return load_active_model(store, as_of, config.sync.tzinfo())
