"""The sync engine: the guarantees listed in docs/architecture.md ("The guarantees").

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
9. Deletions: a ``Deleted`` item removes its administration (the client is rescored) and the
   target row goes at the next push (``Adapter.remove`` for batch targets). Records of erased
   clients and purged records (tombstones, see :mod:`fit_core.privacy`) are refused, and
   episodes past ``[privacy] retain_after_end`` are purged (:mod:`fit_core.retention`).
   Every push is written to the audit log (:mod:`fit_core.audit`).

Logs name sources, source keys and field names, never answers or names.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import itertools
import json
import logging
import mmap
import os
import re
import sqlite3
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

from . import forkmap
from .adapter import Adapter, SourceContext
from .alerts import Plan, reconcile
from .audit import Auditor, auditor_for
from .config import Config, SourceConfig, adapter_options, namespace_cases
from .errors import ConfigError, ExitCode, FitError
from .fingerprint import changed_parts, fingerprint
from .identity import SpellingTracker, normalise_client_id, spelling
from .lock import SyncLock
from .logsafe import escape_controls, key_ref
from .models import (
    Administration,
    Appointment,
    ClientInfo,
    Deleted,
    Record,
    RecordError,
    Scored,
)
from .payload import item_row, outbox_row, outbox_row_with_line
from .plugins import Registry
from .privacy import Tombstones
from .redact import redact
from .scoring import ClientResult, Scorer
from .settings import Settings, check_rule_ids
from .state import StoreState
from .store import Store, admin_row_hashed, now_text
from .storefile import store_error
from .validation import Validator

log = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P", Appointment, ClientInfo)
RESCORE_BATCH = 500
#: a batch of at least this many administrations is scored in two processes where it can be
#: (:mod:`fit_core.forkmap`); below it the fork and the hand-over cost more than they save
PARALLEL_MIN_ADMINISTRATIONS = 4_000
#: the RecordErrors a pull read by two processes keeps to reconcile repeated keys (see
#: SyncEngine._take_part); a pull with more is read again in one process
PARALLEL_PULL_MAX_ERRORS = 20_000
CLAIM_MIN = 25  # the fewest clients a process takes at a time after a parallel pull
FINGERPRINT_KEY = "scoring_fingerprint"
#: the source state that says a source's outbox rows keep only their scores-file lines
LINES_ONLY_KEY = "fit.outbox_lines_only"
ADMIN_CACHE_LIMIT = 60_000  # administrations kept in memory per run (about 45 MB at most)
MERGES_LISTED = 100  # merged client codes named in a source's result (the count is always exact)


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
        #: clients an administration was taken from (changed to another client, quarantined,
        #: deleted) in this run, whether held here or not
        self.dropped: set[tuple[str, str]] = set()

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
        self.dropped.add(client)
        held = self.fresh.get(client)
        if held is not None and held.pop(key, None) is not None:
            self.size -= 1

    def get(self, client: tuple[str, str]) -> list[Administration] | None:
        held = self.fresh.get(client)
        return None if held is None else list(held.values())

    def forget(self, client: tuple[str, str]) -> None:
        """The client changed outside the ingest (retention): read it from the store."""
        held = self.fresh.pop(client, None)
        if held is not None:
            self.size -= len(held)
            self.stale.add(client)


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
    #: items whose source key came again later in the same batch (the last one counts), so
    #: pulled = new + changed + unchanged + quarantined + repeated
    repeated: int = 0
    #: quarantine entries of a full-pull source that still stand though nothing was read
    #: again (nothing changed since the read that reported them)
    outstanding: int = 0
    removed: int = 0
    #: stored records the source said were deleted (Deleted items), now removed here
    deleted: int = 0
    #: records refused because their client was erased (or they were purged) here
    refused: int = 0
    pushed: int = 0
    #: rows removed at the target (deleted, quarantined, erased or purged records)
    removed_at_target: int = 0
    would_push: int = 0
    push_rejected: int = 0
    bookmark_saved: bool = False
    error: str | None = None
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    #: parts of the source the adapter left out this run (see Adapter.problems)
    problems: list[str] = field(default_factory=list)
    #: client codes that several spellings were normalised into: count, and up to
    #: MERGES_LISTED of them with every spelling seen (see fit_core.identity)
    merged_clients: int = 0
    merged_client_ids: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class RunSummary:
    run_id: int
    dry_run: bool
    sources: list[SourceResult]
    clients_rescored: int = 0  # distinct clients
    flags_raised: int = 0
    alerts_closed: int = 0
    open_flags: int = 0
    rule_failures: dict[str, int] = field(default_factory=dict)
    rescored: set[tuple[str, str]] = field(default_factory=set, repr=False)
    #: the parts of the scoring fingerprint that changed since the store was scored (every
    #: client was rescored for it): settings, rules, measures, model, engine
    settings_changed: list[str] = field(default_factory=list)
    #: records purged by retention this run ([privacy] retain_after_end), and their episodes
    purged: int = 0
    purged_episodes: int = 0

    @property
    def exit_code(self) -> ExitCode:
        failed = [s for s in self.sources if s.status == "failed"]
        ran = [s for s in self.sources if s.status != "skipped"]
        if ran and len(failed) == len(ran):
            return ExitCode(max(s.exit_code for s in failed))
        if any(s.exit_code == ExitCode.CONFIG for s in failed):
            return ExitCode.CONFIG  # a config problem (a missing secret) needs a person
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
            "alerts_closed": self.alerts_closed,
            "open_flags": self.open_flags,
            "settings_changed": self.settings_changed,
            "purged": self.purged,
            "purged_episodes": self.purged_episodes,
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
        self.clock = clock or utc_now
        self.tz = config.sync.tzinfo()
        self.cases = namespace_cases(config)
        self.rules = list(registry.rules.values())
        check_rule_ids(self.settings, registry.rules)
        self.model = load_active_model(store)
        self._pages: Any = None  # the report page renderer, made on first use (False: none)
        self._tombstones: Tombstones | None = None
        self._auditor: Auditor | None = None
        #: the second process of a parallel pull, until it has scored the clients it stored
        self._helper: tuple[forkmap.Worker, frozenset[tuple[str, str]]] | None = None
        self._helper_gate: Any = None  # the lock file both processes write with meanwhile
        self._claims: _Claims | None = None  # how far each has come through the clients
        #: in the second process of a parallel pull: its log lines, for this process to log
        self._log_lines: list[tuple[int, str]] = []
        #: in the second process of a parallel pull: the keys it quarantined
        self._quarantined: set[str] | None = None
        self._lines_noted: set[str] = set()  # sources known to keep lines only (see _rescore)

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
            self._pages = None
            # erased clients and purged records are refused; a missing or changed privacy key
            # stops the run here (ConfigError), before anything could come back
            self._tombstones = Tombstones.load(self.store, self.secret)
            self._auditor = auditor_for(self.store, self.config, self.secret)
            if self.config.privacy.retain_after_end is not None:
                from .privacy import privacy_key

                privacy_key(self.secret)  # retention leaves tombstones: the key must be set
            self.store.mark_due_reviews(as_of.isoformat())
            run_id = self.store.start_run(names, dry_run)
            summary = RunSummary(run_id, dry_run, [])
            fingerprint = self._check_fingerprint(summary)
            self._note_orphans()
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
                # episodes past their retention go before the final rescore (what is left of
                # their clients is rescored with it) and their rows leave the targets below
                self._purge(summary, as_of, dry_run)
                # clients dirtied by one source may hold administrations of another (e.g. a
                # practice source adds attendance flags to a CSV source's scores): rescore them
                # and push what that changed, so no source is one sync behind
                self._rescore(summary, "")
                # every client is scored with these settings now (a crash before this line
                # rescores everyone again next time, which changes nothing)
                self.store.set_meta(FINGERPRINT_KEY, json.dumps(fingerprint, sort_keys=True))
                for src, result, adapter in opened:
                    if result.status == "failed" or result.push_rejected:
                        continue  # unconfirmed rows are retried by the next run, not now
                    if dry_run:
                        result.would_push = self.store.pending_count(src.name)
                    elif self.store.pending_count(src.name) or self.store.removed_count(src.name):
                        self._guarded(src, result, partial(self._push, adapter, src, result))
                for src, result, adapter in opened:
                    _note_problems(adapter, src.name, result)
                for result in summary.sources:
                    if result.status == "ok" and (
                        result.quarantined
                        or result.push_rejected
                        or result.problems
                        or result.outstanding
                    ):
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

    def _check_fingerprint(self, summary: RunSummary) -> dict[str, str]:
        """Rescore every client when anything that changes scores or alerts changed."""
        reg = self.registry
        model = self.store.active_models()
        current = fingerprint(
            self.settings,
            self.rules,
            reg.measures,
            owners=reg.owners,
            versions={p.package: p.version for p in reg.plugins},
            model=model,
        )
        stored = self.store.meta(FINGERPRINT_KEY)
        old = json.loads(stored) if stored else None
        changed = changed_parts(old, current)
        if changed and (old is not None or self.store.count("administrations")):
            summary.settings_changed = changed
            log.info(
                "scoring changed since the store was scored (%s): rescoring every client",
                ", ".join(changed),
            )
            self.store.mark_all_dirty()
        return current

    def _note_orphans(self) -> None:
        """Warn about data of sources the config no longer names: their clients are still
        scored and alerted with it (a removed source's clients keep raising alerts)."""
        for source, n in sorted(self.store.sources_held().items()):
            if source not in self.config.sources:
                log.warning("%s", orphan_message(source, n))

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
                secret=partial(self.secret, src.name),
                state_dir=_state_dir(self.store.path),
                dry_run=dry_run,
                state=StoreState(self.store, src.name, read_only=dry_run),
                client_page=self._client_page,
                stored_keys=partial(self.store.stored_keys, src.name),
            )
            adapter = adapter_cls(ctx)
            made.append(adapter)
            adapter.check()
            relined = self._payloads_again(src.name, adapter_cls)
            self._pull(adapter, src, result)
            _note_problems(adapter, src.name, result)
            self._rescore(summary, src.name)
            self._drop_helper()
            if relined:
                self.store.set_state_value(src.name, LINES_ONLY_KEY, "")
            if dry_run:
                result.would_push = self.store.pending_count(src.name)
                return
            if adapter.wants_full_push():
                with self.store.transaction():
                    again = self.store.mark_all_pending(src.name)
                log.info("source %s: pushing all %d rows again (the target asked)", src.name, again)
            self._push(adapter, src, result)
            # the bookmark is read after the push (an adapter may fold its own writes into it)
            if result.push_rejected == 0:
                bookmark = adapter.next_bookmark()
                if bookmark is not None:
                    self.store.save_bookmark(src.name, bookmark)
                    result.bookmark_saved = True

        try:
            self._guarded(src, result, work)
        finally:
            self._drop_helper()
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
            # reported once, by whoever runs the engine (`fit sync` prints result.error; `fit
            # serve` logs it): logging it here too printed every source error twice
            result.status = "failed"
            result.exit_code = exc.exit_code
            # it reaches `error:` lines, --json and plugins: secrets masked, control characters
            # escaped (the message may quote a path or a server's answer); the hint on its line
            message = escape_controls(redact(exc.message))
            hint = escape_controls(redact(exc.hint)) if exc.hint else ""
            result.error = f"{message}\n  hint: {hint}" if hint else message
            log.debug("source %s failed: %s", src.name, message)
        except sqlite3.Error:
            raise  # a store problem stops the run (see run())
        except Exception as exc:
            result.status = "failed"
            result.exit_code = ExitCode.INTERNAL
            result.error = f"internal error ({type(exc).__name__}); run with -v for details"
            log.info("source %s failed with an internal error", src.name, exc_info=True)

    def _client_page(
        self, namespace: str, client_id: str, episode_id: str | None = None
    ) -> str | None:
        """A client's report page for adapters (None without the reports extra)."""
        if self._pages is None:
            from .reports.pages import PageRenderer

            self._pages = (
                PageRenderer.create(
                    self.store,
                    self.registry.measures,
                    self._run_settings,
                    self.model,
                    {rid: rule.description for rid, rule in self.registry.rules.items()},
                    self._run_settings.as_of or self.clock().astimezone(self.tz).date(),
                )
                or False
            )
        if self._pages is False:
            return None
        return self._pages(namespace, client_id, episode_id)

    # --- pull ----------------------------------------------------------------------------------

    def _pull(self, adapter: Adapter, src: SourceConfig, result: SourceResult) -> None:
        validator = Validator(
            self.registry.measures,
            self.tz,
            source=src.name,
            namespace=src.namespace,
            keep_case=src.client_id_case == "keep",
            today=self.clock().astimezone(self.tz).date(),
        )
        spellings = SpellingTracker(self.store.note_spellings)
        quarantined_before = {q["source_key"] for q in self.store.quarantined(src.name)}
        bookmark = self.store.bookmark(src.name)
        owner = _Owner(adapter) if self._parallel_pull(adapter) else None
        second = gate = None
        if owner is not None and (gate := _gate()) is not None:
            shared = f"/proc/{os.getpid()}/fd/{gate.fileno()}"
            self._claims = _Claims()  # made before the fork: its memory is shared with it
            with self.store.detached():  # the second process opens the store itself
                second = forkmap.serve(
                    partial(
                        self._pull_part,
                        adapter,
                        src,
                        bookmark,
                        validator,
                        quarantined_before,
                        owner,
                        shared,
                    ),
                    self._rescore_part,
                )
            if second is None:
                gate.close()
                gate = None
            else:
                self.store.gate = gate.fileno()
        errors: dict[str, RecordError] = {}
        try:
            covered = self._pull_here(
                adapter,
                src,
                result,
                bookmark,
                validator,
                spellings,
                quarantined_before,
                owner if second is not None else None,
                errors,
            )
            taken = second is not None and self._take_part(
                second, adapter, src, result, spellings, validator, errors
            )
        except BaseException:
            if second is not None:
                second.cancel()
            raise
        finally:
            if gate is not None:
                if self._helper is not None:
                    self._helper_gate = gate  # closed with the second process (_drop_helper)
                else:
                    self.store.gate = None
                    gate.close()
        if second is not None and not taken:
            # the reads differed (the file changed between them) or the second process
            # failed: what either process stored is kept, and the pull is done again here
            second.cancel()
            self._cache = RunCache(ADMIN_CACHE_LIMIT)
            for name in _PULL_COUNTS:
                setattr(result, name, 0)
            result.quarantine_reasons.clear()
            covered = self._pull_here(
                adapter, src, result, bookmark, validator, spellings, quarantined_before, None
            )
        if adapter.pull_mode == "full":
            self._settle_full_pull(adapter, src, result, quarantined_before, *covered)
        _note_merges(spellings, src.name, result)

    def _parallel_pull(self, adapter: Adapter) -> bool:
        """Whether this pull is read by two processes (see :meth:`Adapter.parallel_pull`): a
        second process is allowed, the store is a file both can open, and the adapter agrees."""
        path = self.store.path
        if (
            self.config.sync.processes < 2
            or path == ":memory:"
            or self.store.encrypted
            or not forkmap.can_fork()
        ):
            return False
        try:
            return bool(adapter.parallel_pull())
        except Exception:
            log.debug("parallel_pull() failed; the pull runs in one process", exc_info=True)
            return False

    def _pull_here(
        self,
        adapter: Adapter,
        src: SourceConfig,
        result: SourceResult,
        bookmark: str | None,
        validator: Validator,
        spellings: SpellingTracker,
        quarantined_before: set[str],
        owner: _Owner | None,
        errors: dict[str, RecordError] | None = None,
    ) -> tuple[set[str], set[str], set[tuple[str, str]]]:
        """Read the pull here and ingest it (with ``owner``: only this process's half of it,
        the RecordErrors ingested put in ``errors`` by key, the last one of each); returns what
        a full pull saw: keys, keys reported bad, practice clients."""
        if errors is None:
            errors = {}
        size = self.config.sync.record_batch_size
        full = adapter.pull_mode == "full"
        seen: set[str] = set()
        reported: set[str] = set()  # the RecordErrors of this pull
        seen_clients: set[tuple[str, str]] = set()
        read = 0
        for chunk in chunked(adapter.pull(bookmark), size):
            if full:
                for item in chunk:
                    if isinstance(item, ClientInfo):
                        seen_clients.add((item.namespace, self._canonical(item, src)))
                    else:
                        seen.add(item.source_key)
                        if isinstance(item, RecordError):
                            reported.add(item.source_key)
            read += len(chunk)
            if owner is not None:
                chunk = [it for it in chunk if not owner(it)]
                if len(errors) <= PARALLEL_PULL_MAX_ERRORS:
                    errors.update(
                        (it.source_key, it) for it in chunk if isinstance(it, RecordError)
                    )
            if chunk:
                self._ingest(chunk, validator, src, result, quarantined_before, spellings)
            if self.progress is not None:
                self.progress(src.name, "pulled", read if owner is not None else result.pulled)
        return seen, reported, seen_clients

    def _pull_part(
        self,
        adapter: Adapter,
        src: SourceConfig,
        bookmark: str | None,
        validator: Validator,
        quarantined_before: set[str],
        owner: _Owner,
        gate: str,
    ) -> dict[str, Any]:
        """The second process of a parallel pull (forked): read the pull too and ingest the
        other half of it, over a store connection of its own; return what the first process
        needs to know of it (counts, log lines, the clients it stored, spellings)."""
        self.store.conn = Store.open(self.store.path).conn  # forked while it was closed
        self.store.gate = os.open(gate, os.O_RDWR)  # its own open file: flock tells them apart
        self.progress = None
        self._cache = RunCache(ADMIN_CACHE_LIMIT)
        self._quarantined = set()
        lines = self._log_lines = _capture_log()
        result = SourceResult(src.name)
        typed = _Spellings()
        size = self.config.sync.record_batch_size
        for chunk in chunked(adapter.pull(bookmark), size):
            mine = [it for it in chunk if owner(it)]
            if mine:
                self._ingest(mine, validator, src, result, quarantined_before, typed)
        return {
            "identity": adapter.pull_identity(),
            "counts": {name: getattr(result, name) for name in _PULL_COUNTS},
            "reasons": result.quarantine_reasons,
            "clients": self._cache.known,
            "quarantined": self._quarantined,
            "spellings": typed.triples,
            "log": lines,
        }

    def _take_part(
        self,
        second: forkmap.Worker,
        adapter: Adapter,
        src: SourceConfig,
        result: SourceResult,
        spellings: SpellingTracker,
        validator: Validator,
        errors: Mapping[str, RecordError],
    ) -> bool:
        """Wait for the second process of a parallel pull and take in what it did; False when
        it failed or read something else than this process did. When taken, the second
        process stays to score the clients it stored (see :meth:`_rescore_part`)."""
        ok, part = second.first()
        if ok and len(errors) > PARALLEL_PULL_MAX_ERRORS:
            log.warning(
                "source %s: more than %d records are bad; reading the source again in one process",
                src.name,
                PARALLEL_PULL_MAX_ERRORS,
            )
            return False
        if not ok:
            log.warning(
                "source %s: the second process of the pull failed (%s); reading the source "
                "again in one process",
                src.name,
                part,
            )
            return False
        mine = adapter.pull_identity()
        if mine is None or part["identity"] != mine:
            log.warning(
                "source %s: the source changed while it was read; reading it again in one process",
                src.name,
            )
            return False
        for name in _PULL_COUNTS:
            setattr(result, name, getattr(result, name) + part["counts"][name])
        for reason, n in part["reasons"].items():
            result.quarantine_reasons[reason] = result.quarantine_reasons.get(reason, 0) + n
        for level, line in part["log"]:
            log.log(level, "%s", line)
        # the other process's clients are scored there (it holds them in memory); here they
        # would be read back from the store
        theirs = set(part["clients"])
        for client in theirs:
            self._cache.forget(client)
        # a client one of whose records this process changed or removed (an error, a
        # deletion, a record that moved to another client) is scored here, from the store
        theirs -= self._cache.dropped
        # a key given as a Record (there) and as a RecordError (here, later in the pull: a
        # repeated key) ends as one process leaves it, quarantined with the error read last
        # and not stored, whichever process wrote first: where the other process stored or
        # quarantined such a key, this process's last error for it is written again, and the
        # client is scored here
        stored = self.store.existing(src.name, list(errors)) if errors else {}
        again = [k for k in errors if k in stored or k in part["quarantined"]]
        if again:
            redo = SourceResult(src.name)
            self._ingest([errors[k] for k in again], validator, src, redo, set())
            result.removed += redo.removed
            theirs -= {(ns, cid) for _h, ns, cid in stored.values()}
        if part["spellings"]:
            with self.store.transaction():
                spellings.note(part["spellings"])
        if self.progress is not None:
            self.progress(src.name, "pulled", result.pulled)
        self._helper = (second, frozenset(theirs))
        return True

    def _rescore_part(
        self, request: tuple[list[tuple[str, str]], list[tuple[str, str]], frozenset[str]]
    ) -> Any:
        """In the second process of a parallel pull, after it: rescore and write clients as
        :meth:`_rescore` does, a batch per transaction: the clients it stored (they are in its
        memory), then, should it finish first, some of the first process's (see
        :class:`_Claims`); returns what the first process adds to its summary and logs."""
        first = len(self._log_lines)
        scorer = Scorer(self.registry.measures, self._run_settings, self.rules, self.model)
        summary = RunSummary(0, False, [])
        self._rescore_claimed(summary, "", scorer, request, 1)
        return {
            "rescored": sorted(summary.rescored),
            "raised": summary.flags_raised,
            "closed": summary.alerts_closed,
            "failures": summary.rule_failures,
            "log": self._log_lines[first:],
        }

    def _rescore_claimed(
        self,
        summary: RunSummary,
        source: str,
        scorer: Scorer,
        request: tuple[list[tuple[str, str]], list[tuple[str, str]], frozenset[str]],
        me: int,
    ) -> None:
        """Score and write the batches this process (``me``: 0 the first, 1 the second)
        claims of the two lists of clients in ``request`` (see :class:`_Claims`)."""
        *lists, lined = request
        claims = self._claims
        assert claims is not None and self.store.gate is not None
        families = scorer.rule_families
        while (claim := claims.take(self.store.gate, me)) is not None:
            which, begin, end = claim
            clients = lists[which][begin:end]
            at = now_text()
            # the other process's clients are read from the store: what this one holds of
            # them in memory may be out of date (a record the other process took away)
            contexts, stored, work = self._work_of(clients, cached=which == me)
            outcomes = _score_clients(scorer, families, contexts, stored, at, lined, work)
            self._write_batch(summary, source, clients, at, outcomes, keep_scored=False)

    def _work_of(
        self, clients: Sequence[tuple[str, str]], *, cached: bool = True
    ) -> tuple[Any, Any, list[tuple[tuple[str, str], list[Administration]]]]:
        """What scoring ``clients`` takes: their practice contexts, their stored alerts, and
        (client, administrations) each, from this run's memory (unless not ``cached``) or
        else from the store."""
        by_client = {c: self._cache.get(c) if cached else None for c in clients}
        uncached = [c for c, admins in by_client.items() if admins is None]
        if uncached:
            by_client.update(self.store.client_administrations(uncached))
        work = [(c, by_client.get(c) or []) for c in clients]
        return self.store.client_contexts(clients), self.store.active_alerts(clients), work

    def _drop_helper(self, *, kill: bool = False) -> None:
        """Let the second process of a parallel pull end (see :meth:`_take_part`); ``kill``:
        at once, whatever it was doing (what it had not committed is rolled back)."""
        helper, self._helper = self._helper, None
        if helper is not None:
            if kill:
                helper[0].cancel()
            else:
                helper[0].close()
        self._claims = None
        gate, self._helper_gate = self._helper_gate, None
        if gate is not None:
            self.store.gate = None
            gate.close()

    def _settle_full_pull(
        self,
        adapter: Adapter,
        src: SourceConfig,
        result: SourceResult,
        quarantined_before: set[str],
        seen: set[str],
        reported: set[str],
        seen_clients: set[tuple[str, str]],
    ) -> None:
        """After a full pull: drop what it no longer yields (when it covered everything) and
        release the quarantine entries it did not report again; see Adapter.pull_coverage."""
        coverage = adapter.pull_coverage() or ("all" if result.pulled else "none")
        if coverage == "none":
            # nothing was read again: what the last read reported still stands
            result.outstanding = self.store.count("quarantine", src.name)
            return
        with self.store.transaction():
            dirty: set[tuple[str, str]] = set()
            if coverage == "all":
                dirty = self.store.prune_practice(src.name, seen, seen_clients)
            else:
                log.warning(
                    "source %s: part of the source could not be read; its stored practice "
                    "data is kept as it was",
                    src.name,
                )
            # a full read reported every problem it still has: the rest are resolved
            self.store.release_quarantine(src.name, sorted(quarantined_before - reported))
            if dirty:
                self.store.mark_dirty(dirty)

    def _ingest(
        self,
        chunk: Sequence[Record | RecordError | Deleted | Appointment | ClientInfo],
        validator: Validator,
        src: SourceConfig,
        result: SourceResult,
        quarantined_before: set[str],
        spellings: SpellingTracker | _Spellings | None = None,
    ) -> None:
        at = now_text()
        verbose = log.isEnabledFor(logging.INFO)
        # the last item for a key wins within a chunk (a later RecordError replaces a Record)
        final: dict[str, Administration | RecordError] = {}
        gone: dict[str, Deleted] = {}  # keys the source says it no longer holds
        records = [it for it in chunk if isinstance(it, Record)]
        checked = iter(validator.validate_many(records))
        distinct = 0
        appointments: list[Appointment] = []
        infos: list[ClientInfo] = []
        typed: set[tuple[str, str, str]] = set()
        tomb = self._tombstones
        refused: list[str] = []  # where records of erased clients are (no ids)
        for item in chunk:
            if isinstance(item, Deleted):
                final.pop(item.source_key, None)  # the later item for a key wins
                gone[item.source_key] = item
                continue
            if not isinstance(item, ClientInfo):
                gone.pop(item.source_key, None)
            if isinstance(item, RecordError):
                if tomb is not None and _names_erased(tomb, src.namespace, item.raw):
                    result.refused += 1
                    refused.append(item.location or f"a record of {src.name}")
                    distinct += 1
                    continue
                final[item.source_key] = item
                continue
            if isinstance(item, Appointment):
                appt = self._normalised(item, src, typed)
                distinct += 1
                if tomb is not None and self._refused(appt, tomb, refused):
                    result.refused += 1
                    continue
                appointments.append(appt)
                continue
            if isinstance(item, ClientInfo):
                info = self._normalised(item, src, typed)
                distinct += 1
                if tomb is not None and tomb.client_erased(info.namespace, info.client_id):
                    result.refused += 1
                    refused.append(f"client details of an erased client ({src.name})")
                    continue
                infos.append(info)
                continue
            ok = next(checked)
            if isinstance(ok, Administration):
                if tomb is not None and self._refused(ok, tomb, refused, item.location):
                    result.refused += 1
                    distinct += 1
                    final.pop(item.source_key, None)
                    continue
                final[item.source_key] = ok
                typed.add((ok.namespace, ok.client_id, spelling(item.data.get("client_id"))))
            elif tomb is not None and _names_erased(tomb, src.namespace, item.data):
                result.refused += 1  # a bad record of an erased client: not even quarantined
                refused.append(item.location or f"a record of {src.name}")
                distinct += 1
            else:
                final[item.source_key] = RecordError(
                    item.source_key, ok, item.location, dict(item.data)
                )
        pulled = len(chunk) - sum(1 for it in chunk if isinstance(it, Deleted))
        result.pulled += pulled
        result.repeated += pulled - distinct - len(final)
        if refused:
            self._note_refused(src, result, refused)
        if gone:
            self._delete(src, result, gone, quarantined_before)
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
        # what to write is worked out first: the write transaction holds the store's
        # write lock (which a second process reading the same pull waits for) only to write
        quarantines: list[tuple[str, Mapping[str, str], str, Any]] = []
        for key, adm in final.items():
            old = existing.get(key)
            if isinstance(adm, RecordError):
                result.quarantined += 1
                for name in adm.reasons:
                    result.quarantine_reasons[name] = result.quarantine_reasons.get(name, 0) + 1
                # the key may hold a client id and a date: the warning (cron mail) names
                # its reference and line, -v adds the fields; `fit quarantine` has it all
                log.warning(
                    "source %s: record %s%s quarantined%s; see `fit quarantine`",
                    src.name,
                    key_ref(key),
                    f" ({adm.location})" if adm.location else "",
                    f" ({', '.join(adm.reasons)})" if verbose else "",
                )
                reasons = {f: redact(str(r)) for f, r in adm.reasons.items()}
                quarantines.append((key, reasons, adm.location, adm.raw))
                if self._quarantined is not None:
                    self._quarantined.add(key)
                if old is not None:
                    removed.append(key)
                    dirty.add((old[1], old[2]))
                    cache.discard((old[1], old[2]), (src.name, key))
                continue
            row, h = admin_row_hashed(adm, at)
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
                cache.discard((old[1], old[2]), adm.key)
            rows.append(row)
            dirty.add(adm.client)
            cache.put(adm)
        with self.store.transaction():
            for key, why, location, raw in quarantines:
                self.store.quarantine(src.name, key, why, location, raw, at)
            if removed:
                result.removed += len(removed)
                self.store.delete_administrations(src.name, removed)
            if rows:
                self.store.upsert_administrations(rows)
            # an appointment stored now releases the entry its row had while it could not be
            released += [a.source_key for a in appointments if a.source_key in quarantined_before]
            if released:
                self.store.release_quarantine(src.name, released)
            tally: dict[str, int] = {"new": 0, "changed": 0, "unchanged": 0}
            if appointments:
                dirty |= self.store.upsert_appointments(appointments, at, tally)
            if infos:
                dirty |= self.store.upsert_client_info(infos, at, tally)
            result.new += tally["new"]
            result.changed += tally["changed"]
            result.unchanged += tally["unchanged"]
            if dirty:
                self.store.mark_dirty(dirty)
            if spellings is not None and typed:
                spellings.note(typed)

    def _refused(
        self,
        item: Administration | Appointment,
        tomb: Tombstones,
        where: list[str],
        location: str = "",
    ) -> bool:
        """Whether a tombstone refuses ``item``: its client was erased (noted in ``where``,
        so the run says where the source still holds it) or the record was purged."""
        if tomb.client_erased(item.namespace, item.client_id):
            where.append(location or f"{type(item).__name__.lower()} of {item.source}")
            return True
        return tomb.record_purged(item.source, item.source_key)

    def _note_refused(self, src: SourceConfig, result: SourceResult, where: list[str]) -> None:
        """Say, once per source and run, that the source still holds erased clients' data."""
        first = where[0]
        text = (
            "the source still holds records of a client erased with `fit client erase` (first: "
            f"{first}); they were not imported. Delete them at the source; `fit client readmit "
            "ID` lifts the erasure if the client returns"
        )
        if not any(
            p.startswith("the source still holds records of a client") for p in (result.problems)
        ):
            result.problems.append(text)
            log.warning("source %s: %s", src.name, text)

    def _delete(
        self,
        src: SourceConfig,
        result: SourceResult,
        gone: Mapping[str, Deleted],
        quarantined_before: set[str],
    ) -> None:
        """Remove what the source says it no longer holds; its clients are rescored."""
        keys = list(gone)
        existing = self.store.existing(src.name, keys)
        stale = [k for k in keys if k in quarantined_before]
        if not existing and not stale:
            return
        with self.store.transaction():
            if existing:
                self.store.delete_administrations(src.name, list(existing))
                dirty = {(ns, cid) for _h, ns, cid in existing.values()}
                for key, (_h, ns, cid) in existing.items():
                    self._cache.discard((ns, cid), (src.name, key))
                self.store.mark_dirty(dirty)
            if stale:
                self.store.release_quarantine(src.name, stale)
                quarantined_before.difference_update(stale)
        result.deleted += len(existing)
        for key in existing:
            log.info(
                "source %s: record %s%s was deleted at the source; removed",
                src.name,
                key,
                f" ({gone[key].location})" if gone[key].location else "",
            )

    def _canonical(self, item: Appointment | ClientInfo, src: SourceConfig) -> str:
        """A practice system's client code, normalised as its namespace does."""
        keep = self.cases.get(item.namespace, src.client_id_case) == "keep"
        return normalise_client_id(item.client_id, keep_case=keep)

    def _normalised(self, item: P, src: SourceConfig, typed: set[tuple[str, str, str]]) -> P:
        """``item`` with its client code normalised (its spelling noted in ``typed``)."""
        cid = self._canonical(item, src)
        typed.add((item.namespace, cid, spelling(item.client_id)))
        return item if cid == item.client_id else replace(item, client_id=cid)

    # --- retention -----------------------------------------------------------------------------

    def _purge(self, summary: RunSummary, as_of: dt.date, dry_run: bool) -> None:
        """Purge the episodes past ``[privacy] retain_after_end`` (a dry run only counts)."""
        retention = self.config.privacy.retain_after_end
        if retention is None:
            return
        from .erasure import purge_expired

        report = purge_expired(
            self.store, self._run_settings, as_of, retention, self.secret, dry_run=dry_run
        )
        summary.purged = report.records
        summary.purged_episodes = len(report.expired)
        if not report.expired:
            return
        for client in report.clients:
            self._cache.forget(client)
        log.info(
            "retention (%s after the end): %s %d record(s) of %d ended episode(s)",
            retention.text,
            "would purge" if dry_run else "purged",
            report.records,
            len(report.expired),
        )
        if not dry_run and self._auditor is not None:
            self._auditor.record(
                "purge",
                counts={
                    "records": report.records,
                    "episodes": len(report.expired),
                    "appointments": report.appointments,
                },
                subjects=self._auditor.client_subjects(sorted(report.clients)),
                detail=f"retain_after_end {retention.text}",
            )

    # --- rescore -------------------------------------------------------------------------------

    def _rescore(self, summary: RunSummary, source: str) -> None:
        """Rescore every dirty client, a batch at a time, each batch in one transaction.

        The batches overlap where a second process helps (:mod:`fit_core.forkmap`): the next
        batch is read and its child started before this one is written, so the child scores
        while this process writes; the writes themselves stay in order, one transaction per
        batch, exactly as in one process. After a pull read by two processes, the second
        process first scores and writes the clients it stored (:meth:`_rescore_beside`)."""
        scorer = Scorer(self.registry.measures, self._run_settings, self.rules, self.model)
        families = scorer.rule_families
        # the scored items go to the ``fit_scored`` hook only when a plugin listens (then the
        # batch is scored in this process: the items are not sent between processes)
        keep_scored = self.registry.has_listeners("fit_scored")
        min_weight = PARALLEL_MIN_ADMINISTRATIONS if not keep_scored else 1 << 62
        processes = self.config.sync.processes
        after: tuple[str, str] | None = None  # the last client of the batch read before
        ready: tuple[list[tuple[str, str]], str, list[_Outcome]] | None = None
        # measured as the batches go: seconds of scoring per administration here and in the
        # child, and of writing the batch before, so the child takes the share that lets
        # both finish together
        mine_rate, their_rate, wrote = 0.0, 0.0, 0.0
        # sources whose outbox rows keep their scores-file lines (see push_snapshot)
        lined = frozenset(name for name in self.config.sources if self._keeps_lines(name))
        for name in lined - self._lines_noted:
            # its rows keep only their lines (see payload.LINE_ONLY): should its adapter
            # change, a later sync knows to score its clients again (_payloads_again)
            if not self.store.state_value(name, LINES_ONLY_KEY):
                self.store.set_state_value(name, LINES_ONLY_KEY, "1")
            self._lines_noted.add(name)
        if self._helper is not None:
            if keep_scored or self.registry.has_listeners("fit_alert_raised"):
                # a plugin wants the scored items or the new alerts: they are made here
                self._drop_helper()
            else:
                self._rescore_beside(summary, source, scorer, lined)
        while True:
            clients = self.store.dirty_batch(RESCORE_BATCH, after)
            started: forkmap.Split[Any, _Outcome] | None = None
            if clients:
                after = clients[-1]
                at = now_text()
                contexts, stored, work = self._work_of(clients)
                score = partial(
                    _score_clients,
                    scorer,
                    families,
                    contexts,
                    stored,
                    at,
                    lined,
                    keep_scored=keep_scored,
                )
                weights = [len(a) for _c, a in work]
                # the child also scores while this process writes the batch before
                share = forkmap.balanced_share(
                    wrote if ready else 0.0, sum(weights), mine_rate, their_rate
                )
                started = forkmap.start(score, work, weights, min_weight, processes, share)
            if ready is not None:
                try:
                    began = time.perf_counter()
                    self._write_batch(summary, source, *ready, keep_scored=keep_scored)
                    wrote = time.perf_counter() - began
                except BaseException:
                    if started is not None:
                        started.cancel()
                    raise
                ready = None
            if started is None:
                # a client whose alert was acknowledged while it was scored is still dirty:
                # the batches start again from the first client until none is left
                if after is None or not self.store.dirty_batch(1):
                    return
                after = None
                continue
            ready = (clients, at, started.finish())
            if started.mine_weight and started.their_weight:
                mine_rate = started.mine_seconds / started.mine_weight
                their_rate = started.their_seconds / started.their_weight

    def _rescore_beside(
        self, summary: RunSummary, source: str, scorer: Scorer, lined: frozenset[str]
    ) -> None:
        """After a pull read by two processes: the second scores and writes the clients it
        stored (:meth:`_rescore_part`, from its memory) while this process scores and writes
        the other dirty clients; whichever finishes first goes on with the end of the other's
        (:class:`_Claims`). Each process writes its batches in transactions of its own,
        taking turns (``Store.gate``). What either leaves dirty (a client whose alert was
        acknowledged meanwhile, or a failed second process's batch) is rescored here after it,
        by :meth:`_rescore`."""
        assert self._helper is not None and self._claims is not None
        worker, theirs = self._helper
        mine: list[tuple[str, str]] = []
        after: tuple[str, str] | None = None
        while clients := self.store.dirty_batch(RESCORE_BATCH, after):
            after = clients[-1]
            mine += (c for c in clients if c not in theirs)
        request = (mine, sorted(theirs), lined)
        self._claims.reset(len(mine), len(theirs))
        worker.ask(request)
        try:
            self._rescore_claimed(summary, source, scorer, request, 0)
        except BaseException:
            self._drop_helper(kill=True)
            raise
        ok, answer = worker.answer()
        self._drop_helper()
        if not ok:
            log.warning(
                "the second process failed (%s); the clients it had not scored are scored here",
                answer,
            )
            return
        for level, line in answer["log"]:
            log.log(level, "%s", line)
        summary.rescored.update(map(tuple, answer["rescored"]))
        summary.clients_rescored = len(summary.rescored)
        summary.flags_raised += answer["raised"]
        summary.alerts_closed += answer["closed"]
        for rule_id, n in answer["failures"].items():
            summary.rule_failures[rule_id] = summary.rule_failures.get(rule_id, 0) + n
        if self.progress is not None:
            self.progress(source, "rescored clients", summary.clients_rescored)

    def _write_batch(
        self,
        summary: RunSummary,
        source: str,
        clients: list[tuple[str, str]],
        at: str,
        outcomes: list[_Outcome],
        *,
        keep_scored: bool,
    ) -> None:
        """Write one rescored batch in one transaction: alerts, outbox rows, reviews, and the
        cleared dirty marks; then the notifications of the batch."""
        outbox: list[tuple[Any, ...]] = []
        plans: list[tuple[tuple[str, str], Plan]] = []
        scored_batch: list[Scored] = []
        reviews: list[tuple[str, str, str | None]] = []
        for client, out in zip(clients, outcomes, strict=True):
            reviews.append((client[0], client[1], out.review_on))
            for rule_id, error, source_key in out.failures:
                summary.rule_failures[rule_id] = summary.rule_failures.get(rule_id, 0) + 1
                log.error(
                    "rule %s raised %s on record %s; other rules still ran",
                    rule_id,
                    error,
                    source_key,
                )
            if out.plan is not None:
                plans.append((client, out.plan))
            outbox.extend(out.rows)
            scored_batch.extend(out.scored)
        with self.store.transaction():
            opened, closed, raced = self.store.apply_alerts(plans, at)
            self.store.write_outbox_rows(outbox)
            self.store.set_reviews(reviews)
            # a client whose alert a person acknowledged meanwhile stays dirty: its payload
            # was built before that, the next sync builds it again
            self.store.clear_dirty([c for c in clients if c not in raced])
        summary.rescored.update(clients)
        summary.clients_rescored = len(summary.rescored)
        if self.progress is not None:
            self.progress(source, "rescored clients", summary.clients_rescored)
        summary.flags_raised += len(opened)
        summary.alerts_closed += closed
        if keep_scored:
            self.registry.notify("fit_scored", source=source, scored=scored_batch)
        for a, fl, _alert_id in opened:
            self.registry.notify("fit_alert_raised", flag=fl, administration=a)

    def _payloads_again(self, source: str, adapter_cls: Any) -> bool:
        """Whether ``source`` (no longer a scores-file source: its adapter changed) holds
        outbox rows that keep only their scores-file lines; their clients are then rescored,
        which writes their payloads for the new adapter."""
        if wants_lines(adapter_cls) or not self.store.state_value(source, LINES_ONLY_KEY):
            return False
        with self.store.transaction():
            self.store.mark_dirty(self.store.line_only_clients(source))
        log.info("source %s: its target changed; its clients are scored again", source)
        return True

    def _keeps_lines(self, source: str) -> bool:
        """Whether the outbox rows of ``source`` keep their scores-file lines: its target is
        a scores file (see :func:`push_snapshot`) and its adapter is loaded already (a source
        this run did not open gets none: its next push renders them from the payloads)."""
        src = self.config.sources.get(source)
        found = self.registry.adapters.get(src.adapter) if src is not None else None
        return isinstance(found, type) and wants_lines(found)

    # --- push ----------------------------------------------------------------------------------

    def _push(self, adapter: Adapter, src: SourceConfig, result: SourceResult) -> None:
        before = (result.pushed, result.removed_at_target)
        try:
            self._push_rows(adapter, src, result)
        finally:
            pushed = result.pushed - before[0]
            removed = result.removed_at_target - before[1]
            if (pushed or removed) and self._auditor is not None:
                self._auditor.record(
                    "push",
                    target=f"{src.name}: {_target(adapter)}",
                    counts={"rows_written": pushed, "rows_removed": removed},
                )

    def _push_rows(self, adapter: Adapter, src: SourceConfig, result: SourceResult) -> None:
        if adapter.push_mode == "snapshot":
            pending = self.store.pending_count(src.name)
            removed = self.store.removed_count(src.name)
            if not pending and not removed:
                return
            push_snapshot(self.store, adapter, src.name)
            with self.store.transaction():
                self.store.mark_all_pushed(src.name, now_text())
            result.pushed += pending
            result.removed_at_target += removed
            return
        size = self.config.sync.push_batch_size or adapter.push_batch_size
        if self.store.removed_count(src.name):
            remove_at_target(self.store, adapter, src.name, size, result)
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


