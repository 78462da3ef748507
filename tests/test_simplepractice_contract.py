"""The SimplePractice bridge against the adapter contract suite (synthetic exports only).

A practice adapter is a *context* adapter: its pull yields Appointment and ClientInfo items
(and RecordErrors), never a Record, and what it pushes is one client summary per linked client
with ORS/SRS scores from *another* source. So the tests that need a valid administration from
the adapter itself are adapted here (each override says how):

- ``test_pull_yields_records_that_validate``: every item is an Appointment, ClientInfo or
  RecordError with string reasons; there are appointments and client infos, no Records.
- ``test_source_keys_unique_unless_reported``: appointment keys are unique.
- ``test_bookmark_fed_back_pulls_nothing_new``: nothing at all is pulled again.
- ``outbox_items``: client summaries built by the core's own ``client_outbox_item`` from
  synthetic ORS/SRS scores and the appointments this adapter pulled.
- the engine-level tests run a csv source (the ORS/SRS, namespace ``clinic``) before the
  simplepractice source, and look at the simplepractice source's result.
"""

from __future__ import annotations

import csv
import io
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fit_adapters.simplepractice.adapter import SimplePracticeAdapter
from fit_core.adapter import Adapter
from fit_core.episodes import client_outbox_item
from fit_core.errors import ConfigError
from fit_core.models import (
    Administration,
    Appointment,
    ClientContext,
    ClientInfo,
    OutboxItem,
    Record,
    RecordError,
)
from fit_core.scoring import Scorer
from fit_core.settings import Settings
from fit_core.testing import AdapterContract, make_context

sys.path.insert(0, str(Path(__file__).parent / "data" / "simplepractice"))
import sp_synthetic as syn


