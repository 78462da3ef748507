"""`fit redcap inspect|template` and `fit serve`, added through ``fit_register_commands``.

The commands read the root group's ``ctx.obj["config_path"]`` (``fit --config``), else
``$FIT_CONFIG``, else the default path; secrets come through the same lookup as `fit sync`.
Errors print ``error: ...`` and a hint on stderr and exit with their code (3 CONFIG, ...).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import ipaddress
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from fit_core.adapter import SourceContext
from fit_core.clitools import App, fit_errors
from fit_core.config import Config, adapter_options, load_config
from fit_core.errors import ConfigError, FitError
from fit_core.redact import register_secret

from .adapter import RedcapAdapter
from .client import safe_url

log = logging.getLogger(__name__)


def _config_path(ctx: click.Context) -> Path | None:
    return App.of(ctx).config_path


def _secret_lookup(ctx: click.Context) -> tuple[Any, Callable[[str, str], str]]:
    app = App.of(ctx)
    return app.registry, app.secret()


def open_source(ctx: click.Context, name: str) -> tuple[Config, RedcapAdapter]:
    """The configured REDCap source ``name`` as an adapter instance (nothing sent yet)."""
    config = App.of(ctx).config
    src = config.source(name)
    registry, secret = _secret_lookup(ctx)
    cls = registry.adapter(src.adapter)
    if not issubclass(cls, RedcapAdapter):
        raise ConfigError(
            f"source {name} uses the {src.adapter} adapter, not redcap",
            hint='name a source with adapter = "redcap"',
        )
    options = adapter_options(src, cls)
    context = SourceContext(
        name=name,
        namespace=src.namespace,
        options=options,
        timezone=config.sync.tzinfo(),
        run_started=dt.datetime.now(dt.UTC),
        secret=lambda key: secret(name, key),
        state_dir=config.store_path.parent,
    )
    return config, cls(context)


# --- fit redcap ---------------------------------------------------------------------------------


@click.group()
def redcap() -> None:
    """REDCap helpers: inspect a project, print the scoring instrument's data dictionary."""


@redcap.command("inspect")
@click.argument("source")
@click.pass_context
@fit_errors
def inspect_cmd(ctx: click.Context, source: str) -> None:
    """Show a REDCap source's project and propose a mapping (TOML on stdout).

    Four or five API requests, throttled like a sync. The output is valid TOML: the project
    is described in comments, followed by [sources.SOURCE...] tables to check and paste.
    """
    from .proposal import render

    _, adapter = open_source(ctx, source)
    try:
        disc = adapter.discover_project(fresh=True)  # the mapping is checked in the report
        placement = adapter.placement(disc)
        click.echo(
            render(source, safe_url(adapter.opts.url), disc, placement, adapter.opts), nl=False
        )
    finally:
        adapter.close()


@redcap.command("template")
@click.argument("source")
@click.option(
    "--surveys",
    is_flag=True,
    help="Also the mapped ORS/SRS-family instruments, with neutral labels only.",
)
@click.option(
    "--merge",
    is_flag=True,
    help="Fetch the project's dictionary and print it whole, with the new rows added "
    "(ready for Data Dictionary upload).",
)
@click.pass_context
@fit_errors
def template_cmd(ctx: click.Context, source: str, surveys: bool, merge: bool) -> None:
    """Print data-dictionary CSV rows for the scoring instrument of SOURCE.

    REDCap's Data Dictionary upload replaces the whole dictionary: append these rows to the
    current one (download it from the Data Dictionary page) or use --merge. No request is
    sent without --merge.
    """
    from . import template

    _, adapter = open_source(ctx, source)
    try:
        instruments = template.instruments_for(adapter.opts)
        rows = template.scoring_rows(instruments, adapter.opts.scores_instrument)
        if surveys:
            rows = template.survey_rows(instruments) + rows
        if merge:
            from .exports import metadata_in_parts

            rows = template.merge(metadata_in_parts(adapter.client(), source), rows)
        click.echo(template.to_csv(rows), nl=False)
    finally:
        adapter.close()


# --- fit serve --------------------------------------------------------------------------------


def _serve_secret(secret_file: Path | None) -> str | None:
    """The DET path secret: ``--secret-file``, else secret ``serve``/``det_secret`` (env
    ``FIT_SERVE_DET_SECRET``, systemd credential ``serve.det_secret``, a plugin, the keyring)."""
    if secret_file is not None:
        try:
            value = secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read --secret-file {secret_file}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"--secret-file {secret_file} is empty")
        register_secret(value)
        return value
    from fit_core.plugins import load_plugins
    from fit_core.secrets import SecretStore

    registry = load_plugins()
    found, _where = SecretStore(resolver=registry.resolve_secret).find("serve", "det_secret")
    return found.strip() if found else None


