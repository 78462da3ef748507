"""Read a folder of SimplePractice exports into linked Appointment and ClientInfo items.

One pull reads every export, in passes (each file is streamed row by row; only small keys are
kept between passes):

1. *classify*: each file's header tells its report kind (or the ``kinds`` option does); a file
   that fits none yields one RecordError naming the missing column and the columns found.
2. *census*: client lists (and reports with a client id column) tell which names several
   SimplePractice clients share; those names are never linked by name.
3. *billing codes*: the billing report's CPT codes by (client, local date), to complete the
   status report's appointments (90791 marks an intake).
4. *status reports*, newest file first: one Appointment per appointment; an appointment repeated
   in an older export is skipped (the newest export wins).
5. *billing rows* not covered by a status report: a billed service counts as attended.
6. *client lists*, newest first: one ClientInfo per linked client.

Every row that cannot be used yields a RecordError with its location (``file line N``) and the
reasons; a row whose client is not linked yields ``client not linked`` (never the name).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from fit_core.models import Appointment, ClientInfo, RecordError

from .columns import HeaderError, Layout, build_layout, detect
from .links import LinkBook
from .names import NameHasher
from .options import SpOptions
from .resolve import Census, ClientRef, Resolution, Resolver
from .rows import ApptRow, ClientRow, Problem, RowReader, client_name, client_ref
from .tables import Table, TableError, is_export, open_table
from .values import Cell, is_intake

log = logging.getLogger(__name__)

Item = Appointment | ClientInfo | RecordError


@dataclass(frozen=True, slots=True)
class Export:
    """A classified export file."""

    name: str
    path: Path
    mtime: float
    layout: Layout


@dataclass
class RefEntry:
    """One SimplePractice client seen in the exports, for ``fit clients list`` (no name unless
    asked for with ``--show-names``, and then only in memory)."""

    ident: str
    shown: str
    state: str  # linked | ignored | unlinked | ambiguous
    client_id: str | None = None
    shared: int = 0
    number: str | None = None
    rows: int = 0
    where: list[str] = field(default_factory=list)
    name: str | None = None


def list_exports(path: Path) -> list[tuple[str, Path]]:
    """The export files under ``path`` (a file, or a folder's ``*.csv``/``*.xlsx``), by name."""
    if not path.is_dir():
        return [(path.name, path)]
    return [(p.name, p) for p in sorted(path.iterdir(), key=lambda p: p.name) if is_export(p)]


class ExportReader:
    """Reads one source's exports (see the module doc)."""

    def __init__(
        self,
        opts: SpOptions,
        hasher: NameHasher,
        book: LinkBook,
        tz: dt.tzinfo,
        now: dt.datetime,
    ) -> None:
        self.opts = opts
        self.hasher = hasher
        self.tz = tz
        self.rows = RowReader(opts, hasher, tz, now)
        self.census = Census()
        self.resolver = Resolver(book, self.census)
        self.exports: list[Export] = []
        self.counts: Counter[str] = Counter()

    # --- classify --------------------------------------------------------------------------

    def classify(self, files: Sequence[tuple[str, Path]]) -> Iterator[RecordError]:
        """Open each file's header and remember its layout; RecordErrors for the rest."""
        for name, path in files:
            try:
                mtime = path.stat().st_mtime
                with self._open(path, name) as table:
                    try:
                        layout = self._layout(name, table.header)
                    except HeaderError as exc:
                        yield RecordError(
                            f"{name}:header", {"header": str(exc)}, table.where(table.header_at)
                        )
                        continue
            except TableError as exc:
                yield RecordError(f"{name}:file", {"file": str(exc)}, name)
                continue
            except FileNotFoundError:
                log.debug("%s: %s went away before it was read", self.opts.source, name)
                continue
            self.exports.append(Export(name, path, mtime, layout))

    def _layout(self, name: str, header: Sequence[Cell]) -> Layout:
        opts = self.opts
        lower = name.lower()
        for glob, kind in opts.kinds:
            if fnmatch.fnmatchcase(lower, glob.lower()):
                return build_layout(header, kind, opts.columns, opts.link_column)
        return detect(header, opts.columns, opts.link_column)

    def _open(self, path: Path, name: str) -> AbstractContextManager[Table]:
        o = self.opts
        return open_table(path, name, encoding=o.encoding, delimiter=o.delimiter, sheet=o.sheet)

    def _of_kind(self, kind: str) -> list[Export]:
        """Exports of ``kind``, newest first (then by name)."""
        chosen = [e for e in self.exports if e.layout.kind == kind]
        return sorted(chosen, key=lambda e: (-e.mtime, e.name))

    def _rows(self, export: Export) -> Iterator[tuple[Table, int, list[Cell]]]:
        with self._open(export.path, export.name) as table:
            for number, row in table.rows:
                yield table, number, row

    # --- the pull --------------------------------------------------------------------------

    def items(self) -> Iterator[Item]:
        """Every linked Appointment and ClientInfo, and a RecordError per unusable row."""
        self.take_census()
        codes = self._billing_codes()
        seen: dict[str, tuple[int, str | None, str]] = {}
        covered: set[tuple[str, dt.date]] = set()
        yield from self._status_reports(codes, seen, covered)
        yield from self._billing_rows(seen, covered)
        yield from self._client_lists()
        if self.counts:
            log.info(
                "source %s: %s",
                self.opts.source,
                ", ".join(f"{n} {what}" for what, n in sorted(self.counts.items())),
            )

    def take_census(self) -> None:
        """Pass 2: which names several clients share (from rows with a client id or birth)."""
        for export in self.exports:
            layout = export.layout
            if layout.kind != "clients" and not layout.has("client_number"):
                continue
            try:
                for _table, _n, row in self._rows(export):
                    self.census.add(*self.rows.census_entry(row, layout))
            except TableError:
                continue  # reported by the pass that reads the file for its items

    def _billing_codes(self) -> dict[tuple[str, dt.date], str]:
        codes: dict[tuple[str, dt.date], str] = {}
        for export in self._of_kind("billing"):
            try:
                for _table, _n, row in self._rows(export):
                    parsed = self.rows.appointment(row, export.layout)
                    if isinstance(parsed, ApptRow) and parsed.code:
                        day = (parsed.ref.ident, parsed.local_date)
                        if day not in codes or parsed.intake:
                            codes[day] = parsed.code
            except TableError:
                continue
        return codes

    def _status_reports(
        self,
        codes: dict[tuple[str, dt.date], str],
        seen: dict[str, tuple[int, str | None, str]],
        covered: set[tuple[str, dt.date]],
    ) -> Iterator[Item]:
        for number_of_file, export in enumerate(self._of_kind("appointments")):
            try:
                for table, n, row in self._rows(export):
                    parsed = self.rows.appointment(row, export.layout)
                    if parsed is None:
                        continue
                    where = table.where(n)
                    if isinstance(parsed, Problem):
                        # a newer export already settled this appointment: no problem then
                        if parsed.key is None or parsed.key not in seen:
                            if parsed.key is not None:
                                seen[parsed.key] = (number_of_file, "?", where)
                            yield _problem(parsed, export.name, table, n)
                        continue
                    prev = seen.get(parsed.key)
                    if prev is not None:
                        if prev[0] == number_of_file and prev[1] != parsed.status:
                            yield RecordError(
                                f"{export.name}:{table.unit}:{n}",
                                {
                                    "status": f"the same client has another status for this "
                                    f"appointment on {prev[2]}; keep one row"
                                },
                                where,
                            )
                        continue
                    seen[parsed.key] = (number_of_file, parsed.status, where)
                    covered.add((parsed.ref.ident, parsed.local_date))
                    code = parsed.code or codes.get((parsed.ref.ident, parsed.local_date))
                    status = parsed.status or "attended"
                    yield from self._appointment(parsed, status, code, where)
            except TableError as exc:
                yield RecordError(f"{export.name}:file", {"file": str(exc)}, export.name)

    def _billing_rows(
        self,
        seen: dict[str, tuple[int, str | None, str]],
        covered: set[tuple[str, dt.date]],
    ) -> Iterator[Item]:
        for export in self._of_kind("billing"):
            try:
                for table, n, row in self._rows(export):
                    parsed = self.rows.appointment(row, export.layout)
                    if parsed is None:
                        continue
                    if isinstance(parsed, Problem):
                        if parsed.key is None or parsed.key not in seen:
                            yield _problem(parsed, export.name, table, n)
                        continue
                    if (parsed.ref.ident, parsed.local_date) in covered or parsed.key in seen:
                        continue
                    if not parsed.code:
                        self.counts["billing rows without a billing code skipped"] += 1
                        continue
                    if self.opts.billing_rows == "codes":
                        self.counts["billing rows without a status report row skipped"] += 1
                        continue
                    where = table.where(n)
                    seen[parsed.key] = (-1, None, where)
                    status = "scheduled" if parsed.upcoming else "attended"
                    yield from self._appointment(parsed, status, parsed.code, where)
            except TableError as exc:
                yield RecordError(f"{export.name}:file", {"file": str(exc)}, export.name)

    def _appointment(
        self, parsed: ApptRow, status: str, code: str | None, where: str
    ) -> Iterator[Item]:
        res = self.resolver.resolve(parsed.ref)
        if res.client_id is None:
            yield from self._unresolved(res, parsed.key, where)
            return
        yield Appointment(
            source=self.opts.source,
            source_key=parsed.key,
            namespace=self.opts.namespace,
            client_id=res.client_id,
            starts_at=parsed.starts_at,
            local_date=parsed.local_date,
            status=status,  # type: ignore[arg-type]
            clinician_id=parsed.clinician,
            service_code=code,
            intake=is_intake(code, self.opts.intake_codes),
        )

    def _client_lists(self) -> Iterator[Item]:
        done: set[str] = set()
        for export in self._of_kind("clients"):
            try:
                for table, n, row in self._rows(export):
                    parsed = self.rows.client(row, export.layout)
                    if parsed is None:
                        continue
                    if isinstance(parsed, Problem):
                        yield _problem(parsed, export.name, table, n)
                        continue
                    yield from self._client(parsed, done, table.where(n))
            except TableError as exc:
                yield RecordError(f"{export.name}:file", {"file": str(exc)}, export.name)

    def _client(self, parsed: ClientRow, done: set[str], where: str) -> Iterator[Item]:
        res = self.resolver.resolve(parsed.ref)
        if res.client_id is None:
            yield from self._unresolved(res, parsed.key, where)
            return
        if res.client_id in done:
            return  # an older client list, or a second SimplePractice record of the client
        done.add(res.client_id)
        yield ClientInfo(
            source=self.opts.source,
            namespace=self.opts.namespace,
            client_id=res.client_id,
            date_of_birth=parsed.date_of_birth,
            clinician_id=parsed.clinician,
            status=parsed.status,
        )

    def _unresolved(self, res: Resolution, key: str, where: str) -> Iterator[RecordError]:
        if res.ignored:
            self.counts["rows of ignored clients skipped"] += 1
        elif self.opts.unlinked == "skip":
            self.counts["rows of unlinked clients skipped (unlinked = skip)"] += 1
        else:
            yield RecordError(key, {"client": res.reason(self.opts.source)}, where)

    # --- for `fit clients list` -------------------------------------------------------------

    def scan(self, *, show_names: bool = False) -> list[RefEntry]:
        """Every SimplePractice client in the exports with its link state (no names unless
        ``show_names``: then read from the files now, kept in memory only)."""
        self.take_census()
        entries: dict[str, RefEntry] = {}
        for export in self.exports:
            layout = export.layout
            try:
                for table, n, row in self._rows(export):
                    ref = client_ref(row, layout, self.hasher)
                    if ref is None:
                        continue
                    entry = entries.get(ref.ident)
                    if entry is None:
                        entry = entries[ref.ident] = self._entry(ref)
                    entry.rows += 1
                    if len(entry.where) < 5:
                        entry.where.append(table.where(n))
                    if entry.number is None and ref.number:
                        entry.number = ref.number
                    if show_names and entry.name is None:
                        entry.name = client_name(row, layout) or None
            except TableError:
                continue
        return sorted(entries.values(), key=lambda e: (e.state, e.shown))

    def _entry(self, ref: ClientRef) -> RefEntry:
        res = self.resolver.resolve(ref)
        if res.client_id is not None:
            state = "linked"
        elif res.ignored:
            state = "ignored"
        else:
            state = res.problem or "unlinked"
        number = ref.number or (self.census.number(ref.name_hash) if ref.name_hash else None)
        return RefEntry(ref.ident, ref.shown, state, res.client_id, res.shared, number)


def _problem(problem: Problem, file: str, table: Table, number: int) -> RecordError:
    key = problem.key or f"{file}:{table.unit}:{number}"
    return RecordError(key, problem.reasons, table.where(number))
