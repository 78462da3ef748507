"""Erasing a client, purging expired episodes, and the *places* that hold a client's data.

``fit client erase ID`` removes a client from every place fit-sync put them. A *place* is
anything that can say what it holds about a client and remove it:

- ``store``: every row of the client in the store (administrations, scores' outbox rows,
  alerts and their history, quarantine entries, attendance, details, spellings, reviews);
- ``target <source>``: the rows fit-sync wrote at each source's target (a scores CSV, a Sheet
  tab, REDCap score fields, a SimplePractice outbox folder with note and report page), removed
  through the adapter (``Adapter.remove``, or a new snapshot), and what the adapter keeps
  about the client elsewhere (``Adapter.forget_client``);
- ``report files``: report pages ``fit report client`` wrote for the client;
- any place a plugin registers (a notification ledger, caseload pages ...).

Registering a place: implement :class:`Place` (``name``, ``order``, ``survey(job)``,
``erase(job)``, optionally ``files(job)``: name in the export -> path, for ``fit client
export``) and register a factory that makes the places for a job,
either in code (:func:`register_place`) or from a plugin's ``fit_register_privacy_places``
hook::

    from fit_core.hookspecs import hookimpl

    @hookimpl
    def fit_register_privacy_places(register):
        register(lambda job: [MyLedgerPlace(job.config)])

``survey`` returns lines saying what is held (shown by ``--dry-run``); ``erase`` removes it
and returns lines saying what went. Lines name counts and places, never answers or names.
Places run in ``order`` (plugins 50 by default, report files 60, the store 80, the targets
90: the targets learn from the store which rows to drop).

After the store rows go, a tombstone (a keyed hash, see :mod:`fit_core.privacy`) keeps the
client from being imported again; an ``erase`` audit entry names the client by the same hash.

Retention (:func:`purge_expired`) removes expired episodes the same way, record by record.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .adapter import Adapter, SourceContext
from .audit import Auditor, auditor_for
from .errors import ConfigError, FitError
from .privacy import client_hash, privacy_key, record_hash, verify_key
from .retention import Expired, Retention, appointments_to_purge, expired_episodes

log = logging.getLogger(__name__)


@dataclass
class PrivacyJob:
    """One client to survey, export or erase, with what a place needs to do it."""

    store: Any
    config: Any
    registry: Any
    secret: Callable[[str, str], str]
    namespace: str
    client_id: str
    dry_run: bool = False
    #: per source, the client's outbox keys (what its target holds), read before the erasure
    target_keys: dict[str, list[str]] = field(default_factory=dict)

    @property
    def client(self) -> tuple[str, str]:
        return (self.namespace, self.client_id)


class Place(Protocol):
    """Somewhere a client's data is held (see the module doc)."""

    name: str
    order: int

    def survey(self, job: PrivacyJob) -> list[str]:
        """What is held about the client (nothing changes)."""
        ...

    def erase(self, job: PrivacyJob) -> list[str]:
        """Remove it; what went."""
        ...


PlaceFactory = Callable[[PrivacyJob], Iterable[Place]]
_FACTORIES: list[PlaceFactory] = []


def register_place(factory: PlaceFactory) -> None:
    """Add a place factory (called once per job) for every later erasure and export."""
    if factory not in _FACTORIES:
        _FACTORIES.append(factory)


def places_for(job: PrivacyJob) -> list[Place]:
    """Every place of a job, in order: built-in, registered in code, and from plugins."""
    factories: list[PlaceFactory] = [_builtin_places, *_FACTORIES]
    hook = getattr(getattr(job.registry, "pm", None), "hook", None)
    if hook is not None and hasattr(hook, "fit_register_privacy_places"):
        hook.fit_register_privacy_places(register=factories.append)
    places: list[Place] = []
    for factory in factories:
        places.extend(factory(job))
    return sorted(places, key=lambda p: getattr(p, "order", 50))


# --- the built-in places ----------------------------------------------------------------------


def _builtin_places(job: PrivacyJob) -> list[Place]:
    out: list[Place] = [StorePlace(), ReportFilesPlace()]
    for name in job.config.sources:
        out.append(TargetPlace(name))
    return out


