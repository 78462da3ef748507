"""The adapter interface: what a source plugin implements.

An adapter is created per sync run for one configured source. The engine calls, in order,
``check()``, ``pull(bookmark)`` (a stream), ``wants_full_push()``, ``push`` with what changed,
``next_bookmark()``, and finally ``close()``. Everything an adapter needs arrives on
:class:`SourceContext`; nothing private to fit-sync is required.

Push styles:

- ``push_mode = "batch"`` (APIs): ``push(items)`` receives batches of at most
  ``push_batch_size`` changed rows and returns the source keys the target confirmed; the engine
  marks only those as pushed. Pushes must be upserts at the target, so a repeat is harmless.
- ``push_mode = "snapshot"`` (files): ``push_snapshot(items)`` receives every current row of the
  source (sorted by source key) whenever anything changed, and must replace the target
  atomically; when it returns, everything is marked pushed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from marshmallow import Schema

from .models import Appointment, ClientInfo, OutboxItem, Record, RecordError


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
    #: the bookmark the last sync saved, given by `fit check` so ``check()`` can test what it
    #: records (None during a sync: ``pull()`` receives it)
    bookmark: str | None = None


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
    ) -> Iterator[Record | RecordError | Appointment | ClientInfo]:
        """Yield records changed since ``bookmark`` (None: everything). Stream; never buffer all.

        Context adapters (practice systems) may also yield :class:`Appointment` and
        :class:`ClientInfo` items, already linked to a client of an ORS/SRS namespace.
        """
        raise NotImplementedError

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

    def describe_target(self) -> str:
        """Where pushes go, for messages (no secrets)."""
        return self.context.name

    def close(self) -> None:
        """Release connections and files."""


def time_bookmark(
    newest_seen: dt.datetime | None, run_started: dt.datetime, overlap: dt.timedelta
) -> str | None:
    """DESIGN.md's bookmark: ``min(newest modification seen, run start) - overlap`` as ISO UTC."""
    if newest_seen is None:
        return None
    moment = min(newest_seen, run_started) - overlap
    return moment.astimezone(dt.UTC).isoformat()
