"""The built-in CSV adapter plugin (``adapter = "csv"``, and ``fit csv accept``): see
:class:`.adapter.CsvAdapter`.

Registered through the ``fit`` entry-point group like any third-party adapter, by name
(:class:`fit_core.plugins.LazyAdapter`): the adapter module is imported only when a source uses
it, the command module only when its command is asked for, so loading plugins stays cheap.
"""

from typing import Any

from fit_core.hookspecs import hookimpl
from fit_core.plugins import LazyAdapter


@hookimpl
def fit_register_adapters(register: Any) -> None:
    # by name: the adapter module is imported only when a source uses it
    register(LazyAdapter("csv", "fit_adapters.csv.adapter:CsvAdapter"))


@hookimpl
def fit_register_commands(cli: Any) -> None:
    from .cli import csv_group

    cli.add_command(csv_group)
