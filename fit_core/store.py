"""The local store: SQLite (WAL) by default, schema versioned with migrations.

SQL is kept portable (``INSERT ... ON CONFLICT DO UPDATE``, no SQLite-only tricks beyond the
PRAGMAs in :func:`Store.open`) so a PostgreSQL store can implement the same interface.

Tables: administrations, dirty_clients (clients whose scores must be recomputed: written in the
same transaction as the administration, so a crash between upsert and recompute loses nothing),
quarantine, flags + flag_events (alerts and their lifecycle, see :mod:`fit_core.alert_store`),
outbox + outbox_pending + push_ledger (what must be / is not yet confirmed / was pushed, by
content hash), bookmarks, runs (no PHI), meta
(schema version, the scoring fingerprint), source_state (what an adapter keeps between runs, see
:mod:`fit_core.state`), client_spellings (how each client code was typed, see
:mod:`fit_core.identity`), audit_log, tombstones and client_files (see
:mod:`fit_core.privacy_store`), notify_messages + notify_ledger + notify_routes (what was sent
to whom on which route, see :mod:`fit_core.notify.ledger`).

The file is created readable by the owner only (0600), and so are its WAL and journal files.
Deleted rows are overwritten (``secure_delete``), so an erased client leaves no trace in free
pages. A store encrypted with SQLCipher is opened with the key from the secret chain (see
:mod:`fit_core.encryption`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import storefile
from .alert_store import LIFECYCLE_MIGRATION, AlertStore
from .inputs import storable, storable_text
from .models import Administration, Appointment, ClientContext, ClientInfo, OutboxItem
from .notify.ledger import NOTIFY_MIGRATION
from .privacy_store import PRIVACY_MIGRATION, PrivacyStore

log = logging.getLogger(__name__)

SCHEMA_VERSION = 11
#: the migration that brought the alert lifecycle (tests build stores from just before it)
ALERT_LIFECYCLE_SCHEMA = 7
#: the migration that keeps one trajectory model per measure and rater, with retirement times
TRAJECTORY_MODELS_SCHEMA = 8
#: the privacy tables: audit log, tombstones, files written for clients
PRIVACY_SCHEMA = 9
#: the migration that brought the notification ledger (see fit_core.notify.ledger)
NOTIFY_SCHEMA = 10
#: the migration that keeps the unconfirmed outbox rows in a narrow table of their own
OUTBOX_PENDING_SCHEMA = 11

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE administrations (
            source TEXT NOT NULL,
            source_key TEXT NOT NULL,
            namespace TEXT NOT NULL,
            client_id TEXT NOT NULL,
            measure TEXT NOT NULL,
            administered_at TEXT NOT NULL,
            local_date TEXT NOT NULL,
            date_only INTEGER NOT NULL,
            total REAL NOT NULL,
            items TEXT,
            clinician_id TEXT,
            episode_id TEXT,
            rater TEXT NOT NULL,
            age INTEGER,
            session_hint INTEGER,
            extra TEXT,
            hash TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (source, source_key)
        )""",
        "CREATE INDEX administrations_client ON administrations (namespace, client_id)",
        """CREATE TABLE dirty_clients (
            namespace TEXT NOT NULL,
            client_id TEXT NOT NULL,
            PRIMARY KEY (namespace, client_id)
        )""",
        """CREATE TABLE quarantine (
            source TEXT NOT NULL,
            source_key TEXT NOT NULL,
            location TEXT,
            reasons TEXT NOT NULL,
            raw TEXT,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            PRIMARY KEY (source, source_key)
        )""",
        """CREATE TABLE flags (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            source_key TEXT NOT NULL,
            namespace TEXT NOT NULL,
            client_id TEXT NOT NULL,
            rule_id TEXT NOT NULL,
            rule_version INTEGER NOT NULL,
            severity TEXT NOT NULL,
            message TEXT NOT NULL,
            inputs TEXT NOT NULL,
            state TEXT NOT NULL,
            raised_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (source, source_key, rule_id)
        )""",
        "CREATE INDEX flags_client ON flags (namespace, client_id)",
        "CREATE INDEX flags_state ON flags (state)",
        """CREATE TABLE outbox (
            source TEXT NOT NULL,
            source_key TEXT NOT NULL,
            namespace TEXT NOT NULL,
            client_id TEXT NOT NULL,
            payload TEXT NOT NULL,
            extra TEXT,
            hash TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (source, source_key)
        )""",
        """CREATE TABLE push_ledger (
            source TEXT NOT NULL,
            source_key TEXT NOT NULL,
            hash TEXT NOT NULL,
            pushed_at TEXT NOT NULL,
            PRIMARY KEY (source, source_key)
        )""",
        """CREATE TABLE bookmarks (
            source TEXT PRIMARY KEY,
            value TEXT,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            sources TEXT NOT NULL,
            dry_run INTEGER NOT NULL,
            counts TEXT,
            outcome TEXT
        )""",
    ),
    2: (
        # date rules (srs.missing, attendance.dropout_risk): when to look at a client again
        """CREATE TABLE client_reviews (
            namespace TEXT NOT NULL,
            client_id TEXT NOT NULL,
            review_on TEXT NOT NULL,
            PRIMARY KEY (namespace, client_id)
        )""",
        "CREATE INDEX client_reviews_due ON client_reviews (review_on)",
        # expected-trajectory models: clinic-fitted or supplied tables (JSON)
        """CREATE TABLE trajectory_models (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            created_at TEXT NOT NULL,
            data TEXT NOT NULL,
            active INTEGER NOT NULL
        )""",
    ),
    3: (
        # practice data from context adapters (attendance, date of birth, clinician)
        """CREATE TABLE appointments (
            source TEXT NOT NULL,
            source_key TEXT NOT NULL,
            namespace TEXT NOT NULL,
            client_id TEXT NOT NULL,
            starts_at TEXT NOT NULL,
            local_date TEXT NOT NULL,
            status TEXT NOT NULL,
            clinician_id TEXT,
            service_code TEXT,
            intake INTEGER NOT NULL,
            hash TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (source, source_key)
        )""",
        "CREATE INDEX appointments_client ON appointments (namespace, client_id)",
        """CREATE TABLE client_info (
            source TEXT NOT NULL,
            namespace TEXT NOT NULL,
            client_id TEXT NOT NULL,
            date_of_birth TEXT,
            clinician_id TEXT,
            status TEXT,
            hash TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (source, namespace, client_id)
        )""",
    ),
    4: (
        # what still has to be pushed, indexed, so a sync with nothing to do is not a scan
        "ALTER TABLE outbox ADD COLUMN pending INTEGER NOT NULL DEFAULT 1",
        "UPDATE outbox SET pending = 0 WHERE EXISTS (SELECT 1 FROM push_ledger p WHERE "
        "p.source = outbox.source AND p.source_key = outbox.source_key AND p.hash = outbox.hash)",
        "CREATE INDEX outbox_pending ON outbox (source, pending)",
        # rows removed from the outbox that a snapshot target still holds
        """CREATE TABLE outbox_removed (
            source TEXT NOT NULL,
            source_key TEXT NOT NULL,
            PRIMARY KEY (source, source_key)
        )""",
    ),
    5: ("ALTER TABLE administrations ADD COLUMN site TEXT",),
    6: (
        # what an adapter keeps between runs (e.g. the mapping in force for each form)
        """CREATE TABLE source_state (
            source TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (source, key)
        )""",
        # every spelling a client code arrived in before normalisation (merges are reported)
        """CREATE TABLE client_spellings (
            namespace TEXT NOT NULL,
            client_id TEXT NOT NULL,
            spelling TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            PRIMARY KEY (namespace, client_id, spelling)
        )""",
    ),
    # the alert lifecycle: one alert per condition, carried forward, superseded or closed
    ALERT_LIFECYCLE_SCHEMA: LIFECYCLE_MIGRATION,
    TRAJECTORY_MODELS_SCHEMA: (
        # one trajectory model per measure and rater, and when each stopped being in force (so
        # `--as-of` reproduces a past figure with the model of that day); before, a new model
        # replaced the one in force, so an old inactive model retired when the next was saved
        "ALTER TABLE trajectory_models ADD COLUMN retired_at TEXT",
        "UPDATE trajectory_models SET retired_at = (SELECT MIN(t.created_at) FROM "
        "trajectory_models t WHERE t.id > trajectory_models.id) WHERE active = 0",
    ),
    # privacy: the append-only audit log, tombstones of erased clients and purged records,
    # report files written for clients
    PRIVACY_SCHEMA: PRIVACY_MIGRATION,
    # the notification ledger: each alert sent at most once per route, kill-safe
    NOTIFY_SCHEMA: NOTIFY_MIGRATION,
    # what a target has not confirmed yet moves out of the outbox rows into a narrow table:
    # confirming a pushed snapshot then removes small index entries instead of rewriting every
    # outbox row (a payload of about 450 bytes) to clear its flag. Triggers keep it in step
    # with every write to the outbox: a new row, or a row whose hash changed, is unconfirmed;
    # a row that goes takes its entry along. The outbox is rebuilt without its pending column
    # (nothing would keep it true any more) and with the scores-file line of each payload
    # (fit_core.scores_csv), kept for file targets so a snapshot push streams lines; NULL: the
    # line is rendered from the payload when pushed.
    OUTBOX_PENDING_SCHEMA: (
        "DROP INDEX outbox_pending",  # the old index of (source, pending): the name is taken
        """CREATE TABLE outbox_pending (
            source TEXT NOT NULL,
            source_key TEXT NOT NULL,
            PRIMARY KEY (source, source_key)
        ) WITHOUT ROWID""",
        "INSERT INTO outbox_pending (source, source_key) "
        "SELECT source, source_key FROM outbox WHERE pending = 1",
        """CREATE TABLE outbox_rebuilt (
            source TEXT NOT NULL,
            source_key TEXT NOT NULL,
            namespace TEXT NOT NULL,
            client_id TEXT NOT NULL,
            payload TEXT NOT NULL,
            extra TEXT,
            hash TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            line TEXT,
            PRIMARY KEY (source, source_key)
        )""",
        "INSERT INTO outbox_rebuilt (source, source_key, namespace, client_id, payload, extra, "
        "hash, updated_at) SELECT source, source_key, namespace, client_id, payload, extra, "
        "hash, updated_at FROM outbox",
        "DROP TABLE outbox",
        "ALTER TABLE outbox_rebuilt RENAME TO outbox",
        "CREATE TRIGGER outbox_pending_new AFTER INSERT ON outbox BEGIN "
        "INSERT INTO outbox_pending (source, source_key) VALUES (new.source, new.source_key) "
        "ON CONFLICT (source, source_key) DO NOTHING; END",
        "CREATE TRIGGER outbox_pending_changed AFTER UPDATE OF hash ON outbox "
        "WHEN new.hash IS NOT old.hash BEGIN "
        "INSERT INTO outbox_pending (source, source_key) VALUES (new.source, new.source_key) "
        "ON CONFLICT (source, source_key) DO NOTHING; END",
        "CREATE TRIGGER outbox_pending_gone AFTER DELETE ON outbox BEGIN "
        "DELETE FROM outbox_pending WHERE source = old.source AND source_key = old.source_key; "
        "END",
    ),
}

