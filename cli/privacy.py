"""`fit client export|erase|readmit`, `fit purge`, `fit audit` and `fit store encrypt|rekey|status`:
a client's data on request, erasure, retention, the audit log and encryption at rest.

See docs/privacy.md. Every command that reads or changes a client's data is written to the
audit log (keyed hashes, never ids).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click

from fit_core.audit import auditor_for
from fit_core.config import Config
from fit_core.errors import ConfigError, ExitCode
from fit_core.lock import SyncLock
from fit_core.plugins import Registry
from fit_core.store import Store

from .app import App, echo_json, handle_errors
from .commands import _config, _secret_lookup

_NS_HELP = "The client's namespace (needed only when the id is in several)."


def _open(ctx: click.Context) -> tuple[Config, Registry, Any, Store]:
    config = _config(ctx.find_root())
    registry = App.of(ctx).registry
    store_path = Path(config.store_path)
    if str(store_path) != ":memory:" and not store_path.exists():
        raise ConfigError(f"no store at {store_path}", hint="run `fit sync` first")
    store = Store.open(config.store_path)
    ctx.call_on_close(store.close)
    return config, registry, _secret_lookup(registry), store


# --- fit client -------------------------------------------------------------------------------


@click.group("client")
def client() -> None:
    """One client's data: export it (right of access), erase it, or let it back in."""


@client.command("export")
@click.argument("client_id", metavar="ID")
@click.option("--namespace", default=None, help=_NS_HELP)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder to create (default: ./fit-export-ID-DATE), or the .zip with --archive.",
)
@click.option("--archive", is_flag=True, help="Write one zip file instead of a folder.")
@click.pass_context
@handle_errors
def export_cmd(
    ctx: click.Context, client_id: str, namespace: str | None, out: Path | None, archive: bool
) -> None:
    """Write everything held about client ID: scores, alerts with history, attendance, notes,
    what was pushed, audit entries, every stored row (JSON and CSV) and the report page.

    The folder is created mode 0700 and every file 0600 (a zip file 0600). Its path is printed.
    """
    from fit_core.client_export import build_export, report_pages, write_export
    from fit_core.erasure import PrivacyJob, export_files, find_client
    from fit_core.measures import COPYRIGHT_LINES
    from fit_core.scoring import Scorer
    from fit_core.sync import load_active_model

    config, registry, secret, store = _open(ctx)
    ns, cid = find_client(store, client_id, namespace, config)
    today = dt.datetime.now(config.sync.tzinfo()).date()
    settings = config.settings.with_(as_of=today)
    model = load_active_model(store)
    admins = store.client_administrations([(ns, cid)])[(ns, cid)]
    context = store.client_contexts([(ns, cid)]).get((ns, cid))
    scorer = Scorer(registry.measures, settings, list(registry.rules.values()), model)
    scored = scorer.score(admins, context).scored if admins else ()
    auditor = auditor_for(store, config, secret)
    subjects = auditor.client_subjects([(ns, cid)])
    audit = store.audit_for_subjects(subjects) if subjects else []
    doc = build_export(store, ns, cid, scored=scored, audit=audit)
    episodes = sorted({s.score.episode_id for s in scored})
    page = _page_renderer(store, registry, settings, model, today)
    pages = report_pages(page, ns, cid, episodes)
    job = PrivacyJob(store, config, registry, secret, ns, cid)
    files = export_files(job)
    target = out or Path(
        f"fit-export-{_safe(cid)}-{today.isoformat()}" + (".zip" if archive else "")
    )
    path = write_export(
        target,
        doc,
        pages=pages,
        files=files,
        archive=archive,
        copyright_lines=COPYRIGHT_LINES,
    )
    auditor.record(
        "export",
        counts={
            "administrations": len(doc["store"]["administrations"]),
            "alerts": len(doc["alerts"]),
            "files": len(pages) + len(files),
        },
        subjects=subjects,
        wanted_subjects=True,
    )
    click.echo(str(path))
    if not pages:
        click.echo(
            "note: no report page in the export (install the reports extra for it)", err=True
        )


def _page_renderer(store: Store, registry: Registry, settings: Any, model: Any, today: Any) -> Any:
    from fit_core.reports.pages import PageRenderer

    rules = {rid: rule.description for rid, rule in registry.rules.items()}
    return PageRenderer.create(store, registry.measures, settings, model, rules, today)


def _safe(text: str) -> str:
    from fit_core.reports.output import safe_name

    return safe_name(text)


