"""docs/plugins.md documents every hook (with its exact signature), every name of the public API
and every part of the adapter interface and the contract suite (as datasette's docs tests do)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import fit_core.api
from fit_core import hookspecs
from fit_core.adapter import Adapter
from fit_core.testing import AdapterContract

DOC = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")


def hooks() -> list[str]:
    return [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("fit_")]


def signature(name: str) -> str:
    sig = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({params}) -> {sig.return_annotation}"


@pytest.mark.parametrize("name", hooks())
def test_every_hook_is_documented_with_its_signature(name: str) -> None:
    assert f"### `{signature(name)}`" in DOC


@pytest.mark.parametrize("name", fit_core.api.__all__)
def test_every_name_of_the_public_api_is_documented(name: str) -> None:
    assert f"`{name}`" in DOC
    assert hasattr(fit_core.api, name)


def test_the_api_exports_what_it_lists() -> None:
    assert sorted(fit_core.api.__all__) == sorted(set(fit_core.api.__all__))


ADAPTER_PARTS = [
    n
    for n, v in vars(Adapter).items()
    if not n.startswith("_") and (callable(v) or n in Adapter.__annotations__)
]


@pytest.mark.parametrize("name", ADAPTER_PARTS)
def test_every_part_of_the_adapter_interface_is_documented(name: str) -> None:
    assert f"`{name}" in DOC


PROVIDED = ["source_options", "add_bad_record", "target_state", "delete_record", "target_keys"]


@pytest.mark.parametrize("name", PROVIDED)
def test_what_a_contract_subclass_provides_is_documented(name: str) -> None:
    assert callable(getattr(AdapterContract, name))
    assert f"`{name}(" in DOC
