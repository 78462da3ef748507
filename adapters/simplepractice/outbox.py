"""The outbox: one folder per clinician and client with the files to paste or upload by hand.

Layout (folders mode 0700, files 0600, every file written atomically: temp file, fsync,
rename)::

    <outbox>/index.csv                        what is new or changed in the latest run that
                                              changed anything
    <outbox>/.manifest.json                   every client's folder, content hash, state
    <outbox>/<clinician>/<client_id>/note.txt     progress-note snippet (<= 600 characters)
    <outbox>/<clinician>/<client_id>/summary.csv  the client's scores (latest episode)
    <outbox>/<clinician>/<client_id>/report.html  the client's report page (latest episode),
                                                  when the reports extra is installed

Folder names are the ids with anything but letters, digits, ``.``, ``_`` and ``-`` replaced (plus
a short hash when something was replaced, so two ids never share a folder). A client whose
clinician changes moves to the new clinician's folder. Writing the same summaries again changes
no file (the manifest keeps each client's content hash and when it last changed).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fit_core.models import OutboxItem

from .links import write_private
from .note import render_note, render_summary_csv, safe_cell

log = logging.getLogger(__name__)

NOTE = "note.txt"
SUMMARY = "summary.csv"
REPORT = "report.html"
INDEX = "index.csv"
MANIFEST = ".manifest.json"
UNASSIGNED = "unassigned"
INDEX_COLUMNS = ("state", "changed_at", "clinician", "client_id", "note", "summary", "report")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def slug(value: str) -> str:
    """A folder name for an id: safe characters only, unique (a hash suffix if changed)."""
    safe = _UNSAFE.sub("_", value).strip("._")[:60] or "_"
    if safe != value:
        safe += "-" + hashlib.sha256(value.encode()).hexdigest()[:6]
    return safe


@dataclass(frozen=True, slots=True)
class Entry:
    """One client's files in the outbox."""

    key: str  # the outbox row's source key (client:<namespace>:<client_id>)
    client_id: str
    clinician: str
    folder: str  # relative to the outbox root, POSIX style
    hash: str
    state: str  # new | changed
    changed_at: str
    report: bool = False  # the folder has a report page


PageFn = Callable[[str, str, str | None], str | None]


