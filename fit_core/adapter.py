"""The adapter interface: what a source plugin implements.

An adapter is created per sync run for one configured source. The engine calls, in order,
``check()``, ``pull(bookmark)`` (a stream), ``problems()``, ``wants_full_push()``, ``push``
with what changed, ``next_bookmark()``, and finally ``close()``. Everything an adapter needs
arrives on :class:`SourceContext` (including ``state``, values kept between runs); nothing
private to fit-sync is required. Client ids need no cleaning: the core normalises them
(:mod:`fit_core.identity`).

Push styles:

- ``push_mode = "batch"`` (APIs): ``push(items)`` receives batches of at most
  ``push_batch_size`` changed rows and returns the source keys the target confirmed; the engine
  marks only those as pushed. Pushes must be upserts at the target, so a repeat is harmless.
- ``push_mode = "snapshot"`` (files): ``push_snapshot(items)`` receives every current row of the
  source (sorted by source key) whenever anything changed, and must replace the target
  atomically; when it returns, everything is marked pushed. A snapshot adapter whose target is
  a scores file in the format of :mod:`fit_core.scores_csv` (one CSV line per payload) may also
  define ``push_snapshot_lines(lines)``: the engine then hands it those lines, kept beside the
  outbox rows when they were written, instead of decoding every payload again.

Deletions, both ways:

- *From the source*: a pull may yield :class:`~fit_core.models.Deleted` items (``Deleted(key)``:
  the source no longer holds that record). The engine removes the stored administration,
  rescores the client, and removes its row at the target. To find deletions an adapter may
  compare what the source holds now with what the store holds for it:
  ``context.stored_keys()`` streams the source keys stored for the source (administrations and
  quarantine entries). Adapters that see deletions some other way (a deletion log, a full
  listing) yield ``Deleted`` for what they found; keys the store does not hold are ignored.
  Practice adapters with ``pull_mode = "full"`` are pruned by the engine instead.
- *At the target*: rows of administrations that are gone (deleted at the source, quarantined
  after an edit, erased with ``fit client erase``, purged by retention) must go from the
  target too. Snapshot adapters get a new snapshot without them. Batch adapters get
  ``remove(keys)`` and return the keys that are no longer at the target (absent already counts);
  keys not confirmed are offered again at the next push.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from marshmallow import Schema

from .models import Appointment, ClientInfo, Deleted, OutboxItem, Record, RecordError
from .state import SourceState


@dataclass(frozen=True)
class SourceContext:
    """What an adapter instance gets: its config and the services of the core."""

    name: str
    namespace: str
    options: Mapping[str, Any]
    timezone: dt.tzinfo
    run_started: dt.datetime
    secret: Callable[[str], str] = field(repr=False)
    state_dir: Path
    dry_run: bool = False
    #: values the adapter keeps between runs, in the store (see :mod:`fit_core.state`); None
    #: when the context was built without a store
    state: SourceState | None = None
    #: ``client_page(namespace, client_id, episode_id=None)``: the client's report page (the
    #: page of ``fit report client``, self-contained HTML) for adapters that hand files to
    #: people; None when the ``reports`` extra is not installed (or outside a sync)
    client_page: Callable[..., str | None] | None = field(default=None, repr=False)
    #: ``stored_keys()``: the source keys the store holds for this source (administrations and
    #: quarantine entries, streamed, in no particular order); None outside a sync
    stored_keys: Callable[[], Iterator[str]] | None = field(default=None, repr=False)


class Adapter:
    """Base class for adapters. Subclass it and register the class with ``fit_register_adapters``.

    ``options_schema`` validates the adapter's own keys in ``[sources.<name>]`` (the common keys
    ``adapter``, ``namespace`` and ``enabled`` are handled by the core); use marshmallow's
    default ``RAISE`` for unknown keys so a typo in a config is named.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options_schema: ClassVar[type[Schema] | None] = None
    push_mode: ClassVar[Literal["batch", "snapshot"]] = "batch"
    #: "full": a pull that yields anything yields everything the source holds, so practice data
    #: (appointments, client info) and quarantine entries it no longer yields are dropped
    pull_mode: ClassVar[Literal["incremental", "full"]] = "incremental"
    push_batch_size: ClassVar[int] = 500
    #: the secret keys this adapter may look up (``fit keys list`` shows them)
    secret_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, context: SourceContext) -> None:
        self.context = context
        self.options = context.options

    def check(self) -> None:
        """Verify the source is reachable and configured; raise a FitError subclass if not."""

    def pull(
        self, bookmark: str | None
    ) -> Iterator[Record | RecordError | Deleted | Appointment | ClientInfo]:
        """Yield records changed since ``bookmark`` (None: everything). Stream; never buffer all.

        ``Deleted(source_key)`` says the source no longer holds a record (see the module doc).
        Context adapters (practice systems) may also yield :class:`Appointment` and
        :class:`ClientInfo` items, already linked to a client of an ORS/SRS namespace.
        """
        raise NotImplementedError

    def pull_coverage(self) -> Literal["all", "partial", "none"] | None:
        """For ``pull_mode = "full"``, after ``pull`` is exhausted: what the pull covered.

        ``"all"``: everything the source holds was yielded, so stored practice data it did not
        yield is dropped; ``"partial"``: part of the source could not be read (a damaged
        export), so stored practice data is kept as it was; ``"none"``: nothing changed since
        ``bookmark`` and nothing was yielded, so the quarantine entries of the last read still
        stand (the run stays PARTIAL until they are resolved). After ``"all"`` or
        ``"partial"`` the quarantine holds exactly the RecordErrors of this pull.

        None (the default): ``"all"`` when the pull yielded anything, else ``"none"``.
        """
        return None

    def parallel_pull(self) -> bool:
        """Whether the engine may read this pull twice, here and in a forked second process:
        each process stores and scores the records of its own half of the clients (see
        :meth:`shard_key`); this process also takes every other item (errors, deletions,
        practice data).

        True only when ``pull`` can run again with no effect at the source and reads the same
        (a local file, say), when a key it yields as a RecordError is never meant to be stored
        from a Record of the same pull (in a CSV file a repeated key makes every occurrence an
        error), and when the pull is large enough to pay for a second read. The engine
        compares :meth:`pull_identity` of the two reads and reads again in one process when
        they differ. Default False: the pull runs once, in this process."""
        return False

    def shard_key(self, record: Record) -> str:
        """What splits a parallel pull (:meth:`parallel_pull`) between the two processes:
        records with the same shard key go to the same process. Return the record's client
        code where it has one, so a client's records are stored, and later scored, by one
        process; the default is the record's key."""
        return record.source_key

    def pull_identity(self) -> str | None:
        """After ``pull``: what it read, such that two reads of the same data give the same
        text (e.g. the fingerprints of the files read). Only asked of a parallel pull."""
        return None

    def next_bookmark(self) -> str | None:
        """After ``pull`` is exhausted and the pushes have succeeded: the bookmark to save.

        The engine asks for it after pushing, so an adapter may fold its own writes into it.

        For time-based sources: ``min(newest modification seen, run start) - overlap``
        (see :func:`time_bookmark`). Return None to keep the previous bookmark.
        """
        return None

    def wants_full_push(self) -> bool:
        """After ``pull``: True when every row of this source must be pushed again, not only
        the changed ones (e.g. the target's layout changed and is being rewritten). The
        engine then marks all of the source's outbox rows pending before pushing."""
        return False

    def push(self, items: Sequence[OutboxItem]) -> Iterable[str]:
        """Upsert one batch at the target; return the source keys the target confirmed."""
        raise NotImplementedError

    def push_snapshot(self, items: Iterator[OutboxItem]) -> None:
        """Replace the target with every current row, atomically (snapshot adapters)."""
        raise NotImplementedError

    def remove(self, keys: Sequence[str]) -> Iterable[str]:
        """Batch adapters: remove (or clear) the target rows of ``keys``; return the keys no
        longer at the target (a key that was never there counts as removed). Must be safe to
        repeat. Called before the pushes of a run, and by ``fit client erase`` and retention.

        Not implemented (the default): the engine logs a warning naming how many rows stay at
        the target, and forgets them (the contract suite's deletion test fails).
        """
        raise NotImplementedError

    def forget_client(self, namespace: str, client_id: str, dry_run: bool = False) -> list[str]:
        """``fit client erase``: drop what the adapter keeps about a client outside the store
        (a link book, a cache) beyond its target rows; return a line per thing removed (no
        PHI: say what, not whose). The default keeps nothing, so there is nothing to drop."""
        return []

    def client_files(self, namespace: str, client_id: str) -> list[Path]:
        """``fit client export``: files the adapter wrote for the client outside the store (an
        outbox's note, scores file, report page), copied into the export. Default: none."""
        return []

    def problems(self) -> Sequence[str]:
        """Parts of the source this run had to leave out, each saying what and what to do next
        (e.g. one form of several whose question was deleted). Asked after ``pull`` and again
        after the pushes; any makes the source *partial* (exit 1) while the rest still syncs.
        No PHI: name forms, fields and keys, never answers."""
        return ()

    def describe_target(self) -> str:
        """Where pushes go, for messages (no secrets)."""
        return self.context.name

    def close(self) -> None:
        """Release connections and files."""


def time_bookmark(
    newest_seen: dt.datetime | None, run_started: dt.datetime, overlap: dt.timedelta
) -> str | None:
    """A time-based bookmark: ``min(newest change seen, run start) - overlap``, ISO UTC."""
    if newest_seen is None:
        return None
    moment = min(newest_seen, run_started) - overlap
    return moment.astimezone(dt.UTC).isoformat()
