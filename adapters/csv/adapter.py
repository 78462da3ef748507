"""The CSV adapter: read FIT long (or wide) CSV exports, write a scores CSV back."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from fit_core.adapter import Adapter, SourceContext
from fit_core.errors import ConfigError
from fit_core.models import OutboxItem, Record, RecordError

from .options import CsvOptions, CsvOptionsSchema
from .reader import KeyLedger, fingerprint, read_file
from .writer import write_scores

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

    def pull(self, bookmark: str | None) -> Iterator[Record | RecordError]:
        """Stream the records of new or changed files (all files when ``bookmark`` is None)."""
        self._check_input()
        self._bookmark = None
        previous = parse_bookmark(bookmark)
        ledger = KeyLedger()
        done: dict[str, dict[str, Any]] = {}
        for name, path in self.files():
            try:
                fp = {**fingerprint(path), "options": self.csv.fingerprint}
            except FileNotFoundError:
                log.debug("%s: %s went away before it was read", self.context.name, name)
                continue
            except OSError as exc:
                yield RecordError(
                    f"{name}:file", {"file": f"cannot read: {type(exc).__name__}"}, name
                )
                continue
            if previous.get(name) == fp:
                log.debug("%s: %s unchanged, skipped", self.context.name, name)
                done[name] = fp
                continue
            log.debug("%s: reading %s", self.context.name, name)
            if (yield from read_file(path, name, self.csv, ledger)):
                done[name] = fp
        yield from ledger.closing_errors()
        for name in ledger.conflicted_files():
            done.pop(name, None)
        self._bookmark = json.dumps(done, sort_keys=True, separators=(",", ":"))

    def next_bookmark(self) -> str | None:
        """The file fingerprints after a complete pull (None before one)."""
        return self._bookmark

    # --- push ------------------------------------------------------------------------------

    def push_snapshot(self, items: Iterator[OutboxItem]) -> None:
        """Atomically replace the scores file with ``items`` (written as they come)."""
        rows = write_scores(self.csv.scores_path, items, self.csv.scores_encoding)
        log.debug("%s: wrote %d score rows", self.context.name, rows)

    def describe_target(self) -> str:
        return str(self.csv.scores_path)


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