class StorePlace:
    """The store's rows of the client (and its tombstone, written when they go)."""

    name = "store"
    order = 80

    def _quarantine(self, job: PrivacyJob) -> list[tuple[str, str]]:
        keys = [
            (r["source"], r["source_key"])
            for r in job.store.client_table_rows("administrations", *job.client)
        ]
        return [
            (q["source"], q["source_key"])
            for q in job.store.quarantine_of_client(job.client_id, keys)
        ]

    def survey(self, job: PrivacyJob) -> list[str]:
        s = job.store
        counts = {t: len(s.client_table_rows(t, *job.client)) for t in _SURVEYED}
        counts["alert events"] = sum(
            len(s.alert_events(alert_id=f["id"])) for f in s.client_table_rows("flags", *job.client)
        )
        counts["quarantine"] = len(self._quarantine(job))
        return [f"{n} {label}" for label, n in counts.items() if n]

    def erase(self, job: PrivacyJob) -> list[str]:
        s = job.store
        quarantine = self._quarantine(job)
        key = privacy_key(job.secret)
        verify_key(s, key)
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with s.transaction():
            counts = s.delete_client_rows(job.namespace, job.client_id, quarantine)
            s.add_tombstones([(client_hash(key, *job.client), "client", at, "erased")])
        return [f"{n} {table.replace('_', ' ')}" for table, n in sorted(counts.items())] + [
            "a tombstone (keyed hash) keeps the client from being imported again"
        ]


_SURVEYED = (
    "administrations",
    "flags",
    "outbox",
    "appointments",
    "client_info",
    "client_spellings",
    "client_reviews",
    "client_files",
)


class ReportFilesPlace:
    """Report pages written for the client by ``fit report client``."""

    name = "report files"
    order = 60

    def survey(self, job: PrivacyJob) -> list[str]:
        files = [f for f in job.store.client_files(*job.client) if Path(f["path"]).exists()]
        return [f"{f['path']}" for f in files]

    def erase(self, job: PrivacyJob) -> list[str]:
        out = []
        for f in job.store.client_files(*job.client):
            path = Path(f["path"])
            try:
                path.unlink()
                out.append(f"removed {path}")
            except FileNotFoundError:
                continue
            except OSError as exc:
                out.append(f"could not remove {path} ({exc.strerror}): remove it by hand")
        return out


class TargetPlace:
    """What fit-sync wrote for the client at one source's target."""

    order = 90

    def __init__(self, source: str) -> None:
        self.source = source
        self.name = f"target {source}"

    def survey(self, job: PrivacyJob) -> list[str]:
        keys = job.target_keys.get(self.source) or []
        if not keys:
            return []
        summaries = sum(1 for k in keys if k.startswith("client:"))
        rows = len(keys) - summaries
        out = []
        if rows:
            out.append(f"{rows} score row(s)")
        if summaries:
            out.append("the client's summary (note, scores file, report page)")
        return out

    def erase(self, job: PrivacyJob) -> list[str]:
        keys = job.target_keys.get(self.source) or []
        lines: list[str] = []
        try:
            adapter = open_adapter(job, self.source)
        except FitError as exc:
            if keys:
                return [_not_now(len(keys), exc)]
            return []
        try:
            if keys:
                lines.extend(_flush(job.store, adapter, self.source, keys, job.config))
            for line in adapter.forget_client(job.namespace, job.client_id):
                lines.append(line)
        except FitError as exc:
            lines.append(_not_now(len(keys), exc))
        finally:
            with contextlib.suppress(Exception):
                adapter.close()
        return lines

    def files(self, job: PrivacyJob) -> dict[str, Path]:
        """Files the adapter wrote for the client (an outbox), for the export."""
        if not any(k.startswith("client:") for k in job.target_keys.get(self.source) or []):
            return {}
        try:
            adapter = open_adapter(job, self.source)
        except FitError as exc:
            log.warning("export: the files of source %s were left out (%s)", self.source, exc)
            return {}
        try:
            paths = adapter.client_files(job.namespace, job.client_id)
        finally:
            with contextlib.suppress(Exception):
                adapter.close()
        return {f"outbox/{self.source}/{p.parent.name}/{p.name}": p for p in paths}


def export_files(job: PrivacyJob) -> dict[str, Path]:
    """Every place's files for the client's export (places with a ``files(job)`` method)."""
    prepare(job)
    out: dict[str, Path] = {}
    for place in places_for(job):
        files = getattr(place, "files", None)
        if callable(files):
            out.update(files(job))
    return out


def _not_now(n: int, exc: FitError) -> str:
    return (
        f"NOT DONE: {n} row(s) stay at the target for now ({exc.message}); the next "
        "successful `fit sync` removes them"
    )


def _flush(
    store: Any, adapter: Adapter, source: str, keys: Sequence[str], config: Any
) -> list[str]:
    """Push the removals of a source now (a new snapshot, or ``remove`` on a batch target)."""
    from .store import now_text
    from .sync import push_snapshot, remove_at_target

    where = adapter.describe_target()
    if adapter.push_mode == "snapshot":
        push_snapshot(store, adapter, source)
        with store.transaction():
            store.mark_all_pushed(source, now_text())
        return [f"{len(keys)} row(s) removed from {where}"]
    size = config.sync.push_batch_size or adapter.push_batch_size
    done = remove_at_target(store, adapter, source, size)
    left = store.removed_count(source)
    out = [f"{done} row(s) removed from {where}"]
    if left:
        out.append(f"NOT DONE: {left} row(s) not confirmed; the next `fit sync` tries again")
    return out


