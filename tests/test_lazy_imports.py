"""A sync imports only what its config uses: adapters are registered by name and imported when
a source uses them, notification channel types when a channel uses them, CLI command modules
when their command runs."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from fit_cli import main as cli_main
from fit_core import plugins
from fit_core.adapter import Adapter
from fit_core.errors import PluginError
from fit_core.hookspecs import hookimpl
from fit_core.notify.channel import Notifier
from fit_core.plugins import LazyAdapter, LazyNotifier
from fit_core.synthetic import generate_rows, write_csv

# run `fit` in this process's interpreter, then report which modules it imported
PROBE = """
import json, sys
from fit_cli.main import main
sys.argv = ["fit", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""

ELSEWHERE = (
    "fit_adapters.google_forms.adapter",
    "fit_adapters.redcap.adapter",
    "fit_adapters.simplepractice.adapter",
    "fit_cli.reports",
    "fit_cli.clinical",
    "fit_cli.privacy",
    "fit_core.episodes",
    "fit_core.trajectories",
    "fit_core.reports",
    "requests",
    "google.auth",
)

#: what a sync of a CSV source with valid rows and no [notify] or [privacy] retention does not
#: need: the notifiers (the e-mail one brings smtplib and ssl) and the retention rules
NOT_ON_A_CSV_SYNC = (
    "fit_core.notify.channel",
    "fit_core.notify.email",
    "fit_core.notify.webhook",
    "smtplib",
    "ssl",
    "fit_core.retention",
)


def probe(tmp_path: Path, *args: str) -> tuple[int, set[str], str]:
    """Run `fit ARGS` with the config in ``tmp_path``: (exit code, modules imported, stdout)."""
    env = {**os.environ, "FIT_CONFIG": str(tmp_path / "config.toml")}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, check=False
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"]), proc.stdout


def imported(tmp_path: Path, *args: str) -> tuple[int, set[str]]:
    code, modules, _ = probe(tmp_path, *args)
    return code, modules


def test_a_csv_sync_imports_no_other_adapter_or_command(tmp_path: Path) -> None:
    admins = tmp_path / "admins.csv"
    write_csv(admins, generate_rows(50, seed=2))
    (tmp_path / "config.toml").write_text(
        f'[store]\npath = "{tmp_path / "fit.sqlite3"}"\n[sync]\ntimezone = "UTC"\n'
        f'[sources.clinic]\nadapter = "csv"\npath = "{admins}"\n'
        f'scores_path = "{tmp_path / "scores.csv"}"\n',
        encoding="utf-8",
    )
    for _ in range(2):  # the full sync, then one with nothing to do
        code, modules = imported(tmp_path, "sync")
        assert code == 0
        assert "fit_adapters.csv.adapter" in modules
        assert not [m for m in ELSEWHERE if m in modules]
    assert (tmp_path / "scores.csv").exists()


def _csv_config(tmp_path: Path, extra: str = "") -> None:
    admins = tmp_path / "admins.csv"
    write_csv(admins, generate_rows(30, seed=3))
    (tmp_path / "config.toml").write_text(
        f'[store]\npath = "{tmp_path / "fit.sqlite3"}"\n[sync]\ntimezone = "UTC"\n'
        f'[sources.clinic]\nadapter = "csv"\npath = "{admins}"\n'
        f'scores_path = "{tmp_path / "scores.csv"}"\n{extra}',
        encoding="utf-8",
    )


def test_a_csv_sync_imports_no_notifier_and_no_retention(tmp_path: Path) -> None:
    _csv_config(tmp_path)
    for _ in range(2):  # the full sync, then one with nothing to do
        code, modules = imported(tmp_path, "sync", "--json")
        assert code == 0
        assert "fit_core.sync" in modules  # the probe saw the sync's imports
        assert [m for m in NOT_ON_A_CSV_SYNC if m in modules] == []
    assert (tmp_path / "scores.csv").exists()


def test_a_configured_channel_and_retention_are_imported_when_used(tmp_path: Path) -> None:
    _csv_config(
        tmp_path,
        '[privacy]\nretain_after_end = "7y"\n'
        '[notify.channels.team]\ntype = "webhook"\nurl = "ftp://hooks.example.org/fit"\n'
        '[notify.routes.alerts]\nchannel = "team"\nwhen = "immediate"\n',
    )
    code, modules, out = probe(tmp_path, "check")
    # the webhook's own options schema still checks the channel, with its own message
    assert code == 3
    assert "notify: FAILED: [notify.channels.team] url: must be an https:// URL" in out
    assert {"fit_core.notify.webhook", "fit_core.retention"} <= modules
    assert "fit_core.notify.email" not in modules  # only the type a channel uses


def test_the_version_imports_no_command_module(tmp_path: Path) -> None:
    code, modules = imported(tmp_path, "--version")
    assert code == 0
    assert not {f"fit_cli.{m}" for m in cli_main.BUILTIN_MODULES} & modules


@pytest.mark.parametrize("name", sorted(cli_main.LAZY_COMMANDS))
def test_each_lazy_command_is_defined_where_the_table_says(name: str) -> None:
    module = importlib.import_module(f"fit_cli.{cli_main.LAZY_COMMANDS[name]}")
    defined = {
        cmd.name
        for value in vars(module).values()
        for cmd in (value if isinstance(value, tuple) else (value,))
        if hasattr(cmd, "name") and hasattr(cmd, "invoke")
    }
    assert name in defined


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli_main.cli, ["--help"])
    assert result.exit_code == 0
    for name in cli_main.LAZY_COMMANDS:
        assert f"  {name} " in result.output


