"""The SimplePractice bridge plugin (``adapter = "simplepractice"``), ``fit clients``,
``fit exports`` and ``fit outbox``.

Registered through the ``fit`` entry-point group like any third-party adapter. The adapter is
registered by name (:class:`fit_core.plugins.LazyAdapter`) and imported only when a source uses
it, the command modules only when the commands are asked for, so loading plugins stays cheap. See
:class:`.adapter.SimplePracticeAdapter` and docs/simplepractice.md.
"""

from typing import Any

from fit_core.hookspecs import hookimpl
from fit_core.plugins import LazyAdapter


@hookimpl
def fit_register_adapters(register: Any) -> None:
    # by name: the adapter module is imported only when a source uses it
    register(
        LazyAdapter("simplepractice", "fit_adapters.simplepractice.adapter:SimplePracticeAdapter")
    )


@hookimpl
def fit_register_commands(cli: Any) -> None:
    from .cli import clients, exports, outbox

    cli.add_command(clients)
    cli.add_command(exports)
    cli.add_command(outbox)