def open_adapter(job: PrivacyJob, source: str) -> Adapter:
    """An adapter for ``source`` outside a sync (its check() run)."""
    from .config import adapter_options
    from .state import StoreState
    from .sync import utc_now

    src = job.config.source(source)
    cls = job.registry.adapter(src.adapter)
    ctx = SourceContext(
        name=src.name,
        namespace=src.namespace,
        options=adapter_options(src, cls),
        timezone=job.config.sync.tzinfo(),
        run_started=utc_now(),
        secret=lambda key: job.secret(src.name, key),
        state_dir=Path(job.config.store_path).parent,
        state=StoreState(job.store, src.name),
        stored_keys=lambda: job.store.stored_keys(src.name),
    )
    adapter = cls(ctx)
    try:
        adapter.check()
    except BaseException:
        with contextlib.suppress(Exception):
            adapter.close()
        raise
    return adapter


# --- the erasure --------------------------------------------------------------------------------


@dataclass
class PlaceReport:
    place: str
    lines: list[str]


@dataclass
class ErasureReport:
    namespace: str
    client_id: str
    dry_run: bool
    places: list[PlaceReport]
    #: sources whose records of the client were imported: they may still hold them
    sources: dict[str, int]

    @property
    def incomplete(self) -> bool:
        return any(line.startswith("NOT DONE") for p in self.places for line in p.lines)


def find_client(store: Any, client_id: str, namespace: str | None, config: Any) -> tuple[str, str]:
    """(namespace, client_id) of a client the store knows (as the sync stores codes)."""
    from .identity import normalise_client_id

    candidates = [client_id]
    folded = normalise_client_id(client_id)
    if folded != client_id:
        candidates.append(folded)
    for cid in candidates:
        found = store.client_namespaces(cid)
        if namespace is not None:
            found = [ns for ns in found if ns == namespace]
        if len(found) == 1:
            return found[0], cid
        if len(found) > 1:
            raise ConfigError(
                f"client {client_id!r} is in several namespaces ({', '.join(found)})",
                hint="say which with --namespace",
            )
    raise ConfigError(
        f"no client {client_id!r} in the store"
        + (f" (namespace {namespace!r})" if namespace else ""),
        hint="check the id (`fit alerts --client ID --state all`); an erased client is gone",
    )


def prepare(job: PrivacyJob) -> None:
    """Read, before anything changes, which target rows the client has per source."""
    if job.target_keys:
        return
    for row in job.store.client_table_rows("outbox", *job.client):
        job.target_keys.setdefault(row["source"], []).append(row["source_key"])


def imported_from(job: PrivacyJob) -> dict[str, int]:
    """Per source, how many of the client's records and appointments were imported."""
    out: dict[str, int] = {}
    for table in ("administrations", "appointments"):
        for row in job.store.client_table_rows(table, *job.client):
            out[row["source"]] = out.get(row["source"], 0) + 1
    return out


def survey_client(job: PrivacyJob) -> ErasureReport:
    prepare(job)
    places = [PlaceReport(p.name, p.survey(job)) for p in places_for(job)]
    return ErasureReport(job.namespace, job.client_id, True, places, imported_from(job))


def erase_client(job: PrivacyJob, auditor: Auditor | None = None) -> ErasureReport:
    """Erase one client everywhere (see the module doc); the sync lock must be held."""
    privacy_key(job.secret)  # no erasure without a tombstone: fail before anything goes
    prepare(job)
    sources = imported_from(job)
    subjects = [client_hash(privacy_key(job.secret), *job.client)]
    reports: list[PlaceReport] = []
    for place in places_for(job):
        try:
            lines = place.erase(job)
        except FitError as exc:
            lines = [f"NOT DONE: {exc.message}"]
        reports.append(PlaceReport(place.name, lines))
    report = ErasureReport(job.namespace, job.client_id, False, reports, sources)
    auditor = auditor or auditor_for(job.store, job.config, job.secret)
    auditor.record(
        "erase",
        counts={"places": len([p for p in reports if p.lines]), "sources": len(sources)},
        subjects=subjects,
        detail="incomplete: see the command's output" if report.incomplete else None,
    )
    compact(job.store)
    return report


def compact(store: Any) -> None:
    """Rewrite the store file and empty its WAL, so no page keeps what was deleted."""
    if store.path == ":memory:":
        return
    store.conn.execute("VACUUM")
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with contextlib.suppress(OSError):
        os.chmod(store.path, 0o600)


# --- retention ---------------------------------------------------------------------------------


