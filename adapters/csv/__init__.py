"""CSV adapter (placeholder until the adapter lands)."""

from typing import Any

from fit_core.hookspecs import hookimpl


@hookimpl
def fit_register_adapters(register: Any) -> None:
    from .adapter import CsvAdapter

    register(CsvAdapter)