def push_snapshot(store: Store, adapter: Adapter, source: str) -> None:
    """Hand a snapshot adapter every current row of ``source``: as scores-file lines when it
    takes them (``push_snapshot_lines``, see :mod:`fit_core.scores_csv`), else as items."""
    take_lines = getattr(adapter, "push_snapshot_lines", None)
    if callable(take_lines):
        take_lines(store.snapshot_lines(source))
    else:
        adapter.push_snapshot(store.snapshot(source))


def wants_lines(adapter_cls: Any) -> bool:
    """Whether a source of this adapter class keeps scores-file lines in its outbox rows."""
    return getattr(adapter_cls, "push_mode", None) == "snapshot" and callable(
        getattr(adapter_cls, "push_snapshot_lines", None)
    )


#: the counts of a SourceResult that a pull adds up (a parallel pull adds the second process's)
_PULL_COUNTS = (
    "pulled",
    "new",
    "changed",
    "unchanged",
    "quarantined",
    "repeated",
    "removed",
    "deleted",
    "refused",
)


def _gate() -> Any:
    """The lock file two processes of a parallel pull take turns to write with (see
    ``Store.gate``): a temporary file, which the second process opens again through /proc;
    None where there is none to be had (the pull is then read in one process)."""
    import tempfile  # here: a sync of small sources does not need it

    try:
        gate = tempfile.TemporaryFile(prefix="fit-gate-")  # noqa: SIM115 - the caller closes it
    except OSError:
        log.debug("no temporary file for a parallel pull; one process reads", exc_info=True)
        return None
    if not os.path.exists(f"/proc/{os.getpid()}/fd/{gate.fileno()}"):
        gate.close()
        return None
    return gate


