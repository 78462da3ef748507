"""The sync engine: the guarantees of DESIGN.md "The sync".

1. A non-blocking lock (:class:`~fit_core.lock.SyncLock`); held → :class:`LockedError` at once.
2. Per source: ``check()``, then ``pull(bookmark)`` consumed as a stream in chunks.
3. Each record validated once; a bad record is quarantined with its key and reasons.
4. Administrations upserted on (source, source_key); unchanged content (same hash) is skipped.
   In the same transaction the client is marked dirty, so a crash before recompute loses nothing.
5. Dirty clients are rescored (sessions, scores, rules → flags) in batches; the outbox rows whose
   content hash changed are written in the same transaction that clears the dirty mark.
6. Pushes go in batches (or as one atomic snapshot for file targets); each confirmed hash is
   recorded, so a crash means the next run pushes only what was not confirmed.
7. The bookmark is saved only after the source's pushes succeed.
8. ``dry_run`` skips pushes and bookmark writes and reports what would be pushed.

Logs name sources, source keys and field names, never answers or names.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import itertools
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from .adapter import Adapter, SourceContext
from .config import Config, SourceConfig, adapter_options
from .episodes import client_outbox_item, context_sources
from .errors import ConfigError, ExitCode, FitError
from .lock import SyncLock
from .logsafe import escape_controls, key_ref
from .models import (
    Administration,
    Appointment,
    ClientInfo,
    Flag,
    OutboxItem,
    Record,
    RecordError,
    Scored,
)
from .plugins import Registry
from .redact import redact
from .scoring import ClientResult, Scorer, outbox_item
from .settings import Settings, check_rule_ids
from .store import Store, admin_row_hashed, now_text
from .storefile import store_error
from .validation import Validator

log = logging.getLogger(__name__)

T = TypeVar("T")
RESCORE_BATCH = 500
ADMIN_CACHE_LIMIT = 60_000  # administrations kept in memory per run (about 45 MB at most)


class RunCache:
    """The administrations upserted in this run, for clients that had none stored before it.

    For those clients the cache holds every stored administration, so rescoring them needs no
    read back from the store. Every change to such a client goes through the engine's ingest
    (the lock keeps other writers out), which updates the cache in step. A client that had rows
    before the run, or that arrives once ``limit`` administrations are held, is read from the
    store as usual.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.fresh: dict[tuple[str, str], dict[tuple[str, str], Administration]] = {}
        self.stale: set[tuple[str, str]] = set()
        self.size = 0

    @property
    def known(self) -> set[tuple[str, str]]:
        return self.fresh.keys() | self.stale

    def classify(self, clients: set[tuple[str, str]], with_rows: set[tuple[str, str]]) -> None:
        for c in clients:
            if c in with_rows or self.size >= self.limit:
                self.stale.add(c)
            else:
                self.fresh[c] = {}

    def put(self, a: Administration) -> None:
        held = self.fresh.get(a.client)
        if held is None:
            return
        if a.key not in held:
            if self.size >= self.limit:
                self.size -= len(self.fresh.pop(a.client))
                self.stale.add(a.client)
                return
            self.size += 1
        held[a.key] = a

    def discard(self, client: tuple[str, str], key: tuple[str, str]) -> None:
        held = self.fresh.get(client)
        if held is not None and held.pop(key, None) is not None:
            self.size -= 1

    def get(self, client: tuple[str, str]) -> list[Administration] | None:
        held = self.fresh.get(client)
        return None if held is None else list(held.values())


@dataclass
class SourceResult:
    """What one source did in a run (counts only: no PHI)."""

    name: str
    status: str = "ok"  # ok | partial | failed | skipped
    exit_code: int = ExitCode.OK
    pulled: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    quarantined: int = 0
    removed: int = 0
    pushed: int = 0
    would_push: int = 0
    push_rejected: int = 0
    bookmark_saved: bool = False
    error: str | None = None
    quarantine_reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class RunSummary:
    run_id: int
    dry_run: bool
    sources: list[SourceResult]
    clients_rescored: int = 0
    flags_raised: int = 0
    open_flags: int = 0
    rule_failures: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> ExitCode:
        failed = [s for s in self.sources if s.status == "failed"]
        ran = [s for s in self.sources if s.status != "skipped"]
        if ran and len(failed) == len(ran):
            return ExitCode(max(s.exit_code for s in failed))
        if failed or any(s.status == "partial" for s in self.sources) or self.rule_failures:
            return ExitCode.PARTIAL
        return ExitCode.OK

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "exit_code": int(self.exit_code),
            "clients_rescored": self.clients_rescored,
            "flags_raised": self.flags_raised,
            "open_flags": self.open_flags,
            "rule_failures": self.rule_failures,
            "sources": [asdict(s) for s in self.sources],
        }


