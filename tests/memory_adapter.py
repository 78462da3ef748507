"""An in-memory adapter for engine tests: a dict of rows in, a dict of pushed payloads out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

from fit_core.adapter import Adapter, time_bookmark
from fit_core.hookspecs import hookimpl
from fit_core.models import Appointment, ClientInfo, OutboxItem, Record, RecordError


class MemorySource:
    """The 'remote system': rows with modification times, and a target of pushed rows."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[dict[str, Any], dt.datetime]] = {}
        self.target: dict[str, dict[str, Any]] = {}
        self.push_calls = 0
        self.pull_calls = 0
        self.fail_push_after: int | None = None  # raise after this many push calls
        self.reject: set[str] = set()  # keys the target refuses to confirm
        self.errors: list[RecordError] = []
        self.context: list[Appointment | ClientInfo] = []  # practice data to yield

    def put(self, key: str, data: dict[str, Any], modified: dt.datetime) -> None:
        self.rows[key] = (data, modified)


SOURCES: dict[str, MemorySource] = {}


class MemoryAdapter(Adapter):
    name: ClassVar[str] = "memory"
    push_batch_size: ClassVar[int] = 3

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.remote = SOURCES[self.options["remote"]]
        self._newest: dt.datetime | None = None

    def pull(
        self, bookmark: str | None
    ) -> Iterator[Record | RecordError | Appointment | ClientInfo]:
        self.remote.pull_calls += 1
        since = dt.datetime.fromisoformat(bookmark) if bookmark else None
        for key, (data, modified) in sorted(self.remote.rows.items()):
            if since is not None and modified < since:
                continue
            if self._newest is None or modified > self._newest:
                self._newest = modified
            yield Record(key, data, modified_at=modified, location=f"row {key}")
        yield from self.remote.errors
        yield from self.remote.context

    def next_bookmark(self) -> str | None:
        return time_bookmark(self._newest, self.context.run_started, dt.timedelta(minutes=5))

    def push(self, items: Sequence[OutboxItem]) -> Iterable[str]:
        r = self.remote
        r.push_calls += 1
        if r.fail_push_after is not None and r.push_calls > r.fail_push_after:
            raise ConnectionError("target went away")
        out = []
        for it in items:
            if it.source_key in r.reject:
                continue
            r.target[it.source_key] = dict(it.payload)
            out.append(it.source_key)
        return out


@hookimpl
def fit_register_adapters(register: Any) -> None:
    register(MemoryAdapter)
