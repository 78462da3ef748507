"""Helpers for `fit` sub-commands, public so plugin commands behave like the built-in ones.

- :class:`App` is what every command gets from the root group (``App.of(ctx)``): the root
  options, and the config and plugins loaded once per run.
- :func:`exit_for` is the one error boundary: the root group runs every command inside it,
  built-in or plugin, so a :class:`~fit_core.errors.FitError` prints ``error:`` and its hint and
  exits with its code, a broken store is exit 3 naming the file, and anything else is exit 6
  (the traceback at ``-vv``). :func:`fit_errors` applies the same boundary to a single command
  (for commands invoked outside `fit`, e.g. in a plugin's tests).
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import click

from .errors import ExitCode, FitError
from .logsafe import escape_controls
from .redact import redact

if TYPE_CHECKING:
    from .config import Config
    from .plugins import Registry
    from .store import Store

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("fit")


@dataclass
class App:
    """The application context of one `fit` run (the root group's ``ctx.obj``).

    ``config`` and ``registry`` are loaded when first used and then kept, so a command that needs
    them twice (or a command and the helpers it calls) reads the config file and the plugins'
    entry points once.
    """

    config_path: Path | None = None
    verbose: int = 0
    quiet: bool = False
    _config: Config | None = field(default=None, repr=False)
    _registry: Registry | None = field(default=None, repr=False)

    @classmethod
    def of(cls, ctx: click.Context) -> App:
        """The App of the `fit` run ``ctx`` belongs to (made from the root's options if a test
        invoked a command directly, with ``obj={"config_path": ...}`` or nothing)."""
        root = ctx.find_root()
        obj = root.obj if root.obj is not None else ctx.obj
        if isinstance(obj, App):
            return obj
        app = cls.from_mapping(obj if isinstance(obj, Mapping) else {})
        root.obj = app
        if ctx.obj is not None and not isinstance(ctx.obj, App):
            ctx.obj = app
        return app

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> App:
        path = values.get("config_path")
        return cls(
            config_path=Path(path) if path else None,
            verbose=int(values.get("verbose") or 0),
            quiet=bool(values.get("quiet")),
            _registry=values.get("registry"),
        )

    @property
    def config(self) -> Config:
        """The config file (``--config``, ``$FIT_CONFIG`` or the default), loaded once."""
        if self._config is None:
            from .config import load_config

            self._config = load_config(self.config_path)
        return self._config

    @property
    def registry(self) -> Registry:
        """The installed plugins (adapters, rules, measures, notifiers), loaded once."""
        if self._registry is None:
            from .plugins import load_plugins

            self._registry = load_plugins()
        return self._registry

    def secret(self) -> Callable[[str, str], str]:
        """``secret(source, key)``: the secret chain (environment, systemd credentials, plugins,
        keyring)."""
        from .secrets import SecretStore

        return SecretStore(resolver=self.registry.resolve_secret).get

    def open_store(self) -> Store:
        """The store of the config (encrypted stores are opened with the store key)."""
        from .store import Store

        return Store.open(self.config.store_path)

    def get(self, key: str, default: Any = None) -> Any:
        """``ctx.obj.get("config_path")`` as plugins written for older versions read it."""
        if key in ("config_path", "verbose", "quiet"):
            return getattr(self, key)
        return default

    def __getitem__(self, key: str) -> Any:
        if key in ("config_path", "verbose", "quiet"):
            return getattr(self, key)
        raise KeyError(key)


def _safe(text: str) -> str:
    """An error text for the terminal: secrets masked, control characters escaped."""
    return escape_controls(redact(text))


def exit_for(exc: BaseException) -> NoReturn:
    """Report ``exc`` on stderr the way every `fit` command does, and exit with its code.

    click's own exceptions, ``SystemExit`` and ``BrokenPipeError`` are raised again (the root
    group and ``main`` deal with them).
    """
    if isinstance(
        exc,
        click.ClickException
        | click.exceptions.Exit
        | click.Abort
        | SystemExit
        | BrokenPipeError
        | KeyboardInterrupt,
    ):
        raise exc
    if isinstance(exc, sqlite3.Error):  # the store broke while a command used it
        from .storefile import last_opened, store_error

        exc = store_error(last_opened() or "(the store)", exc)
    if isinstance(exc, FitError):
        click.echo(f"error: {_safe(exc.message)}", err=True)
        if exc.hint:
            click.echo(f"  hint: {_safe(exc.hint)}", err=True)
        sys.exit(int(exc.exit_code))
    log.debug("internal error", exc_info=exc)
    click.echo(
        f"error: internal error ({type(exc).__name__}); run with -vv for the traceback "
        "and report it",
        err=True,
    )
    sys.exit(int(ExitCode.INTERNAL))


def fit_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a command inside the error boundary of `fit` (:func:`exit_for`).

    Every command under `fit` already runs inside it; the decorator also covers a command
    invoked on its own (a plugin's tests calling it with click's CliRunner). It calls
    ``sys.exit``, not ``ctx.exit``: click swallows ``Exit`` when `fit` runs with
    ``standalone_mode=False``. Messages are redacted of every registered secret.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            exit_for(exc)

    return wrapper