class _Quiet(Adapter):
    name = "quiet"

    def pull(self, bookmark):  # type: ignore[no-untyped-def]
        return iter(())


def _plugin(*refs: LazyAdapter | LazyNotifier) -> types.ModuleType:
    """A plugin module that registers ``refs`` through the hook of their kind."""
    module = types.ModuleType("lazy_test_plugin")

    def register_all(register):  # type: ignore[no-untyped-def]
        for ref in refs:
            register(ref)

    hook = (
        "fit_register_notifiers" if isinstance(refs[0], LazyNotifier) else "fit_register_adapters"
    )
    setattr(module, hook, hookimpl(register_all))
    return module


def test_a_lazy_adapter_is_listed_unimported_and_loaded_on_use() -> None:
    sys.modules.pop("tests_lazy_target", None)
    target = types.ModuleType("tests_lazy_target")
    target.Quiet = _Quiet  # type: ignore[attr-defined]
    reg = plugins.load_plugins(
        extra=[_plugin(LazyAdapter("quiet", "tests_lazy_target:Quiet"))], entry_points=False
    )
    assert isinstance(reg.adapters["quiet"], LazyAdapter)  # registered, not imported
    sys.modules["tests_lazy_target"] = target
    try:
        assert reg.adapter("quiet") is _Quiet
        assert reg.adapters["quiet"] is _Quiet  # imported once, then kept
    finally:
        sys.modules.pop("tests_lazy_target", None)


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        (LazyAdapter("quiet", "fit_no_such_module_abc:Quiet"), "ModuleNotFoundError"),
        (LazyAdapter("quiet", "fit_core.models:Record"), "not an Adapter"),
        (LazyAdapter("quiet", "test_lazy_imports:_Quiet2"), "AttributeError"),
    ],
)
def test_a_lazy_adapter_that_cannot_load_is_named(ref: LazyAdapter, why: str) -> None:
    reg = plugins.load_plugins(extra=[_plugin(ref)], entry_points=False)
    with pytest.raises(PluginError, match=why) as info:
        reg.adapter("quiet")
    assert "'quiet'" in info.value.message


def test_a_lazy_adapter_must_have_the_name_it_was_registered_with() -> None:
    sys.modules["tests_lazy_target2"] = types.ModuleType("tests_lazy_target2")
    sys.modules["tests_lazy_target2"].Quiet = _Quiet  # type: ignore[attr-defined]
    try:
        reg = plugins.load_plugins(
            extra=[_plugin(LazyAdapter("loud", "tests_lazy_target2:Quiet"))], entry_points=False
        )
        with pytest.raises(PluginError, match="registered as 'loud'"):
            reg.adapter("loud")
    finally:
        sys.modules.pop("tests_lazy_target2", None)


class _Pager(Notifier):
    name = "pager"


def test_a_lazy_notifier_is_listed_unimported_and_loaded_on_use() -> None:
    sys.modules.pop("tests_lazy_pager", None)
    target = types.ModuleType("tests_lazy_pager")
    target.Pager = _Pager  # type: ignore[attr-defined]
    reg = plugins.load_plugins(
        extra=[_plugin(LazyNotifier("pager", "tests_lazy_pager:Pager"))],
        entry_points=False,
    )
    assert isinstance(reg.notifiers["pager"], LazyNotifier)  # registered, not imported
    sys.modules["tests_lazy_pager"] = target
    try:
        assert reg.notifier("pager") is _Pager
        assert reg.notifiers["pager"] is _Pager  # imported once, then kept
    finally:
        sys.modules.pop("tests_lazy_pager", None)


def test_the_builtin_channel_types_are_lazy_and_load_as_themselves() -> None:
    reg = plugins.load_plugins()
    assert {"email", "webhook"} <= set(reg.notifiers)
    for name in ("email", "webhook"):
        assert isinstance(reg.notifiers[name], LazyNotifier)
        cls = reg.notifier(name)
        assert issubclass(cls, Notifier) and cls.name == name


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        (LazyNotifier("pager", "fit_no_such_module_abc:Pager"), "ModuleNotFoundError"),
        (LazyNotifier("pager", "fit_core.models:Record"), "not a Notifier"),
        (LazyNotifier("pager", "test_lazy_imports:_Pager2"), "AttributeError"),
        (LazyNotifier("pager", "fit_core.notify.webhook:WebhookNotifier"), "registered as 'pager'"),
    ],
)
def test_a_lazy_notifier_that_cannot_load_is_named(ref: LazyNotifier, why: str) -> None:
    reg = plugins.load_plugins(extra=[_plugin(ref)], entry_points=False)
    with pytest.raises(PluginError, match=why) as info:
        reg.notifier("pager")
    assert "notification channel type 'pager'" in info.value.message
