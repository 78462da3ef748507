"""``fit clients link|ignore|unlink|list`` and ``fit outbox list|clear`` (SimplePractice bridge).

Added to ``fit`` through the ``fit_register_commands`` hook. Client names are never stored and
never printed unless asked for with ``--show-names``, which reads them from the export files at
that moment and prints them only to a terminal. A name given on the command line lands in the
shell history: prefer the ``n:<hash>`` shown by ``fit clients list --unlinked``, a
SimplePractice client id, or ``-`` (type the name at a hidden prompt, or pipe it on stdin).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from fit_core.clitools import App
from fit_core.clitools import fit_errors as _fit_errors
from fit_core.config import Config, SourceConfig, adapter_options
from fit_core.errors import ConfigError, ExitCode
from fit_core.redact import redact_obj

from .exports import ExportReader, RefEntry, list_exports
from .links import Kind, LinkBook
from .names import SHORT, NameHasher
from .options import SpOptions
from .outbox import Outbox, entry_dict

ADAPTER = "simplepractice"
_HEX = re.compile(r"^[0-9a-f]+$")


def _usage(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(int(ExitCode.USAGE))


def stdout_is_terminal() -> bool:
    """True when stdout is a terminal (names may be shown there, never piped into a file)."""
    return sys.stdout.isatty()


# --- the source ------------------------------------------------------------------------------


@dataclass
class Bridge:
    """A configured simplepractice source, as the commands need it."""

    config: Config
    source: SourceConfig
    sp: SpOptions

    def hasher(self) -> NameHasher:
        from fit_core.plugins import load_plugins
        from fit_core.secrets import SecretStore

        key = SecretStore(load_plugins().resolve_secret).get(self.source.name, "name_key")
        return NameHasher(key, self.source.name)

    def book(self, hasher: NameHasher | None = None) -> LinkBook:
        book = LinkBook.load(self.sp.mapping_file)
        if hasher is not None:
            book.verify_key(hasher.check_value())
        return book

    def today(self) -> dt.date:
        return dt.datetime.now(self.config.sync.tzinfo()).date()

    def scan(
        self, hasher: NameHasher, book: LinkBook, *, show_names: bool = False
    ) -> tuple[list[RefEntry], int]:
        """Every client in the exports with its link state; and how many files were unusable."""
        now = dt.datetime.now(dt.UTC)
        reader = ExportReader(self.sp, hasher, book, self.config.sync.tzinfo(), now)
        bad = sum(1 for _ in reader.classify(list_exports(self.sp.path)))
        return reader.scan(show_names=show_names), bad


def _bridge(ctx: click.Context, source: str | None) -> Bridge:
    config = App.of(ctx).config
    if source is None:
        names = [n for n, s in config.sources.items() if s.adapter == ADAPTER]
        if not names:
            raise ConfigError(
                "no simplepractice source in the config",
                hint='add a [sources.NAME] table with adapter = "simplepractice"',
            )
        if len(names) > 1:
            _usage(f"several simplepractice sources ({', '.join(names)}): give --source")
        source = names[0]
    src = config.source(source)
    if src.adapter != ADAPTER:
        raise ConfigError(
            f"source {source!r} uses the {src.adapter} adapter, not simplepractice",
            hint='give the name of a [sources.NAME] table with adapter = "simplepractice"',
        )
    from .adapter import SimplePracticeAdapter

    options = adapter_options(src, SimplePracticeAdapter)
    sp = SpOptions.load(options, src.name, src.namespace, config.store_path.parent)
    return Bridge(config, src, sp)


_source_option = click.option(
    "--source",
    "source",
    metavar="SOURCE",
    help="The simplepractice source (default: the only one in the config).",
)


# --- fit clients ------------------------------------------------------------------------------


@click.group("clients")
def clients() -> None:
    """Link SimplePractice clients to the client ids of the ORS/SRS sources.

    Links are explicit and reviewed: nothing is matched by guessing. The link book stores a
    keyed hash of each normalised name (secret: `fit keys set SOURCE name_key`), never a name.
    """


def _read_name() -> str:
    if sys.stdin.isatty():
        return str(click.prompt("client name (as in SimplePractice)", hide_input=True))
    return sys.stdin.readline().strip()


def _resolve_arg(
    bridge: Bridge, hasher: NameHasher, book: LinkBook, arg: str
) -> tuple[Kind, str, str]:
    """(kind, key, shown) for a NAME_OR_SP_ID argument (see `fit clients link --help`)."""
    if arg == "-":
        arg = _read_name()
        name_hash = hasher.name(arg)
        if name_hash is None:
            _usage("no name given")
        assert name_hash is not None
        return "name", name_hash, f"n:{name_hash[:SHORT]}"
    if arg.startswith("id:") and arg[3:].strip():
        number = arg[3:].strip()
        return "number", number, f"id:{number}"
    if arg.startswith("n:"):
        prefix = arg[2:].strip().lower()
        if not _HEX.match(prefix) or len(prefix) < 6:
            _usage("n: needs at least 6 hex digits of a name hash (see fit clients list)")
        known = set(book.name_keys())
        if len(prefix) < 64:
            entries, _ = bridge.scan(hasher, book)
            known |= {e.ident[2:] for e in entries if e.ident.startswith("n:")}
        matches = sorted(k for k in known if k.startswith(prefix))
        if len(matches) != 1 and len(prefix) == 64:
            matches = [prefix]
        if not matches:
            _usage(f"no client with the name hash n:{prefix} in the exports or the links")
        if len(matches) > 1:
            _usage(f"n:{prefix} matches {len(matches)} clients: give more digits")
        return "name", matches[0], f"n:{matches[0][:SHORT]}"
    if arg.strip().isdigit():
        return "number", arg.strip(), f"id:{arg.strip()}"
    name_hash = hasher.name(arg)
    if name_hash is None:
        _usage("the name is empty")
    assert name_hash is not None
    return "name", name_hash, f"n:{name_hash[:SHORT]}"


def _store_link(ctx: click.Context, source: str | None, arg: str, client_id: str | None) -> None:
    bridge = _bridge(ctx, source)
    hasher = bridge.hasher()
    book = bridge.book(hasher)
    kind, key, shown = _resolve_arg(bridge, hasher, book, arg)
    if kind == "name":
        entries, _ = bridge.scan(hasher, book)
        shared = next((e.shared for e in entries if e.ident == f"n:{key}" and e.shared), 0)
        if shared:
            raise ConfigError(
                f"{shared} SimplePractice clients share the name {shown}: a name link would "
                "be a guess",
                hint=f"link each by SimplePractice client id (`fit clients list --unlinked "
                f"--source {bridge.source.name}` shows them)",
            )
    book.key_check = book.key_check or hasher.check_value()
    old = book.set(kind, key, client_id, bridge.today())
    book.save()
    was = ""
    if old is not None and old.client_id != client_id:
        was = f" (was {old.client_id or 'ignored'})"
    if client_id is None:
        click.echo(f"ignored {shown}: its rows are skipped without an error{was}")
        return
    click.echo(f"linked {shown} -> {client_id} in namespace {bridge.sp.namespace}{was}")
    _warn_unknown_client(bridge, client_id)


def _known_ids(bridge: Bridge, client_ids: set[str]) -> set[str] | None:
    """The client ids of ``client_ids`` with ORS/SRS in the store (None: no store yet)."""
    path = bridge.config.store_path
    if str(path) == ":memory:" or not Path(path).exists():
        return None
    from fit_core.config import namespace_cases
    from fit_core.identity import normalise_client_id
    from fit_core.store import Store

    keep = namespace_cases(bridge.config).get(bridge.sp.namespace) == "keep"
    # as the sync stores codes: g0001 is G0001
    stored_as = {cid: normalise_client_id(cid, keep_case=keep) for cid in client_ids}
    store = Store.open(path)
    try:
        found = store.client_administrations(
            [(bridge.sp.namespace, c) for c in set(stored_as.values())]
        )
    finally:
        store.close()
    known = {cid for (_ns, cid), admins in found.items() if admins}
    return {cid for cid, stored in stored_as.items() if stored in known}


def _warn_unknown_client(bridge: Bridge, client_id: str) -> None:
    """Warn when the store holds no ORS/SRS for the client id (a typo?)."""
    known = _known_ids(bridge, {client_id})
    if known is not None and client_id not in known:
        click.echo(
            f"warning: no ORS/SRS for client {client_id!r} in namespace "
            f"{bridge.sp.namespace!r} yet (a typo? `fit clients unlink` undoes the link)",
            err=True,
        )


_ARG_HELP = (
    "NAME_OR_SP_ID is n:<hash digits> (from `fit clients list --unlinked`), a SimplePractice "
    "client id (digits, or id:<id>), - to type the name at a hidden prompt (or pipe it), or "
    "the client's name as in SimplePractice (it then lands in your shell history)."
)


@clients.command("link", epilog=_ARG_HELP)
@click.argument("name_or_sp_id")
@click.argument("client_id")
@_source_option
@click.pass_context
@_fit_errors
def link(ctx: click.Context, name_or_sp_id: str, client_id: str, source: str | None) -> None:
    """Link a SimplePractice client to CLIENT_ID of the ORS/SRS namespace."""
    client_id = client_id.strip()
    if not client_id or any(ord(c) < 32 for c in client_id):
        _usage("CLIENT_ID must be a non-empty client id")
    _store_link(ctx, source, name_or_sp_id, client_id)


@clients.command("ignore", epilog=_ARG_HELP)
@click.argument("name_or_sp_id")
@_source_option
@click.pass_context
@_fit_errors
def ignore(ctx: click.Context, name_or_sp_id: str, source: str | None) -> None:
    """Mark a SimplePractice client as reviewed and not in FIT (rows skipped, no error)."""
    _store_link(ctx, source, name_or_sp_id, None)


@clients.command("unlink", epilog=_ARG_HELP)
@click.argument("name_or_sp_id")
@_source_option
@click.pass_context
@_fit_errors
def unlink(ctx: click.Context, name_or_sp_id: str, source: str | None) -> None:
    """Remove a link (or an ignore) of a SimplePractice client."""
    bridge = _bridge(ctx, source)
    hasher = bridge.hasher()
    book = bridge.book(hasher)
    kind, key, shown = _resolve_arg(bridge, hasher, book, name_or_sp_id)
    old = book.remove(kind, key)
    if old is None:
        _usage(f"{shown} is not linked")
    book.save()
    assert old is not None
    click.echo(f"unlinked {shown} (was {old.client_id or 'ignored'})")


@clients.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Say what would be linked; change nothing.")
@_source_option
@click.pass_context
@_fit_errors
def import_links(ctx: click.Context, file: Path, dry_run: bool, source: str | None) -> None:
    """Link many clients at once from FILE (CSV or .xlsx) with two columns: the client as in
    SimplePractice (name, SimplePractice id or n:<hash>) and the client id of the ORS/SRS
    namespace. A header row is skipped.

    Names are read from the file and never printed: rows are shown by line and n:<hash>. Rows
    that cannot be linked (an ambiguous name, two client ids for one client, no client id) are
    listed and left out; the rest are linked in one write. Exit 1 when a row was left out.
    The file holds names: delete it when the links are made.
    """
    from .link_import import LinkFileError, plan, read_rows

    bridge = _bridge(ctx, source)
    hasher = bridge.hasher()
    book = bridge.book(hasher)
    entries, _ = bridge.scan(hasher, book)
    in_exports = {e.ident for e in entries} | {f"id:{e.number}" for e in entries if e.number}
    shared = {e.ident[2:]: e.shared for e in entries if e.shared and e.ident.startswith("n:")}
    sp = bridge.sp
    try:
        rows = list(read_rows(file, encoding=sp.encoding, delimiter=sp.delimiter, sheet=sp.sheet))
    except LinkFileError as exc:
        raise ConfigError(
            f"cannot read the link file: {exc}",
            hint="two columns: the client as in SimplePractice, the client id",
        ) from None
    result = plan(rows, hasher, book, in_exports=in_exports, shared=shared)
    ids = {r.client_id for r in result.to_link}
    known = _known_ids(bridge, ids)
    unknown = sorted(ids - known) if known is not None else []
    verb = "would link" if dry_run else "linked"
    click.echo(
        f"{file.name}: {result.rows} row(s); {verb} {len(result.to_link)} client(s) in "
        f"namespace {sp.namespace} ({len(result.new)} new, {len(result.changed)} changed; "
        f"{len(result.same)} already linked as in the file)"
    )
    for row, was in result.changed:
        click.echo(f"  {row.line}: {row.shown} -> {row.client_id} (was {was})")
    if unknown:
        click.echo(
            f"unknown client ids (no ORS/SRS in namespace {sp.namespace} yet; typos?): "
            + ", ".join(unknown)
        )
    if result.not_in_exports:
        shown = ", ".join(f"{r.line.rsplit(' ', 1)[-1]} ({r.shown})" for r in result.not_in_exports)
        click.echo(f"not in the current exports (linked all the same; typos?): lines {shown}")
    for where, why in result.refused:
        click.echo(f"left out: {where}: {why}", err=True)
    if dry_run:
        click.echo("dry run: nothing changed; run again without --dry-run to link")
    elif result.to_link:
        book.key_check = book.key_check or hasher.check_value()
        result.apply(book, bridge.today())
        book.save()
    sys.exit(int(ExitCode.PARTIAL if result.refused else ExitCode.OK))


@clients.command("list")
@click.option(
    "--unlinked",
    is_flag=True,
    help="List the clients in the exports that are not linked (or are ambiguous).",
)
@click.option(
    "--show-names",
    is_flag=True,
    help="Also print names, read from the exports now (terminal only, never stored).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_source_option
@click.pass_context
@_fit_errors
def list_clients(
    ctx: click.Context, unlinked: bool, show_names: bool, as_json: bool, source: str | None
) -> None:
    """List the links, or with --unlinked the clients of the exports that need one."""
    if show_names and not stdout_is_terminal():
        _usage("--show-names prints names only to a terminal, never into a pipe or a file")
    bridge = _bridge(ctx, source)
    if not unlinked and not show_names:
        book = bridge.book()
        rows = [
            {
                "ref": link.ref,
                "kind": link.kind,
                "client_id": link.client_id,
                "ignored": link.client_id is None,
                "linked_at": link.linked_at,
            }
            for link in book
        ]
        _print_links(rows, as_json, bridge.sp.mapping_file)
        return
    hasher = bridge.hasher()
    book = bridge.book(hasher)
    entries, bad = bridge.scan(hasher, book, show_names=show_names)
    if unlinked:
        entries = [e for e in entries if e.state in ("unlinked", "ambiguous")]
    else:
        names = {f"n:{k}" for k in book.name_keys()}
        numbers = {f"id:{link.key}" for link in book if link.kind == "number"}
        entries = [e for e in entries if e.ident in names or f"id:{e.number}" in numbers]
    _print_entries(entries, as_json, show_names, bad)


def _print_links(rows: list[dict[str, Any]], as_json: bool, path: Path) -> None:
    if as_json:
        click.echo(json.dumps(redact_obj(rows), indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"no links yet in {path} (see `fit clients list --unlinked`)")
        return
    for r in rows:
        target = "(ignored)" if r["ignored"] else r["client_id"]
        click.echo(f"{r['ref']:<18} -> {target:<16} linked {r['linked_at']}")


def _print_entries(entries: list[RefEntry], as_json: bool, show_names: bool, bad: int) -> None:
    if as_json:
        out = []
        for e in entries:
            item: dict[str, Any] = {
                "ref": e.shown,
                "state": e.state,
                "client_id": e.client_id,
                "sp_client_id": e.number,
                "shared_by": e.shared or None,
                "rows": e.rows,
                "where": e.where,
            }
            if show_names:
                item["name"] = e.name
            out.append(item)
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
    elif not entries:
        click.echo("every client in the exports is linked or ignored")
    for e in entries if not as_json else ():
        extra = f" ({e.shared} clients share this name)" if e.shared else ""
        number = f" sp id {e.number}" if e.number else ""
        target = f" -> {e.client_id}" if e.client_id else ""
        click.echo(
            f"{e.shown:<18} {e.state}{target}{extra}{number}, {e.rows} row(s): "
            f"{'; '.join(e.where[:3])}{' ...' if e.rows > 3 else ''}"
        )
        if show_names:
            click.echo(f"    name: {e.name or '(none in the export)'}")
    if bad:
        click.echo(f"warning: {bad} export file(s) could not be read (see `fit sync`)", err=True)


# --- fit exports ------------------------------------------------------------------------------


@click.group("exports")
def exports() -> None:
    """The SimplePractice export files the bridge reads."""


@exports.command(
    "accept", short_help="Use the exports as they are now, though shorter than before."
)
@_source_option
@click.pass_context
@_fit_errors
def exports_accept(ctx: click.Context, source: str | None) -> None:
    """Accept the exports exactly as they are now, though they hold fewer status-report rows
    than when last read, or no status report at all.

    fit sync refuses such exports (they look cut short, and would drop appointments) and keeps
    the attendance it has. Once accepted, the next sync reads these files (a change to any
    of them ends the acceptance). Damaged files (cut-off rows, unreadable dates, missing
    columns) are never accepted: export them again.
    """
    from .links import write_private
    from .tables import fingerprint

    bridge = _bridge(ctx, source)
    files = list_exports(bridge.sp.path)
    now = {name: fingerprint(path)["sha256"] for name, path in files}
    data = {"accepted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "files": now}
    write_private(bridge.sp.accepted_file, json.dumps(data, indent=1, sort_keys=True) + "\n")
    names = ", ".join(now) or "(none)"
    click.echo(f"accepted {len(now)} export(s) of source {bridge.source.name} as they are: {names}")
    click.echo("the next `fit sync` reads them", err=True)


# --- fit outbox -------------------------------------------------------------------------------


@click.group("outbox")
def outbox() -> None:
    """The SimplePractice outbox: progress-note snippets and score files per client."""


def _outbox(bridge: Bridge) -> Outbox:
    return Outbox(bridge.sp.outbox, "")


@outbox.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_source_option
@click.pass_context
@_fit_errors
def outbox_list(ctx: click.Context, as_json: bool, source: str | None) -> None:
    """List the clients in the outbox; NEW/CHANGED marks the latest run's changes."""
    box = _outbox(_bridge(ctx, source))
    last = box.last_run()
    entries = box.entries()
    if as_json:
        click.echo(json.dumps([entry_dict(e, last) for e in entries], indent=2))
        return
    if not entries:
        click.echo(f"the outbox {box.root} is empty")
        return
    for e in entries:
        mark = e.state.upper() if e.changed_at == last else "-"
        click.echo(f"{mark:<8} {e.clinician:<20} {e.client_id:<16} {box.root / e.folder}")


@outbox.command("clear")
@click.option("--client", "client_id", metavar="ID", help="Remove this client's files.")
@click.option("--all", "everything", is_flag=True, help="Remove every client's files.")
@_source_option
@click.pass_context
@_fit_errors
def outbox_clear(
    ctx: click.Context, client_id: str | None, everything: bool, source: str | None
) -> None:
    """Remove outbox files (after uploading them). They come back when the client's scores,
    flags or appointments change."""
    if bool(client_id) == everything:
        _usage("give --client ID or --all")
    box = _outbox(_bridge(ctx, source))
    gone = box.clear(None if everything else client_id)
    if client_id and not gone:
        _usage(f"client {client_id!r} has no files in the outbox")
    click.echo(f"removed the files of {len(gone)} client(s) from {box.root}")
