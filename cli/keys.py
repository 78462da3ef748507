"""``fit keys set|get|delete|list``: manage the secrets sources need.

Values never appear on the command line (shell history, ``ps``): ``set`` reads a hidden prompt
on a terminal, else stdin, or ``--from-file``. ``get`` says where a secret is set and prints the
value only with ``--show``. ``list`` derives names from the config, since a keyring cannot list.

The commands read the config and the plugins from the run's :class:`~fit_core.clitools.App`
(``--config``, else ``$FIT_CONFIG``, else the default path).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fit_core.clitools import App, fit_errors
from fit_core.config import Config
from fit_core.errors import FitError, PluginError
from fit_core.plugins import Registry
from fit_core.redact import redact_obj
from fit_core.secrets import (
    SecretStore,
    check_name,
    credential_name,
    env_name,
    missing_secret_error,
    no_keyring_error,
    usable_keyring,
    where_kind,
)


def _name(what: str) -> Callable[[click.Context, click.Parameter, str], str]:
    def callback(ctx: click.Context, param: click.Parameter, value: str) -> str:
        try:
            return check_name(value, what)
        except FitError as exc:
            raise click.BadParameter(exc.hint or exc.message) from None

    return callback


def _config(ctx: click.Context) -> Config:
    return App.of(ctx).config


def _registry(ctx: click.Context) -> Registry:
    return App.of(ctx).registry


def _store(ctx: click.Context) -> SecretStore:
    return SecretStore(_registry(ctx).resolve_secret)


@click.group()
def keys() -> None:
    """Set, show and delete source secrets (API tokens, service-account files).

    Lookup order: the environment variable FIT_<SOURCE>_<KEY>, a systemd credential
    <source>.<key> ($CREDENTIALS_DIRECTORY), plugins, then the keyring (service "fit").
    """


@keys.command("set")
@click.argument("source", callback=_name("source"))
@click.argument("key", callback=_name("key"))
@click.option(
    "--from-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the value from this file (e.g. a Google service-account JSON).",
)
@click.pass_context
@fit_errors
def set_(ctx: click.Context, source: str, key: str, from_file: Path | None) -> None:
    """Store SOURCE's secret KEY in the keyring.

    The value comes from --from-file, else a hidden prompt on a terminal, else stdin
    (e.g. `printf %s "$TOKEN" | fit keys set clinic_redcap token`).
    """
    if usable_keyring() is None:  # fail before asking for a value we cannot keep
        raise no_keyring_error(source, key)
    if from_file is not None:
        value = from_file.read_text(encoding="utf-8").rstrip("\r\n")
    elif _stdin_is_tty():
        value = click.prompt(
            f"Value for {credential_name(source, key)}",
            hide_input=True,
            confirmation_prompt=True,
        )
    else:
        value = sys.stdin.read().strip()
    if not value:
        raise click.UsageError("no value given (stdin or the file was empty)")
    _warn_if_unknown(ctx, source, key)
    SecretStore().set(source, key, value)
    click.echo(f"stored {credential_name(source, key)} in the keyring", err=True)


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _warn_if_unknown(ctx: click.Context, source: str, key: str) -> None:
    """Warn (never fail) when SOURCE is not configured or its adapter does not use KEY."""
    try:
        config = _config(ctx)
    except FitError:
        return
    channel = config.notify.channels.get(source.removeprefix("notify_"))
    if source.startswith("notify_") and channel is None and source not in config.sources:
        known = ", ".join(config.notify.channels) or "none"
        click.echo(
            f"warning: no notification channel {source.removeprefix('notify_')!r} in "
            f"{config.path} (channels: {known})",
            err=True,
        )
        return
    if source.startswith("notify_") and channel is not None:
        try:
            notifier = _registry(ctx).notifier(channel.type)
        except FitError:
            return
        if key not in notifier.secret_keys:
            declared = ", ".join(notifier.secret_keys) or "none"
            click.echo(
                f"warning: the {channel.type} channel does not use a secret {key!r} "
                f"(it uses: {declared})",
                err=True,
            )
        return
    src = config.sources.get(source)
    if src is None:
        known = ", ".join(config.sources) or "none"
        click.echo(f"warning: no source {source!r} in {config.path} (sources: {known})", err=True)
        return
    try:
        adapter = _registry(ctx).adapter(src.adapter)
    except FitError:
        return
    if key not in adapter.secret_keys:
        declared = ", ".join(adapter.secret_keys) or "none"
        click.echo(
            f"warning: the {src.adapter} adapter does not use a secret {key!r} "
            f"(it uses: {declared})",
            err=True,
        )


@keys.command("get")
@click.argument("source", callback=_name("source"))
@click.argument("key", callback=_name("key"))
@click.option("--show", is_flag=True, help="Print the value itself.")
@click.pass_context
@fit_errors
def get(ctx: click.Context, source: str, key: str, show: bool) -> None:
    """Say where SOURCE's secret KEY is set; print the value only with --show."""
    value, where = _store(ctx).find(source, key)
    if value is None:
        raise missing_secret_error(source, key, keyring_ok=usable_keyring() is not None)
    click.echo(value if show else f"set ({where})")


