"""What the built-in commands share: the application context, the error boundary, JSON output.

Imports run one way: :mod:`fit_cli.main` (the `fit` group) loads the command modules, and the
command modules import only this module, never :mod:`fit_cli.main`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from fit_core.clitools import App, exit_for
from fit_core.config import Config
from fit_core.redact import redact_obj

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["App", "app_of", "config_of", "echo_json", "exit_for", "handle_errors"]


def app_of(ctx: click.Context) -> App:
    """The :class:`~fit_core.clitools.App` of this `fit` run."""
    return App.of(ctx)


def config_of(ctx: click.Context) -> Config:
    """The loaded config of this `fit` run."""
    return App.of(ctx).config


def handle_errors(func: F) -> F:
    """Run a command inside the error boundary (:func:`~fit_core.clitools.exit_for`).

    The `fit` group runs every command inside it already; the decorator keeps a command's
    errors the same when a test invokes the command (or its group) on its own."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            exit_for(exc)

    return wrapper  # type: ignore[return-value]


def echo_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout, secrets masked."""
    click.echo(json.dumps(redact_obj(obj), indent=2, ensure_ascii=False, default=str))