@client.command("erase")
@click.argument("client_id", metavar="ID")
@click.option("--namespace", default=None, help=_NS_HELP)
@click.option("--dry-run", is_flag=True, help="Show what would be removed, per place.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@handle_errors
def erase_cmd(
    ctx: click.Context, client_id: str, namespace: str | None, dry_run: bool, yes: bool
) -> None:
    """Erase client ID from the store and from every target fit-sync wrote to (score rows,
    Sheet rows, REDCap score fields, outbox notes and report pages, report files), and keep a
    keyed-hash tombstone so no sync imports them again.

    The sources' own data (survey answers, exports) is not fit-sync's to delete: the command
    names the sources that still hold the client; delete the data there. Until then `fit sync`
    skips it and says where it is. Needs the privacy key (`fit keys set privacy hash_key`).
    Exit 1 when a target could not be reached (the next sync finishes it).
    """
    from fit_core.erasure import PrivacyJob, erase_client, find_client, survey_client
    from fit_core.privacy import privacy_key

    config, registry, secret, store = _open(ctx)
    with SyncLock(store.path):
        ns, cid = find_client(store, client_id, namespace, config)
        job = PrivacyJob(store, config, registry, secret, ns, cid, dry_run=dry_run)
        survey = survey_client(job)
        if dry_run:
            click.echo(f"client {cid} (namespace {ns}) would be erased from:")
            _print_places(survey.places)
            _print_sources(survey.sources, erased=False)
            return
        privacy_key(secret)  # before asking: no erasure without its tombstone
        if not yes:
            click.echo(f"client {cid} (namespace {ns}) is held in:", err=True)
            for p in survey.places:
                if p.lines:
                    click.echo(f"  {p.place}: {'; '.join(p.lines)}", err=True)
            if not sys.stdin.isatty():
                raise click.UsageError("pass --yes to erase without a terminal to confirm on")
            click.confirm(f"Erase client {cid} everywhere? This cannot be undone", abort=True)
        job.target_keys = {}
        report = erase_client(job)
    click.echo(f"client {cid} (namespace {ns}) erased:")
    _print_places(report.places)
    _print_sources(report.sources, erased=True)
    if report.incomplete:
        sys.exit(int(ExitCode.PARTIAL))


def _print_places(places: Any) -> None:
    for p in places:
        if not p.lines:
            continue
        click.echo(f"  {p.place}:")
        for line in p.lines:
            click.echo(f"    {line}")


def _print_sources(sources: dict[str, int], *, erased: bool) -> None:
    if not sources:
        return
    click.echo(
        "the sources' own data is not deleted by fit-sync; delete the client there"
        + (" (until then `fit sync` skips it and says where it is):" if erased else ":")
    )
    for name, n in sorted(sources.items()):
        click.echo(f"  {name}: {n} record(s) or appointment(s) were imported from it")


@client.command("readmit")
@click.argument("client_id", metavar="ID")
@click.option("--namespace", required=True, help="The client's namespace.")
@click.pass_context
@handle_errors
def readmit_cmd(ctx: click.Context, client_id: str, namespace: str) -> None:
    """Lift the erasure of client ID: the next sync imports what the sources hold of them
    again (e.g. the client came back and agreed to it)."""
    from fit_core.identity import normalise_client_id
    from fit_core.privacy import client_hash, privacy_key, verify_key

    config, _registry, secret, store = _open(ctx)
    key = privacy_key(secret)
    verify_key(store, key)
    lifted = [
        cid
        for cid in dict.fromkeys([client_id, normalise_client_id(client_id)])
        if store.remove_tombstone(client_hash(key, namespace, cid))
    ]
    if not lifted:
        raise ConfigError(
            f"no erasure of client {client_id!r} in namespace {namespace!r}",
            hint="check the id and the namespace (erased ids are not listed anywhere)",
        )
    auditor_for(store, config, secret).record(
        "readmit", subjects=[client_hash(key, namespace, c) for c in lifted]
    )
    click.echo(f"client {lifted[0]} (namespace {namespace}) may be imported again")


# --- fit purge --------------------------------------------------------------------------------


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Show what would be purged.")
@click.pass_context
@handle_errors
def purge(ctx: click.Context, dry_run: bool) -> None:
    """Purge the episodes that ended longer ago than [privacy] retain_after_end, from the store
    and the targets (`fit sync` does this at every run; this shows or does it now)."""
    from fit_core.erasure import flush_targets, purge_expired

    config, registry, secret, store = _open(ctx)
    retention = config.privacy.retain_after_end
    if retention is None:
        raise ConfigError(
            "no retention period is set: nothing is ever purged",
            hint='set [privacy] retain_after_end, e.g. "7y" (see docs/privacy.md)',
        )
    today = dt.datetime.now(config.sync.tzinfo()).date()
    settings = config.settings.with_(as_of=today)
    with SyncLock(store.path):
        report = purge_expired(store, settings, today, retention, secret, dry_run=dry_run)
        verb = "would purge" if dry_run else "purged"
        click.echo(
            f"retention {retention.text} after the end (ended on or before "
            f"{retention.cutoff(today).isoformat()}): {verb} {report.records} record(s) of "
            f"{len(report.expired)} episode(s), {report.appointments} appointment(s)"
        )
        for e in report.expired:
            whole = " (the whole client)" if e.whole_client else ""
            click.echo(
                f"  client {e.client_id} ({e.namespace}) episode {e.episode_id}: "
                f"{e.first.isoformat()} to {e.last_session.isoformat()}, ended "
                f"{e.ended_on.isoformat()}, {len(e.keys)} record(s){whole}"
            )
        if dry_run or not report.expired:
            return
        auditor = auditor_for(store, config, secret)
        auditor.record(
            "purge",
            counts={
                "records": report.records,
                "episodes": len(report.expired),
                "appointments": report.appointments,
            },
            subjects=auditor.client_subjects(sorted(report.clients)),
            detail=f"retain_after_end {retention.text}",
        )
        for source, lines in flush_targets(store, config, registry, secret, report.sources).items():
            for line in lines:
                click.echo(f"  target {source}: {line}")
        click.echo("the clients left with data are rescored at the next `fit sync`", err=True)


# --- fit audit --------------------------------------------------------------------------------


@click.command("audit")
@click.option("--since", default=None, help="Only entries at or after this date (YYYY-MM-DD).")
@click.option("--client", "client_id", default=None, help="Only entries concerning client ID.")
@click.option("--namespace", default=None, help="The client's namespace (with --client).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@handle_errors
def audit(
    ctx: click.Context,
    since: str | None,
    client_id: str | None,
    namespace: str | None,
    as_json: bool,
) -> None:
    """The audit log: every push, export, erasure, purge, acknowledgement and report, with
    time (UTC), OS user, counts and keyed hashes of the clients concerned (never ids)."""
    config, _registry, secret, store = _open(ctx)
    if since is not None:
        try:
            since = dt.date.fromisoformat(since).isoformat()
        except ValueError:
            raise click.UsageError(f"--since {since!r}: give a date as YYYY-MM-DD") from None
    entries = store.audit_entries(since)
    if client_id is not None:
        auditor = auditor_for(store, config, secret)
        namespaces = (
            [namespace] if namespace else sorted({s.namespace for s in config.sources.values()})
        )
        subjects = auditor.client_subjects([(ns, client_id) for ns in namespaces])
        if subjects is None:
            raise ConfigError(
                "--client needs the privacy key (the entries name clients by keyed hashes)",
                hint="fit keys set privacy hash_key",
            )
        wanted = set(subjects)
        entries = [e for e in entries if wanted & set(e["subjects"])]
    if as_json:
        echo_json(entries)
        return
    if not entries:
        click.echo("no audit entries")
        return
    for e in entries:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(e["counts"].items()))
        who = f"{len(e['subjects'])} subject(s)" if e["subjects"] else ""
        parts = [p for p in (e["target"], counts, who, e["detail"]) if p]
        click.echo(f"{e['at']}  {e['os_user']:<12} {e['action']:<11} {'; '.join(parts)}")


# --- fit store --------------------------------------------------------------------------------


@click.group("store")
def store_group() -> None:
    """The store file: encryption at rest (SQLCipher, the fit-sync[encryption] extra), and
    forgetting a source taken out of the config."""


@store_group.command("status")
@click.pass_context
@handle_errors
def store_status(ctx: click.Context) -> None:
    """Where the store is, whether it is encrypted, and its schema version."""
    from fit_core import encryption

    config = _config(ctx.find_root())
    path = Path(config.store_path)
    if not path.exists():
        click.echo(f"store: {path} (not created yet)")
        return
    encrypted = encryption.is_encrypted(path)
    store = Store.open(path)
    try:
        version = store.meta("schema_version")
    finally:
        store.close()
    kind = "encrypted (SQLCipher)" if encrypted else "not encrypted"
    click.echo(f"store: {path}\n  {kind}, schema version {version}")
    if not encrypted:
        key, _where = encryption.find_key()
        if key is not None:
            click.echo("  warning: a store key is set but the store is plain: `fit store encrypt`")


@store_group.command("encrypt")
@click.pass_context
@handle_errors
def store_encrypt(ctx: click.Context) -> None:
    """Encrypt the store with the store key (set it first: `openssl rand -hex 32 | fit keys set
    store key`, or FIT_STORE_KEY, or the systemd credential store.key). A store that does not
    exist yet is created encrypted."""
    from fit_core import encryption

    config = _config(ctx.find_root())
    path = Path(config.store_path)
    encryption.sqlcipher()
    key, _where = encryption.find_key()
    if key is None:
        raise ConfigError(
            "no store key is set to encrypt the store with",
            hint="openssl rand -hex 32 | fit keys set store key (keep a copy: without it the "
            "store cannot be read); or FIT_STORE_KEY, or the systemd credential store.key",
        )
    if encryption.is_encrypted(path):
        raise ConfigError(
            f"the store {path} is encrypted already", hint="`fit store rekey` changes its key"
        )
    with SyncLock(path):
        if not path.exists() or path.stat().st_size == 0:
            path.unlink(missing_ok=True)
            _create_encrypted(path, key)
        else:
            Store.open(path).close()  # migrated to this version before it is converted
            encryption.convert(path, None, key)
    _audit_store(config, "encrypt")
    click.echo(f"store {path} encrypted")


def _create_encrypted(path: Path, key: str) -> None:
    from fit_core import encryption

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    conn = encryption.connect(str(path), key)
    conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.close()
    path.chmod(0o600)
    Store.open(path, key=key).close()


@store_group.command("rekey")
@click.option(
    "--new-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the new key from this file (default: stdin, or a hidden prompt).",
)
@click.pass_context
@handle_errors
def store_rekey(ctx: click.Context, new_key_file: Path | None) -> None:
    """Encrypt the store with a new key. The current key comes from the secret chain; the new
    one from --new-key-file, stdin or a prompt. When the current key is in the keyring, the
    new one replaces it there; otherwise update FIT_STORE_KEY or the credential yourself."""
    from fit_core import encryption
    from fit_core.secrets import WHERE_KEYRING, SecretStore

    config = _config(ctx.find_root())
    path = Path(config.store_path)
    if not encryption.is_encrypted(path):
        raise ConfigError(f"the store {path} is not encrypted", hint="`fit store encrypt` first")
    old, where = encryption.find_key()
    if old is None:
        raise encryption.missing_key_error(path)
    if new_key_file is not None:
        new = new_key_file.read_text(encoding="utf-8").strip()
    elif sys.stdin.isatty():
        new = click.prompt("new store key", hide_input=True, confirmation_prompt=True).strip()
    else:
        new = sys.stdin.read().strip()
    if not new:
        raise click.UsageError("the new key is empty")
    if new == old:
        raise click.UsageError("the new key is the current key")
    with SyncLock(path):
        Store.open(path, key=old).close()  # proves the current key
        encryption.convert(path, old, new)
    if where == WHERE_KEYRING:
        SecretStore().set(encryption.KEY_SOURCE, encryption.KEY_NAME, new)
        click.echo(f"store {path} re-encrypted; the keyring holds the new key")
    else:
        click.echo(
            f"store {path} re-encrypted; now put the new key where the old one was ({where}): "
            "until then fit cannot open the store"
        )
    _audit_store(config, "rekey")


@store_group.command("forget")
@click.argument("source")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@click.pass_context
@handle_errors
def store_forget(ctx: click.Context, source: str, dry_run: bool) -> None:
    """Remove everything the store holds of SOURCE, a source no longer in the config (renamed
    or removed): its administrations, practice data, quarantine, outbox and bookmark. Its
    clients are rescored by the next `fit sync` (alerts that no longer hold close, with their
    history). The source's own data and what was pushed to it are not touched."""
    config = _config(ctx.find_root())
    if source in config.sources:
        raise click.UsageError(
            f"source {source!r} is in the config: take it out (or rename it) there first"
        )
    path = Path(config.store_path)
    with SyncLock(path):
        store = Store.open(path)
        try:
            counts = store.forget_source(source, dry_run=dry_run)
            if not counts:
                click.echo(f"the store holds nothing of source {source!r}: nothing to do")
                return
            if not dry_run:
                auditor_for(store, config, None).record(
                    "store", counts=counts, detail=f"forget source {source}"
                )
        finally:
            store.close()
    rows = ", ".join(f"{table} {n}" for table, n in counts.items())
    if dry_run:
        click.echo(f"dry run: would remove from the store: {rows}; nothing changed")
    else:
        click.echo(f"removed from the store: {rows}; `fit sync` rescores their clients")


def _audit_store(config: Config, what: str) -> None:
    store = Store.open(config.store_path)
    try:
        auditor_for(store, config, None).record("store", detail=what)
    finally:
        store.close()


PRIVACY_COMMANDS = (client, purge, audit, store_group)