def chunked(it: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(it)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class SyncEngine:
    """Runs syncs for one config against one store."""

    def __init__(
        self,
        config: Config,
        registry: Registry,
        store: Store,
        *,
        secret: Callable[[str, str], str] | None = None,
        settings: Settings | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        progress: Callable[[str, str, int], None] | None = None,
    ) -> None:
        """``progress(source, stage, count)`` is called as work goes on (for a terminal)."""
        self.progress = progress
        self._cache = RunCache(0)
        self.config = config
        self.registry = registry
        self.store = store
        self.secret = secret or _no_secrets
        self.settings = settings or config.settings
        self._run_settings = self.settings  # with this run's "today" (as_of)
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.tz = config.sync.tzinfo()
        self.rules = list(registry.rules.values())
        check_rule_ids(self.settings, registry.rules)
        self.model = load_active_model(store)

    # --- the run -------------------------------------------------------------------------------

    def run(self, sources: Sequence[str] | None = None, *, dry_run: bool = False) -> RunSummary:
        """Sync ``sources`` (default: every enabled source) and return what happened."""
        with _batch_gc():
            try:
                return self._run(sources, dry_run=dry_run)
            except sqlite3.Error as exc:  # the store, not a source: the run stops (exit 3)
                raise store_error(self.store.path, exc) from None

    def _run(self, sources: Sequence[str] | None, *, dry_run: bool) -> RunSummary:
        names = (
            list(sources) if sources else [n for n, s in self.config.sources.items() if s.enabled]
        )
        for n in names:
            self.config.source(n)  # unknown names are a config error before anything runs
        with SyncLock(self.store.path):
            self._cache = RunCache(ADMIN_CACHE_LIMIT)
            today = self.clock().astimezone(self.tz).date()
            as_of = self.settings.as_of or today
            self._run_settings = self.settings.with_(as_of=as_of)
            self.store.mark_due_reviews(as_of.isoformat())
            run_id = self.store.start_run(names, dry_run)
            summary = RunSummary(run_id, dry_run, [])
            self.registry.notify("fit_sync_started", run_id=run_id, sources=names, dry_run=dry_run)
            outcome = "error"
            opened: list[tuple[SourceConfig, SourceResult, Adapter]] = []
            try:
                for name in names:
                    src = self.config.sources[name]
                    result, adapter = self._sync_source(src, summary, dry_run)
                    summary.sources.append(result)
                    if adapter is not None:
                        opened.append((src, result, adapter))
                # clients dirtied by one source may hold administrations of another (e.g. a
                # practice source adds attendance flags to a CSV source's scores): rescore them
                # and push what that changed, so no source is one sync behind
                self._rescore(summary, "")
                for src, result, adapter in opened:
                    if result.status == "failed" or result.push_rejected:
                        continue  # unconfirmed rows are retried by the next run, not now
                    if dry_run:
                        result.would_push = self.store.pending_count(src.name)
                    elif self.store.pending_count(src.name) or (
                        adapter.push_mode == "snapshot" and self.store.removed_count(src.name)
                    ):
                        self._guarded(
                            src, result, lambda a=adapter, s=src, r=result: self._push(a, s, r)
                        )
                for result in summary.sources:
                    if result.status == "ok" and (result.quarantined or result.push_rejected):
                        result.status = "partial"
                        result.exit_code = ExitCode.PARTIAL
                summary.open_flags = self.store.count_flags("open")
                outcome = summary.exit_code.name.lower()
            finally:
                for src, _result, adapter in opened:
                    _close(adapter, src.name)
                self.store.finish_run(run_id, _counts(summary), outcome)
            self.registry.notify("fit_sync_finished", run_id=run_id, summary=summary.as_dict())
            return summary

    def _sync_source(
        self, src: SourceConfig, summary: RunSummary, dry_run: bool
    ) -> tuple[SourceResult, Adapter | None]:
        """Check, pull, rescore, push and bookmark one source; returns its still-open adapter
        (None when it failed) so the run can push again after the final rescore."""
        result = SourceResult(src.name)
        run_started = self.clock()
        made: list[Adapter] = []

        def work() -> None:
            adapter_cls = self.registry.adapter(src.adapter)
            options = adapter_options(src, adapter_cls)
            ctx = SourceContext(
                name=src.name,
                namespace=src.namespace,
                options=options,
                timezone=self.tz,
                run_started=run_started,
                secret=lambda key, _s=src.name: self.secret(_s, key),
                state_dir=_state_dir(self.store.path),
                dry_run=dry_run,
            )
            adapter = adapter_cls(ctx)
            made.append(adapter)
            adapter.check()
            self._pull(adapter, src, result)
            self._rescore(summary, src.name)
            if dry_run:
                result.would_push = self.store.pending_count(src.name)
                return
            self._push(adapter, src, result)
            # the bookmark is read after the push (an adapter may fold its own writes into it)
            if result.push_rejected == 0:
                bookmark = adapter.next_bookmark()
                if bookmark is not None:
                    self.store.save_bookmark(src.name, bookmark)
                    result.bookmark_saved = True

        self._guarded(src, result, work)
        if result.status == "failed":
            for adapter in made:
                _close(adapter, src.name)
            return result, None
        return result, (made[0] if made else None)

    def _guarded(self, src: SourceConfig, result: SourceResult, work: Callable[[], None]) -> None:
        """Run one source's work; an error fails that source only, named in the log."""
        try:
            work()
        except FitError as exc:
            result.status = "failed"
            result.exit_code = exc.exit_code
            # it reaches `error:` lines, --json and plugins: secrets masked, control characters
            # escaped (the message may quote a path or a server's answer); the hint on its line
            message = escape_controls(redact(exc.message))
            hint = escape_controls(redact(exc.hint)) if exc.hint else ""
            result.error = f"{message}\n  hint: {hint}" if hint else message
            log.error("source %s: %s%s", src.name, message, f" (hint: {hint})" if hint else "")
        except sqlite3.Error:
            raise  # a store problem stops the run (see run())
        except Exception as exc:
            result.status = "failed"
            result.exit_code = ExitCode.INTERNAL
            result.error = f"internal error ({type(exc).__name__}); run with -v for details"
            log.exception("source %s failed with an internal error", src.name)

    # --- pull ----------------------------------------------------------------------------------

    def _pull(self, adapter: Adapter, src: SourceConfig, result: SourceResult) -> None:
        validator = Validator(
            self.registry.measures,
            self.tz,
            source=src.name,
            namespace=src.namespace,
            today=self.clock().astimezone(self.tz).date(),
        )
        quarantined_before = {q["source_key"] for q in self.store.quarantined(src.name)}
        size = self.config.sync.record_batch_size
        full = adapter.pull_mode == "full"
        seen: set[str] = set()
        seen_clients: set[tuple[str, str]] = set()
        for chunk in chunked(adapter.pull(self.store.bookmark(src.name)), size):
            if full:
                for item in chunk:
                    if isinstance(item, ClientInfo):
                        seen_clients.add((item.namespace, item.client_id))
                    else:
                        seen.add(item.source_key)
            self._ingest(chunk, validator, src, result, quarantined_before)
            if self.progress is not None:
                self.progress(src.name, "pulled", result.pulled)
        if full and result.pulled:
            with self.store.transaction():
                dirty = self.store.prune_practice(src.name, seen, seen_clients)
                self.store.release_quarantine(src.name, sorted(quarantined_before - seen))
                if dirty:
                    self.store.mark_dirty(dirty)

    def _ingest(
        self,
        chunk: Sequence[Record | RecordError | Appointment | ClientInfo],
        validator: Validator,
        src: SourceConfig,
        result: SourceResult,
        quarantined_before: set[str],
    ) -> None:
        at = now_text()
        verbose = log.isEnabledFor(logging.INFO)
        # the last item for a key wins within a chunk (a later RecordError replaces a Record)
        final: dict[str, Administration | RecordError] = {}
        records = [it for it in chunk if isinstance(it, Record)]
        checked = iter(validator.validate_many(records))
        result.pulled += len(chunk)
        appointments: list[Appointment] = []
        infos: list[ClientInfo] = []
        for item in chunk:
            if isinstance(item, RecordError):
                final[item.source_key] = item
                continue
            if isinstance(item, Appointment):
                appointments.append(item)
                continue
            if isinstance(item, ClientInfo):
                infos.append(item)
                continue
            ok = next(checked)
            if isinstance(ok, Administration):
                final[item.source_key] = ok
            else:
                final[item.source_key] = RecordError(
                    item.source_key, ok, item.location, dict(item.data)
                )
        existing = self.store.existing(src.name, list(final))
        cache = self._cache
        candidates = {
            a.client for a in final.values() if isinstance(a, Administration)
        } - cache.known
        if candidates:
            cache.classify(candidates, self.store.clients_with_rows(candidates))
        rows: list[tuple[Any, ...]] = []
        dirty: set[tuple[str, str]] = set()
        released: list[str] = []
        removed: list[str] = []
        with self.store.transaction():
            for key, item in final.items():
                old = existing.get(key)
                if isinstance(item, RecordError):
                    result.quarantined += 1
                    for name in item.reasons:
                        result.quarantine_reasons[name] = result.quarantine_reasons.get(name, 0) + 1
                    # the key may hold a client id and a date: the warning (cron mail) names
                    # its reference and line, -v adds the fields; `fit quarantine` has it all
                    log.warning(
                        "source %s: record %s%s quarantined%s; see `fit quarantine`",
                        src.name,
                        key_ref(key),
                        f" ({item.location})" if item.location else "",
                        f" ({', '.join(item.reasons)})" if verbose else "",
                    )
                    reasons = {f: redact(str(r)) for f, r in item.reasons.items()}
                    self.store.quarantine(src.name, key, reasons, item.location, item.raw, at)
                    if old is not None:
                        removed.append(key)
                        dirty.add((old[1], old[2]))
                        cache.discard((old[1], old[2]), (src.name, key))
                    continue
                row, h = admin_row_hashed(item, at)
                if key in quarantined_before:
                    released.append(key)
                if old is not None and old[0] == h:
                    result.unchanged += 1
                    continue
                if old is None:
                    result.new += 1
                else:
                    result.changed += 1
                    dirty.add((old[1], old[2]))
                    cache.discard((old[1], old[2]), item.key)
                rows.append(row)
                dirty.add(item.client)
                cache.put(item)
            if removed:
                result.removed += len(removed)
                self.store.delete_administrations(src.name, removed)
            if rows:
                self.store.upsert_administrations(rows)
            if released:
                self.store.release_quarantine(src.name, released)
            if appointments:
                dirty |= self.store.upsert_appointments(appointments, at)
            if infos:
                dirty |= self.store.upsert_client_info(infos, at)
            if dirty:
                self.store.mark_dirty(dirty)

    # --- rescore -------------------------------------------------------------------------------

    def _rescore(self, summary: RunSummary, source: str) -> None:
        scorer = Scorer(self.registry.measures, self._run_settings, self.rules, self.model)
        while True:
            clients = self.store.dirty_batch(RESCORE_BATCH)
            if not clients:
                return
            by_client = {c: self._cache.get(c) for c in clients}
            uncached = [c for c, admins in by_client.items() if admins is None]
            if uncached:
                by_client.update(self.store.client_administrations(uncached))
            contexts = self.store.client_contexts(clients)
            acked = self.store.acknowledged(clients)
            at = now_text()
            outbox: list[tuple[OutboxItem, str, str]] = []
            raised: list[tuple[Administration, Flag]] = []
            scored_batch: list[Scored] = []
            reviews: list[tuple[str, str, str | None]] = []
            for client, admins in by_client.items():
                if not admins:
                    reviews.append((client[0], client[1], None))
                    continue
                res: ClientResult = scorer.score(admins, contexts.get(client))
                reviews.append(
                    (client[0], client[1], res.review_on.isoformat() if res.review_on else None)
                )
                for f in res.rule_failures:
                    summary.rule_failures[f.rule_id] = summary.rule_failures.get(f.rule_id, 0) + 1
                    log.error(
                        "rule %s raised %s on record %s; other rules still ran",
                        f.rule_id,
                        f.error,
                        f.source_key,
                    )
                client_scored = []
                for s in res.scored:
                    if s.flags and acked:
                        s = _apply_acks(s, acked)
                    for fl in s.flags:
                        raised.append((s.admin, fl))
                    outbox.append((outbox_item(s), client[0], client[1]))
                    client_scored.append(s)
                scored_batch.extend(client_scored)
                context = contexts.get(client)
                if context is not None:
                    # practice systems get one summary per client (a progress-note outbox)
                    for source in context_sources(context):
                        item = client_outbox_item(source, client, client_scored, context)
                        outbox.append((item, client[0], client[1]))
            with self.store.transaction():
                new_flags = self.store.replace_flags(raised, clients, at)
                self.store.write_outbox(outbox, at)
                self.store.set_reviews(reviews)
                self.store.clear_dirty(clients)
            summary.clients_rescored += len(clients)
            if self.progress is not None:
                self.progress(source, "rescored clients", summary.clients_rescored)
            summary.flags_raised += len(new_flags)
            self.registry.notify("fit_scored", source=source, scored=scored_batch)
            for a, fl in new_flags:
                self.registry.notify("fit_alert_raised", flag=fl, administration=a)

    # --- push ----------------------------------------------------------------------------------

    def _push(self, adapter: Adapter, src: SourceConfig, result: SourceResult) -> None:
        if adapter.push_mode == "snapshot":
            pending = self.store.pending_count(src.name)
            if not pending and not self.store.removed_count(src.name):
                return
            adapter.push_snapshot(self.store.snapshot(src.name))
            with self.store.transaction():
                self.store.mark_all_pushed(src.name, now_text())
            result.pushed += pending
            return
        if self.store.removed_count(src.name):
            self.store.forget_removed(src.name)
        size = self.config.sync.push_batch_size or adapter.push_batch_size
        for batch in self.store.pending(src.name, size):
            confirmed = set(adapter.push(batch))
            done = [(it.source_key, it.hash) for it in batch if it.source_key in confirmed]
            with self.store.transaction():
                self.store.mark_pushed(src.name, done, now_text())
            result.pushed += len(done)
            missing = len(batch) - len(done)
            if missing:
                result.push_rejected += missing
                log.error(
                    "source %s: the target did not confirm %d of %d pushed rows",
                    src.name,
                    missing,
                    len(batch),
                )


@contextlib.contextmanager
def _batch_gc() -> Iterator[None]:
    """Fewer cyclic-GC passes during a sync.

    A sync allocates millions of short-lived, acyclic objects (records, dicts, tuples); with the
    default thresholds CPython's collector rescans the growing heap again and again, which cost
    about a fifth of a 100k-record sync here. Objects alive before the run are frozen out of the
    scans, and the young-generation threshold is raised; both are restored afterwards.
    """
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def load_active_model(store: Store) -> Any:
    """The active trajectory model of the store, or None (then there is no on-track status)."""
    from .trajectories import model_from_dict

    row = store.active_model()
    return model_from_dict(row[2]) if row else None


def _close(adapter: Adapter, name: str) -> None:
    try:
        adapter.close()
    except Exception:
        log.exception("source %s: close() failed", name)


def _apply_acks(s: Scored, acked: set[tuple[str, str, str]]) -> Scored:
    a = s.admin
    flags = tuple(
        Flag(f.rule_id, f.version, f.severity, f.message, f.inputs, "acknowledged")
        if (a.source, a.source_key, f.rule_id) in acked
        else f
        for f in s.flags
    )
    return Scored(a, s.score, flags)


def _counts(summary: RunSummary) -> dict[str, Any]:
    keys = (
        "pulled",
        "new",
        "changed",
        "unchanged",
        "quarantined",
        "removed",
        "pushed",
        "would_push",
    )
    return {
        "sources": {
            s.name: {"status": s.status, **{k: getattr(s, k) for k in keys}}
            for s in summary.sources
        },
        "clients_rescored": summary.clients_rescored,
        "flags_raised": summary.flags_raised,
    }


def _state_dir(store_path: str) -> Any:
    from pathlib import Path

    if store_path == ":memory:":
        import tempfile

        return Path(tempfile.gettempdir())
    return Path(store_path).parent


def _no_secrets(source: str, key: str) -> str:
    raise ConfigError(f"secret {key!r} for source {source!r} is not available")


def rescore_only(
    admins: Iterable[Administration],
    measures: Mapping[str, Any],
    settings: Settings,
    rules: Sequence[Any],
    model: Any = None,
) -> list[Scored]:
    """Score administrations of many clients without a store (used by `fit score`)."""
    from .scoring import group_by_client

    scorer = Scorer(measures, settings, rules, model)
    out: list[Scored] = []
    for group in group_by_client(admins).values():
        out.extend(scorer.score(group).scored)
    return out
