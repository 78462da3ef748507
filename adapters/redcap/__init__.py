"""The built-in REDCap adapter plugin (``adapter = "redcap"``): see :class:`.adapter.RedcapAdapter`.

Registered through the ``fit`` entry-point group like any third-party plugin. It also adds the
``fit redcap`` command group (``inspect``, ``template``) and ``fit serve`` (the Data Entry
Trigger receiver). Modules are imported only when a hook runs, so loading plugins stays cheap.
"""

from typing import Any

from fit_core.hookspecs import hookimpl


@hookimpl
def fit_register_adapters(register: Any) -> None:
    from .adapter import RedcapAdapter

    register(RedcapAdapter)


@hookimpl
def fit_register_commands(cli: Any) -> None:
    from .commands import redcap, serve

    cli.add_command(redcap)
    cli.add_command(serve)
