"""The adapter contract suite: one set of pytest tests every fit-sync adapter should pass.

For third-party adapter authors (needs ``pytest``; install ``fit-sync[test]``). Subclass
:class:`AdapterContract` in a test module and provide the adapter class, the source's config
options (setting up a small synthetic source or a fake server under ``tmp_path``), a way to plant
one invalid record, and a view of the push target::

    from fit_core.testing import AdapterContract

    class TestMyAdapter(AdapterContract):
        adapter_class = MyAdapter

        def source_options(self, tmp_path):
            ...  # create the test source once (calls repeat with the same tmp_path)
            return {"url": ..., "scores_sheet": ...}

        def add_bad_record(self, tmp_path):
            ...  # make the source hold one record that fails validation
            return "<its source key>"

        def target_state(self, adapter):
            return ...  # what the target holds now, comparable with ==; None if nothing yet

        def delete_record(self, tmp_path):
            ...  # delete one valid record at the source (as a person or the system would)
            return "<its source key>"

        def target_keys(self, adapter):
            return {...}  # the source keys the target holds a row for now

The adapter-level tests call the adapter directly; the engine-level tests (``test_engine_*``) run
the real :class:`~fit_core.sync.SyncEngine` against a store under ``tmp_path``. The source must hold
at least one valid administration. Class attributes switch checks that do not fit every adapter:
``incremental`` (a bookmark fed back yields no records when the source did not change),
``bookmark_is_time`` (bookmarks are ISO timestamps that never move back; otherwise a bookmark
fed back with nothing changed must come back unchanged). The tests are ordinary methods named
``test_*``: override one to adapt it, or add more.

Deletions (``test_engine_deletion_at_source``): after a first sync, a record deleted at the
source must be gone from the store after one more sync, its client rescored, and its row gone
from the target, while the client's other rows stay. Adapters that find deletions on a schedule
(a periodic full listing) set that schedule to "every sync" in ``source_options``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
from marshmallow import RAISE

from .adapter import Adapter, SourceContext
from .config import SourceConfig, adapter_options
from .errors import ConfigError
from .measures import BUILTIN_MEASURES, Measure, check_scale
from .models import (
    Administration,
    Appointment,
    ClientInfo,
    Deleted,
    OutboxItem,
    Record,
    RecordError,
)
from .rules.builtin import BUILTIN_RULES
from .scoring import Rule, group_by_client, outbox_item, score_client
from .settings import Settings
from .state import MemoryState, SourceState
from .validation import Validator

#: a fixed "now" for contexts, so bookmarks and tests are reproducible
RUN_STARTED = dt.datetime(2025, 1, 15, 12, 0, tzinfo=dt.UTC)


def make_context(
    name: str,
    options: Mapping[str, Any],
    tmp_path: Path,
    *,
    adapter: type[Adapter] | None = None,
    namespace: str | None = None,
    timezone: dt.tzinfo | str = "UTC",
    run_started: dt.datetime = RUN_STARTED,
    secrets: Mapping[str, str] | None = None,
    dry_run: bool = False,
    state: SourceState | None = None,
) -> SourceContext:
    """A :class:`SourceContext` for tests.

    With ``adapter``, ``options`` are first loaded through its ``options_schema`` as the engine
    does (:func:`fit_core.config.adapter_options`; a bad option raises ConfigError). ``secrets``
    answers ``context.secret(key)``; a missing key raises ConfigError, like the real lookup. The
    state directory is ``tmp_path/state/<name>`` (created); ``context.state`` is ``state``, or
    kept in memory.
    """
    if adapter is not None:  # as the engine does: a bad option is a ConfigError naming it
        src = SourceConfig(name, adapter.name, namespace or name, True, dict(options))
        options = adapter_options(src, adapter)
    known = dict(secrets or {})

    def secret(key: str) -> str:
        try:
            return known[key]
        except KeyError:
            raise ConfigError(f"no secret {key!r} for source {name}") from None

    state_dir = tmp_path / "state" / name
    state_dir.mkdir(parents=True, exist_ok=True)
    return SourceContext(
        name=name,
        namespace=namespace or name,
        options=dict(options),
        timezone=ZoneInfo(timezone) if isinstance(timezone, str) else timezone,
        run_started=run_started,
        secret=secret,
        state_dir=state_dir,
        dry_run=dry_run,
        state=state if state is not None else MemoryState(),
    )


class AdapterContract:
    """Adapter-level contract tests. Subclass it as ``Test<Something>`` (see the module doc)."""

    #: a bookmark from a complete pull, fed back, yields no Records when nothing changed
    incremental: ClassVar[bool] = True
    #: bookmarks are ISO 8601 timestamps that must never move back
    bookmark_is_time: ClassVar[bool] = False
    #: measures the validator knows (add a plugin's measures here)
    measures: ClassVar[Sequence[Measure]] = BUILTIN_MEASURES
    #: rules used to build realistic outbox items (flags) for the push tests
    rules: ClassVar[Sequence[Rule]] = BUILTIN_RULES
    timezone: ClassVar[str] = "UTC"

    #: the adapter under test
    adapter_class: ClassVar[type[Adapter]]
    #: the source name used in contexts and engine configs
    source_name: ClassVar[str] = "contract"

    # --- what a subclass provides -------------------------------------------------------------

    def source_options(self, tmp_path: Path) -> Mapping[str, Any]:
        """The ``[sources.<name>]`` options (without ``adapter``) over a test source set up
        under ``tmp_path``. Called more than once per test: create the source only once."""
        raise NotImplementedError("implement source_options(tmp_path) in your contract subclass")

    def add_bad_record(self, tmp_path: Path) -> str:
        """Make the source hold one record that fails validation; return its source key."""
        raise NotImplementedError("implement add_bad_record(tmp_path) in your contract subclass")

    def target_state(self, adapter: Adapter) -> object:
        """A comparable snapshot of what the push target holds now (None: nothing pushed)."""
        raise NotImplementedError("implement target_state(adapter) in your contract subclass")

    def delete_record(self, tmp_path: Path) -> str:
        """Delete one valid record at the source (the source was synced once); return its
        source key. Pick a client that keeps other records, so the test sees them stay."""
        raise NotImplementedError("implement delete_record(tmp_path) in your contract subclass")

    def target_keys(self, adapter: Adapter) -> set[str]:
        """The source keys the push target holds a row for now."""
        raise NotImplementedError("implement target_keys(adapter) in your contract subclass")

    def make_adapter(self, tmp_path: Path) -> Adapter:
        """A fresh adapter over the test source (override for adapters needing more setup)."""
        cls = self.adapter_class
        options = self.source_options(tmp_path)
        return cls(
            make_context(self.source_name, options, tmp_path, adapter=cls, timezone=self.timezone)
        )

    # --- fixtures and helpers -----------------------------------------------------------------

    @pytest.fixture
    def adapter_factory(self, tmp_path: Path) -> Callable[[], Adapter]:
        """Call it for a fresh adapter instance over the same source (one per "run")."""
        return lambda: self.make_adapter(tmp_path)

    @pytest.fixture
    def adapter(self, adapter_factory: Callable[[], Adapter]) -> Iterator[Adapter]:
        instance = adapter_factory()
        yield instance
        instance.close()

    def validator(self, adapter: Adapter) -> Validator:
        ctx = adapter.context
        return Validator(
            {m.key: m for m in self.measures},
            ctx.timezone,
            source=ctx.name,
            namespace=ctx.namespace,
        )

    def pull_all(
        self, adapter: Adapter, bookmark: str | None = None
    ) -> list[Record | RecordError | Deleted | Appointment | ClientInfo]:
        """Everything ``pull`` yields: records and errors, and any deletions and practice data."""
        return list(adapter.pull(bookmark))

    def administrations(self, adapter: Adapter) -> list[Administration]:
        """Pull everything and keep what validates (records with a RecordError are dropped)."""
        items = self.pull_all(adapter)
        errored = {i.source_key for i in items if isinstance(i, RecordError)}
        validator = self.validator(adapter)
        out = []
        for item in items:
            if isinstance(item, Record) and item.source_key not in errored:
                result = validator.validate(item)
                if isinstance(result, Administration):
                    out.append(result)
        return out

    def outbox_items(self, adapter: Adapter) -> list[OutboxItem]:
        """Score the pulled administrations and build the outbox, sorted by source key."""
        settings = Settings(as_of=RUN_STARTED.date())
        by_key = {m.key: m for m in self.measures}
        out: list[OutboxItem] = []
        for admins in group_by_client(self.administrations(adapter)).values():
            result = score_client(admins, by_key, settings, self.rules)
            out.extend(outbox_item(s) for s in result.scored)
        return sorted(out, key=lambda i: i.source_key)

    def push_everything(self, adapter: Adapter, items: Sequence[OutboxItem]) -> None:
        """Push ``items`` the way the engine does for the adapter's push mode."""
        if adapter.push_mode == "snapshot":
            adapter.push_snapshot(iter(items))
            return
        sent: set[str] = set()
        size = adapter.push_batch_size
        for start in range(0, len(items), size):
            batch = items[start : start + size]
            confirmed = set(adapter.push(batch))
            keys = {i.source_key for i in batch}
            assert confirmed <= keys, "push confirmed keys it was not given"
            sent |= confirmed
        assert sent == {i.source_key for i in items}, "push did not confirm every item"

    # --- the contract ------------------------------------------------------------------------

    def test_check_passes(self, adapter: Adapter) -> None:
        adapter.check()

    def test_options_schema_rejects_unknown_keys(self, adapter: Adapter) -> None:
        schema = type(adapter).options_schema
        if schema is None:
            pytest.skip("the adapter declares no options_schema")
        assert schema().unknown == RAISE, "options_schema must RAISE on unknown keys (typos)"

    def test_pull_is_a_stream(self, adapter: Adapter) -> None:
        stream = adapter.pull(None)
        assert iter(stream) is stream, "pull() must return an iterator (a generator), not a list"
        list(stream)

    def test_pull_yields_records_that_validate(self, adapter: Adapter) -> None:
        items = self.pull_all(adapter)
        validator = self.validator(adapter)
        valid = 0
        for item in items:
            assert isinstance(item, Record | RecordError | Deleted | Appointment | ClientInfo), (
                f"pull yielded {type(item).__name__}"
            )
            if isinstance(item, RecordError):
                assert item.reasons, "a RecordError needs at least one reason"
                assert all(
                    isinstance(k, str) and isinstance(v, str) for k, v in item.reasons.items()
                )
                continue
            if isinstance(item, Deleted):
                assert isinstance(item.source_key, str) and item.source_key, "empty Deleted key"
                continue
            if isinstance(item, Appointment | ClientInfo):  # practice data, linked to a client
                assert item.client_id and item.namespace, f"{type(item).__name__} without a client"
                continue
            assert isinstance(item.source_key, str) and item.source_key, "empty source_key"
            check_scale(item.scale)
            result = validator.validate(item)
            if isinstance(result, Administration):
                valid += 1
            else:
                assert isinstance(result, dict) and result, "validation returned neither"
        assert valid, "the test source should hold at least one valid administration"

    def test_source_keys_unique_unless_reported(self, adapter: Adapter) -> None:
        items = self.pull_all(adapter)
        counts = Counter(i.source_key for i in items if isinstance(i, Record))
        errored = {i.source_key for i in items if isinstance(i, RecordError)}
        repeated = {k for k, n in counts.items() if n > 1}
        assert repeated <= errored, f"source keys repeated without a RecordError: {repeated}"

    def test_next_bookmark_is_text_or_none(self, adapter: Adapter) -> None:
        self.pull_all(adapter)
        assert isinstance(adapter.next_bookmark(), str | None)

    def test_bookmark_fed_back_pulls_nothing_new(
        self, adapter_factory: Callable[[], Adapter]
    ) -> None:
        if not self.incremental:
            pytest.skip("the adapter is not incremental")
        first = adapter_factory()
        self.pull_all(first)
        bookmark = first.next_bookmark()
        again = [i for i in self.pull_all(adapter_factory(), bookmark) if isinstance(i, Record)]
        assert not again, f"{len(again)} records pulled again though nothing changed"

    def test_bookmark_never_moves_back(self, adapter_factory: Callable[[], Adapter]) -> None:
        first = adapter_factory()
        self.pull_all(first)
        b1 = first.next_bookmark()
        second = adapter_factory()
        self.pull_all(second, b1)
        b2 = second.next_bookmark()
        if not self.bookmark_is_time:
            # an opaque bookmark (e.g. file fingerprints) is stable when nothing changed
            assert b2 in (None, b1), "the bookmark changed though the source did not"
            return
        if b1 is None or b2 is None:
            return
        t1, t2 = dt.datetime.fromisoformat(b1), dt.datetime.fromisoformat(b2)
        assert t2 >= t1, "the bookmark moved back"
        assert t1 <= first.context.run_started, "the bookmark is after the run started"

    def test_push_twice_is_idempotent(self, adapter_factory: Callable[[], Adapter]) -> None:
        adapter = adapter_factory()
        items = self.outbox_items(adapter)
        assert items, "no outbox items: the test source needs valid administrations"
        self.push_everything(adapter, items)
        once = self.target_state(adapter)
        self.push_everything(adapter, items)
        assert self.target_state(adapter) == once, "pushing the same items twice changed the target"
        fresh = adapter_factory()
        self.push_everything(fresh, items)
        assert self.target_state(fresh) == once, "a new run pushing the same items changed it"

    # --- engine level --------------------------------------------------------------------------

    def engine(self, tmp_path: Path) -> Any:
        """A :class:`~fit_core.sync.SyncEngine` over this adapter with a store under tmp_path."""
        from . import rules
        from .config import config_from_mapping
        from .plugins import load_plugins
        from .store import Store
        from .sync import SyncEngine

        cls = self.adapter_class

        class _Shim:
            @staticmethod
            def fit_register_adapters(register: Callable[[type[Adapter]], None]) -> None:
                register(cls)

        from .hookspecs import hookimpl

        hookimpl(_Shim.fit_register_adapters)
        table = {"adapter": cls.name, **dict(self.source_options(tmp_path))}
        config = config_from_mapping(
            {
                "store": {"path": str(tmp_path / "contract.sqlite3")},
                "sync": {"timezone": self.timezone},
                "sources": {self.source_name: table},
            }
        )
        registry = load_plugins(extra=[rules.builtin, _Shim], entry_points=False)
        store = Store.open(config.store_path)
        return SyncEngine(config, registry, store, secret=self.secret)

    def result_of(self, summary: Any) -> Any:
        """This adapter's :class:`~fit_core.sync.SourceResult` in a run summary (an engine may
        sync other sources too, e.g. the ORS/SRS source a practice adapter needs)."""
        return {s.name: s for s in summary.sources}[self.source_name]

    def secret(self, source: str, key: str) -> str:
        """Secrets for engine-level tests (override for adapters that need them)."""
        raise ConfigError(f"no secret {key!r} for source {source!r} in the contract test")

    def test_engine_sync_then_resync_pushes_nothing(self, tmp_path: Path) -> None:
        eng = self.engine(tmp_path)
        try:
            first = eng.run()
            src = self.result_of(first)
            assert src.status == "ok", src.error
            assert src.pushed > 0 and src.bookmark_saved in (True, False)
            state = self.target_state(self.make_adapter(tmp_path))
            assert state is not None, "a full sync pushed nothing to the target"
            second = eng.run()
            assert self.result_of(second).pushed == 0, "a re-sync without changes pushed again"
            assert self.target_state(self.make_adapter(tmp_path)) == state
        finally:
            eng.store.close()

    def test_engine_dry_run_writes_nothing(self, tmp_path: Path) -> None:
        before = self.target_state(self.make_adapter(tmp_path))
        eng = self.engine(tmp_path)
        try:
            summary = eng.run(dry_run=True)
            src = self.result_of(summary)
            assert src.status == "ok", src.error
            assert src.pushed == 0 and src.would_push > 0
            assert eng.store.bookmark(self.source_name) is None, "dry-run saved a bookmark"
            assert self.target_state(self.make_adapter(tmp_path)) == before
        finally:
            eng.store.close()

    def test_engine_deletion_at_source(self, tmp_path: Path) -> None:
        """A record deleted at the source: one sync later it is gone from the store and the
        target, and its client was rescored; the client's other rows stay."""
        eng = self.engine(tmp_path)
        try:
            first = self.result_of(eng.run())
            assert first.status in ("ok", "partial") and first.pushed > 0, first.error
            key = self.delete_record(tmp_path)
            stored = eng.store.existing(self.source_name, [key])
            assert key in stored, f"{key!r} was not stored by the first sync"
            client = stored[key][1:]
            others = [
                a.source_key
                for a in eng.store.client_administrations([client])[client]
                if a.source == self.source_name and a.source_key != key
            ]
            before = self.target_keys(self.make_adapter(tmp_path))
            assert key in before, f"{key!r} was not at the target after the first sync"
            summary = eng.run()
            src = self.result_of(summary)
            assert src.status in ("ok", "partial"), src.error
            assert src.deleted == 1, f"the sync removed {src.deleted} records, not 1"
            assert key not in eng.store.existing(self.source_name, [key]), "still stored"
            assert client in summary.rescored, "the client was not rescored"
            after = self.target_keys(self.make_adapter(tmp_path))
            assert key not in after, f"{key!r} is still at the target"
            assert set(others) <= after, "the client's other rows left the target too"
            again = self.result_of(eng.run())
            assert again.deleted == 0 and again.removed_at_target == 0, "removed twice"
        finally:
            eng.store.close()

    def test_engine_quarantines_a_bad_record_and_pushes_the_rest(self, tmp_path: Path) -> None:
        self.source_options(tmp_path)
        bad_key = self.add_bad_record(tmp_path)
        eng = self.engine(tmp_path)
        try:
            summary = eng.run()
            src = self.result_of(summary)
            assert src.status == "partial" and int(summary.exit_code) == 1, src.error
            quarantined = {q["source_key"]: q for q in eng.store.quarantined(self.source_name)}
            assert bad_key in quarantined and quarantined[bad_key]["reasons"]
            assert src.pushed > 0, "good records must still be pushed"
        finally:
            eng.store.close()