@keys.command("delete")
@click.argument("source", callback=_name("source"))
@click.argument("key", callback=_name("key"))
@click.pass_context
@fit_errors
def delete(ctx: click.Context, source: str, key: str) -> None:
    """Remove SOURCE's secret KEY from the keyring."""
    store = SecretStore()
    store.delete(source, key)
    click.echo(f"deleted {credential_name(source, key)} from the keyring", err=True)
    _value, where = store.find(source, key)
    if where is not None:
        click.echo(f"note: it is still set ({where})", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@fit_errors
def list_(ctx: click.Context, as_json: bool) -> None:
    """List the secrets the configured sources and notification channels need and where each
    is set (never values)."""
    rows = secret_report(_config(ctx), _registry(ctx))
    if as_json:
        click.echo(json.dumps(redact_obj(rows), indent=2))
        return
    for row in rows:
        head = f"{row['source']} ({row['adapter']})"
        if not row["adapter_installed"]:
            click.echo(f"{head}: adapter not installed, its secret keys are unknown")
        elif not row["secrets"]:
            click.echo(f"{head}: no secrets")
        else:
            click.echo(head)
            for s in row["secrets"]:
                click.echo(f"  {s['key']}: {_describe(row['source'], s)}")


def _describe(source: str, s: dict[str, Any]) -> str:
    if s["found"] == "missing" and s.get("optional"):
        return f"not set (optional: fit keys set {source} {s['key']}, or {s['env']})"
    if s["found"] == "missing":
        return f"missing (fit keys set {source} {s['key']}, or {s['env']})"
    if s["found"] == "error":
        return f"error: {s['error']}"
    return f"set ({s['where']})"


KeyLookup = Callable[[], tuple[str, ...]]  # the secret keys a plugin declares, found when called


def _adapter_keys(registry: Registry, adapter: str) -> KeyLookup:
    """The secret keys ``adapter`` declares, looked up when called (PluginError: not installed)."""
    return lambda: registry.adapter(adapter).secret_keys


def _channel_keys(registry: Registry, kind: str, *, optional: bool) -> KeyLookup:
    """The secret keys (or the optional ones) a channel type declares, looked up when called."""
    if optional:
        return lambda: registry.notifier(kind).optional_secret_keys
    return lambda: registry.notifier(kind).secret_keys


def secret_report(
    config: Config, registry: Registry, store: SecretStore | None = None
) -> list[dict[str, Any]]:
    """Per configured source (and notification channel, as ``notify_<channel>``): its adapter
    (or channel type) and, for each secret key it declares, where it is set.

    ``found`` is one of env, credential, plugin, keyring, missing, error. Never holds a value.
    """
    store = store or SecretStore(registry.resolve_secret)
    rows: list[dict[str, Any]] = []
    owners: list[tuple[str, str, bool, KeyLookup, KeyLookup]] = [
        (
            name,
            src.adapter,
            src.enabled,
            _adapter_keys(registry, src.adapter),
            lambda: (),
        )
        for name, src in config.sources.items()
    ]
    owners += [
        (
            f"notify_{name}",
            f"{ch.type} channel",
            True,
            _channel_keys(registry, ch.type, optional=False),
            _channel_keys(registry, ch.type, optional=True),
        )
        for name, ch in config.notify.channels.items()
    ]
    for name, kind, enabled, declared, optional in owners:
        try:
            secret_keys: tuple[str, ...] | None = declared()
            optional_keys = set(optional())
        except PluginError:
            secret_keys, optional_keys = None, set()
        secrets = []
        for key in secret_keys or ():
            entry: dict[str, Any] = {
                "key": key,
                "env": env_name(name, key),
                "credential": credential_name(name, key),
                "optional": key in optional_keys,
            }
            try:
                _value, where = store.find(name, key)
            except FitError as exc:
                entry.update(found="error", where=None, error=exc.message)
            else:
                entry.update(found=where_kind(where), where=where)
            secrets.append(entry)
        rows.append(
            {
                "source": name,
                "adapter": kind,
                "adapter_installed": secret_keys is not None,
                "enabled": enabled,
                "secrets": secrets,
            }
        )
    return rows
