"""``fit google inspect SOURCE``: list a form's questions and propose a mapping.

Added to ``fit`` through the ``fit_register_commands`` hook. It needs only the source's
connection keys and credentials, so it works before the mapping is written: forms come from
``--form`` or from the source's ``forms`` list. It reads the form only (``forms.get``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from fit_core.clitools import fit_errors as _fit_errors
from fit_core.config import load_config
from fit_core.errors import ConfigError
from fit_core.plugins import load_plugins
from fit_core.redact import redact_obj
from fit_core.secrets import SecretStore

from .formdef import FormInfo, parse_form
from .proposal import propose, question_rows, question_table


@click.group("google")
def google() -> None:
    """Google Forms helpers (the google_forms adapter)."""


@google.command("inspect")
@click.argument("source")
@click.option(
    "--form",
    "form_ids",
    multiple=True,
    help="A form id to inspect (repeatable; default: the source's forms).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@_fit_errors
def inspect(ctx: click.Context, source: str, form_ids: tuple[str, ...], as_json: bool) -> None:
    """List the questions of SOURCE's forms and propose a mapping for the config.

    Prints each question's title, questionId, type and scale (low/high), then a TOML block to
    check and paste under [sources.SOURCE]. Only reads the form.
    """
    obj = ctx.find_root().obj
    config_path = obj.get("config_path") if isinstance(obj, Mapping) else None
    inspector = build_inspector(source, config_path)
    try:
        ids = list(form_ids) or _configured_forms(inspector.options)
        if not ids:
            raise ConfigError(
                f"source {source!r} lists no forms",
                hint=f"give one: `fit google inspect {source} --form FORM_ID`",
            )
        out = []
        for form_id in ids:
            form = inspector.form_info(form_id)
            proposal = propose(form, source)
            if as_json:
                out.append(
                    {
                        "form_id": form_id,
                        "title": form.title,
                        "questions": question_rows(form),
                        "proposal": proposal,
                    }
                )
                continue
            click.echo(f"form {form_id}: {form.title!r}, {len(form.questions)} questions")
            click.echo(question_table(form))
            click.echo("")
            click.echo(proposal)
            click.echo("")
        if as_json:
            click.echo(json.dumps(redact_obj(out), indent=2, ensure_ascii=False))
    finally:
        inspector.close()


def _configured_forms(options: Mapping[str, Any]) -> list[str]:
    forms = options.get("forms")
    if not isinstance(forms, list):
        return []
    return [str(f["form_id"]) for f in forms if isinstance(f, Mapping) and f.get("form_id")]


class Inspector:
    """Just enough of the adapter to read forms: connection, credentials, ``forms.get``."""

    def __init__(
        self, source: str, options: Mapping[str, Any], secret: Callable[[str], str]
    ) -> None:
        # imported here: google-auth loads only when the command runs, not for `fit --help`
        from .auth import authorized_session, load_identity
        from .client import GoogleApi
        from .options import Connection

        self.options = options
        conn = Connection.load(options, source)
        identity = load_identity(secret, source, conn.auth, conn.token_uri)
        self.session = authorized_session(identity)
        self.api = GoogleApi(self.session, conn, source=source, account=identity.account)

    def form_info(self, form_id: str) -> FormInfo:
        """A form's questions (one ``forms.get``)."""
        return parse_form(form_id, self.api.get_form(form_id))

    def close(self) -> None:
        self.session.close()


def build_inspector(source: str, config_path: Path | None) -> Inspector:
    """An inspector for ``source`` of the config (it must use the google_forms adapter)."""
    config = load_config(config_path)
    src = config.source(source)
    if src.adapter != "google_forms":
        raise ConfigError(
            f"source {source!r} uses the {src.adapter} adapter, not google_forms",
            hint='give the name of a [sources.NAME] table with adapter = "google_forms"',
        )
    store = SecretStore(load_plugins().resolve_secret)
    return Inspector(source, dict(src.options), lambda key: store.get(source, key))