def _loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_runner(config_path: Path | None) -> Callable[[str, Sequence[str] | None], None]:
    """``runner(source, record_ids)``: one engine sync of that source (only those records)."""
    from fit_core.store import Store
    from fit_core.sync import SyncEngine

    app = App(config_path=config_path)  # plugins loaded once for the server's life

    def run(source: str, ids: Sequence[str] | None) -> None:
        config = load_config(config_path)
        src = config.source(source)
        if ids is not None:
            src = dataclasses.replace(src, options={**src.options, "only_records": list(ids)})
        narrowed = dataclasses.replace(config, sources={source: src})
        registry, secret = app.registry, app.secret()
        store = Store.open(narrowed.store_path)
        try:
            summary = SyncEngine(narrowed, registry, store, secret=secret).run([source])
        finally:
            store.close()
        result = summary.sources[0]
        if result.status == "failed":
            raise _SyncFailed(result.error or "failed", result.exit_code)
        log.info("DET: source %s: pulled %d, pushed %d", source, result.pulled, result.pushed)

    return run


def _stop_on_sigterm(server: Any) -> None:
    """systemd stops services with SIGTERM: shut the receiver down cleanly (``shutdown()``
    only asks the event loop to stop, so it is safe in a signal handler)."""
    import signal

    def handler(signum: int, frame: object) -> None:
        server.shutdown()

    with contextlib.suppress(ValueError):  # not the main thread (tests): nothing to do
        signal.signal(signal.SIGTERM, handler)


class _SyncFailed(FitError):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[assignment]


@click.command()
@click.option(
    "--source",
    "sources",
    multiple=True,
    help="A REDCap source to serve (repeatable; default: every enabled one).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Bind address. Keep loopback and put a reverse proxy in front.",
)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port to listen on (0: any free port, printed at start).",
)
@click.option(
    "--path",
    "path",
    default="/det",
    show_default=True,
    help="URL path; the shared secret, if any, is appended as /<secret>.",
)
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the shared secret (default: secret serve.det_secret).",
)
@click.option(
    "--debounce",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0, 300),
    help="Seconds to collect notices before syncing.",
)
@click.pass_context
@fit_errors
def serve(
    ctx: click.Context,
    sources: tuple[str, ...],
    host: str,
    port: int,
    path: str,
    secret_file: Path | None,
    debounce: float,
) -> None:
    """Receive REDCap Data Entry Triggers and sync the named records in the background.

    Each notice is only a hint: its project id and server are checked, it is answered at once,
    and the record is re-read through the API with the source's own token. API imports (the
    scores fit-sync writes back) do not fire triggers, so nothing loops. See docs/redcap.md.
    """
    from .det import DetServer, DetSource, SyncQueue

    config_path = _config_path(ctx)
    config = load_config(config_path)
    names = list(sources) or [
        n for n, s in config.sources.items() if s.enabled and s.adapter == "redcap"
    ]
    if not names:
        raise ConfigError(
            "no REDCap source to serve", hint='add a [sources.NAME] table with adapter = "redcap"'
        )
    served: list[DetSource] = []
    for name in names:
        _, adapter = open_source(ctx, name)
        try:
            adapter.check()
            disc = adapter.discover()
            served.append(
                DetSource.of(
                    name,
                    disc.project.project_id,
                    adapter.opts.url,
                    (i.instrument for i in adapter.opts.instruments),
                )
            )
        finally:
            adapter.close()
    secret = _serve_secret(secret_file)
    if secret is None and not _loopback(host):
        click.echo(
            f"warning: listening on {host} without a shared secret: anyone who can reach the "
            "port can ask for syncs (set FIT_SERVE_DET_SECRET or --secret-file)",
            err=True,
        )
    queue = SyncQueue(make_runner(config_path), debounce=debounce).start()
    server = DetServer(served, queue, host=host, port=port, path=path, secret=secret)
    bound_host, bound_port = server.address
    shown = path.rstrip("/") + ("/<secret>" if secret else "")
    click.echo(
        f"fit serve: listening on http://{bound_host}:{bound_port}{shown or '/'} for "
        f"{', '.join(names)} (Ctrl-C to stop)",
        err=True,
    )
    _stop_on_sigterm(server)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("fit serve: stopping", err=True)
    finally:
        server.stop()
        queue.stop()