class _Owner:
    """Which process of a parallel pull keeps an item: True for the second. Records with the
    same :meth:`Adapter.shard_key` go to the same process; every other item stays here."""

    def __init__(self, adapter: Adapter) -> None:
        self._shard_key = adapter.shard_key
        self._memo: dict[str, bool] = {}

    def __call__(self, item: Record | RecordError | Deleted | Appointment | ClientInfo) -> bool:
        if not isinstance(item, Record):
            return False
        shard = self._shard_key(item)
        memo = self._memo
        second = memo.get(shard)
        if second is None:
            if len(memo) >= 100_000:
                memo.clear()
            second = memo[shard] = bool(zlib.crc32(shard.encode("utf-8", "surrogatepass")) & 1)
        return second


class _Spellings:
    """Collects the spellings a second process saw (the first notes them: see SpellingTracker)."""

    def __init__(self) -> None:
        self.triples: set[tuple[str, str, str]] = set()
        self.merged: dict[tuple[str, str], set[str]] = {}

    def note(self, triples: Iterable[tuple[str, str, str]]) -> list[tuple[str, str]]:
        self.triples.update(triples)
        return []


class _Claims:
    """Two lists of clients that the two processes of a parallel pull score after it: each
    takes batches from the front of its own list and, when none is left there, from the end
    of the other's, so both finish together whichever is the faster. The positions are in
    memory shared by the fork (made before it); a POSIX record lock on the gate file guards
    them (on Linux it and the gate's ``flock`` do not see each other)."""

    _LAYOUT = struct.Struct("<4q")  # front and end of the first list, then of the second

    def __init__(self) -> None:
        self._mem = mmap.mmap(-1, self._LAYOUT.size)  # anonymous, shared with a fork

    def reset(self, first: int, second: int) -> None:
        self._mem[:] = self._LAYOUT.pack(0, first, 0, second)

    def take(self, fd: int, me: int) -> tuple[int, int, int] | None:
        """The next batch for process ``me`` (0 or 1) as (list, begin, end), or None when
        both lists are done; ``fd``: the gate file, open in this process."""
        import fcntl  # POSIX; claims are made only where processes are forked (Linux)

        fcntl.lockf(fd, fcntl.LOCK_EX, 1)
        try:
            pos = list(self._LAYOUT.unpack(self._mem))
            for which in (me, 1 - me):
                front, end = pos[2 * which], pos[2 * which + 1]
                if front < end:
                    # smaller batches as a list runs out, so neither waits long for the other
                    n = min(RESCORE_BATCH, max(CLAIM_MIN, (end - front) // 4))
                    if which == me:
                        begin, pos[2 * which] = front, min(end, front + n)
                        got = (which, begin, pos[2 * which])
                    else:
                        pos[2 * which + 1] = max(front, end - n)
                        got = (which, pos[2 * which + 1], end)
                    self._mem[:] = self._LAYOUT.pack(*pos)
                    return got
            return None
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN, 1)


def _capture_log() -> list[tuple[int, str]]:
    """In a forked process: nothing is written to the parent's log handlers (their files and
    buffers are the parent's); this module's log lines are kept in the returned list instead,
    as (level, text), for the parent to log."""
    lines: list[tuple[int, str]] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append((record.levelno, record.getMessage()))

    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        if isinstance(logger, logging.Logger):
            logger.handlers = []  # dropped, not closed: closing would flush the parent's data
    logging.getLogger().addHandler(logging.NullHandler())
    log.addHandler(_Keep())
    return lines


def remove_at_target(
    store: Store, adapter: Adapter, source: str, size: int, result: SourceResult | None = None
) -> int:
    """Remove the rows of ``outbox_removed`` at a batch target; returns how many went.

    Keys the target does not confirm stay for the next push. An adapter without ``remove``
    cannot delete: its rows are forgotten with a warning (what it holds stays there)."""
    done = 0
    refused: set[str] = set()
    while True:
        keys = [k for k in store.removed_keys(source, size + len(refused)) if k not in refused]
        if not keys:
            return done
        keys = keys[:size]
        try:
            confirmed = set(adapter.remove(keys))
        except NotImplementedError:
            count = store.removed_count(source)
            log.warning(
                "source %s: the %s adapter cannot remove rows at its target; %d row(s) of "
                "deleted or erased records stay at %s",
                source,
                type(adapter).name or type(adapter).__name__,
                count,
                _target(adapter),
            )
            with store.transaction():
                store.forget_removed(source)
            return done
        gone = [k for k in keys if k in confirmed]
        with store.transaction():
            store.forget_removed_keys(source, gone)
        done += len(gone)
        if result is not None:
            result.removed_at_target += len(gone)
        missing = [k for k in keys if k not in confirmed]
        if missing:
            refused.update(missing)
            text = (
                f"the target did not confirm the removal of {len(missing)} row(s) of deleted "
                "records; the next sync tries again"
            )
            log.error("source %s: %s", source, text)
            if result is not None and text not in result.problems:
                result.problems.append(text)


_PARTS = re.compile(r"[^A-Za-z0-9]+")


def _names_erased(tomb: Tombstones, namespace: str, raw: Mapping[str, Any] | None) -> bool:
    """Whether a raw row (of a record that failed validation) names an erased client: its
    client id, or a value that starts with one (an episode id such as ``C001-E1``)."""
    if not raw or not tomb.clients:
        return False
    for value in raw.values():
        if not isinstance(value, str) or not value.strip():
            continue
        text = value.strip()
        candidates = {text}
        cuts = [m.start() for m in _PARTS.finditer(text)]
        candidates.update(text[:i] for i in cuts if i)
        for candidate in candidates:
            for keep in (True, False):
                code = normalise_client_id(candidate, keep_case=keep)
                if code and tomb.client_erased(namespace, code):
                    return True
    return False


def _target(adapter: Adapter) -> str:
    try:
        return adapter.describe_target()
    except Exception:
        return adapter.context.name


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


def utc_now() -> dt.datetime:
    """The engine's default clock (one place, so a test can set "now" for a whole command)."""
    return dt.datetime.now(dt.UTC)


def load_active_model(store: Store, as_of: dt.date | None = None, tz: Any = None) -> Any:
    """The trajectory models in force (a :class:`~fit_core.trajectories.ModelSet`: one per
    measure and rater), or None: then there is no on-track status.

    With ``as_of`` (a clinic-local date, ``tz`` the clinic's time zone), the models that were in
    force at the end of that day, so a past figure is reproduced with the model of its day.
    """
    if as_of is None:
        rows = store.active_models()
    else:
        end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=tz or dt.UTC)
        rows = store.models_as_of(end.astimezone(dt.UTC).isoformat(timespec="seconds"))
    if not rows:
        return None  # (and the large trajectories module is not imported)
    from .trajectories import ModelSet

    return ModelSet.from_rows(rows)


