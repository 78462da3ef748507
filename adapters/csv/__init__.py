"""The built-in CSV adapter plugin (``adapter = "csv"``, and ``fit csv accept``): see
:class:`.adapter.CsvAdapter`.

Registered through the ``fit`` entry-point group like any third-party adapter; the adapter
module is imported only when the hook runs, so loading plugins stays cheap.
"""

from typing import Any

from fit_core.hookspecs import hookimpl


@hookimpl
def fit_register_adapters(register: Any) -> None:
    from .adapter import CsvAdapter

    register(CsvAdapter)


@hookimpl
def fit_register_commands(cli: Any) -> None:
    from .cli import csv_group

    cli.add_command(csv_group)
