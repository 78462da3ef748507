"""The SimplePractice bridge (``adapter = "simplepractice"``): exports in, an outbox out.

SimplePractice has no public API (and scraping is off the table), so this adapter reads the
reports a practice downloads from it and writes files a clinician pastes or uploads by hand.

Options (``[sources.<name>]``; unknown keys are errors):

``path`` (required)
    An export file, or a folder: every ``*.csv`` and ``*.xlsx`` in it (not in subfolders;
    names starting with ``.`` or ``~$`` are skipped). ``~`` is expanded.
``namespace_target`` (default: the source's ``namespace``)
    The namespace of the ORS/SRS source whose client ids the links point to (e.g.
    ``"clinic_redcap"``, or a namespace shared by several sources).
``outbox`` (default ``<state dir>/<source>-outbox``)
    The outbox folder (created mode 0700), see :mod:`.outbox`.
``mapping_file`` (default ``<state dir>/<source>.links.csv``)
    The link book managed by ``fit clients link|ignore|unlink``, see :mod:`.links`.
``link_column`` (optional)
    A header name of a column that holds the ORS/SRS client id itself (e.g. a custom
    "External ID" column); rows with a value there need no link.
``columns`` (optional table of tables)
    Header names per report kind and field, replacing the defaults of
    :data:`.columns.DEFAULT_COLUMNS`, e.g. ``columns.appointments.status = "Appt Status"`` or a
    list of names. ``"Name#2"`` picks the second column called ``Name``.
``kinds`` (optional table)
    File-name pattern -> report kind (``appointments``, ``billing``, ``clients``), when the
    header alone does not tell, e.g. ``kinds = {"*clients*.csv" = "clients"}``.
``date_formats`` (default: built-in ``MM/DD/YYYY`` formats with and without a time, read
    day first when ``date_order`` says so, then ISO)
    strftime formats tried in order, ``"iso"`` for ISO 8601; times without an offset are
    clinic-local (``[sync] timezone``). Set, they are used as they are (no ``date_order``).
``statuses`` (optional table)
    Extra status spellings -> ``attended``, ``no_show``, ``late_cancel``, ``cancelled``,
    ``clinician_cancelled``, ``scheduled`` or ``ignore`` (skip the row).
``clinicians`` (optional table)
    Clinician as SimplePractice names them -> the clinician id the ORS/SRS sources use.
``intake_codes`` (default ``["90791", "90792"]``)
    Billing codes of a diagnostic evaluation (an intake: a new episode).
``billing_rows`` (default ``"attended"``)
    What a billing-report row means for a client no appointment status report knows:
    ``"attended"`` (a billed service; SimplePractice also bills no-shows and late cancels, so
    export the status report for attendance) or ``"codes"`` (only complete the status
    report's appointments with their billing codes). Never attended in a run that refused an
    export.
``unlinked`` (default ``"error"``)
    ``"error"``: each row of an unlinked or ambiguous client is a RecordError (the sync is
    PARTIAL, exit 1, until it is linked or ignored); ``"skip"``: only counted in the log.
``encoding`` (default ``"utf-8-sig"``), ``delimiter`` (default ``"auto"``), ``sheet``
    (default: the first sheet of an ``.xlsx``).
``date_order`` (default ``"auto"``)
    How numeric dates (``NN/NN/YYYY``) of the built-in formats are read: ``"auto"`` (per
    file, from the dates only one order can read; a file whose dates allow both orders, or
    mix them, is refused), ``"MDY"`` (month first, as in the US) or ``"DMY"`` (day first).
``report_page`` (default true)
    Put the client's report page (``report.html``) in the outbox, when the ``reports`` extra
    is installed.

Bookmark: the fingerprints (size, SHA-256) of every export, of the link book, of the options,
of the name key and of the accepted exports, and the clinic-local date; and what the status
reports held when last read (file names and row counts: no PHI). When a fingerprint or the day
changed, every export is read again (the reports are joined, and a new link changes rows of
unchanged files); unchanged rows are deduplicated by the core. Otherwise the pull yields
nothing and the problems of the last read still stand (:meth:`pull_coverage` is ``"none"``).

A damaged export is refused whole and keeps what is stored (see :mod:`.exports`).

Push (batch): one client summary per linked client with scores, written to the outbox, with
the client's report page when the ``reports`` extra is installed (``report_page = false``
leaves it out). ``remove`` takes a client's folder out of the outbox (the practice system no
longer knows the client, or the client was erased); ``forget_client`` sets the client's links
to ignored.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from fit_core.adapter import Adapter, SourceContext
from fit_core.errors import ConfigError
from fit_core.models import Appointment, ClientInfo, OutboxItem, Record, RecordError

from .exports import KEPT, ExportReader, list_exports
from .links import LinkBook
from .names import NameHasher
from .options import SimplePracticeOptionsSchema, SpOptions
from .outbox import Outbox
from .tables import fingerprint

log = logging.getLogger(__name__)


class SimplePracticeAdapter(Adapter):
    """Read SimplePractice exports (appointments, billing, clients); write a progress-note
    outbox. See the module doc for the options."""

    name: ClassVar[str] = "simplepractice"
    description: ClassVar[str] = (
        "SimplePractice exports (CSV/xlsx) in: attendance, clinician, age; a progress-note "
        "outbox out"
    )
    options_schema: ClassVar[type[SimplePracticeOptionsSchema]] = SimplePracticeOptionsSchema
    push_mode: ClassVar[Literal["batch", "snapshot"]] = "batch"
    #: every pull that yields anything re-reads all exports: what it no longer yields is gone
    pull_mode: ClassVar[Literal["incremental", "full"]] = "full"
    push_batch_size: ClassVar[int] = 200
    secret_keys: ClassVar[tuple[str, ...]] = ("name_key",)

    def __init__(self, context: SourceContext) -> None:
        super().__init__(context)
        self.sp = SpOptions.load(
            context.options, context.name, context.namespace, context.state_dir
        )
        self._bookmark: str | None = None
        self._coverage: Literal["all", "partial", "none"] | None = None
        self._hasher: NameHasher | None = None

    # --- checks ----------------------------------------------------------------------------

    def hasher(self) -> NameHasher:
        """The name hasher (reads the ``name_key`` secret once)."""
        if self._hasher is None:
            self._hasher = NameHasher(self.context.secret("name_key"), self.context.name)
        return self._hasher

    def check(self) -> None:
        """ConfigError for a missing path or secret, a bad link book, an unusable outbox."""
        where = f"[sources.{self.context.name}]"
        path = self.sp.path
        if not path.exists():
            raise ConfigError(
                f"{where} path: {path} does not exist",
                hint="export the reports from SimplePractice into that folder",
            )
        if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
            raise ConfigError(
                f"{where} path: {path} is not readable",
                hint="let the user running `fit sync` read it",
            )
        outbox = self.sp.outbox.resolve()
        inbox = path.resolve() if path.is_dir() else path.resolve().parent
        if outbox == inbox or inbox.is_relative_to(outbox):
            raise ConfigError(
                f"{where} outbox {outbox} holds the exports", hint="give the outbox its own folder"
            )
        book = LinkBook.load(self.sp.mapping_file)
        book.verify_key(self.hasher().check_value())
        parent = _existing_parent(outbox)
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ConfigError(
                f"{where} outbox: {parent} is not writable",
                hint="let the user running `fit sync` write there, or move it",
            )

    # --- pull ------------------------------------------------------------------------------

    def files(self) -> list[tuple[str, Path]]:
        return list_exports(self.sp.path)

    def pull(
        self, bookmark: str | None
    ) -> Iterator[Record | RecordError | Appointment | ClientInfo]:
        """Everything again when an export, the links, the options, the key or the day
        changed since ``bookmark``; nothing otherwise."""
        self._bookmark = None
        self._coverage = None
        self._problems: list[str] = []
        hasher = self.hasher()
        book = LinkBook.load(self.sp.mapping_file)
        book.verify_key(hasher.check_value())
        files = self.files()
        today = self.context.run_started.astimezone(self.context.timezone).date()
        accepted = read_accepted(self.sp.accepted_file)
        prints = {name: _fingerprint(p) for name, p in files}
        state = {
            "files": prints,
            "links": book.fingerprint(),
            "options": self.sp.fingerprint,
            "key": hasher.check_value(),
            "day": today.isoformat(),
            "accepted": accepted,
        }
        before, memory = _read_bookmark(bookmark)
        if before == state:
            log.debug("%s: no export, link or option changed", self.context.name)
            self._bookmark = bookmark
            self._coverage = "none"
            return
        now = {name: fp.get("sha256") for name, fp in prints.items()}
        reader = ExportReader(
            self.sp,
            hasher,
            book,
            self.context.timezone,
            self.context.run_started,
            memory=memory,
            accepted=accepted is not None and accepted == now,
        )
        yield from reader.classify(files)
        yield from reader.items()
        self._coverage = reader.coverage()
        self._problems = [f"{why}; {KEPT}" for why in reader.refusals()]
        self._bookmark = json.dumps(
            {"state": state, "attendance": reader.memory}, sort_keys=True, separators=(",", ":")
        )

    def pull_coverage(self) -> Literal["all", "partial", "none"] | None:
        """``"partial"`` when an export was refused as damaged (the stored data is kept),
        ``"none"`` when nothing changed since the bookmark, else ``"all"``."""
        return self._coverage

    def problems(self) -> Sequence[str]:
        """Each export this pull refused as damaged, and why (no names, no values)."""
        return tuple(getattr(self, "_problems", ()))

    def next_bookmark(self) -> str | None:
        """The fingerprints after a complete pull (None before one)."""
        return self._bookmark

    # --- push ------------------------------------------------------------------------------

    def outbox(self) -> Outbox:
        page = self.context.client_page if self.sp.report_page else None
        return Outbox(self.sp.outbox, self.context.run_started.isoformat(), page)

    def push(self, items: Sequence[OutboxItem]) -> Iterable[str]:
        """Write each client summary's note and summary files; confirm every key written."""
        return self.outbox().write(items)

    def remove(self, keys: Sequence[str]) -> Iterable[str]:
        """Remove the outbox folders (note, scores file, report page) of these client
        summaries; ``index.csv`` and the manifest are rewritten."""
        if not self.sp.outbox.exists():
            return list(keys)
        return self.outbox().remove(keys)

    def forget_client(self, namespace: str, client_id: str, dry_run: bool = False) -> list[str]:
        """``fit client erase``: links to the client become *ignored* (the SimplePractice client
        stays known by its keyed name hash, so its rows are skipped rather than reported as
        unlinked, and the link book no longer holds the erased id)."""
        if namespace != self.sp.namespace:
            return []
        book = LinkBook.load(self.sp.mapping_file)
        links = [link for link in book if link.client_id == client_id]
        if not links or dry_run:
            return [f"{len(links)} link(s) in the link book"] if links else []
        today = self.context.run_started.date()
        for link in links:
            book.set(link.kind, link.key, None, today)
        book.save()
        return [f"{len(links)} link(s) in the link book set to ignored"]

    def client_files(self, namespace: str, client_id: str) -> list[Path]:
        """The outbox files of the client (note, scores file, report page)."""
        if namespace != self.sp.namespace or not self.sp.outbox.exists():
            return []
        return self.outbox().files_of(client_id)

    def describe_target(self) -> str:
        return str(self.sp.outbox)


def _read_bookmark(bookmark: str | None) -> tuple[Any, Mapping[str, Any] | None]:
    """(the fingerprints, what the status reports held) of a bookmark (None, None if none)."""
    if not bookmark:
        return None, None
    try:
        data = json.loads(bookmark)
    except ValueError:
        return None, None
    if not isinstance(data, dict) or "state" not in data:
        return data, None  # a bookmark of an older version: fingerprints only
    memory = data.get("attendance")
    return data["state"], memory if isinstance(memory, dict) else None


def read_accepted(path: Path) -> dict[str, str] | None:
    """The exports accepted with `fit exports accept` (file name -> SHA-256), or None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        log.warning("%s is unreadable; no export is accepted as it is", path)
        return None
    files = data.get("files") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else None


def _fingerprint(path: Path) -> dict[str, Any]:
    try:
        return fingerprint(path)
    except OSError as exc:
        return {"error": type(exc).__name__}


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