def orphan_message(source: str, rows: int) -> str:
    """What to say about a source the store holds data of but the config does not name."""
    return (
        f"the store holds {rows} row(s) of source {source!r}, which is not in the config "
        "(renamed or removed?): its clients are still scored, alerted and counted in the "
        f"statistics with them; `fit store forget {source}` removes them (or put the source "
        "back)"
    )


def _note_problems(adapter: Adapter, name: str, result: SourceResult) -> None:
    """Take the adapter's problems into the result (each logged once)."""
    try:
        problems = list(adapter.problems())
    except Exception:
        log.exception("source %s: problems() failed", name)
        return
    for text in problems:
        if text not in result.problems:
            result.problems.append(text)
            log.warning("source %s: %s", name, text)


def _note_merges(spellings: SpellingTracker, name: str, result: SourceResult) -> None:
    """Put the client codes merged by normalisation into the result (the log gets the count)."""
    merged = spellings.merged
    if not merged:
        return
    result.merged_clients = len(merged)
    for (_ns, cid), typed in sorted(merged.items())[:MERGES_LISTED]:
        result.merged_client_ids[cid] = sorted(typed)
    log.info(
        "source %s: %d client code(s) arrived in more than one spelling and were merged "
        "(see the run summary)",
        name,
        len(merged),
    )


