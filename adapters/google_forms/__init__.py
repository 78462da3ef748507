"""The built-in Google Forms adapter plugin (``adapter = "google_forms"``) and ``fit google``.

Registered through the ``fit`` entry-point group like any third-party adapter. The adapter and
the command modules are imported only when the hooks run, so loading plugins stays cheap.
See :class:`.adapter.GoogleFormsAdapter` and docs/google_forms.md.
"""

from typing import Any

from fit_core.hookspecs import hookimpl


@hookimpl
def fit_register_adapters(register: Any) -> None:
    from .adapter import GoogleFormsAdapter

    register(GoogleFormsAdapter)


@hookimpl
def fit_register_commands(cli: Any) -> None:
    from .cli import google

    cli.add_command(google)
