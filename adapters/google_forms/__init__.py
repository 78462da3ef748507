"""The built-in Google Forms adapter plugin (``adapter = "google_forms"``) and ``fit google``.

Registered through the ``fit`` entry-point group like any third-party adapter. The adapter is
registered by name (:class:`fit_core.plugins.LazyAdapter`) and imported only when a source uses
it, the command modules only when the commands are asked for, so loading plugins stays cheap.
See :class:`.adapter.GoogleFormsAdapter` and docs/google_forms.md.
"""

from typing import Any

from fit_core.hookspecs import hookimpl
from fit_core.plugins import LazyAdapter


@hookimpl
def fit_register_adapters(register: Any) -> None:
    # by name: the adapter module is imported only when a source uses it
    register(LazyAdapter("google_forms", "fit_adapters.google_forms.adapter:GoogleFormsAdapter"))


@hookimpl
def fit_register_commands(cli: Any) -> None:
    from .cli import google

    cli.add_command(google)
