"""The `fit` command: results on stdout, logs on stderr, silent on success unless -v."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from fit_core import __version__
from fit_core.clitools import App, exit_for
from fit_core.errors import ExitCode, FitError
from fit_core.logsafe import SafeFormatter
from fit_core.redact import install_stream_redaction

from .app import echo_json, handle_errors  # re-exported for plugins that import them from here

log = logging.getLogger("fit")

EXIT_CODES_HELP = "\b\nExit codes:\n" + "\n".join(
    f"  {int(c)}  {c.name:<12}{desc}"
    for c, desc in (
        (ExitCode.OK, "success (alerts are data, never an error)"),
        (ExitCode.PARTIAL, "some records or sources failed; the rest went through"),
        (ExitCode.USAGE, "bad command line"),
        (ExitCode.CONFIG, "bad config or store, missing secret, credentials refused"),
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
    # every byte a command prints goes through the secret redaction, whatever printed it
    install_stream_redaction()
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_fit", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._fit = True  # type: ignore[attr-defined]
    # control characters in a message (a client id with a line break and ANSI codes) are escaped
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    try:
        from fit_core.redact import install_log_redaction

        install_log_redaction(root)
    except ImportError:  # pragma: no cover - redaction module is part of the package
        pass


__all__ = ["EXIT_PIPE", "cli", "echo_json", "handle_errors", "hoist_global_options", "main"]


#: options of the root group that may also follow the sub-command (`fit sync -v`)
_GLOBAL_FLAGS = frozenset({"--verbose", "-q", "--quiet"})
_GLOBAL_VALUED = frozenset({"--config"})


def _is_global(arg: str) -> bool:
    return (
        arg in _GLOBAL_FLAGS
        or (len(arg) > 1 and arg[0] == "-" and set(arg[1:]) == {"v"})  # -v, -vv, -vvv
        or any(arg.startswith(f"{o}=") for o in _GLOBAL_VALUED)
    )


def hoist_global_options(group: click.Group, ctx: click.Context, args: list[str]) -> list[str]:
    """Move the root options that follow the sub-command in front of it.

    `fit sync -v` then means `fit -v sync`, as people type it. An option the sub-command (or a
    nested group on the way) defines itself is left where it is, and so are the values of the
    sub-command's own options and everything after `--`.
    """
    head: list[str] = []
    rest = list(args)
    # the root group's own options and their values, up to the sub-command's name
    while rest and rest[0].startswith("-") and rest[0] != "--":
        arg = rest.pop(0)
        head.append(arg)
        if arg in _GLOBAL_VALUED and rest:
            head.append(rest.pop(0))
    if not rest or rest[0] == "--":
        return args
    # the chain of commands named on the line, and the options they define themselves
    own: set[str] = set()
    valued: set[str] = set()
    cmd: click.Command | None = group
    i = 0
    chain_end = 0
    while isinstance(cmd, click.Group) and i < len(rest):
        if rest[i].startswith("-"):
            break
        sub = cmd.get_command(ctx, rest[i])
        if sub is None:
            break
        cmd = sub
        i += 1
        chain_end = i
        for param in cmd.params:
            if isinstance(param, click.Option):
                names = [*param.opts, *param.secondary_opts]
                own.update(names)
                if not param.is_flag and not param.count:
                    valued.update(param.opts)
    if chain_end == 0:
        return args
    hoisted: list[str] = []
    kept: list[str] = rest[:chain_end]
    tail = rest[chain_end:]
    j = 0
    while j < len(tail):
        arg = tail[j]
        if arg == "--":
            kept.extend(tail[j:])
            break
        if arg in own or arg.split("=", 1)[0] in own:
            kept.append(arg)
            if arg in valued and j + 1 < len(tail):
                kept.append(tail[j + 1])
                j += 1
        elif arg in _GLOBAL_VALUED and j + 1 < len(tail):
            hoisted.extend((arg, tail[j + 1]))
            j += 1
        elif _is_global(arg):
            hoisted.append(arg)
        else:
            kept.append(arg)
        j += 1
    return [*head, *hoisted, *kept]


class FitGroup(click.Group):
    """Adds plugin commands (fit_register_commands) lazily, so --help stays fast and safe.

    The root options (``-v``, ``-q``, ``--config``) may also follow the sub-command.
    """

    _plugins_loaded = False

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:
            args = hoist_global_options(self, ctx, args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command inside the one error boundary of `fit` (built-in and plugin
        commands alike; see :func:`fit_core.clitools.exit_for`)."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # click itself would exit 1 (PARTIAL) here
            _quiet_broken_pipe()
        except Exception as exc:
            exit_for(exc)

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
        _register_builtin_commands()
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = self._get_command(ctx, name)
        if cmd is not None and ctx.parent is None:
            _mention_root_options(cmd)
        return cmd

    def _get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is None and name in LAZY_COMMANDS:
            _register_builtin_commands(LAZY_COMMANDS[name])
            cmd = super().get_command(ctx, name)
        if cmd is None:
            _register_builtin_commands()
            cmd = super().get_command(ctx, name)
        if cmd is None:
            self._load_plugin_commands()
            cmd = super().get_command(ctx, name)
        return cmd


ROOT_OPTIONS_NOTE = (
    "Options of fit itself work here too, before or after the command: -v/-vv (more output on "
    "stderr), -q (only errors), --config PATH (or $FIT_CONFIG)."
)


def _mention_root_options(cmd: click.Command) -> None:
    """End a command's --help (and its sub-commands') with the root options it accepts."""
    todo = [cmd]
    while todo:
        c = todo.pop()
        if ROOT_OPTIONS_NOTE not in (c.epilog or ""):
            c.epilog = f"{c.epilog}\n\n{ROOT_OPTIONS_NOTE}" if c.epilog else ROOT_OPTIONS_NOTE
        if isinstance(c, click.Group):
            todo.extend(c.commands.values())


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
    ctx.obj = App(config_path=config_path, verbose=verbose, quiet=quiet)


#: built-in command name -> the module of fit_cli that defines it. A command's module is
#: imported when the command is used (`fit sync` does not import the report, clinical, privacy
#: or notify modules, which a sync run started by cron or systemd would pay for every time); any
#: other name, `--help` and the command list load every module (see _register_builtin_commands).
LAZY_COMMANDS: dict[str, str] = {
    "init": "commands",
    "check": "commands",
    "sync": "commands",
    "score": "commands",
    "demo": "commands",
    "plugins": "commands",
    "alerts": "commands",
    "quarantine": "commands",
    "rules": "clinical",
    "trajectories": "clinical",
    "stats": "clinical",
    "report": "reports",
    "client": "privacy",
    "purge": "privacy",
    "audit": "privacy",
    "store": "privacy",
    "notify": "notify",
    "keys": "keys",
}
#: the modules of built-in commands: the name of the tuple of commands each exports (or of its
#: one command)
BUILTIN_MODULES: dict[str, str] = {
    "commands": "COMMANDS",
    "clinical": "CLINICAL_COMMANDS",
    "reports": "REPORT_COMMANDS",
    "privacy": "PRIVACY_COMMANDS",
    "notify": "NOTIFY_COMMANDS",
    "keys": "keys",
}
_registered: set[str] = set()


def _register_builtin_commands(only: str | None = None) -> None:
    """Add the built-in commands to `fit` (those of the module ``only``, or all)."""
    import importlib

    for module, attr in BUILTIN_MODULES.items():
        if only not in (None, module) or module in _registered:
            continue
        _registered.add(module)
        found = getattr(importlib.import_module(f"fit_cli.{module}"), attr)
        for cmd in found if isinstance(found, tuple) else (found,):
            cli.add_command(cmd)


#: the exit status of a program stopped by a closed pipe (128 + SIGPIPE), as `yes | head` gives
EXIT_PIPE = 141


def _quiet_broken_pipe() -> None:
    """The reader of our output went away (`fit stats | head`): stop quietly, like other tools.

    Python would otherwise print the error again when it flushes stdout at exit, so stdout is
    pointed at /dev/null first (the recipe in Python's signal module documentation).
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout already closed or replaced
        pass
    sys.exit(EXIT_PIPE)


def main() -> None:
    code: Any = 0
    try:
        _main()
    except SystemExit as exc:
        code = exc.code
    except BrokenPipeError:
        _quiet_broken_pipe()
    try:  # what is still buffered goes out now, not in the interpreter's shutdown
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_broken_pipe()
    sys.exit(code)


def _main() -> None:
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
