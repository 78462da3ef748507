"""Helpers for `fit` sub-commands, public so plugin commands behave like the built-in ones."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

from .errors import FitError
from .logsafe import escape_controls
from .redact import redact

P = ParamSpec("P")
R = TypeVar("R")


def fit_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Report a FitError as ``error: ...`` (and its hint) on stderr and exit with its code.

    Use it under ``@click.command()`` in a plugin's commands. It calls ``sys.exit``, not
    ``ctx.exit``: click swallows ``Exit`` when `fit` runs with ``standalone_mode=False``.
    Messages are redacted of every registered secret.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except FitError as exc:
            click.echo(f"error: {escape_controls(redact(exc.message))}", err=True)
            if exc.hint:
                click.echo(f"  hint: {escape_controls(redact(exc.hint))}", err=True)
            sys.exit(int(exc.exit_code))

    return wrapper
