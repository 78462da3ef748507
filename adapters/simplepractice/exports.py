"""Read a folder of SimplePractice exports into linked Appointment and ClientInfo items.

One pull reads every export, in passes (each file is streamed row by row; only small keys are
kept between passes):

1. *classify*: each file's header (and its name and title lines) tells its report kind, or the
   ``kinds`` option does; a file that fits none yields one RecordError naming the missing
   column and the columns found.
2. *survey*: each export's rows are counted and its numeric dates looked at: the order (month
   or day first) is taken from the dates only one order can read, per file; a file whose dates
   allow both orders, or that mixes them, is refused whole (``date_order`` decides). Then each
   row is parsed once to count the rows that cannot be read.
3. *guards*: an export is **refused whole** when it is damaged: no rows, a cut-off last row,
   dates in no single order, more than :data:`MAX_BAD_SHARE` of its rows unreadable, or (for
   status reports) far fewer rows than the status reports had when last read
   (:data:`MIN_KEPT_SHARE`), or no status report at all where there was one. A run with a
   refused or unreadable file keeps what is stored (:meth:`ExportReader.coverage` is
   ``"partial"``) and counts no billing row as attended.
4. *census*: client lists (and reports with a client id column) tell which names several
   SimplePractice clients share; those names are never linked by name.
5. *billing codes*: the billing report's CPT codes by (client, local date), to complete the
   status report's appointments (90791 marks an intake).
6. *status reports*, newest file first: one Appointment per appointment; an appointment repeated
   in an older export is skipped (the newest export wins).
7. *billing rows* not covered by a status report: a billed service counts as attended (not in
   a run that refused an export).
8. *client lists*, newest first: one ClientInfo per linked client.

Every row that cannot be used yields a RecordError with its location (``file line N``) and the
reasons; a row whose client is not linked yields ``client not linked`` (never the name). Each
error key is yielded once per pull.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fit_core.models import Appointment, ClientInfo, RecordError

from .columns import HeaderError, Layout, build_layout, detect
from .links import LinkBook
from .names import NameHasher
from .options import SpOptions
from .resolve import Census, ClientRef, Resolution, Resolver
from .rows import ApptRow, ClientRow, Problem, RowReader, client_name, client_ref, is_blank
from .tables import Table, TableError, is_export, open_table
from .values import Cell, day_first, is_intake, order_evidence

log = logging.getLogger(__name__)

Item = Appointment | ClientInfo | RecordError
Coverage = Literal["all", "partial"]

#: an export with more than this share of unreadable rows is refused whole (damaged)
MAX_BAD_SHARE = 0.2
#: status reports with fewer rows than this share of those last read are refused (cut short)
MIN_KEPT_SHARE = 0.75
#: unreadable rows of a refused export reported one by one (its refusal counts them all)
MAX_ROWS_REPORTED = 10
#: what a refusal means for the stored data, added to every refusal's reasons
KEPT = (
    "not used: the attendance and client details stored before are kept and no billing row "
    "counts as attended until the exports are readable again"
)


@dataclass
class Export:
    """A classified export file, and what the survey found in it."""

    name: str
    path: Path
    mtime: float
    layout: Layout
    formats: tuple[str, ...] = ()
    rows: int = 0  # data rows (blank rows not counted)
    refused: dict[str, str] | None = None  # why the file is not used (reasons)
    where: str = ""  # where the refusal points (the file, or its cut-off line)
    errors: list[RecordError] = field(default_factory=list)  # unreadable rows of a refused file


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
    """Reads one source's exports (see the module doc).

    ``memory`` is what the status reports held when last read (``{"files": {name: rows},
    "rows": total}``, kept in the bookmark), None before any; ``accepted`` is True when a
    person accepted the exports exactly as they are now (``fit exports accept``): then they
    are not compared with that memory. After :meth:`items`, :attr:`memory` is what to
    remember and :meth:`coverage` what the pull covered.
    """

    def __init__(
        self,
        opts: SpOptions,
        hasher: NameHasher,
        book: LinkBook,
        tz: dt.tzinfo,
        now: dt.datetime,
        *,
        memory: Mapping[str, Any] | None = None,
        accepted: bool = False,
    ) -> None:
        self.opts = opts
        self.hasher = hasher
        self.tz = tz
        self.rows = RowReader(opts, hasher, tz, now)
        self.census = Census()
        self.resolver = Resolver(book, self.census)
        self.exports: list[Export] = []
        self.counts: Counter[str] = Counter()
        self.unreadable: list[str] = []  # files that could not be classified
        self.unreadable_why: list[str] = []  # why, one line each (see refusals)
        self.memory: dict[str, Any] | None = dict(memory) if memory else None
        self.accepted = accepted
        self._missing: str | None = None  # why the status report is missing, if it is
        self._unkeyed = False  # an unreadable row that names no appointment or client
        self._reported: set[str] = set()

    # --- classify --------------------------------------------------------------------------

    def classify(self, files: Sequence[tuple[str, Path]]) -> Iterator[RecordError]:
        """Open each file's header and remember its layout; RecordErrors for the rest."""
        for name, path in files:
            try:
                mtime = path.stat().st_mtime
                with self._open(path, name) as table:
                    try:
                        layout = self._layout(name, table.header, table.titles)
                    except HeaderError as exc:
                        self.unreadable.append(name)
                        self.unreadable_why.append(f"{name}: {exc}")
                        yield self._once(
                            RecordError(
                                f"{name}:header",
                                {"header": f"{name}: {exc}", "exports": KEPT},
                                table.where(table.header_at),
                            )
                        )
                        continue
            except TableError as exc:
                self.unreadable.append(name)
                self.unreadable_why.append(str(exc))
                yield self._once(
                    RecordError(f"{name}:file", {"file": str(exc), "exports": KEPT}, name)
                )
                continue
            except FileNotFoundError:
                log.debug("%s: %s went away before it was read", self.opts.source, name)
                continue
            self.exports.append(Export(name, path, mtime, layout))

    def _layout(self, name: str, header: Sequence[Cell], titles: str = "") -> Layout:
        opts = self.opts
        lower = name.lower()
        for glob, kind in opts.kinds:
            if fnmatch.fnmatchcase(lower, glob.lower()):
                return build_layout(header, kind, opts.columns, opts.link_column)
        return detect(header, opts.columns, opts.link_column, f"{name} {titles}")

    def _open(self, path: Path, name: str) -> AbstractContextManager[Table]:
        o = self.opts
        return open_table(path, name, encoding=o.encoding, delimiter=o.delimiter, sheet=o.sheet)

    def _of_kind(self, kind: str) -> list[Export]:
        """Exports of ``kind`` that are not refused, newest first (then by name)."""
        chosen = [e for e in self.exports if e.layout.kind == kind and e.refused is None]
        return sorted(chosen, key=lambda e: (-e.mtime, e.name))

    def _rows(self, export: Export) -> Iterator[tuple[Table, int, list[Cell]]]:
        with self._open(export.path, export.name) as table:
            for number, row in table.rows:
                yield table, number, row

    def _once(self, error: RecordError) -> RecordError:
        self._reported.add(error.source_key)
        return error

    # --- survey and guards -----------------------------------------------------------------

    def survey(self) -> None:
        """Count each export's rows, settle its date order, refuse the damaged ones."""
        for export in self.exports:
            try:
                self._survey(export)
            except TableError as exc:
                export.refused = {"file": str(exc)}
                export.where = export.name
        self._guard_status_reports()

    def _date_field(self, layout: Layout) -> str:
        return "date_of_birth" if layout.kind == "clients" else "date"

    def _survey(self, export: Export) -> None:
        layout = export.layout
        index = layout.index.get(self._date_field(layout))
        seen: dict[str, int] = {}  # order -> first line that can only be read that way
        either = 0
        last: tuple[int, list[Cell]] | None = None
        ends_cleanly = True
        for table, number, row in self._rows(export):
            ends_cleanly = table.ends_cleanly  # the same for every row of the file
            if is_blank(row):
                continue
            export.rows += 1
            last = (number, row)
            if index is not None and index < len(row):
                evidence = order_evidence(row[index])
                if evidence == "either":
                    either += 1
                elif evidence is not None:
                    seen.setdefault(evidence, number)
        unit = "row" if export.path.suffix.lower() == ".xlsx" else "line"
        if export.rows == 0:
            self._refuse(export, "rows", "the export has no rows (an emptied file?)")
            return
        order = self.opts.date_order
        if order == "auto":
            if len(seen) > 1:
                self._refuse(
                    export,
                    "date",
                    f"dates in two orders: {unit} {seen['DMY']} can only be day first "
                    f"(DD/MM/YYYY), {unit} {seen['MDY']} only month first (MM/DD/YYYY); fix "
                    'the export, or set date_order = "MDY" or "DMY" for this source',
                )
                return
            if not seen and either:
                self._refuse(
                    export,
                    "date",
                    f"every date could be day first (DD/MM/YYYY) or month first (MM/DD/YYYY) "
                    f'({either} ambiguous): set date_order = "MDY" (month first, as in the '
                    'US) or "DMY" (day first) for this source',
                )
                return
            order = next(iter(seen), "MDY")
        formats = self.opts.date_formats
        export.formats = formats if order == "MDY" else day_first(formats)
        self._check_rows(export, last, ends_cleanly, unit)

    def _parse(self, export: Export, row: list[Cell]) -> Any:
        if export.layout.kind == "clients":
            return self.rows.client(row, export.layout, export.formats)
        return self.rows.appointment(row, export.layout, export.formats)

    def _check_rows(
        self,
        export: Export,
        last: tuple[int, list[Cell]] | None,
        ends_cleanly: bool,
        unit: str,
    ) -> None:
        """Parse every row once: refuse the export when its rows mostly fail or its last row
        is cut off (then its unreadable rows are reported with it)."""
        bad: list[RecordError] = []
        bad_lines: set[int] = set()
        short: set[int] = set()
        for table, number, row in self._rows(export):
            parsed = self._parse(export, row)
            if isinstance(parsed, Problem) and parsed.damage:
                bad.append(_problem(parsed, export.name, table, number))
                bad_lines.add(number)
                if "row" in parsed.reasons:
                    short.add(number)
        # the last row is cut off: it ends before the columns it needs, or the last line has
        # no line break and is short or unreadable (a footer line such as "Total" is no row)
        if last is not None and (
            last[0] in short
            or (not ends_cleanly and (last[0] in bad_lines or len(last[1]) < export.layout.width))
        ):
            self._refuse(
                export,
                "file",
                f"the export ends in a cut-off row ({unit} {last[0]}): it looks cut short "
                "(download or copy it again)",
                f"{export.name} {unit} {last[0]}",
            )
        elif len(bad) > MAX_BAD_SHARE * export.rows:
            first = bad[0]
            why = "; ".join(f"{k}: {v}" for k, v in first.reasons.items())
            self._refuse(
                export,
                "rows",
                f"{len(bad)} of {export.rows} rows cannot be read (the first "
                f"{min(len(bad), MAX_ROWS_REPORTED)} are listed; {first.location}: {why})",
            )
        if export.refused is not None:
            export.errors = bad[:MAX_ROWS_REPORTED]

    def _refuse(self, export: Export, what: str, why: str, where: str = "") -> None:
        export.refused = {what: f"{export.name}: {why}"}
        export.where = where or export.name

    def _guard_status_reports(self) -> None:
        """Compare the status reports with those last read; settle what to remember."""
        usable = self._of_kind("appointments")
        broken = bool(self.unreadable) or any(
            e.refused is not None and e.layout.kind == "appointments" for e in self.exports
        )
        memory = None if self.accepted else self.memory
        if memory and not broken:
            before = int(memory.get("rows") or 0)
            files: Mapping[str, int] = memory.get("files") or {}
            last_read = ", ".join(sorted(files)) or "?"
            now = sum(e.rows for e in usable)
            if not usable:
                self._missing = (
                    f"no appointment status report in the exports this run (last read: "
                    f"{last_read}, {before} rows); export it again, or if you no longer "
                    "export it, accept the exports as they are with `fit exports accept`"
                )
            elif now < MIN_KEPT_SHARE * before:
                for e in usable:
                    e.refused = {
                        "rows": f"{e.name}: the status reports hold {now} rows, {before} "
                        f"when last read ({last_read}): cut short? Export them again; if the "
                        "shorter export is right, accept it with `fit exports accept`"
                    }
                    e.where = e.name
                usable = []
                broken = True
        if usable and not broken:
            self.memory = {
                "files": {e.name: e.rows for e in usable},
                "rows": sum(e.rows for e in usable),
            }
        elif self.accepted and not usable and not broken:
            self.memory = None

    def coverage(self) -> Coverage:
        """``"all"`` when every export was read, ``"partial"`` when one was refused or
        unreadable, or the status report is missing."""
        refused = any(e.refused is not None for e in self.exports)
        damaged = refused or self.unreadable or self._missing or self._unkeyed
        return "partial" if damaged else "all"

    def refusals(self) -> list[str]:
        """Why each refused export is not used, one line each (file names and columns only):
        what the sync prints as the source's problems, whatever the verbosity."""
        out = list(self.unreadable_why)
        out += [
            "; ".join(export.refused.values())
            for export in self.exports
            if export.refused is not None
        ]
        if self._missing:
            out.append(self._missing)
        return out

    def _refusals(self) -> Iterator[RecordError]:
        for export in self.exports:
            if export.refused is None:
                continue
            yield self._once(
                RecordError(
                    f"{export.name}:file", {**export.refused, "exports": KEPT}, export.where
                )
            )
            for error in export.errors:
                if error.source_key not in self._reported:
                    yield self._once(error)
        if self._missing:
            files = (self.memory or {}).get("files") or {}
            where = ", ".join(sorted(files)) or str(self.opts.path)
            yield self._once(
                RecordError(
                    "status-report:missing", {"file": self._missing, "exports": KEPT}, where
                )
            )

    # --- the pull --------------------------------------------------------------------------

    def items(self) -> Iterator[Item]:
        """Every linked Appointment and ClientInfo, and a RecordError per unusable row."""
        self.survey()
        yield from self._refusals()
        self.take_census()
        codes = self._billing_codes()
        seen: dict[str, tuple[int, str | None, str]] = {}
        covered: set[str] = set()  # the clients the status reports know
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
        """Which names several clients share (from rows with a client id or birth; refused
        exports too: a twin they show makes a name ambiguous all the same)."""
        for export in self.exports:
            layout = export.layout
            if layout.kind != "clients" and not layout.has("client_number"):
                continue
            try:
                for _table, _n, row in self._rows(export):
                    self.census.add(*self.rows.census_entry(row, layout, export.formats))
            except TableError:
                continue  # reported by the pass that reads the file for its items

    def _billing_codes(self) -> dict[tuple[str, dt.date], str]:
        codes: dict[tuple[str, dt.date], str] = {}
        for export in self._of_kind("billing"):
            try:
                for _table, _n, row in self._rows(export):
                    parsed = self.rows.appointment(row, export.layout, export.formats)
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
        covered: set[str],
    ) -> Iterator[Item]:
        for number_of_file, export in enumerate(self._of_kind("appointments")):
            try:
                for table, n, row in self._rows(export):
                    parsed = self.rows.appointment(row, export.layout, export.formats)
                    if parsed is None:
                        continue
                    where = table.where(n)
                    if isinstance(parsed, Problem):
                        # a newer export already settled this appointment: no problem then
                        if parsed.key is None or parsed.key not in seen:
                            if parsed.key is not None:
                                seen[parsed.key] = (number_of_file, "?", where)
                            yield from self._row_problem(parsed, export, table, n)
                        continue
                    prev = seen.get(parsed.key)
                    if prev is not None:
                        if prev[0] == number_of_file and prev[1] != parsed.status:
                            yield from self._error(
                                RecordError(
                                    f"{export.name}:{table.unit}:{n}",
                                    {
                                        "status": f"the same client has another status for "
                                        f"this appointment on {prev[2]}; keep one row"
                                    },
                                    where,
                                )
                            )
                        continue
                    seen[parsed.key] = (number_of_file, parsed.status, where)
                    covered.add(parsed.ref.ident)
                    code = parsed.code or codes.get((parsed.ref.ident, parsed.local_date))
                    status = parsed.status or "attended"
                    yield from self._appointment(parsed, status, code, where)
            except TableError as exc:
                yield from self._error(
                    RecordError(f"{export.name}:file", {"file": str(exc)}, export.name)
                )

    def _billing_rows(
        self,
        seen: dict[str, tuple[int, str | None, str]],
        covered: set[str],
    ) -> Iterator[Item]:
        # SimplePractice bills no-shows and late cancels too: a billing row counts as attended
        # only for a client no status report knows, and not at all in a run that refused an
        # export or lost its status report (it cannot tell which billed appointments were
        # missed then)
        attend = self.opts.billing_rows == "attended" and self.coverage() == "all"
        for export in self._of_kind("billing"):
            try:
                for table, n, row in self._rows(export):
                    parsed = self.rows.appointment(row, export.layout, export.formats)
                    if parsed is None:
                        continue
                    if isinstance(parsed, Problem):
                        if parsed.key is None or parsed.key not in seen:
                            yield from self._row_problem(parsed, export, table, n)
                        continue
                    if parsed.key in seen:
                        continue  # the status report has this appointment
                    if parsed.ref.ident in covered:
                        self.counts["billing rows of clients in the status report skipped"] += 1
                        continue
                    if not parsed.code:
                        self.counts["billing rows without a billing code skipped"] += 1
                        continue
                    if not attend:
                        self.counts["billing rows without a status report row skipped"] += 1
                        continue
                    where = table.where(n)
                    seen[parsed.key] = (-1, None, where)
                    status = "scheduled" if parsed.upcoming else "attended"
                    yield from self._appointment(parsed, status, parsed.code, where)
            except TableError as exc:
                yield from self._error(
                    RecordError(f"{export.name}:file", {"file": str(exc)}, export.name)
                )

    def _row_problem(
        self, problem: Problem, export: Export, table: Table, number: int
    ) -> Iterator[RecordError]:
        """A row's RecordError; an unreadable row that names no appointment or client makes
        the pull partial (what it held cannot be told, so nothing stored is dropped)."""
        if problem.key is None and problem.damage:
            self._unkeyed = True
        yield from self._error(_problem(problem, export.name, table, number))

    def _error(self, error: RecordError) -> Iterator[RecordError]:
        """Yield ``error`` unless its key was reported already in this pull."""
        if error.source_key not in self._reported:
            yield self._once(error)

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
                    parsed = self.rows.client(row, export.layout, export.formats)
                    if parsed is None:
                        continue
                    if isinstance(parsed, Problem):
                        yield from self._row_problem(parsed, export, table, n)
                        continue
                    yield from self._client(parsed, done, table.where(n))
            except TableError as exc:
                yield from self._error(
                    RecordError(f"{export.name}:file", {"file": str(exc)}, export.name)
                )

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
            yield from self._error(
                RecordError(key, {"client": res.reason(self.opts.source)}, where)
            )

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