class Outbox:
    """An outbox folder; ``run`` (the run's start, ISO) stamps what a run changes; ``page``
    (namespace, client id, episode id) -> the client's report page, or None (no page)."""

    def __init__(self, root: Path, run: str, page: PageFn | None = None) -> None:
        self.root = root
        self.run = run
        self.page = page

    # --- manifest ----------------------------------------------------------------------------

    def _load(self) -> tuple[str | None, dict[str, Entry]]:
        try:
            data = json.loads((self.root / MANIFEST).read_text(encoding="utf-8"))
            entries = {k: Entry(key=k, **v) for k, v in data.get("entries", {}).items()}
            return data.get("last_run"), entries
        except FileNotFoundError:
            return None, {}
        except (ValueError, TypeError, AttributeError):
            log.warning("outbox manifest %s unreadable; rebuilding it", self.root / MANIFEST)
            return None, {}

    def _save(self, last_run: str | None, entries: Mapping[str, Entry]) -> None:
        data = {
            "version": 1,
            "last_run": last_run,
            "entries": {
                k: {f: v for f, v in asdict(e).items() if f != "key"}
                for k, e in sorted(entries.items())
            },
        }
        write_private(self.root / MANIFEST, json.dumps(data, indent=1, sort_keys=True) + "\n")
        write_private(self.root / INDEX, _index(last_run, entries))

    def entries(self) -> list[Entry]:
        """Every client in the outbox, by clinician and client id."""
        _, entries = self._load()
        return sorted(entries.values(), key=lambda e: (e.clinician, e.client_id))

    def last_run(self) -> str | None:
        return self._load()[0]

    # --- writing -----------------------------------------------------------------------------

    def ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)

    def write(self, items: Sequence[OutboxItem]) -> list[str]:
        """Write each client summary's files; returns the keys written (all of them)."""
        self.ensure_root()
        last_run, entries = self._load()
        changed = False
        done: list[str] = []
        for item in items:
            payload = item.payload
            client = str(payload.get("client_id") or item.extra.get("client_id") or "")
            if not client:
                log.warning("outbox row %s has no client id; skipped", item.source_key)
                continue
            clinician = str(payload.get("clinician_id") or UNASSIGNED)
            folder = f"{slug(clinician)}/{slug(client)}"
            note, summary = render_note(payload), render_summary_csv(payload)
            digest = hashlib.sha256(f"{note}\0{summary}".encode()).hexdigest()[:32]
            prev = entries.get(item.source_key)
            target = self.root / folder
            namespace = str(item.extra.get("namespace") or "")
            episode = payload.get("episode_id")
            if prev is not None and prev.hash == digest and prev.folder == folder:
                if not (target / NOTE).is_file() or not (target / SUMMARY).is_file():
                    self._write_files(target, note, summary)  # restore what was deleted by hand
                if not (target / REPORT).is_file():
                    self._write_page(target, namespace, client, episode)
                done.append(item.source_key)
                continue
            self._write_files(target, note, summary)
            report = self._write_page(target, namespace, client, episode)
            if prev is not None and prev.folder != folder:
                self._remove_files(prev.folder)
            entries[item.source_key] = Entry(
                item.source_key,
                client,
                clinician,
                folder,
                digest,
                "new" if prev is None else "changed",
                self.run,
                report,
            )
            changed = True
            done.append(item.source_key)
        if changed:
            self._save(self.run, entries)
        elif not (self.root / INDEX).exists():
            self._save(last_run, entries)
        return done

    def _write_files(self, folder: Path, note: str, summary: str) -> None:
        for part in (folder.parent, folder):
            part.mkdir(exist_ok=True, mode=0o700)
            os.chmod(part, 0o700)
        write_private(folder / NOTE, note)
        write_private(folder / SUMMARY, summary)

    def _write_page(self, folder: Path, namespace: str, client: str, episode: str | None) -> bool:
        """Write the client's report page (True), or remove a stale one (False)."""
        html = None
        if self.page is not None:
            try:
                html = self.page(namespace, client, str(episode) if episode else None)
            except Exception as exc:  # a page is extra: the note and scores still go out
                log.warning(
                    "outbox: the report page of client %s failed (%s); note and scores written",
                    client,
                    type(exc).__name__,
                )
        if html is None:
            with contextlib.suppress(FileNotFoundError):
                (folder / REPORT).unlink()
            return False
        write_private(folder / REPORT, html)
        return True

    def _remove_files(self, folder: str) -> None:
        """Remove a client's files and the folders left empty (never anything else)."""
        target = self.root / folder
        for name in (NOTE, SUMMARY, REPORT):
            with contextlib.suppress(FileNotFoundError):
                (target / name).unlink()
        for part in (target, target.parent):
            if part == self.root:
                break
            with contextlib.suppress(OSError):
                part.rmdir()  # only when empty

    def remove(self, keys: Sequence[str]) -> list[str]:
        """Remove the files of the outbox rows ``keys`` (their note, scores file and report
        page) and their manifest entries; returns every key (absent ones count as removed)."""
        last_run, entries = self._load()
        gone = [entries[k] for k in keys if k in entries]
        for e in gone:
            self._remove_files(e.folder)
            del entries[e.key]
        if gone:
            self._save(last_run, entries)
        return list(keys)

    def files_of(self, client_id: str) -> list[Path]:
        """The files the outbox holds for ``client_id`` (for ``fit client export``)."""
        out: list[Path] = []
        for e in self.entries():
            if e.client_id == client_id:
                folder = self.root / e.folder
                out.extend(folder / n for n in (NOTE, SUMMARY, REPORT) if (folder / n).is_file())
        return out

    def clear(self, client_id: str | None = None) -> list[Entry]:
        """Remove the files of ``client_id`` (every clinician), or of everyone with None."""
        last_run, entries = self._load()
        gone = [e for e in entries.values() if client_id is None or e.client_id == client_id]
        for e in gone:
            self._remove_files(e.folder)
            del entries[e.key]
        if gone or (self.root / MANIFEST).exists():
            self._save(last_run, entries)
        return sorted(gone, key=lambda e: (e.clinician, e.client_id))


def _index(last_run: str | None, entries: Mapping[str, Entry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(INDEX_COLUMNS)
    fresh = sorted(
        (e for e in entries.values() if last_run is not None and e.changed_at == last_run),
        key=lambda e: (e.clinician, e.client_id),
    )
    for e in fresh:
        writer.writerow(
            (
                e.state,
                e.changed_at,
                safe_cell(e.clinician),
                safe_cell(e.client_id),
                f"{e.folder}/{NOTE}",
                f"{e.folder}/{SUMMARY}",
                f"{e.folder}/{REPORT}" if e.report else "",
            )
        )
    return out.getvalue()


def entry_dict(entry: Entry, last_run: str | None) -> dict[str, Any]:
    """An entry as JSON for ``fit outbox list --json``."""
    data = asdict(entry)
    data["in_latest_run"] = last_run is not None and entry.changed_at == last_run
    return data
