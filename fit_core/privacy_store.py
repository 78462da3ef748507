"""The store's privacy tables: the audit log, tombstones and the files written for clients.

:class:`PrivacyStore` is mixed into :class:`fit_core.store.Store`; the decisions (what to
erase, what has expired, how subjects are hashed) live in :mod:`fit_core.privacy`,
:mod:`fit_core.retention` and :mod:`fit_core.audit`.

- ``audit_log``: append-only (triggers refuse UPDATE and DELETE): time, OS user, action,
  target, counts, subject hashes, a short detail. Never values or names.
- ``tombstones``: keyed hashes (HMAC) of erased clients (``kind = 'client'``) and of purged
  records (``kind = 'record'``); the sync refuses what they match. No id in clear.
- ``client_files``: report files written for a client (``fit report client``), so an erasure
  can remove them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

__all__ = ["CLIENT_TABLES", "PRIVACY_MIGRATION", "PrivacyStore"]

PRIVACY_MIGRATION: tuple[str, ...] = (
    """CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        os_user TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        counts TEXT,
        subjects TEXT,
        detail TEXT
    )""",
    "CREATE INDEX audit_log_at ON audit_log (at)",
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TABLE tombstones (
        hash TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        created_at TEXT NOT NULL,
        reason TEXT NOT NULL
    )""",
    """CREATE TABLE client_files (
        namespace TEXT NOT NULL,
        client_id TEXT NOT NULL,
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        written_at TEXT NOT NULL,
        PRIMARY KEY (namespace, client_id, path)
    )""",
)

#: tables keyed by (namespace, client_id) that hold nothing but that client's data
CLIENT_TABLES: tuple[str, ...] = (
    "administrations",
    "appointments",
    "client_info",
    "client_reviews",
    "client_spellings",
    "dirty_clients",
    "client_files",
)

_AUDIT_COLS = ("id", "at", "os_user", "action", "target", "counts", "subjects", "detail")


