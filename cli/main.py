"""The `fit` command: results on stdout, logs on stderr, silent on success unless -v."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from fit_core import __version__
from fit_core.errors import ExitCode, FitError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("fit")

EXIT_CODES_HELP = "\b\nExit codes:\n" + "\n".join(
    f"  {int(c)}  {c.name:<12}{desc}"
    for c, desc in (
        (ExitCode.OK, "success (alerts are data, never an error)"),
        (ExitCode.PARTIAL, "some records or sources failed; the rest went through"),
        (ExitCode.USAGE, "bad command line"),
        (ExitCode.CONFIG, "bad config, missing secret, or credentials refused (401/403)"),
        (ExitCode.UNAVAILABLE, "sources unreachable"),
        (ExitCode.LOCKED, "another fit sync is running"),
        (ExitCode.INTERNAL, "internal error (a bug: please report it)"),
    )
)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_fit", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._fit = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    try:
        from fit_core.redact import install_log_redaction

        install_log_redaction(root)
    except ImportError:  # pragma: no cover - redaction module is part of the package
        pass


def handle_errors(func: F) -> F:
    """Map FitError to its exit code with a message on stderr; anything else is INTERNAL (6)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FitError as exc:
            click.echo(f"error: {_redact(exc.message)}", err=True)
            if exc.hint:
                click.echo(f"  hint: {_redact(exc.hint)}", err=True)
            sys.exit(int(exc.exit_code))
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as exc:
            logging.getLogger("fit").debug("internal error", exc_info=True)
            click.echo(
                f"error: internal error ({type(exc).__name__}); run with -vv for the traceback "
                "and report it",
                err=True,
            )
            sys.exit(int(ExitCode.INTERNAL))

    return wrapper  # type: ignore[return-value]


def _redact(text: str) -> str:
    try:
        from fit_core.redact import redact
    except ImportError:  # pragma: no cover
        return text
    return redact(text)


def echo_json(obj: Any) -> None:
    try:
        from fit_core.redact import redact_obj

        obj = redact_obj(obj)
    except ImportError:  # pragma: no cover
        pass
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


class FitGroup(click.Group):
    """Adds plugin commands (fit_register_commands) lazily, so --help stays fast and safe."""

    _plugins_loaded = False

    def _load_plugin_commands(self) -> None:
        if self._plugins_loaded:
            return
        FitGroup._plugins_loaded = True
        try:
            from fit_core.plugins import load_plugins

            load_plugins().pm.hook.fit_register_commands(cli=self)
        except FitError as exc:
            click.echo(f"warning: plugin commands not loaded: {exc.message}", err=True)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is None:
            self._load_plugin_commands()
            cmd = super().get_command(ctx, name)
        return cmd


@click.group(
    cls=FitGroup, epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="FIT_CONFIG",
    help="Config file (default: $FIT_CONFIG or ~/.config/fit/config.toml).",
)
@click.option("-v", "--verbose", count=True, help="More output on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.version_option(__version__, prog_name="fit-sync")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: int, quiet: bool) -> None:
    """fit-sync: score ORS/SRS, raise alerts, and sync them with the systems a clinic uses.

    Start with `fit demo` (bundled synthetic data, no network, no secrets), then
    `fit init` to write a config and `fit sync` to run it.
    """
    _setup_logging(verbose, quiet)
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["verbose"] = verbose
    ctx.obj["quiet"] = quiet


def _register_builtin_commands() -> None:
    from . import commands
    from .clinical import CLINICAL_COMMANDS
    from .privacy import PRIVACY_COMMANDS
    from .reports import REPORT_COMMANDS

    for cmd in (*commands.COMMANDS, *CLINICAL_COMMANDS, *REPORT_COMMANDS, *PRIVACY_COMMANDS):
        cli.add_command(cmd)
    try:
        from .keys import keys
    except ImportError:  # pragma: no cover - keys module ships with the package
        return
    cli.add_command(keys)


_register_builtin_commands()


def main() -> None:
    try:
        # standalone_mode=False returns ctx.exit(n)'s code instead of exiting: pass it on
        code = cli.main(prog_name="fit", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(int(ExitCode.USAGE))
    except click.UsageError as exc:
        exc.show()
        sys.exit(int(ExitCode.USAGE))
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(int(ExitCode.USAGE))
    except click.ClickException as exc:
        exc.show()
        sys.exit(int(ExitCode.USAGE))


if __name__ == "__main__":
    main()