@dataclass
class PurgeReport:
    """What retention purged (or would purge): the expired episodes."""

    expired: list[Expired]
    appointments: int = 0

    @property
    def records(self) -> int:
        return sum(len(e.keys) for e in self.expired)

    @property
    def clients(self) -> set[tuple[str, str]]:
        return {(e.namespace, e.client_id) for e in self.expired}

    @property
    def sources(self) -> set[str]:
        return {s for e in self.expired for s, _k in e.keys}


def _client_batches(
    store: Any, cutoff: dt.date, size: int = 500
) -> Iterator[list[tuple[str, str]]]:
    clients = [
        (ns, cid)
        for ns, cid in store.conn.execute(
            "SELECT DISTINCT namespace, client_id FROM administrations WHERE local_date <= ? "
            "ORDER BY namespace, client_id",
            (cutoff.isoformat(),),
        )
    ]
    for i in range(0, len(clients), size):
        yield clients[i : i + size]


def purge_expired(
    store: Any,
    settings: Any,
    as_of: dt.date,
    retention: Retention,
    secret: Callable[[str, str], str],
    *,
    dry_run: bool = False,
) -> PurgeReport:
    """Find (and unless ``dry_run`` purge) the episodes expired by ``as_of``.

    Purged: the episode's administrations (their outbox rows go to ``outbox_removed``, so the
    targets drop them at the next push), its alerts and their events, and, when the whole
    client expired, everything else of the client (as an erasure does, but with a tombstone per
    record, so the client can come back with new data). Clients left with data are marked for
    rescoring. One transaction per batch of clients."""
    report = PurgeReport([])
    key = None if dry_run else privacy_key(secret)
    if key is not None:
        verify_key(store, key)
    for clients in _client_batches(store, retention.cutoff(as_of)):
        admins = store.client_administrations(clients)
        contexts = store.client_contexts(clients)
        found: list[tuple[list[Expired], list[Any]]] = []
        for client in clients:
            context = contexts.get(client)
            appointments = list(context.appointments) if context is not None else []
            expired = expired_episodes(admins[client], appointments, as_of, settings, retention)
            if not expired:
                continue
            report.expired.extend(expired)
            kept = [
                a.local_date
                for a in admins[client]
                if a.key not in {k for e in expired for k in e.keys}
            ]
            gone_appts = appointments_to_purge(appointments, expired, min(kept, default=None))
            report.appointments += len(gone_appts)
            found.append((expired, gone_appts))
        if dry_run or not found:
            continue
        assert key is not None
        _apply_purge(store, key, found)
    return report


def _apply_purge(store: Any, key: str, found: list[tuple[list[Expired], list[Any]]]) -> None:
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with store.transaction():
        dirty: list[tuple[str, str]] = []
        for expired, appointments in found:
            first = expired[0]
            client = (first.namespace, first.client_id)
            tombs = [
                (record_hash(key, s, k), "record", at, "retention")
                for e in expired
                for s, k in e.keys
            ]
            tombs += [
                (record_hash(key, a.source, a.source_key), "record", at, "retention")
                for a in appointments
            ]
            store.add_tombstones(tombs)
            if first.whole_client:
                quarantine = [
                    (q["source"], q["source_key"])
                    for q in store.quarantine_of_client(first.client_id, [])
                ]
                store.delete_client_rows(first.namespace, first.client_id, quarantine)
                continue
            by_source: dict[str, list[str]] = {}
            for e in expired:
                for s, k in e.keys:
                    by_source.setdefault(s, []).append(k)
                store.delete_flags_of_episode(e.namespace, e.client_id, e.episode_id)
            for s, keys in by_source.items():
                store.delete_administrations(s, keys)
            store.conn.executemany(
                "DELETE FROM appointments WHERE source = ? AND source_key = ?",
                [(a.source, a.source_key) for a in appointments],
            )
            dirty.append(client)
        if dirty:
            store.mark_dirty(dirty)


def flush_targets(
    store: Any,
    config: Any,
    registry: Any,
    secret: Callable[[str, str], str],
    sources: Iterable[str],
) -> dict[str, list[str]]:
    """Remove at once, at each of ``sources``' targets, the rows that left the outbox."""
    out: dict[str, list[str]] = {}
    for source in sorted(set(sources)):
        if source not in config.sources or not store.removed_count(source):
            continue
        job = PrivacyJob(store, config, registry, secret, "", "")
        keys = ["?"] * store.removed_count(source)
        try:
            adapter = open_adapter(job, source)
        except FitError as exc:
            out[source] = [_not_now(len(keys), exc)]
            continue
        try:
            out[source] = _flush(store, adapter, source, keys, config)
        except FitError as exc:
            out[source] = [_not_now(len(keys), exc)]
        finally:
            with contextlib.suppress(Exception):
                adapter.close()
    return out
