"""Plugin system: documented hooks, broken plugins named and skipped, duplicates refused."""

from __future__ import annotations

import inspect
import json
import logging
import sys
import types
from importlib import metadata
from typing import Any

import pytest
from click.testing import CliRunner

from fit_core import hookspecs, plugins
from fit_core.errors import PluginError
from fit_core.hookspecs import hookimpl


def test_every_hook_is_documented_and_typed() -> None:
    specs = [f for name, f in vars(hookspecs).items() if name.startswith("fit_") and callable(f)]
    assert len(specs) >= 9
    for f in specs:
        doc = inspect.getdoc(f) or ""
        assert len(doc) > 40, f"{f.__name__} needs a docstring"
        hints = inspect.signature(f)
        for p in hints.parameters.values():
            assert p.annotation is not inspect.Parameter.empty, f"{f.__name__}.{p.name} untyped"


def test_builtin_plugins_come_through_the_entry_point_group() -> None:
    eps = {ep.name: ep.value for ep in metadata.entry_points(group="fit")}
    assert eps["csv"] == "fit_adapters.csv"
    reg = plugins.load_plugins()
    assert "csv" in reg.adapters
    assert {"srs.below_cutoff", "srs.drop", "ors.reliable_deterioration"} <= set(reg.rules)
    assert {"ORS", "SRS", "CORS", "CSRS", "GSRS"} <= set(reg.measures)
    assert reg.owners[("adapter", "csv")] == "fit-sync"


def _fake_eps(monkeypatch: pytest.MonkeyPatch, extra: list[metadata.EntryPoint]) -> None:
    real = list(metadata.entry_points(group="fit"))
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: real + extra)


def test_a_broken_plugin_is_named_and_skipped(monkeypatch, caplog) -> None:
    _fake_eps(monkeypatch, [metadata.EntryPoint("broken", "fit_no_such_module_xyz", "fit")])
    with caplog.at_level(logging.ERROR):
        reg = plugins.load_plugins()
    assert "csv" in reg.adapters  # the others still load
    assert any("broken" in name for name in reg.failures)
    assert "broken" in caplog.text and "FIT_STRICT_PLUGINS" in caplog.text


def test_strict_mode_makes_a_broken_plugin_fatal(monkeypatch) -> None:
    _fake_eps(monkeypatch, [metadata.EntryPoint("broken", "fit_no_such_module_xyz", "fit")])
    monkeypatch.setenv("FIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="broken"):
        plugins.load_plugins()


def test_duplicate_adapter_names_name_both_packages(monkeypatch) -> None:
    from fit_core.adapter import Adapter

    mod = types.ModuleType("fit_dupe_plugin")

    class OtherCsv(Adapter):
        name = "csv"

    @hookimpl
    def fit_register_adapters(register: Any) -> None:
        register(OtherCsv)

    mod.fit_register_adapters = fit_register_adapters  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fit_dupe_plugin", mod)
    _fake_eps(monkeypatch, [metadata.EntryPoint("dupe", "fit_dupe_plugin", "fit")])
    with pytest.raises(PluginError) as exc:
        plugins.load_plugins()
    assert "fit-sync" in str(exc.value) and "fit_dupe_plugin" in str(exc.value)


def test_a_failing_notification_hook_is_logged_and_the_rest_run(caplog) -> None:
    seen: list[int] = []

    class Bad:
        @hookimpl
        def fit_sync_started(self, run_id: int, sources: Any, dry_run: bool) -> None:
            raise RuntimeError("plugin bug")

    class Good:
        @hookimpl
        def fit_sync_started(self, run_id: int) -> None:
            seen.append(run_id)

    reg = plugins.load_plugins(extra=[Bad(), Good()], entry_points=False)
    with caplog.at_level(logging.ERROR):
        reg.notify("fit_sync_started", run_id=7, sources=["a"], dry_run=False)
    assert seen == [7]
    assert "fit_sync_started" in caplog.text


def test_fit_plugins_json_lists_plugins_versions_and_hooks() -> None:
    from fit_cli.main import cli

    res = CliRunner().invoke(cli, ["plugins", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    names = {p["name"]: p for p in data["plugins"]}
    assert "fit_register_adapters" in names["csv"]["hooks"]
    assert names["csv"]["package"] == "fit-sync" and names["csv"]["version"]
    assert data["adapters"]["csv"] == "fit-sync"
    assert "srs.drop" in data["rules"]
