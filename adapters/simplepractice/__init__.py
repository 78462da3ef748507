"""The SimplePractice bridge plugin (``adapter = "simplepractice"``), ``fit clients``,
``fit exports`` and ``fit outbox``.

Registered through the ``fit`` entry-point group like any third-party adapter; the adapter and
command modules are imported only when the hooks run, so loading plugins stays cheap. See
:class:`.adapter.SimplePracticeAdapter` and docs/simplepractice.md.
"""

from typing import Any

from fit_core.hookspecs import hookimpl


@hookimpl
def fit_register_adapters(register: Any) -> None:
    from .adapter import SimplePracticeAdapter

    register(SimplePracticeAdapter)


@hookimpl
def fit_register_commands(cli: Any) -> None:
    from .cli import clients, exports, outbox

    cli.add_command(clients)
    cli.add_command(exports)
    cli.add_command(outbox)