class TestSimplePracticeContract(AdapterContract):
    """Folder mode over the synthetic status and billing reports and an xlsx client list."""

    adapter_class = SimplePracticeAdapter
    source_name = "sp"
    timezone = syn.TIMEZONE

    # --- the test source ---------------------------------------------------------------------

    def source_options(self, tmp_path: Path) -> dict[str, Any]:
        folder = tmp_path / "exports"
        if not folder.exists():
            syn.inbox(tmp_path, syn.STATUS_REPORT, syn.BILLING_REPORT)
            syn.link_all(tmp_path / "links.csv")
        return syn.sp_options(tmp_path, folder)

    def make_adapter(self, tmp_path: Path) -> Adapter:
        ctx = make_context(
            self.source_name,
            self.source_options(tmp_path),
            tmp_path,
            adapter=SimplePracticeAdapter,
            timezone=self.timezone,
            run_started=syn.NOW,
            secrets={"name_key": syn.NAME_KEY},
        )
        return SimplePracticeAdapter(ctx)

    def add_bad_record(self, tmp_path: Path) -> str:
        (tmp_path / "exports" / "bad.csv").write_text(
            "Date,Client,Status\n03/25/2026 09:00,Alex Example,Maybe\n", encoding="utf-8"
        )
        (err,) = [
            i
            for i in self.make_adapter(tmp_path).pull(None)
            if isinstance(i, RecordError) and i.location == "bad.csv line 2"
        ]
        assert "'Maybe'" in err.reasons["status"]
        return err.source_key

    def target_state(self, adapter: Adapter) -> object:
        assert isinstance(adapter, SimplePracticeAdapter)
        root = adapter.sp.outbox
        if not root.exists():
            return None
        return {
            str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
        }

    def secret(self, source: str, key: str) -> str:
        if (source, key) == (self.source_name, "name_key"):
            return syn.NAME_KEY
        raise ConfigError(f"no secret {key!r} for source {source!r}")

    # --- adapted adapter-level tests -----------------------------------------------------------

    def test_pull_yields_records_that_validate(self, adapter: Adapter) -> None:
        items = self.pull_all(adapter)
        kinds = Counter(type(i).__name__ for i in items)
        records = [i for i in items if isinstance(i, Record)]
        assert not records, "a practice adapter yields no Record"
        for item in items:
            assert isinstance(item, Appointment | ClientInfo | RecordError)
            if isinstance(item, RecordError):
                assert item.reasons and all(
                    isinstance(k, str) and isinstance(v, str) for k, v in item.reasons.items()
                )
            elif isinstance(item, Appointment):
                assert item.source_key and item.starts_at.tzinfo is not None
                assert item.namespace == "clinic"
        assert kinds["Appointment"] and kinds["ClientInfo"], kinds

    def test_source_keys_unique_unless_reported(self, adapter: Adapter) -> None:
        keys = Counter(i.source_key for i in self.pull_all(adapter) if isinstance(i, Appointment))
        assert [k for k, n in keys.items() if n > 1] == []

    def test_bookmark_fed_back_pulls_nothing_new(
        self, adapter_factory: Callable[[], Adapter]
    ) -> None:
        first = adapter_factory()
        self.pull_all(first)
        assert self.pull_all(adapter_factory(), first.next_bookmark()) == []

    def outbox_items(self, adapter: Adapter) -> list[OutboxItem]:
        """Client summaries, as the engine builds them for a practice source."""
        contexts: dict[tuple[str, str], ClientContext] = {}
        for item in self.pull_all(adapter):
            if isinstance(item, Appointment):
                key = (item.namespace, item.client_id)
                ctx = contexts.get(key, ClientContext())
                contexts[key] = ClientContext((*ctx.appointments, item), ctx.info)
            elif isinstance(item, ClientInfo):
                key = (item.namespace, item.client_id)
                contexts[key] = ClientContext(contexts.get(key, ClientContext()).appointments, item)
        validator = self.validator(adapter)
        admins: dict[tuple[str, str], list[Administration]] = {}
        for n, row in enumerate(csv.DictReader(io.StringIO(syn.SCORES))):
            checked = validator.validate(Record(f"s{n}", row))
            assert isinstance(checked, Administration)
            admins.setdefault(("clinic", checked.client_id), []).append(checked)
        scorer = Scorer(
            {m.key: m for m in self.measures}, Settings(as_of=syn.NOW.date()), self.rules
        )
        out = []
        for client, group in admins.items():
            context = contexts[client]
            scored = scorer.score(group, context).scored
            out.append(client_outbox_item(adapter.context.name, client, scored, context))
        return sorted(out, key=lambda i: i.source_key)

    # --- adapted engine-level tests ------------------------------------------------------------

    def engine(self, tmp_path: Path) -> Any:
        """The real engine with a csv ORS/SRS source (namespace clinic) before this one."""
        import fit_adapters.csv as csv_plugin
        import fit_adapters.simplepractice as sp_plugin
        from fit_core.config import config_from_mapping
        from fit_core.plugins import load_plugins
        from fit_core.rules import builtin
        from fit_core.store import Store
        from fit_core.sync import SyncEngine

        scores = tmp_path / "scores"
        scores.mkdir(exist_ok=True)
        (scores / "fit.csv").write_text(syn.SCORES, encoding="utf-8")
        config = config_from_mapping(
            {
                "store": {"path": str(tmp_path / "contract.sqlite3")},
                "sync": {"timezone": self.timezone},
                "sources": {
                    "clinic_csv": {
                        "adapter": "csv",
                        "namespace": "clinic",
                        "path": str(scores),
                        "scores_path": str(tmp_path / "scores.out.csv"),
                    },
                    self.source_name: {
                        "adapter": "simplepractice",
                        **self.source_options(tmp_path),
                    },
                },
            }
        )
        registry = load_plugins(extra=[builtin, csv_plugin, sp_plugin], entry_points=False)
        store = Store.open(config.store_path)
        return SyncEngine(config, registry, store, secret=self.secret, clock=lambda: syn.NOW)

    def test_engine_sync_then_resync_pushes_nothing(self, tmp_path: Path) -> None:
        eng = self.engine(tmp_path)
        try:
            first = self.result_of(eng.run())
            # the synthetic exports hold unlinked and ambiguous clients on purpose
            assert first.status == "partial" and first.pushed > 0, first.error
            state = self.target_state(self.make_adapter(tmp_path))
            assert state is not None
            eng.run()
            third = self.result_of(eng.run())
            assert third.pushed == 0 and third.pulled == 0
            assert self.target_state(self.make_adapter(tmp_path)) == state
        finally:
            eng.store.close()

    def target_keys(self, adapter: Adapter) -> set[str]:
        assert isinstance(adapter, SimplePracticeAdapter)
        return {e.key for e in adapter.outbox().entries()} if adapter.sp.outbox.exists() else set()

    def test_engine_deletion_at_source(self, tmp_path: Path) -> None:
        """A client deleted from SimplePractice (no longer in any export): the full pull prunes
        their appointments and details, the client is rescored, and their outbox folder (note,
        scores file, report page) goes; the other clients' folders stay."""
        eng = self.engine(tmp_path)
        try:
            self.result_of(eng.run())
            before = self.target_keys(self.make_adapter(tmp_path))
            assert {"client:clinic:C001", "client:clinic:C003"} <= before
            folder = tmp_path / "exports"
            for name in (syn.STATUS_REPORT, syn.BILLING_REPORT):
                report = folder / name
                lines = report.read_text(encoding="utf-8").splitlines(keepends=True)
                report.write_text(
                    "".join(line for line in lines if "Placeholder" not in line), encoding="utf-8"
                )
            syn.write_client_list(
                folder / "clients.xlsx", [r for r in syn.CLIENT_ROWS if r[0] != 1003]
            )
            summary = eng.run()
            src = self.result_of(summary)
            assert src.status in ("ok", "partial"), src.error
            assert ("clinic", "C003") in summary.rescored
            assert eng.store.client_contexts([("clinic", "C003")]) == {}
            after = self.target_keys(self.make_adapter(tmp_path))
            assert after == before - {"client:clinic:C003"}
            outbox = tmp_path / "outbox"
            assert not [p for p in outbox.rglob("*") if "C003" in str(p)]
            assert "C003" not in (outbox / "index.csv").read_text(encoding="utf-8")
        finally:
            eng.store.close()

    def test_engine_dry_run_writes_nothing(self, tmp_path: Path) -> None:
        before = self.target_state(self.make_adapter(tmp_path))
        eng = self.engine(tmp_path)
        try:
            src = self.result_of(eng.run(dry_run=True))
            assert src.pushed == 0 and src.would_push > 0
            assert eng.store.bookmark(self.source_name) is None, "dry-run saved a bookmark"
            assert self.target_state(self.make_adapter(tmp_path)) == before
        finally:
            eng.store.close()
