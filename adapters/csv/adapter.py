"""The CSV adapter: read FIT long (or wide) CSV exports, write a scores CSV back."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from fit_core.adapter import Adapter, SourceContext
from fit_core.errors import ConfigError
from fit_core.identity import normalise_client_id
from fit_core.models import Deleted, OutboxItem, Record, RecordError

from .options import CsvOptions, CsvOptionsSchema
from .reader import Item, KeyLedger, count_rows, fingerprint, read_file
from .writer import write_score_lines, write_scores

#: the source state key of ``fit csv accept`` (file name -> SHA-256 of the files accepted)
ACCEPTED = "accepted"
#: input files holding at least this many bytes in all (about 10,000 rows) may be read by two
#: processes at once (see Adapter.parallel_pull); below it a second read costs more than it saves
PARALLEL_PULL_MIN_BYTES = 1_000_000
#: and at most this many (about 200,000 rows): each process keeps the keys of every row it
#: reads, so above it two readers together would need more memory than one sync may take
PARALLEL_PULL_MAX_BYTES = 20_000_000

log = logging.getLogger(__name__)


class CsvAdapter(Adapter):
    """Read administrations from CSV files; write scores and flags to a CSV file.

    Options (``[sources.<name>]``, unknown keys are errors):

    ``path`` (required)
        A ``.csv`` file, or a folder: then every ``*.csv`` file in it (not in subfolders) is
        read, sorted by name. Names starting with ``.`` and the ``scores_path`` file are skipped.
        ``~`` is expanded; prefer absolute paths (cron and systemd start elsewhere).
    ``scores_path`` (required)
        The scores CSV written on push; its folder must exist and be writable.
    ``delimiter`` (default ``"auto"``)
        ``"auto"`` picks ``,``, ``;`` or tab, whichever the header line uses most; or give one
        character.
    ``encoding`` (default ``"utf-8-sig"``)
        Encoding of the input files (a UTF-8 byte-order mark is fine); e.g. ``"cp1252"``.
    ``scores_encoding`` (default ``"utf-8-sig"``)
        Encoding of the scores file (with a BOM so spreadsheets read it as UTF-8); characters
        the encoding lacks become ``?``.
    ``decimal_comma`` (default ``true``)
        ``7,5`` is read as 7.5 (use ``;`` as the delimiter, or quote such values). ``false``
        rejects a comma in q1-q4/total, catching thousands separators.
    ``scale`` (default ``"points"``)
        How item values are expressed: ``points`` (0-10), ``cm``, ``mm``, ``percent`` or
        ``range:LOW:HIGH``.
    ``columns`` (optional table)
        fit field name -> header name, for other long layouts, e.g.
        ``columns = {client_id = "Client Code", administered_at = "Date"}``. Fields not listed
        use their own name. Header names are compared stripped and case-insensitively.
    ``wide`` (optional table)
        For wide exports (one row, several measures): measure -> its item columns in item
        order, e.g. ``wide = {ORS = ["ors_q1", "ors_q2", "ors_q3", "ors_q4"], SRS = [...]}``.
        Each row yields one record per measure whose items and total are not all empty; rows
        with every measure empty are skipped. ``columns`` still maps the other fields.
    ``wide_totals`` (optional table)
        measure -> its total column in wide mode, e.g. ``wide_totals = {ORS = "ors_total"}``.
    ``max_shrink`` (default ``0.25``)
        A file holding more than this share fewer rows than when it was last read, and a
        file that disappeared, is refused (see *Deletions*) until ``fit csv accept SOURCE``
        confirms the files as they are.

    Files: the header (line 1) must name ``client_id``, ``administered_at``, ``measure`` (not
    in wide mode) and either ``q1``-``q4`` or ``total``; optional ``clinician_id``,
    ``episode_id``, ``rater``, ``age``, ``session``, ``source_key``. A file that lacks a required
    column yields one RecordError (source key ``<file>:header``) and is skipped; other files go on.
    A row with more cells than the header is an error (often an unquoted decimal comma). Each
    physical line is one row (see :class:`fit_adapters.csv.reader.Lines`): a quoted cell that
    does not end on its line, a line longer than 131,072 characters, or a line with bytes the
    encoding cannot decode is an error of that line, and the lines after it are read.

    Source keys: the ``source_key`` column when present and non-empty (plus ``:<MEASURE>`` in
    wide mode); otherwise the natural key ``nk:<client_id>|<administered_at>|<MEASURE>|<rater>``
    (stripped; rater lower-cased, ``client`` when empty), so a re-exported file with the rows in
    another order gives the same keys. Keys hold no answers.

    Conflicts: two rows with the same key in the files read by one pull are both reported, never
    one silently picked. Only the keys seen so far are kept in memory (key -> first location);
    the repeating row gets a RecordError at once, and the first occurrence, already yielded as a
    Record, gets a RecordError with the same key at the end of the pull (the core lets a later
    RecordError replace the record). The check spans only the files read in this pull, not
    unchanged files skipped through the bookmark. Files involved in a conflict are left out of
    the bookmark, so both are read again until the conflict is resolved.

    Bookmark: JSON ``{"<file>": {"size": n, "sha256": hex, "options": hash}}`` for every file
    read completely or skipped as unchanged. A file whose size, hash and reading options match
    is skipped; files with a header error, a file that cannot be decoded at all, or a conflict
    are left out so they are read (and reported) again. Errors of single lines do not keep a
    file out: like invalid rows, they stay quarantined until the file changes. The fingerprint
    is taken before a file is read, so a file that changes while it is read is simply read
    again next time. An unreadable bookmark means: read everything (the core dedupes re-read
    records by content hash).

    Deletions: the files are snapshots of the source, so a record the core holds that is in
    none of them any more was deleted at the source. Whenever a file changed, appeared or
    disappeared, the pull reads the changed files, scans the unchanged ones for their keys only,
    and yields :class:`~fit_core.models.Deleted` for every stored key none of them holds
    (``context.stored_keys()``). Only after a complete read: a file that could not be read
    completely (header, encoding or CSV error), a file that shrank by more than ``max_shrink``
    (a download cut short, an emptied file) and a file that disappeared stop the deletions of
    that pull. Such a shrunk or missing file is refused whole (one RecordError
    ``<file>:file``; nothing of it is read, what is stored stays) and stays in the bookmark
    with its old row count, so it is refused again until ``fit csv accept SOURCE`` records
    the files as they are now (in the source's state) or the file is back.

    Push (snapshot): the scores file is rewritten atomically (temp file, fsync, rename, mode
    0600) with the columns of :data:`fit_core.scoring.PUSH_FIELDS`; cells a spreadsheet would
    run as a formula are prefixed with ``'``.
    """

    name: ClassVar[str] = "csv"
    description: ClassVar[str] = "FIT long or wide CSV files in; a scores CSV out"
    options_schema: ClassVar[type[CsvOptionsSchema]] = CsvOptionsSchema
    push_mode: ClassVar[Literal["batch", "snapshot"]] = "snapshot"

    def __init__(self, context: SourceContext) -> None:
        super().__init__(context)
        self.csv = CsvOptions.load(context.options, context.name)
        self._bookmark: str | None = None
        self._refused = False  # this pull refused a shrunk or missing file
        self._shards: dict[str, str] = {}  # client codes as typed -> as normalised

    # --- checks ----------------------------------------------------------------------------

    def check(self) -> None:
        """Raise ConfigError when ``path`` is missing or the scores folder is not writable."""
        self._check_input()
        where = f"[sources.{self.context.name}] scores_path"
        scores = self.csv.scores_path
        folder = scores.parent
        if scores.is_dir():
            raise ConfigError(
                f"{where} {scores} is a folder", hint="give a file name, for example .../scores.csv"
            )
        if not folder.is_dir():
            raise ConfigError(
                f"{where}: the folder {folder} does not exist",
                hint=f"create it (mkdir -p {folder}) or fix scores_path",
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(
                f"{where}: the folder {folder} is not writable",
                hint="let the user running `fit sync` write there, or move it",
            )
        if self.csv.path.is_file() and self.csv.path.resolve() == scores.resolve():
            raise ConfigError(
                f"{where} is the input file {scores}", hint="write the scores to another file"
            )

    def _check_input(self) -> None:
        path = self.csv.path
        where = f"[sources.{self.context.name}] path"
        if not path.exists():
            raise ConfigError(
                f"{where}: {path} does not exist",
                hint="fix path (a .csv file or a folder of them) or create it",
            )
        if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
            raise ConfigError(
                f"{where}: {path} is not readable", hint="let the user running `fit sync` read it"
            )

    # --- pull ------------------------------------------------------------------------------

    def files(self) -> list[tuple[str, Path]]:
        """The input files as (name relative to ``path``, path), sorted by name."""
        root = self.csv.path
        if not root.is_dir():
            return [(root.name, root)]
        scores = self.csv.scores_path.resolve()
        return [
            (p.name, p)
            for p in sorted(root.iterdir(), key=lambda p: p.name)
            if not p.name.startswith(".")
            and p.suffix.lower() == ".csv"
            and p.is_file()
            and p.resolve() != scores
        ]

    def pull(self, bookmark: str | None) -> Iterator[Record | RecordError | Deleted]:
        """Stream the records of new or changed files (all files when ``bookmark`` is None),
        then ``Deleted`` for stored records no file holds any more (see *Deletions*)."""
        self._check_input()
        self._bookmark = None
        self._refused = False
        previous = parse_bookmark(bookmark)
        accepted = self.accepted()
        ledger = KeyLedger()
        # hash() of every key yielded (records and errors) that ``ledger.seen`` does not hold
        present: set[int] = set()
        done: dict[str, dict[str, Any]] = {}
        unchanged: list[tuple[str, Path]] = []
        changed = False
        complete = True
        files = self.files()
        for name, path in files:
            try:
                fp = {**fingerprint(path), "options": self.csv.fingerprint}
            except FileNotFoundError:
                log.debug("%s: %s went away before it was read", self.context.name, name)
                continue
            except OSError as exc:
                complete = False
                yield RecordError(
                    f"{name}:file", {"file": f"cannot read: {type(exc).__name__}"}, name
                )
                continue
            last = previous.get(name)
            if last is not None and _same(last, fp):
                log.debug("%s: %s unchanged, skipped", self.context.name, name)
                done[name] = last
                unchanged.append((name, path))
                continue
            changed = True
            rows = count_rows(path)
            refusal = self._shrunk(name, last, rows, fp, accepted)
            if refusal is not None:
                complete, self._refused = False, True
                done[name] = last  # type: ignore[assignment]  # compared again next time
                yield refusal
                continue
            log.debug("%s: reading %s", self.context.name, name)
            if (yield from _noting(read_file(path, name, self.csv, ledger), present, ledger.seen)):
                done[name] = {**fp, "rows": rows}
            else:
                complete = False
        names = {name for name, _ in files}
        for name, last in sorted(previous.items()):
            if name in names:
                continue
            changed = True
            refusal = self._shrunk(name, last, 0, None, accepted)
            if refusal is not None:
                complete, self._refused = False, True
                done[name] = last
                yield refusal
        yield from ledger.closing_errors()  # their keys are in ledger.seen
        for name in ledger.conflicted_files():
            done.pop(name, None)
        self._bookmark = json.dumps(done, sort_keys=True, separators=(",", ":"))
        if changed and complete:
            yield from self._deletions(ledger, present, unchanged)

    def _deletions(
        self, ledger: KeyLedger, present: set[int], unchanged: list[tuple[str, Path]]
    ) -> Iterator[Deleted]:
        """Deleted for every stored key that no input file holds any more."""
        stored = self.context.stored_keys
        if stored is None:
            return
        seen = ledger.seen
        for name, path in unchanged:  # their keys only: nothing of them is yielded again
            for item in read_file(path, name, self.csv, KeyLedger()):
                h = hash(item.source_key)
                if h not in seen:
                    present.add(h)
        gone = 0
        for key in stored():
            h = hash(key)
            if h not in seen and h not in present:
                gone += 1
                yield Deleted(key)
        if gone:
            log.info(
                "%s: %d stored record(s) are in no input file any more", self.context.name, gone
            )

    def _shrunk(
        self,
        name: str,
        last: dict[str, Any] | None,
        rows: int,
        fp: dict[str, Any] | None,
        accepted: dict[str, str] | None,
    ) -> RecordError | None:
        """The refusal of a file that shrank too much (``fp`` None: it disappeared)."""
        if last is None:
            return None
        before = last.get("rows")
        if fp is not None and not isinstance(before, int):
            return None  # a bookmark of an older version: no row count to compare with
        if fp is None and accepted is not None and name not in accepted:
            return None  # accepted as gone
        if fp is not None and accepted is not None and accepted.get(name) == fp["sha256"]:
            return None  # accepted as it is
        if isinstance(before, int) and rows >= (1 - self.csv.max_shrink) * before:
            return None
        was = f"{before} rows" if isinstance(before, int) else "rows"
        what = (
            f"the file is gone ({was} when last read)"
            if fp is None
            else f"holds {rows} rows, {was} when last read: cut short or emptied?"
        )
        return RecordError(
            f"{name}:file",
            {
                "file": f"{name} {what} Not read; nothing stored was removed. Put the full "
                f"export back; if the change is right, accept it with `fit csv accept "
                f"{self.context.name}`"
            },
            name,
        )

    def accepted(self) -> dict[str, str] | None:
        """The files accepted as they are (``fit csv accept``): name -> SHA-256, or None."""
        state = self.context.state
        text = state.get(ACCEPTED) if state is not None else None
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        files = data.get("files") if isinstance(data, dict) else None
        return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else None

    def parallel_pull(self) -> bool:
        """Files can be read twice: worth it from PARALLEL_PULL_MIN_BYTES of input, and done
        up to PARALLEL_PULL_MAX_BYTES (memory)."""
        total = 0
        for _name, path in self.files():
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return PARALLEL_PULL_MIN_BYTES <= total <= PARALLEL_PULL_MAX_BYTES

    def shard_key(self, record: Record) -> str:
        """The record's client code as the core normalises it (case folded): a client's rows
        stay together whatever their keys."""
        client = record.data.get("client_id")
        if not isinstance(client, str):
            return record.source_key
        memo = self._shards
        shard = memo.get(client)
        if shard is None:
            if len(memo) >= 100_000:
                memo.clear()
            shard = memo[client] = normalise_client_id(client)
        return shard

    def pull_identity(self) -> str | None:
        """The fingerprints of the files the last pull read (its bookmark)."""
        return self._bookmark

    def next_bookmark(self) -> str | None:
        """The file fingerprints after a complete pull (None before one). An acceptance
        (``fit csv accept``) has served once a pull refused nothing: it is cleared then."""
        state = self.context.state
        if self._bookmark is not None and not self._refused and state and state.get(ACCEPTED):
            state.set(ACCEPTED, "")
        return self._bookmark

    # --- push ------------------------------------------------------------------------------

    def push_snapshot(self, items: Iterator[OutboxItem]) -> None:
        """Atomically replace the scores file with ``items`` (written as they come)."""
        rows = write_scores(self.csv.scores_path, items, self.csv.scores_encoding)
        log.debug("%s: wrote %d score rows", self.context.name, rows)

    def push_snapshot_lines(self, lines: Iterator[str]) -> None:
        """:meth:`push_snapshot` for rows the sync rendered already: the scores-file lines of
        :mod:`fit_core.scores_csv`, which is the file's own format (written as they come)."""
        rows = write_score_lines(self.csv.scores_path, lines, self.csv.scores_encoding)
        log.debug("%s: wrote %d score rows", self.context.name, rows)

    def describe_target(self) -> str:
        return str(self.csv.scores_path)


def _same(last: dict[str, Any], fp: dict[str, Any]) -> bool:
    """The file is as it was when last read (the bookmark's row count aside)."""
    return all(last.get(k) == v for k, v in fp.items())


def _noting(
    items: Generator[Item, None, bool], present: set[int], seen: Mapping[int, int]
) -> Generator[Item, None, bool]:
    """``items``, noting the hash of every key yielded that the ledger's ``seen`` does not hold
    already (the reader puts a row's key there before yielding it, so ``present`` keeps only the
    keys of errors of lines: a million rows are not held twice); returns what ``items``
    returns."""
    add = present.add
    while True:
        try:
            item = next(items)
        except StopIteration as stop:
            return bool(stop.value)
        h = hash(item.source_key)
        if h not in seen:
            add(h)
        yield item


def parse_bookmark(text: str | None) -> dict[str, Any]:
    """The file fingerprints of a bookmark; ``{}`` for None or anything unreadable."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        log.info("csv bookmark unreadable; reading every file again")
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        log.info("csv bookmark has an unknown shape; reading every file again")
        return {}
    return value
