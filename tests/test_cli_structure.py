"""The command line's structure: imports run one way, one error boundary for every command
(built-in and plugin), and a typed application context instead of `ctx.obj` dicts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fit_cli.main import cli
from fit_core.clitools import App
from fit_core.errors import ConfigError

MODULES = [
    "fit_cli.app",
    "fit_cli.commands",
    "fit_cli.clinical",
    "fit_cli.reports",
    "fit_cli.privacy",
    "fit_cli.notify",
    "fit_cli.keys",
    "fit_cli.demo",
    "fit_cli.offline",
    "fit_cli.main",
]


@pytest.mark.parametrize("module", MODULES)
def test_every_cli_module_imports_on_its_own(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_no_command_module_imports_the_main_module() -> None:
    cli_dir = Path(__file__).parents[1] / "cli"
    for path in cli_dir.glob("*.py"):
        if path.name in ("main.py", "__main__.py"):
            continue
        text = path.read_text(encoding="utf-8")
        assert "from .main import" not in text, path.name
        assert "import fit_cli.main" not in text and "from fit_cli.main" not in text, path.name


@pytest.fixture
def plugin_commands() -> list[click.Command]:
    @click.command("boom")
    def boom() -> None:
        raise ValueError("a bug in a plugin")

    @click.command("refuse")
    def refuse() -> None:
        raise ConfigError("the plugin's source is not configured", hint="add it to the config")

    @click.command("whoami")
    @click.pass_context
    def whoami(ctx: click.Context) -> None:
        app = App.of(ctx)
        click.echo(f"{type(app).__name__} {app.config_path} {app.verbose}")

    added = [boom, refuse, whoami]
    for cmd in added:
        cli.add_command(cmd)
    yield added
    for cmd in added:
        cli.commands.pop(cmd.name or "", None)


def test_a_plugin_commands_bug_is_an_internal_error_not_a_partial_run(
    plugin_commands: list[click.Command],
) -> None:
    res = CliRunner().invoke(cli, ["boom"])
    assert res.exit_code == 6
    assert "internal error (ValueError)" in res.output and "-vv" in res.output
    assert "Traceback" not in res.output


def test_a_plugin_commands_fit_error_exits_with_its_code_and_hint(
    plugin_commands: list[click.Command],
) -> None:
    res = CliRunner().invoke(cli, ["refuse"])
    assert res.exit_code == 3
    assert "error: the plugin's source is not configured" in res.output
    assert "hint: add it to the config" in res.output


def test_commands_get_a_typed_context_with_the_root_options(
    plugin_commands: list[click.Command], tmp_path: Path
) -> None:
    cfg = tmp_path / "fit.toml"
    res = CliRunner().invoke(cli, ["whoami", "-v", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == f"App {cfg} 1"


def test_the_context_loads_config_and_plugins_once(tmp_path: Path) -> None:
    cfg = tmp_path / "fit.toml"
    cfg.write_text(
        f'[store]\npath = "{tmp_path / "s.sqlite3"}"\n[sources.lab]\nadapter = "csv"\n'
        f'path = "{tmp_path / "in.csv"}"\nscores_path = "{tmp_path / "o.csv"}"\n',
        encoding="utf-8",
    )
    app = App(config_path=cfg)
    assert app.config is app.config and app.registry is app.registry
    assert app.get("config_path") == cfg  # plugins written against the old dict still work