_ADMIN_COLS = (
    "source, source_key, namespace, client_id, measure, administered_at, local_date, date_only, "
    "total, items, clinician_id, episode_id, rater, age, session_hint, extra, hash, updated_at, "
    "site"
)


def _model_pairs(data: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The (measure, rater) pairs a stored model speaks for (no raters stored: the client)."""
    raters = data.get("raters") or ["client"]
    return {(str(m), str(r)) for m in data.get("measures") or () for r in raters}


def now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def admin_row(a: Administration, hash_: str, updated_at: str) -> tuple[Any, ...]:
    return (
        a.source,
        a.source_key,
        a.namespace,
        a.client_id,
        a.measure,
        a.administered_at.isoformat(),
        a.local_date.isoformat(),
        1 if a.date_only else 0,
        a.total,
        ",".join(map(repr, a.items)) if a.items is not None else None,
        a.clinician_id,
        a.episode_id,
        a.rater,
        a.age,
        a.session_hint,
        json.dumps(dict(a.extra), sort_keys=True) if a.extra else None,
        hash_,
        updated_at,
        a.site,
    )


def row_admin(r: Sequence[Any]) -> Administration:
    items = tuple(map(float, r[9].split(","))) if r[9] else None
    return Administration(
        source=r[0],
        source_key=r[1],
        namespace=r[2],
        client_id=r[3],
        measure=r[4],
        administered_at=dt.datetime.fromisoformat(r[5]),
        local_date=dt.date.fromisoformat(r[6]),
        date_only=bool(r[7]),
        total=r[8],
        items=items,  # type: ignore[arg-type]
        clinician_id=r[10],
        episode_id=r[11],
        rater=r[12],
        age=r[13],
        session_hint=r[14],
        extra=json.loads(r[15]) if r[15] else {},
        site=r[18],
    )


def admin_hash(row: Sequence[Any]) -> str:
    """A content hash of an :func:`admin_row` (without its hash and time): dedupes re-pulls.

    The site (added in schema 5) joins the hash only when set, so older rows keep theirs."""
    content = repr(row[2:16]) if row[18] is None else repr((row[2:16], row[18]))
    return hashlib.blake2b(content.encode(), digest_size=16).hexdigest()


def admin_row_hashed(a: Administration, updated_at: str) -> tuple[tuple[Any, ...], str]:
    """The store row of an administration and its content hash.

    The same row and hash as :func:`admin_row` and :func:`admin_hash`, built once (a sync
    does this for every record it reads), with the date texts memoised."""
    moment = a.administered_at
    key = (moment, moment.tzinfo)  # equal instants in other zones print otherwise
    at = _ISO.get(key)
    if at is None:
        at = _memo_iso(key, moment)
    day = _ISO.get(a.local_date)
    if day is None:
        day = _memo_iso(a.local_date, a.local_date)
    items = a.items
    extra = a.extra
    content = (
        a.namespace,
        a.client_id,
        a.measure,
        at,
        day,
        1 if a.date_only else 0,
        a.total,
        ",".join(map(repr, items)) if items is not None else None,
        a.clinician_id,
        a.episode_id,
        a.rater,
        a.age,
        a.session_hint,
        json.dumps(dict(extra), sort_keys=True) if extra else None,
    )
    site = a.site
    text = repr(content) if site is None else repr((content, site))
    h = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return (a.source, a.source_key, *content, h, updated_at, site), h


_ISO: dict[Any, str] = {}


def _memo_iso(key: Any, value: dt.date) -> str:
    if len(_ISO) >= 50_000:
        _ISO.clear()
    text = _ISO[key] = value.isoformat()
    return text


class Store(AlertStore, PrivacyStore):
    """A SQLite store. Use :meth:`open`; ``":memory:"`` works for tests.

    The alert methods (lifecycle, history, acknowledgements) come from
    :class:`fit_core.alert_store.AlertStore`, the audit log, tombstones and a client's rows
    from :class:`fit_core.privacy_store.PrivacyStore`."""

    def _in(self, sql: str, head: tuple[Any, ...], values: Sequence[Any]) -> Iterator[Any]:
        """Rows of ``sql`` (``{marks}`` is the IN list) over ``values`` in chunks of 500,
        which keeps every statement under SQLite's variable limit."""
        for i in range(0, len(values), 500):
            chunk = values[i : i + 500]
            yield from self.conn.execute(
                sql.format(marks=",".join("?" * len(chunk))), (*head, *chunk)
            )

    def _for_clients(self, sql: str, clients: Iterable[tuple[str, str]]) -> Iterator[Any]:
        """Rows of ``sql`` (``namespace = ? AND client_id IN ({marks})``) for ``clients``."""
        for ns, cids in _by_namespace(list(clients)).items():
            yield from self._in(sql, (ns,), cids)

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self.encrypted = False  # opened through SQLCipher (see fit_core.encryption)
        #: while two processes write this store (a pull read by two processes): the file
        #: descriptor of a lock file each opened for itself, locked around every write
        #: transaction, so the one waits for the other's commit without SQLite's busy loop
        #: (which sleeps up to 100 ms at a time)
        self.gate: int | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str, *, key: str | None = None) -> Store:
        """Open (and create or migrate) the store at ``path``; ``":memory:"`` for tests.

        The path is resolved to the real file first (see :mod:`fit_core.storefile`). Any
        problem with the file is a :class:`~fit_core.storefile.StoreError` (exit 3) that names
        it and says what to do. An encrypted store (see :mod:`fit_core.encryption`) is opened
        with ``key``, else with the store key from the secret chain; a missing or wrong key is
        a ConfigError (exit 3).
        """
        from . import encryption

        p = str(path)
        if p == ":memory:":
            return cls._connect(p)
        target = storefile.prepare(p)
        if not os.access(target, os.R_OK | os.W_OK):
            # SQLite would open it read-only without a word and fail at the first write
            raise storefile.store_error(target, PermissionError(13, "read-only"))
        encrypted = encryption.is_encrypted(target)
        if encrypted and key is None:
            key, _where = encryption.find_key()
            if key is None:
                raise encryption.missing_key_error(target)
        try:
            return cls._connect(str(target), key if encrypted else None)
        except (OSError, sqlite3.Error) as exc:
            raise storefile.store_error(target, exc) from None

    @classmethod
    def _connect(cls, p: str, key: str | None = None) -> Store:
        from . import encryption

        old_umask = os.umask(0o077)  # WAL and SHM files are created owner-only too
        try:
            if key is not None:
                conn = encryption.connect(p, key)
            else:
                conn = sqlite3.connect(p, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            except BaseException:
                conn.close()
                raise
        finally:
            os.umask(old_umask)
        try:
            conn.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten, not left
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            store = cls(conn, p)
            store.encrypted = key is not None
            store.migrate()
            if p != ":memory:":
                mode = os.stat(p).st_mode & 0o777
                if mode & 0o077:  # owner-only: take rights away, never add any
                    os.chmod(p, mode & 0o600)
        except BaseException:
            conn.close()
            raise
        return store

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def detached(self) -> Iterator[None]:
        """Close the connection for a moment and open it again afterwards.

        A process forked meanwhile holds no SQLite state of this store, so it can open the
        store over a connection of its own (a connection, or a lock SQLite keeps for it,
        carried over a fork must never be used in the child). Only for a file store that is
        not in a transaction and not encrypted."""
        assert self.path != ":memory:" and not self.encrypted and not self.conn.in_transaction
        self.conn.close()
        try:
            yield
        finally:
            self.conn = type(self)._connect(self.path).conn

    def migrate(self) -> None:
        c = self.conn
        c.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            from .errors import ConfigError

            raise ConfigError(
                f"the store {self.path} has schema version {version}, newer than this fit-sync "
                f"({SCHEMA_VERSION})",
                hint="upgrade fit-sync, or point [store] path at another file",
            )
        for v in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                for stmt in MIGRATIONS[v]:
                    c.execute(stmt)
                c.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(v),),
                )
            log.info("store migrated to schema version %d", v)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        gate = self.gate
        if gate is not None:
            import fcntl  # POSIX; a gate is set only where processes are forked (Linux)

            fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
        finally:
            if gate is not None:
                fcntl.flock(gate, fcntl.LOCK_UN)

    # --- administrations -------------------------------------------------------------------------

    def existing(self, source: str, keys: Sequence[str]) -> dict[str, tuple[str, str, str]]:
        """source_key → (hash, namespace, client_id) for the keys already stored (a key that
        is not valid text cannot have been stored, and is not looked up)."""
        keys = [k for k in keys if storable(k)]
        return {
            k: (h, ns, cid)
            for k, h, ns, cid in self._in(
                "SELECT source_key, hash, namespace, client_id FROM administrations "
                "WHERE source = ? AND source_key IN ({marks})",
                (source,),
                keys,
            )
        }

    def clients_with_rows(self, clients: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of ``clients`` have at least one stored administration."""
        return {
            (ns, cid)
            for ns, cid in self._for_clients(
                "SELECT DISTINCT namespace, client_id FROM administrations "
                "WHERE namespace = ? AND client_id IN ({marks})",
                clients,
            )
        }

    def upsert_administrations(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.conn.executemany(
            f"INSERT INTO administrations ({_ADMIN_COLS}) VALUES "
            f"({','.join('?' * 19)}) ON CONFLICT (source, source_key) DO UPDATE SET "
            + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in _ADMIN_COLS.split(",")[2:]),
            rows,
        )

    def delete_administrations(self, source: str, keys: Sequence[str]) -> None:
        """Remove administrations (their clients must be marked dirty: the rescore carries their
        alerts to what remains, or closes them; alert history is never deleted)."""
        self.conn.executemany(
            "DELETE FROM administrations WHERE source = ? AND source_key = ?",
            [(source, k) for k in keys],
        )
        self.remove_outbox(source, keys)

    def mark_dirty(self, clients: Iterable[tuple[str, str]]) -> None:
        self.conn.executemany(
            "INSERT INTO dirty_clients (namespace, client_id) VALUES (?, ?) "
            "ON CONFLICT (namespace, client_id) DO NOTHING",
            list(clients),
        )

    def dirty_count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM dirty_clients").fetchone()[0]

    def dirty_batch(
        self, limit: int, after: tuple[str, str] | None = None
    ) -> list[tuple[str, str]]:
        """Up to ``limit`` dirty clients in (namespace, client id) order, those after
        ``after`` when given."""
        if after is None:
            rows = self.conn.execute(
                "SELECT namespace, client_id FROM dirty_clients ORDER BY namespace, client_id "
                "LIMIT ?",
                (limit,),
            )
        else:
            rows = self.conn.execute(
                "SELECT namespace, client_id FROM dirty_clients WHERE (namespace, client_id) "
                "> (?, ?) ORDER BY namespace, client_id LIMIT ?",
                (*after, limit),
            )
        return [(ns, cid) for ns, cid in rows]

    def clear_dirty(self, clients: Sequence[tuple[str, str]]) -> None:
        self.conn.executemany(
            "DELETE FROM dirty_clients WHERE namespace = ? AND client_id = ?", clients
        )

    def client_administrations(
        self, clients: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[Administration]]:
        """Every stored administration of each client, grouped by client."""
        out: dict[tuple[str, str], list[Administration]] = {c: [] for c in clients}
        for r in self._for_clients(
            f"SELECT {_ADMIN_COLS} FROM administrations "
            "WHERE namespace = ? AND client_id IN ({marks})",
            clients,
        ):
            out[(r[2], r[3])].append(row_admin(r))
        return out

    def iter_administrations(self, source: str | None = None) -> Iterator[Administration]:
        sql = f"SELECT {_ADMIN_COLS} FROM administrations"
        args: tuple[Any, ...] = ()
        if source:
            sql += " WHERE source = ?"
            args = (source,)
        sql += " ORDER BY namespace, client_id, administered_at"
        for r in self.conn.execute(sql, args):
            yield row_admin(r)

    def count(self, table: str, source: str | None = None) -> int:
        assert table in {"administrations", "quarantine", "outbox", "flags", "push_ledger"}
        if source is None:
            return self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        return self.conn.execute(
            f"SELECT COUNT(*) FROM {table} WHERE source = ?", (source,)
        ).fetchone()[0]

    # --- quarantine ----------------------------------------------------------------------------

    def quarantine(
        self,
        source: str,
        source_key: str,
        reasons: Mapping[str, str],
        location: str,
        raw: Mapping[str, Any] | None,
        seen_at: str,
    ) -> None:
        self.conn.execute(
            "INSERT INTO quarantine (source, source_key, location, reasons, raw, first_seen, "
            "last_seen) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, source_key) DO UPDATE "
            "SET location = excluded.location, reasons = excluded.reasons, raw = excluded.raw, "
            "last_seen = excluded.last_seen",
            (
                source,
                storable_text(source_key),  # a key that cannot be stored is quarantined too
                storable_text(location or ""),
                json.dumps(dict(reasons), sort_keys=True),
                json.dumps(dict(raw), default=str) if raw is not None else None,
                seen_at,
                seen_at,
            ),
        )

    def release_quarantine(self, source: str, keys: Sequence[str]) -> None:
        self.conn.executemany(
            "DELETE FROM quarantine WHERE source = ? AND source_key = ?",
            [(source, k) for k in keys],
        )

    def quarantined(self, source: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT source, source_key, location, reasons, first_seen, last_seen FROM quarantine"
        args: tuple[Any, ...] = ()
        if source:
            sql += " WHERE source = ?"
            args = (source,)
        return [
            {
                "source": s,
                "source_key": k,
                "location": loc,
                "reasons": json.loads(reasons),
                "first_seen": first,
                "last_seen": last,
            }
            for s, k, loc, reasons, first, last in self.conn.execute(sql + " ORDER BY 1, 2", args)
        ]

    # --- outbox --------------------------------------------------------------------------------

    def write_outbox(self, items: Sequence[tuple[OutboxItem, str, str]], at: str) -> int:
        """Upsert outbox rows (item, namespace, client_id); unchanged hashes are not rewritten.

        A new or changed row is *pending* until the target confirms it."""
        from .payload import item_row

        return self.write_outbox_rows([item_row(it, ns, cid, at) for it, ns, cid in items])

    def write_outbox_rows(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """:meth:`write_outbox` for ready rows: (source, source_key, namespace, client_id,
        payload JSON, extra JSON or None, hash, updated_at), optionally followed by the
        scores-file line of the payload (see :mod:`fit_core.payload`).

        A new row, or one whose hash changed, becomes unconfirmed (``outbox_pending``: the
        store's triggers add it)."""
        # an unchanged payload is not pushed again, but the row still follows its client to
        # another namespace (a source's namespace changed): erasure and export find rows there
        cur = self.conn.executemany(
            "INSERT INTO outbox (source, source_key, namespace, client_id, payload, extra, hash, "
            "updated_at, line) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, "
            "source_key) DO UPDATE SET namespace = excluded.namespace, "
            "client_id = excluded.client_id, payload = excluded.payload, extra = excluded.extra, "
            "hash = excluded.hash, updated_at = excluded.updated_at, line = excluded.line "
            "WHERE outbox.hash <> excluded.hash OR outbox.namespace <> excluded.namespace "
            "OR outbox.client_id <> excluded.client_id",
            [r if len(r) == 9 else (*r, None) for r in rows],
        )
        return cur.rowcount

    def remove_outbox(self, source: str, keys: Sequence[str]) -> None:
        """Drop outbox rows; a snapshot target that holds them is rewritten at the next push."""
        pairs = [(source, k) for k in keys]
        self.conn.executemany(
            "INSERT INTO outbox_removed (source, source_key) SELECT source, source_key "
            "FROM outbox WHERE source = ? AND source_key = ? "
            "ON CONFLICT (source, source_key) DO NOTHING",
            pairs,
        )
        self.conn.executemany("DELETE FROM outbox WHERE source = ? AND source_key = ?", pairs)

    def mark_all_pending(self, source: str) -> int:
        """Every outbox row of ``source`` is pushed again (the target is being rewritten)."""
        cur = self.conn.execute(
            "INSERT INTO outbox_pending (source, source_key) SELECT source, source_key "
            "FROM outbox WHERE source = ? ON CONFLICT (source, source_key) DO NOTHING",
            (source,),
        )
        return cur.rowcount

    def pending_count(self, source: str) -> int:
        """Rows the target has not confirmed yet (an indexed count)."""
        return self.conn.execute(
            "SELECT COUNT(*) FROM outbox_pending WHERE source = ?", (source,)
        ).fetchone()[0]

    def forget_removed(self, source: str) -> None:
        """A batch target has no delete: removed rows are only forgotten."""
        self.conn.execute("DELETE FROM outbox_removed WHERE source = ?", (source,))

    def removed_count(self, source: str) -> int:
        return self.conn.execute(
            "SELECT COUNT(*) FROM outbox_removed WHERE source = ?", (source,)
        ).fetchone()[0]

    def pending(self, source: str, batch_size: int) -> Iterator[list[OutboxItem]]:
        """Batches of outbox rows not yet confirmed at the target (fetched page by page)."""
        after = ""
        while True:
            rows = self.conn.execute(
                "SELECT o.source, o.source_key, o.payload, o.hash, o.extra, o.line "
                "FROM outbox_pending p JOIN outbox o "
                "ON o.source = p.source AND o.source_key = p.source_key "
                "WHERE p.source = ? AND p.source_key > ? "
                "ORDER BY p.source_key LIMIT ?",
                (source, after, batch_size),
            ).fetchall()
            if not rows:
                return
            yield [_outbox_item(r) for r in rows]
            after = rows[-1][1]

    def snapshot(self, source: str) -> Iterator[OutboxItem]:
        """Every outbox row of a source, sorted by source key (streamed)."""
        cur = self.conn.cursor()
        cur.arraysize = 2000
        for r in cur.execute(
            "SELECT source, source_key, payload, hash, extra, line FROM outbox WHERE source = ? "
            "ORDER BY source_key",
            (source,),
        ):
            yield _outbox_item(r)

    def line_only_clients(self, source: str) -> set[tuple[str, str]]:
        """The clients of the outbox rows of ``source`` that keep only their scores-file
        lines (an empty payload, see ``fit_core.payload.LINE_ONLY``)."""
        return {
            (ns, cid)
            for ns, cid in self.conn.execute(
                "SELECT DISTINCT namespace, client_id FROM outbox WHERE source = ? "
                "AND payload = ''",
                (source,),
            )
        }

    def snapshot_lines(self, source: str) -> Iterator[str]:
        """The scores-file line of every outbox row of a source, sorted by source key
        (streamed): the stored line, or the line of its payload (see :mod:`fit_core.scores_csv`)
        for a row stored without one."""
        from .scores_csv import line_of_payload

        cur = self.conn.cursor()
        cur.arraysize = 2000
        for line, payload in cur.execute(
            "SELECT line, CASE WHEN line IS NULL THEN payload END FROM outbox "
            "WHERE source = ? ORDER BY source_key",
            (source,),
        ):
            yield line if line is not None else line_of_payload(_json(payload))

    def mark_pushed(self, source: str, items: Sequence[tuple[str, str]], at: str) -> None:
        """Record (source_key, hash) pairs as confirmed at the target."""
        rows = [(source, k, h, at) for k, h in items]
        self.conn.executemany(
            "INSERT INTO push_ledger (source, source_key, hash, pushed_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (source, source_key) DO UPDATE SET hash = excluded.hash, "
            "pushed_at = excluded.pushed_at",
            rows,
        )
        self.conn.executemany(
            "DELETE FROM outbox_pending WHERE source = ? AND source_key = ? AND EXISTS "
            "(SELECT 1 FROM outbox o WHERE o.source = ? AND o.source_key = ? AND o.hash = ?)",
            [(source, k, source, k, h) for k, h in items],
        )

    def mark_all_pushed(self, source: str, at: str) -> None:
        """Snapshot push done: the target now holds every outbox row of the source."""
        self.conn.execute(
            "INSERT INTO push_ledger (source, source_key, hash, pushed_at) "
            "SELECT o.source, o.source_key, o.hash, ? FROM outbox_pending p JOIN outbox o "
            "ON o.source = p.source AND o.source_key = p.source_key WHERE p.source = ? "
            "ON CONFLICT (source, source_key) DO UPDATE SET hash = excluded.hash, "
            "pushed_at = excluded.pushed_at",
            (at, source),
        )
        self.conn.execute("DELETE FROM outbox_pending WHERE source = ?", (source,))
        self.conn.execute(
            "DELETE FROM push_ledger WHERE source = ? AND source_key IN "
            "(SELECT source_key FROM outbox_removed WHERE source = ?)",
            (source, source),
        )
        self.conn.execute("DELETE FROM outbox_removed WHERE source = ?", (source,))

    # --- practice data (appointments, client info) ------------------------------------------

    def upsert_appointments(
        self, items: Sequence[Appointment], at: str, tally: dict[str, int] | None = None
    ) -> set[tuple[str, str]]:
        """Store appointments; returns the clients whose appointments changed (old and new).

        ``tally`` (optional) counts the items as ``new``, ``changed`` or ``unchanged``."""
        if not items:
            return set()
        source = items[0].source
        keys = [a.source_key for a in items]
        old = {
            k: (h, ns, cid)
            for k, h, ns, cid in self._in(
                "SELECT source_key, hash, namespace, client_id FROM appointments "
                "WHERE source = ? AND source_key IN ({marks})",
                (source,),
                keys,
            )
        }
        changed: set[tuple[str, str]] = set()
        rows = []
        for a in items:
            row = (
                a.source,
                a.source_key,
                a.namespace,
                a.client_id,
                a.starts_at.isoformat(),
                a.local_date.isoformat(),
                a.status,
                a.clinician_id,
                a.service_code,
                1 if a.intake else 0,
            )
            h = hashlib.blake2b(repr(row).encode(), digest_size=16).hexdigest()
            prev = old.get(a.source_key)
            if tally is not None:
                what = "new" if prev is None else "unchanged" if prev[0] == h else "changed"
                tally[what] = tally.get(what, 0) + 1
            if prev is not None and prev[0] == h:
                continue
            if prev is not None:
                changed.add((prev[1], prev[2]))
            changed.add((a.namespace, a.client_id))
            old[a.source_key] = (h, a.namespace, a.client_id)
            rows.append((*row, h, at))
        self.conn.executemany(
            "INSERT INTO appointments (source, source_key, namespace, client_id, starts_at, "
            "local_date, status, clinician_id, service_code, intake, hash, updated_at) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, source_key) DO UPDATE SET "
            "namespace = excluded.namespace, client_id = excluded.client_id, "
            "starts_at = excluded.starts_at, local_date = excluded.local_date, "
            "status = excluded.status, clinician_id = excluded.clinician_id, "
            "service_code = excluded.service_code, intake = excluded.intake, "
            "hash = excluded.hash, updated_at = excluded.updated_at",
            rows,
        )
        return changed

    def upsert_client_info(
        self, items: Sequence[ClientInfo], at: str, tally: dict[str, int] | None = None
    ) -> set[tuple[str, str]]:
        """Store client info; returns the clients whose info changed.

        ``tally`` (optional) counts the items as ``new``, ``changed`` or ``unchanged``."""
        changed: set[tuple[str, str]] = set()
        for c in items:
            if tally is not None:
                known = self.conn.execute(
                    "SELECT 1 FROM client_info WHERE source = ? AND namespace = ? "
                    "AND client_id = ?",
                    (c.source, c.namespace, c.client_id),
                ).fetchone()
            row = (
                c.source,
                c.namespace,
                c.client_id,
                c.date_of_birth.isoformat() if c.date_of_birth else None,
                c.clinician_id,
                c.status,
            )
            h = hashlib.blake2b(repr(row).encode(), digest_size=16).hexdigest()
            cur = self.conn.execute(
                "INSERT INTO client_info (source, namespace, client_id, date_of_birth, "
                "clinician_id, status, hash, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (source, namespace, client_id) DO UPDATE SET "
                "date_of_birth = excluded.date_of_birth, clinician_id = excluded.clinician_id, "
                "status = excluded.status, hash = excluded.hash, updated_at = excluded.updated_at "
                "WHERE client_info.hash <> excluded.hash",
                (*row, h, at),
            )
            if cur.rowcount:
                changed.add((c.namespace, c.client_id))
            if tally is not None:
                what = "unchanged" if not cur.rowcount else "changed" if known else "new"
                tally[what] = tally.get(what, 0) + 1
        return changed

    def prune_practice(
        self, source: str, keep: set[str], keep_clients: set[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        """Drop a full-pull source's appointments and client info it no longer yields.

        Returns the clients affected. Their outbox rows for that source go too (the practice
        system no longer knows them)."""
        dirty: set[tuple[str, str]] = set()
        gone = [
            (k, ns, cid)
            for k, ns, cid in self.conn.execute(
                "SELECT source_key, namespace, client_id FROM appointments WHERE source = ?",
                (source,),
            )
            if k not in keep
        ]
        self.conn.executemany(
            "DELETE FROM appointments WHERE source = ? AND source_key = ?",
            [(source, k) for k, _, _ in gone],
        )
        dirty.update((ns, cid) for _, ns, cid in gone)
        stale = [
            (ns, cid)
            for ns, cid in self.conn.execute(
                "SELECT namespace, client_id FROM client_info WHERE source = ?", (source,)
            )
            if (ns, cid) not in keep_clients
        ]
        self.conn.executemany(
            "DELETE FROM client_info WHERE source = ? AND namespace = ? AND client_id = ?",
            [(source, ns, cid) for ns, cid in stale],
        )
        dirty.update(stale)
        for ns, cid in dirty:
            still = self.conn.execute(
                "SELECT 1 FROM appointments WHERE source = ? AND namespace = ? AND client_id = ? "
                "UNION ALL SELECT 1 FROM client_info WHERE source = ? AND namespace = ? "
                "AND client_id = ?",
                (source, ns, cid, source, ns, cid),
            ).fetchone()
            if still is None:
                self.remove_outbox(source, [f"client:{ns}:{cid}"])
        return dirty

    def client_contexts(
        self, clients: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], ClientContext]:
        """Appointments and client info per client (only clients that have some)."""
        appts: dict[tuple[str, str], list[Appointment]] = {}
        for r in self._for_clients(
            "SELECT source, source_key, namespace, client_id, starts_at, local_date, status, "
            "clinician_id, service_code, intake FROM appointments "
            "WHERE namespace = ? AND client_id IN ({marks}) ORDER BY starts_at",
            clients,
        ):
            appts.setdefault((r[2], r[3]), []).append(
                Appointment(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    dt.datetime.fromisoformat(r[4]),
                    dt.date.fromisoformat(r[5]),
                    r[6],
                    r[7],
                    r[8],
                    bool(r[9]),
                )
            )
        infos = {
            (r[1], r[2]): ClientInfo(
                r[0], r[1], r[2], dt.date.fromisoformat(r[3]) if r[3] else None, r[4], r[5]
            )
            for r in self._for_clients(
                "SELECT source, namespace, client_id, date_of_birth, clinician_id, status "
                "FROM client_info WHERE namespace = ? AND client_id IN ({marks})",
                clients,
            )
        }
        return {
            c: ClientContext(tuple(appts.get(c, ())), infos.get(c)) for c in set(appts) | set(infos)
        }

    # --- date rules --------------------------------------------------------------------------

    def set_reviews(self, reviews: Sequence[tuple[str, str, str | None]]) -> None:
        """(namespace, client_id, review_on ISO date or None) for each rescored client."""
        self.conn.executemany(
            "DELETE FROM client_reviews WHERE namespace = ? AND client_id = ?",
            [(ns, cid) for ns, cid, when in reviews if when is None],
        )
        self.conn.executemany(
            "INSERT INTO client_reviews (namespace, client_id, review_on) VALUES (?, ?, ?) "
            "ON CONFLICT (namespace, client_id) DO UPDATE SET review_on = excluded.review_on",
            [r for r in reviews if r[2] is not None],
        )

    def mark_due_reviews(self, today: str) -> int:
        """Mark dirty every client whose date rules may have changed by ``today``."""
        with self.transaction():
            cur = self.conn.execute(
                "INSERT INTO dirty_clients (namespace, client_id) SELECT namespace, client_id "
                "FROM client_reviews WHERE review_on <= ? "
                "ON CONFLICT (namespace, client_id) DO NOTHING",
                (today,),
            )
            return cur.rowcount

    def mark_all_dirty(self) -> None:
        """Rescore everyone (after a settings or trajectory-model change)."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO dirty_clients (namespace, client_id) SELECT DISTINCT namespace, "
                "client_id FROM administrations WHERE true "
                "ON CONFLICT (namespace, client_id) DO NOTHING"
            )

    #: the tables whose rows belong to one source (``source`` column)
    SOURCE_TABLES = (
        "administrations",
        "appointments",
        "client_info",
        "quarantine",
        "outbox",
        "outbox_removed",
        "push_ledger",
        "bookmarks",
        "source_state",
    )

    def sources_held(self) -> dict[str, int]:
        """Each source name the store holds administrations or practice data of, with the
        number of those rows."""
        out: dict[str, int] = {}
        for table in ("administrations", "appointments", "client_info"):
            for source, n in self.conn.execute(
                f"SELECT source, count(*) FROM {table} GROUP BY source"
            ):
                out[source] = out.get(source, 0) + n
        return out

    def forget_source(self, source: str, *, dry_run: bool = False) -> dict[str, int]:
        """Remove everything the store holds of ``source`` (a source taken out of the config or
        renamed), marking its clients dirty so the next sync rescores them without it; returns
        the rows removed (or that would be) by table. One transaction. Alerts stay: the rescore
        closes what no longer holds, with its history."""
        counts: dict[str, int] = {}
        with self.transaction():
            for table in self.SOURCE_TABLES:
                (n,) = self.conn.execute(
                    f"SELECT count(*) FROM {table} WHERE source = ?", (source,)
                ).fetchone()
                if n:
                    counts[table] = n
            if dry_run:
                return counts
            for table in ("administrations", "appointments", "client_info"):
                self.conn.execute(
                    "INSERT INTO dirty_clients (namespace, client_id) SELECT DISTINCT namespace, "
                    f"client_id FROM {table} WHERE source = ? "
                    "ON CONFLICT (namespace, client_id) DO NOTHING",
                    (source,),
                )
            for table in self.SOURCE_TABLES:
                self.conn.execute(f"DELETE FROM {table} WHERE source = ?", (source,))
        return counts

    # --- meta values (the scoring fingerprint) ---------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # --- trajectory models -----------------------------------------------------------------

    def save_model(self, kind: str, data: Mapping[str, Any]) -> int:
        """Store a model and put it in force for its measures and raters: a model in force for
        any of the same (measure, rater) pairs retires; models of other measures or raters
        stay (a clinic keeps its ORS model when it fits a CORS one)."""
        pairs = _model_pairs(data)
        now = now_text()
        with self.transaction():
            for model_id, _kind, other in self._model_rows("WHERE active = 1"):
                if pairs & _model_pairs(other):
                    self.conn.execute(
                        "UPDATE trajectory_models SET active = 0, retired_at = ? WHERE id = ?",
                        (now, model_id),
                    )
            cur = self.conn.execute(
                "INSERT INTO trajectory_models (kind, created_at, data, active) "
                "VALUES (?, ?, ?, 1)",
                (kind, now, json.dumps(data, sort_keys=True)),
            )
        return int(cur.lastrowid or 0)

    def _model_rows(self, where: str, args: Sequence[Any] = ()) -> list[tuple[int, str, Any]]:
        rows = self.conn.execute(
            f"SELECT id, kind, data FROM trajectory_models {where} ORDER BY id", tuple(args)
        )
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    def active_models(self) -> list[tuple[int, str, dict[str, Any]]]:
        """Every model in force, oldest first, as ``(id, kind, data)``."""
        return self._model_rows("WHERE active = 1")

    def active_model(self) -> tuple[int, str, dict[str, Any]] | None:
        """The newest model in force (see :meth:`active_models` for all of them)."""
        rows = self.active_models()
        return rows[-1] if rows else None

    def models_as_of(self, until: str) -> list[tuple[int, str, dict[str, Any]]]:
        """The models that were in force at ``until`` (an ISO 8601 UTC time, as the store
        writes them): saved before it, and not yet retired then. Oldest first."""
        return self._model_rows(
            "WHERE created_at <= ? AND (active = 1 AND retired_at IS NULL OR retired_at > ?)",
            (until, until),
        )

    def clear_model(self, measure: str | None = None, rater: str | None = None) -> int:
        """Take models out of force (they stay stored): all of them, or those for ``measure``
        and/or ``rater``. Returns how many were in force."""
        now = now_text()
        n = 0
        with self.transaction():
            for model_id, _kind, data in self._model_rows("WHERE active = 1"):
                pairs = _model_pairs(data)
                if measure is not None and all(m != measure for m, _r in pairs):
                    continue
                if rater is not None and all(r != rater for _m, r in pairs):
                    continue
                self.conn.execute(
                    "UPDATE trajectory_models SET active = 0, retired_at = ? WHERE id = ?",
                    (now, model_id),
                )
                n += 1
        return n

    # --- adapter state and client spellings ----------------------------------------------------

    def state_value(self, source: str, key: str) -> str | None:
        """A value an adapter keeps between runs (see :mod:`fit_core.state`)."""
        row = self.conn.execute(
            "SELECT value FROM source_state WHERE source = ? AND key = ?", (source, key)
        ).fetchone()
        return row[0] if row else None

    def set_state_value(self, source: str, key: str, value: str) -> None:
        """Store one value in its own transaction (a crash keeps the old or the new value)."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO source_state (source, key, value, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (source, key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (source, key, value, now_text()),
            )

    def note_spellings(
        self, triples: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str], tuple[set[str], set[str]]]:
        """Record (namespace, client_id, spelling) triples. For each of those clients: every
        spelling now known, and the ones this call added.

        Writes without a transaction of its own: call it inside the one that stores the
        administrations, so both are kept or both are lost."""
        wanted = sorted(set(triples))
        clients = sorted({(ns, cid) for ns, cid, _ in wanted})
        out: dict[tuple[str, str], set[str]] = {c: set() for c in clients}
        for ns, cid, typed in self._for_clients(
            "SELECT namespace, client_id, spelling FROM client_spellings "
            "WHERE namespace = ? AND client_id IN ({marks})",
            clients,
        ):
            out[(ns, cid)].add(typed)
        new = [(ns, cid, typed) for ns, cid, typed in wanted if typed not in out[(ns, cid)]]
        if new:
            at = now_text()
            self.conn.executemany(
                "INSERT INTO client_spellings (namespace, client_id, spelling, first_seen) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(*t, at) for t in new],
            )
        added: dict[tuple[str, str], set[str]] = {c: set() for c in clients}
        for ns, cid, typed in new:
            out[(ns, cid)].add(typed)
            added[(ns, cid)].add(typed)
        return {c: (out[c], added[c]) for c in clients}

    # --- bookmarks and runs --------------------------------------------------------------------

    def bookmark(self, source: str) -> str | None:
        row = self.conn.execute(
            "SELECT value FROM bookmarks WHERE source = ?", (source,)
        ).fetchone()
        return row[0] if row else None

    def save_bookmark(self, source: str, value: str | None) -> None:
        self.conn.execute(
            "INSERT INTO bookmarks (source, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (source) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (source, value, now_text()),
        )

    def start_run(self, sources: Sequence[str], dry_run: bool) -> int:
        cur = self.conn.execute(
            "INSERT INTO runs (started_at, sources, dry_run) VALUES (?, ?, ?)",
            (now_text(), json.dumps(list(sources)), 1 if dry_run else 0),
        )
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, counts: Mapping[str, Any], outcome: str) -> None:
        self.conn.execute(
            "UPDATE runs SET finished_at = ?, counts = ?, outcome = ? WHERE id = ?",
            (now_text(), json.dumps(counts, sort_keys=True), outcome, run_id),
        )

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        cols = ("id", "started_at", "finished_at", "sources", "dry_run", "counts", "outcome")
        out = []
        for r in self.conn.execute(
            f"SELECT {', '.join(cols)} FROM runs ORDER BY id DESC LIMIT ?", (limit,)
        ):
            d = dict(zip(cols, r, strict=True))
            d["sources"] = json.loads(d["sources"])
            d["counts"] = json.loads(d["counts"]) if d["counts"] else None
            d["dry_run"] = bool(d["dry_run"])
            out.append(d)
        return out


def _outbox_item(r: Sequence[Any]) -> OutboxItem:
    """An outbox row (source, source_key, payload, hash, extra, line) as an item; a row that
    keeps only its scores-file line gives the line's values as its payload (text)."""
    if r[2]:
        payload = _json(r[2])
    else:
        from .scores_csv import values_of_line

        payload = values_of_line(r[5])
    return OutboxItem(r[0], r[1], payload, r[3], _json(r[4]) if r[4] else {})


# scan_once is set by JSONDecoder.__init__ (the C scanner) and not in the type stubs
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _json(text: str) -> Any:
    """``json.loads(text)`` for the JSON this store wrote (one value, nothing around it),
    without json.loads's per-call overhead; anything else goes through json.loads itself."""
    try:
        value, end = _scan(text, 0)
    except (StopIteration, TypeError):
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


def _by_namespace(clients: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for ns, cid in clients:
        out.setdefault(ns, []).append(cid)
    return out
