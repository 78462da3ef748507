"""The built-in CSV adapter plugin (``adapter = "csv"``): see :class:`.adapter.CsvAdapter`.

Registered through the ``fit`` entry-point group like any third-party adapter; the adapter
module is imported only when the hook runs, so loading plugins stays cheap.
"""

from typing import Any

from fit_core.hookspecs import hookimpl


@hookimpl
def fit_register_adapters(register: Any) -> None:
    from .adapter import CsvAdapter

    register(CsvAdapter)