def _close(adapter: Adapter, name: str) -> None:
    try:
        adapter.close()
    except Exception:
        log.exception("source %s: close() failed", name)


def _apply_acks(s: Scored, acked: set[tuple[str, str, str]]) -> Scored:
    """The flags that hold now and are acknowledged in the store (they are not pushed)."""
    a = s.admin
    flags = tuple(
        replace(f, state="acknowledged")
        if f.state == "open" and (a.source, a.source_key, f.rule_id) in acked
        else f
        for f in s.flags
    )
    return Scored(a, s.score, flags)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What rescoring one client gives the engine to write (see :func:`_score_clients`)."""

    review_on: str | None  # the next date its alerts may change with no new data (ISO)
    failures: tuple[tuple[str, str, str], ...] = ()  # (rule id, error kind, source key)
    plan: Plan | None = None  # what to do with its alerts (None: nothing)
    rows: tuple[tuple[Any, ...], ...] = ()  # its outbox rows
    scored: tuple[Scored, ...] = ()  # its scored items (only when asked for)


def _score_clients(
    scorer: Scorer,
    families: Mapping[str, str],
    contexts: Mapping[tuple[str, str], Any],
    stored: Mapping[tuple[str, str], Any],
    at: str,
    lined: frozenset[str],
    work: Sequence[tuple[tuple[str, str], list[Administration]]],
    *,
    keep_scored: bool = False,
) -> list[_Outcome]:
    """Rescore clients: one :class:`_Outcome` per (client, administrations) of ``work``;
    the outbox rows of the sources in ``lined`` carry their scores-file lines.

    Pure (no store, no logging): it may run in a second process (:mod:`fit_core.forkmap`)."""
    out: list[_Outcome] = []
    for client, admins in work:
        if not admins:
            # every administration was deleted: its alerts close (no data)
            plan = reconcile(ClientResult(()), stored.get(client, ()), families)
            out.append(_Outcome(None, plan=plan or None))
            continue
        context = contexts.get(client)
        res: ClientResult = scorer.score(admins, context)
        plan = reconcile(res, stored.get(client, ()), families)
        acked = plan.acknowledged()
        client_scored = (
            tuple(_apply_acks(s, acked) if s.flags else s for s in res.scored)
            if acked
            else res.scored
        )
        ns, cid = client
        rows = [
            (outbox_row_with_line if s.admin.source in lined else outbox_row)(s, ns, cid, at)
            for s in client_scored
        ]
        if context is not None:
            # practice systems get one summary per client (a progress-note outbox);
            # imported here: a sync without practice data does not need its modules
            from .episodes import client_outbox_item, context_sources

            for practice in context_sources(context):
                item = client_outbox_item(practice, client, list(client_scored), context)
                rows.append(item_row(item, ns, cid, at))
        out.append(
            _Outcome(
                res.review_on.isoformat() if res.review_on else None,
                tuple((f.rule_id, f.error, f.source_key) for f in res.rule_failures),
                plan or None,
                tuple(rows),
                client_scored if keep_scored else (),
            )
        )
    return out


def _counts(summary: RunSummary) -> dict[str, Any]:
    keys = (
        "pulled",
        "new",
        "changed",
        "unchanged",
        "quarantined",
        "repeated",
        "outstanding",
        "removed",
        "deleted",
        "refused",
        "pushed",
        "removed_at_target",
        "would_push",
        "merged_clients",
    )
    return {
        "sources": {
            s.name: {"status": s.status, **{k: getattr(s, k) for k in keys}}
            for s in summary.sources
        },
        "clients_rescored": summary.clients_rescored,
        "flags_raised": summary.flags_raised,
        "alerts_closed": summary.alerts_closed,
        "settings_changed": summary.settings_changed,
        "purged": summary.purged,
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
