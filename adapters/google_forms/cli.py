"""``fit google inspect SOURCE`` and ``fit google remap SOURCE``.

Added to ``fit`` through the ``fit_register_commands`` hook. ``inspect`` lists a form's questions
and proposes a mapping; it needs only the source's connection keys and credentials, so it works
before the mapping is written: forms come from ``--form`` or from the source's ``forms`` list.
``remap`` compares each form and the config with the mapping in force and, once confirmed, puts
the change in force (see :mod:`.remap`). Both only read the forms (``forms.get``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from fit_core.clitools import App
from fit_core.clitools import fit_errors as _fit_errors
from fit_core.config import load_config
from fit_core.errors import ConfigError
from fit_core.lock import SyncLock
from fit_core.plugins import load_plugins
from fit_core.redact import redact_obj
from fit_core.secrets import SecretStore
from fit_core.state import StoreState
from fit_core.store import Store

from .formdef import FormInfo, parse_form
from .history import Histories
from .options import GoogleOptions
from .proposal import propose, question_rows, question_table
from .remap import fresh_start, parse_since, plan_remap, selected


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
    config_path = App.of(ctx).config_path
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


@google.command("remap")
@click.argument("source")
@click.option(
    "--form", "form_ids", multiple=True, help="Only this form (repeatable; default: all)."
)
@click.option(
    "--since",
    help="ISO 8601 time: the new mapping reads answers last submitted after it (default: after "
    "the newest answer already read).",
)
@click.option(
    "--from-start",
    is_flag=True,
    help="Read every response with the new mapping (a mapping that was wrong from the start).",
)
@click.option("--dry-run", is_flag=True, help="Only show what would change.")
@click.option("--yes", is_flag=True, help="Apply without asking.")
@click.pass_context
@_fit_errors
def remap(
    ctx: click.Context,
    source: str,
    form_ids: tuple[str, ...],
    since: str | None,
    from_start: bool,
    dry_run: bool,
    yes: bool,
) -> None:
    """Put a changed form or mapping of SOURCE in force, after showing what changes.

    A sync stops (exit 3) when a mapped question changed on the form (its scale or type) or the
    config maps a form differently from the mapping in force. This shows, per form, what
    changed and which answers the new mapping will read; answers already read keep the scale
    they were given on, so past totals do not change. It asks before it writes anything.
    """
    if since and from_start:
        raise click.UsageError("give --since or --from-start, not both")
    config_path = App.of(ctx).config_path
    config = load_config(config_path)
    options = GoogleOptions.load(_google_source(config, source).options, source)
    wanted = selected(options.forms, form_ids, source)
    since_at = parse_since(since)
    now = dt.datetime.now(dt.UTC)
    inspector = build_inspector(source, config_path)
    store = Store.open(config.store_path)
    try:
        state = StoreState(store, source)
        histories = Histories(state, source)
        plans = []
        for mapping in wanted:
            form = inspector.form_info(mapping.form_id)
            before = state.get(histories.key(mapping.form_id))  # compared again when saving
            try:
                history = histories.load(mapping.form_id)
            except ConfigError:
                if not from_start:
                    raise
                plan = fresh_start(mapping, form, source, now)
            else:
                plan = plan_remap(
                    mapping,
                    form,
                    history,
                    source,
                    since=since_at,
                    from_start=from_start,
                    now=now,
                )
            plans.append((plan, before))
            click.echo("\n".join(plan.lines))
        todo = [(p, b) for p, b in plans if p.history is not None]
        blocked = [p.form_id for p, _b in plans if p.blocked]
        if not todo:
            if blocked:
                raise ConfigError(
                    f"nothing was changed: form {blocked[0]} still maps a question that changed "
                    "or went",
                    hint=f"edit the config (`fit google inspect {source}` lists the questions), "
                    "then run remap again",
                )
            return
        if dry_run:
            click.echo("dry run: nothing was changed")
            return
        if not yes:
            click.confirm("Put the new mapping in force?", abort=True)
        with SyncLock(config.store_path):  # not while a sync runs
            for plan, before in todo:
                if state.get(histories.key(plan.form_id)) != before:
                    raise ConfigError(
                        f"form {plan.form_id}: a sync changed the mapping history meanwhile",
                        hint=f"run `fit google remap {source}` again",
                    )
                assert plan.history is not None
                histories.save(plan.history)
                click.echo(f"form {plan.form_id}: the new mapping is in force")
        click.echo("next: `fit sync` reads the remapped forms again")
        if blocked:
            raise ConfigError(
                f"form {blocked[0]} was not remapped: it still maps a question that changed or "
                "went",
                hint=f"edit the config (`fit google inspect {source}` lists the questions), "
                "then run remap again",
            )
    finally:
        inspector.close()
        store.close()


def _google_source(config: Any, source: str) -> Any:
    src = config.source(source)
    if src.adapter != "google_forms":
        raise ConfigError(
            f"source {source!r} uses the {src.adapter} adapter, not google_forms",
            hint='give the name of a [sources.NAME] table with adapter = "google_forms"',
        )
    return src


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
        self.api = GoogleApi(
            self.session, conn, source=source, account=identity.account, kind=identity.kind
        )

    def form_info(self, form_id: str) -> FormInfo:
        """A form's questions (one ``forms.get``)."""
        return parse_form(form_id, self.api.get_form(form_id))

    def close(self) -> None:
        self.session.close()


def build_inspector(source: str, config_path: Path | None) -> Inspector:
    """An inspector for ``source`` of the config (it must use the google_forms adapter)."""
    config = load_config(config_path)
    src = _google_source(config, source)
    store = SecretStore(load_plugins().resolve_secret)
    return Inspector(source, dict(src.options), lambda key: store.get(source, key))
