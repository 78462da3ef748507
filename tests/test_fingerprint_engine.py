"""The engine part of the scoring fingerprint (fit-sync's version and the scoring revision) is
the same whether fit-sync's version comes from the plugin registry or from a lookup in the
installed distributions; a sync passes the registry's and so pays for no second lookup."""

from __future__ import annotations

from importlib import metadata

import pytest

from fit_core import fingerprint as fp
from fit_core.plugins import load_plugins
from fit_core.settings import Settings


def _engine(versions: dict[str, str | None]) -> str:
    reg = load_plugins()
    parts = fp.fingerprint(
        Settings(), reg.rules.values(), reg.measures, owners=reg.owners, versions=versions
    )
    return parts["engine"]


def _registry_versions() -> dict[str, str | None]:
    return {p.package: p.version for p in load_plugins().plugins}


def test_the_registry_knows_the_installed_version() -> None:
    assert _registry_versions()["fit-sync"] == metadata.version("fit-sync")


def test_the_engine_part_is_the_same_from_the_registry_or_the_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    versions = _registry_versions()
    looked_up = _engine({k: v for k, v in versions.items() if k != "fit-sync"})

    def no_lookup(package: str) -> str | None:
        raise AssertionError(f"looked up {package} although the registry has it")

    monkeypatch.setattr(fp, "_package_version", no_lookup)
    assert _engine(versions) == looked_up


def test_without_the_registry_version_it_is_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def lookup(package: str) -> str | None:
        asked.append(package)
        return "9.9.9"

    monkeypatch.setattr(fp, "_package_version", lookup)
    assert _engine({}) != _engine({"fit-sync": "1.0"})
    assert asked == ["fit-sync"]
    assert _engine({"fit-sync": None}) == _engine({"fit-sync": "9.9.9"})  # None: looked up
