"""What an adapter keeps between runs: a small key → text store per source.

An adapter reads and writes it through ``context.state`` (see
:class:`~fit_core.adapter.SourceContext`). Unlike the bookmark, which the engine saves only after
a run's pushes succeed and which may be thrown away to read a source again, state is kept as
soon as it is set, one value per transaction (a crash keeps either the old or the new value), and
lives in the store next to the data it describes, so a backup of the store holds it too. Keep
values small (a few kilobytes of JSON); never put answers or secrets in them.

Implementations: :class:`StoreState` (the store; read-only for ``fit check`` and dry runs, where
values set are kept in memory for the rest of the run) and :class:`MemoryState` (tests, and
contexts built without a store).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .store import Store


class SourceState(Protocol):
    """Per-source values that outlive a run."""

    def get(self, key: str) -> str | None:
        """The value of ``key``, or None when it was never set."""
        ...

    def set(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key`` (durable once this returns, unless read-only)."""
        ...


class MemoryState:
    """State held in memory only (lost when the object goes)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value


class StoreState:
    """One source's state in the store; ``read_only`` keeps what is set in memory instead."""

    def __init__(self, store: Store, source: str, *, read_only: bool = False) -> None:
        self.store = store
        self.source = source
        self.read_only = read_only
        self._overlay: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        if key in self._overlay:
            return self._overlay[key]
        return self.store.state_value(self.source, key)

    def set(self, key: str, value: str) -> None:
        if self.read_only:
            self._overlay[key] = value
        else:
            self.store.set_state_value(self.source, key, value)
