"""The built-in REDCap adapter plugin (``adapter = "redcap"``): see :class:`.adapter.RedcapAdapter`.

Registered through the ``fit`` entry-point group like any third-party plugin. It also adds the
``fit redcap`` command group (``inspect``, ``template``) and ``fit serve`` (the Data Entry
Trigger receiver). The adapter is registered by name (:class:`fit_core.plugins.LazyAdapter`) and
imported only when a source uses it, the commands only when they are asked for, so loading
plugins stays cheap.
"""

from typing import Any

from fit_core.hookspecs import hookimpl
from fit_core.plugins import LazyAdapter


@hookimpl
def fit_register_adapters(register: Any) -> None:
    # by name: the adapter module is imported only when a source uses it
    register(LazyAdapter("redcap", "fit_adapters.redcap.adapter:RedcapAdapter"))


@hookimpl
def fit_register_commands(cli: Any) -> None:
    from .commands import redcap, serve

    cli.add_command(redcap)
    cli.add_command(serve)