class PrivacyStore:
    """The privacy methods of :class:`fit_core.store.Store` (a mixin: needs ``conn``)."""

    conn: sqlite3.Connection

    # --- the audit log -------------------------------------------------------------------------

    def append_audit(
        self,
        at: str,
        os_user: str,
        action: str,
        target: str | None,
        counts: dict[str, int] | None,
        subjects: Sequence[str] | None,
        detail: str | None,
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO audit_log (at, os_user, action, target, counts, subjects, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                at,
                os_user,
                action,
                target,
                json.dumps(counts, sort_keys=True) if counts else None,
                json.dumps(list(subjects)) if subjects is not None else None,
                detail,
            ),
        )
        return int(cur.lastrowid or 0)

    def audit_entries(self, since: str | None = None) -> list[dict[str, Any]]:
        """Audit entries, oldest first (``since``: an ISO time, inclusive)."""
        sql = f"SELECT {', '.join(_AUDIT_COLS)} FROM audit_log"
        args: tuple[Any, ...] = ()
        if since:
            sql += " WHERE at >= ?"
            args = (since,)
        out = []
        for r in self.conn.execute(sql + " ORDER BY id", args):
            d = dict(zip(_AUDIT_COLS, r, strict=True))
            d["counts"] = json.loads(d["counts"]) if d["counts"] else {}
            d["subjects"] = json.loads(d["subjects"]) if d["subjects"] else []
            out.append(d)
        return out

    def audit_for_subjects(self, hashes: Iterable[str]) -> list[dict[str, Any]]:
        """The audit entries naming any of ``hashes`` (for a client's export)."""
        wanted = set(hashes)
        return [e for e in self.audit_entries() if wanted & set(e["subjects"])]

    # --- tombstones ----------------------------------------------------------------------------

    def add_tombstones(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """(hash, kind, created_at, reason) rows; a hash already there keeps its first row."""
        self.conn.executemany(
            "INSERT INTO tombstones (hash, kind, created_at, reason) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (hash) DO NOTHING",
            list(rows),
        )

    def tombstone_hashes(self, kind: str) -> set[str]:
        return {
            h for (h,) in self.conn.execute("SELECT hash FROM tombstones WHERE kind = ?", (kind,))
        }

    def tombstones(self) -> list[dict[str, Any]]:
        cols = ("hash", "kind", "created_at", "reason")
        return [
            dict(zip(cols, r, strict=True))
            for r in self.conn.execute(
                "SELECT hash, kind, created_at, reason FROM tombstones ORDER BY created_at, hash"
            )
        ]

    def remove_tombstone(self, hash_: str) -> bool:
        cur = self.conn.execute("DELETE FROM tombstones WHERE hash = ?", (hash_,))
        return cur.rowcount > 0

    def has_tombstones(self) -> bool:
        return self.conn.execute("SELECT 1 FROM tombstones LIMIT 1").fetchone() is not None

    # --- files written for clients -------------------------------------------------------------

    def note_client_files(self, rows: Iterable[tuple[str, str, str, str, str]]) -> None:
        """(namespace, client_id, path, kind, written_at) of files written for a client."""
        self.conn.executemany(
            "INSERT INTO client_files (namespace, client_id, path, kind, written_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (namespace, client_id, path) DO UPDATE SET "
            "kind = excluded.kind, written_at = excluded.written_at",
            list(rows),
        )

    def client_files(self, namespace: str, client_id: str) -> list[dict[str, Any]]:
        cols = ("path", "kind", "written_at")
        return [
            dict(zip(cols, r, strict=True))
            for r in self.conn.execute(
                "SELECT path, kind, written_at FROM client_files WHERE namespace = ? "
                "AND client_id = ? ORDER BY path",
                (namespace, client_id),
            )
        ]

    # --- one client's rows ---------------------------------------------------------------------

    def stored_keys(self, source: str) -> Iterator[str]:
        """The source keys stored for ``source``: administrations, then quarantine entries.

        Read page by page in key order, so the caller may change the tables meanwhile (a
        key deleted before its page is read is simply not yielded)."""
        for table in ("administrations", "quarantine"):
            after = ""
            while True:
                page = [
                    k
                    for (k,) in self.conn.execute(
                        f"SELECT source_key FROM {table} WHERE source = ? AND source_key > ? "
                        "ORDER BY source_key LIMIT 2000",
                        (source, after),
                    )
                ]
                if not page:
                    break
                yield from page
                after = page[-1]

    def client_namespaces(self, client_id: str) -> list[str]:
        """The namespaces in which ``client_id`` has any data (a spelling or a report file left
        in a namespace the client's source no longer uses counts too)."""
        found: set[str] = set()
        tables = [t for t in CLIENT_TABLES if t != "dirty_clients"] + ["flags", "outbox"]
        for table in tables:
            found.update(
                ns
                for (ns,) in self.conn.execute(
                    f"SELECT DISTINCT namespace FROM {table} WHERE client_id = ?", (client_id,)
                )
            )
        return sorted(found)

    def client_table_rows(self, table: str, namespace: str, client_id: str) -> list[dict[str, Any]]:
        """Every row of ``table`` for one client, as dicts of the stored columns."""
        assert table in {*CLIENT_TABLES, "flags", "outbox"}
        cur = self.conn.execute(
            f"SELECT * FROM {table} WHERE namespace = ? AND client_id = ? ORDER BY 1, 2",
            (namespace, client_id),
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur]

    def quarantine_of_client(
        self, client_id: str, keys: Iterable[tuple[str, str]] = ()
    ) -> list[dict[str, Any]]:
        """Quarantine entries of a client: those whose (source, key) is in ``keys``, and those
        whose key or any raw value names ``client_id`` as a whole code (any letter case, and
        inside a value such as an episode id ``C001-E1``, never inside a longer code)."""
        import re

        wanted = set(keys)
        names = re.compile(
            rf"(?<![A-Za-z0-9]){re.escape(client_id.strip())}(?![A-Za-z0-9])", re.IGNORECASE
        )
        out = []
        cur = self.conn.execute(
            "SELECT source, source_key, location, reasons, raw, first_seen, last_seen "
            "FROM quarantine ORDER BY source, source_key"
        )
        cols = [d[0] for d in cur.description]
        for r in cur:
            row = dict(zip(cols, r, strict=True))
            match = (row["source"], row["source_key"]) in wanted or bool(
                names.search(row["source_key"])
            )
            if not match and row["raw"]:
                try:
                    raw = json.loads(row["raw"])
                except ValueError:
                    raw = row["raw"]
                values = raw.values() if isinstance(raw, dict) else [raw]
                match = any(isinstance(v, str) and names.search(v) for v in values)
            if match:
                out.append(row)
        return out

    def delete_client_rows(
        self,
        namespace: str,
        client_id: str,
        quarantine: Sequence[tuple[str, str]],
    ) -> dict[str, int]:
        """Delete every row of one client (inside the caller's transaction): its tables,
        alerts and their events, the quarantine entries given, its outbox rows (kept in
        ``outbox_removed`` until the targets have dropped them) and their push ledger.
        Returns the rows deleted per table."""
        c = self.conn
        counts: dict[str, int] = {}
        flag_ids = [
            fid
            for (fid,) in c.execute(
                "SELECT id FROM flags WHERE namespace = ? AND client_id = ?",
                (namespace, client_id),
            )
        ]
        counts["flag_events"] = sum(
            c.execute("DELETE FROM flag_events WHERE flag_id = ?", (fid,)).rowcount
            for fid in flag_ids
        )
        counts["push_ledger"] = c.execute(
            "DELETE FROM push_ledger WHERE EXISTS (SELECT 1 FROM administrations a WHERE "
            "a.namespace = ? AND a.client_id = ? AND a.source = push_ledger.source AND "
            "a.source_key = push_ledger.source_key) OR EXISTS (SELECT 1 FROM outbox o WHERE "
            "o.namespace = ? AND o.client_id = ? AND o.source = push_ledger.source AND "
            "o.source_key = push_ledger.source_key)",
            (namespace, client_id, namespace, client_id),
        ).rowcount
        counts["flags"] = c.execute(
            "DELETE FROM flags WHERE namespace = ? AND client_id = ?", (namespace, client_id)
        ).rowcount
        for table in CLIENT_TABLES:
            counts[table] = c.execute(
                f"DELETE FROM {table} WHERE namespace = ? AND client_id = ?",
                (namespace, client_id),
            ).rowcount
        counts["quarantine"] = sum(
            c.execute("DELETE FROM quarantine WHERE source = ? AND source_key = ?", pair).rowcount
            for pair in quarantine
        )
        c.execute(
            "INSERT INTO outbox_removed (source, source_key) SELECT source, source_key "
            "FROM outbox WHERE namespace = ? AND client_id = ? "
            "ON CONFLICT (source, source_key) DO NOTHING",
            (namespace, client_id),
        )
        counts["outbox"] = c.execute(
            "DELETE FROM outbox WHERE namespace = ? AND client_id = ?", (namespace, client_id)
        ).rowcount
        return {k: v for k, v in counts.items() if v}

    def delete_flags_of_episode(self, namespace: str, client_id: str, episode_id: str) -> int:
        """Delete one episode's alerts and their events (retention)."""
        c = self.conn
        ids = [
            fid
            for (fid,) in c.execute(
                "SELECT id FROM flags WHERE namespace = ? AND client_id = ? AND episode_id = ?",
                (namespace, client_id, episode_id),
            )
        ]
        for fid in ids:
            c.execute("DELETE FROM flag_events WHERE flag_id = ?", (fid,))
            c.execute("DELETE FROM flags WHERE id = ?", (fid,))
        return len(ids)

    def removed_keys(self, source: str, limit: int) -> list[str]:
        """Keys a batch target may still hold though their rows left the outbox (a key back
        in the outbox is not among them: the next push overwrites it)."""
        self.conn.execute(
            "DELETE FROM outbox_removed WHERE source = ? AND source_key IN "
            "(SELECT source_key FROM outbox WHERE source = ?)",
            (source, source),
        )
        return [
            k
            for (k,) in self.conn.execute(
                "SELECT source_key FROM outbox_removed WHERE source = ? ORDER BY source_key "
                "LIMIT ?",
                (source, limit),
            )
        ]

    def forget_removed_keys(self, source: str, keys: Sequence[str]) -> None:
        """The target confirmed these rows are gone: forget them and their ledger rows."""
        pairs = [(source, k) for k in keys]
        self.conn.executemany(
            "DELETE FROM outbox_removed WHERE source = ? AND source_key = ?", pairs
        )
        self.conn.executemany("DELETE FROM push_ledger WHERE source = ? AND source_key = ?", pairs)
