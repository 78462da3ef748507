"""What was sent on which route: the notification ledger in the store.

Two tables (plus one row of timing state per route):

- ``notify_messages``: one row per message, with its ``message_id`` (stable across resends) and
  its state — ``sending`` (intent recorded, outcome not confirmed), ``sent``, ``failed`` (the
  server refused it or could not be reached: it was not delivered) or ``skipped`` (recorded as
  sent on purpose, ``fit notify mark-sent``). Until it is confirmed, its ``content`` (the
  message as planned, JSON) is kept so that a resend is the same message; once sent or failed
  the content is dropped, so the store keeps no copy of what went out.
- ``notify_ledger``: one row per alert and event (``new``: told it is open; ``ended``: told it
  was superseded or closed) and route, pointing at the message that carried it. The primary key
  (route, alert, event) is what makes "each alert at most once per route" hold. Rows carry the
  client (namespace, client id), so everything about one client is found by
  :func:`forget_client`.

The protocol, as for pushes: **record the intent** (messages in ``sending`` with their ledger
rows, in one transaction), **send**, **confirm** (``sent``). A run killed between intent and
confirmation leaves ``sending`` rows; the next run sends exactly those messages again before
planning anything new (same Message-ID / idempotency key, so a receiver can drop a repeat), and
nothing is lost. A refused message is marked ``failed`` and its ledger rows are released, so
its alerts are planned again — with what holds then — at the next run (``retry``).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NOTIFY_MIGRATION",
    "Ledger",
    "OutgoingItem",
    "Planned",
    "StoredMessage",
    "forget_client",
    "new_message_id",
]

NOTIFY_MIGRATION: tuple[str, ...] = (
    """CREATE TABLE notify_messages (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        route TEXT NOT NULL,
        recipient TEXT NOT NULL,
        kind TEXT NOT NULL,
        slot TEXT,
        state TEXT NOT NULL,
        content TEXT,
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_attempt_at TEXT,
        sent_at TEXT,
        error TEXT,
        retry INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX notify_messages_state ON notify_messages (state)",
    "CREATE INDEX notify_messages_route ON notify_messages (route, recipient)",
    """CREATE TABLE notify_ledger (
        route TEXT NOT NULL,
        alert_id INTEGER NOT NULL,
        event TEXT NOT NULL,
        message INTEGER NOT NULL,
        namespace TEXT NOT NULL,
        client_id TEXT NOT NULL,
        PRIMARY KEY (route, alert_id, event)
    )""",
    "CREATE INDEX notify_ledger_message ON notify_ledger (message)",
    "CREATE INDEX notify_ledger_client ON notify_ledger (namespace, client_id)",
    """CREATE TABLE notify_routes (
        route TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        last_slot TEXT,
        last_run_at TEXT
    )""",
)

UNCONFIRMED = "sending"
ERROR_LENGTH = 300


def new_message_id() -> str:
    """A fresh message id (UUID4, 32 hex digits)."""
    return uuid.uuid4().hex


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class OutgoingItem:
    """One alert event a message carries."""

    alert_id: int
    event: str  # "new" or "ended"
    namespace: str
    client_id: str


@dataclass(frozen=True)
class Planned:
    """A message planned for one recipient of a route: the content (JSON-ready, what the
    renderers read) and the alert events it carries."""

    route: str
    recipient: str
    kind: str
    content: dict[str, Any]
    items: tuple[OutgoingItem, ...]
    message_id: str
    slot: str | None = None


@dataclass(frozen=True)
class StoredMessage:
    """A message row: what is needed to send it again, or to report on it."""

    row_id: int
    message_id: str
    route: str
    recipient: str
    kind: str
    state: str
    content: dict[str, Any] | None
    created_at: str
    attempts: int
    last_attempt_at: str | None
    sent_at: str | None
    error: str | None
    retry: bool


_MSG_COLS = (
    "id, message_id, route, recipient, kind, state, content, created_at, attempts, "
    "last_attempt_at, sent_at, error, retry"
)


def _message(r: Sequence[Any]) -> StoredMessage:
    return StoredMessage(
        r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else None, r[7], r[8],
        r[9], r[10], r[11], bool(r[12]),
    )  # fmt: skip


class Ledger:
    """The notification ledger of one store (``store.conn``, ``store.transaction()``)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    @property
    def conn(self) -> sqlite3.Connection:
        """The store's connection now (a sync may open it again: see ``Store.detached``)."""
        conn: sqlite3.Connection = self.store.conn
        return conn

    # --- route timing ---------------------------------------------------------------------

    def route_state(self, route: str) -> tuple[str | None, str | None, str | None]:
        """(started_at, last_slot, last_run_at) of a route; all None before its first run."""
        row = self.conn.execute(
            "SELECT started_at, last_slot, last_run_at FROM notify_routes WHERE route = ?",
            (route,),
        ).fetchone()
        return (row[0], row[1], row[2]) if row else (None, None, None)

    def start_route(self, route: str, now: dt.datetime) -> str:
        """Record the first time a run saw ``route`` (digests count from there); its time."""
        at = _iso(now)
        with self.store.transaction():
            self.conn.execute(
                "INSERT INTO notify_routes (route, started_at) VALUES (?, ?) "
                "ON CONFLICT (route) DO NOTHING",
                (route, at),
            )
        return self.route_state(route)[0] or at

    # --- reading what was told --------------------------------------------------------------

    def told_new(self, route: str) -> set[int]:
        """Alerts with a ``new`` row on the route (sent, being sent, or skipped)."""
        return {
            r[0]
            for r in self.conn.execute(
                "SELECT alert_id FROM notify_ledger WHERE route = ? AND event = 'new'", (route,)
            )
        }

    def ended_untold(self, route: str) -> list[tuple[int, str]]:
        """(alert id, recipient) of alerts the route told about (message sent) that have ended
        since and whose ending it has not told yet."""
        return [
            (r[0], r[1])
            for r in self.conn.execute(
                "SELECT l.alert_id, m.recipient FROM notify_ledger l "
                "JOIN notify_messages m ON m.id = l.message "
                "JOIN flags f ON f.id = l.alert_id "
                "WHERE l.route = ? AND l.event = 'new' AND m.state = 'sent' "
                "AND f.state IN ('superseded', 'closed') AND NOT EXISTS (SELECT 1 FROM "
                "notify_ledger e WHERE e.route = l.route AND e.alert_id = l.alert_id "
                "AND e.event = 'ended') ORDER BY l.alert_id",
                (route,),
            )
        ]

    def owed(self, route: str) -> set[str]:
        """Recipients of the route with a failed message still to be made good."""
        return {
            r[0]
            for r in self.conn.execute(
                "SELECT DISTINCT recipient FROM notify_messages WHERE route = ? AND retry = 1",
                (route,),
            )
        }

    def unconfirmed(self) -> list[StoredMessage]:
        """Messages whose intent was recorded but whose delivery was never confirmed."""
        return [
            _message(r)
            for r in self.conn.execute(
                f"SELECT {_MSG_COLS} FROM notify_messages WHERE state = ? ORDER BY id",
                (UNCONFIRMED,),
            )
        ]

    def messages(self, route: str | None = None, limit: int = 50) -> list[StoredMessage]:
        sql = f"SELECT {_MSG_COLS} FROM notify_messages"
        args: tuple[Any, ...] = ()
        if route is not None:
            sql += " WHERE route = ?"
            args = (route,)
        return [
            _message(r)
            for r in self.conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        ]

    def last_sent(self, route: str) -> str | None:
        row = self.conn.execute(
            "SELECT MAX(sent_at) FROM notify_messages WHERE route = ? AND state = 'sent'", (route,)
        ).fetchone()
        return row[0] if row else None

    def problems(self, route: str | None = None) -> list[StoredMessage]:
        """Messages that are owed: failed ones still to be made good, and unconfirmed ones
        that a run already tried (attempts > 0) or that a killed run left behind."""
        sql = (
            f"SELECT {_MSG_COLS} FROM notify_messages WHERE (retry = 1 OR state = ?)"
            + (" AND route = ?" if route else "")
            + " ORDER BY id"
        )
        args: tuple[Any, ...] = (UNCONFIRMED, route) if route else (UNCONFIRMED,)
        return [_message(r) for r in self.conn.execute(sql, args)]

    # --- the protocol ------------------------------------------------------------------------

    def record_intent(
        self,
        planned: Sequence[Planned],
        now: dt.datetime,
        *,
        slots: Iterable[tuple[str, str]] = (),
        settled: Iterable[tuple[str, str]] = (),
        state: str = UNCONFIRMED,
    ) -> list[int]:
        """Write the planned messages (state ``sending``) and their ledger rows in one
        transaction; also each route's new digest slot, and mark the owed failures of
        ``settled`` (route, recipient) as made good. Returns the message row ids."""
        at = _iso(now)
        ids: list[int] = []
        with self.store.transaction():
            for p in planned:
                cur = self.conn.execute(
                    "INSERT INTO notify_messages (message_id, route, recipient, kind, slot, state, "
                    "content, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        p.message_id,
                        p.route,
                        p.recipient,
                        p.kind,
                        p.slot,
                        state,
                        json.dumps(p.content) if state == UNCONFIRMED else None,
                        at,
                    ),
                )
                row_id = int(cur.lastrowid or 0)
                ids.append(row_id)
                self.conn.executemany(
                    "INSERT INTO notify_ledger (route, alert_id, event, message, namespace, "
                    "client_id) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (p.route, it.alert_id, it.event, row_id, it.namespace, it.client_id)
                        for it in p.items
                    ],
                )
            for route, slot in slots:
                self.conn.execute(
                    "UPDATE notify_routes SET last_slot = ? WHERE route = ?", (slot, route)
                )
            for route, recipient in settled:
                self.conn.execute(
                    "UPDATE notify_messages SET retry = 0 WHERE route = ? AND recipient = ? "
                    "AND retry = 1",
                    (route, recipient),
                )
        return ids

    def mark_run(self, routes: Iterable[str], now: dt.datetime) -> None:
        with self.store.transaction():
            self.conn.executemany(
                "UPDATE notify_routes SET last_run_at = ? WHERE route = ?",
                [(_iso(now), r) for r in routes],
            )

    def attempt(self, row_id: int, now: dt.datetime) -> None:
        """Count an attempt before sending (a kill during it still counts)."""
        with self.store.transaction():
            self.conn.execute(
                "UPDATE notify_messages SET attempts = attempts + 1, last_attempt_at = ? "
                "WHERE id = ?",
                (_iso(now), row_id),
            )

    def confirm(self, row_id: int, now: dt.datetime) -> None:
        """The server accepted the message: sent; its content is no longer kept."""
        with self.store.transaction():
            self.conn.execute(
                "UPDATE notify_messages SET state = 'sent', sent_at = ?, content = NULL, "
                "error = NULL WHERE id = ?",
                (_iso(now), row_id),
            )

    def fail(self, row_id: int, now: dt.datetime, error: str, *, maybe_delivered: bool) -> None:
        """The message was not confirmed. ``maybe_delivered``: it stays ``sending`` (resent as
        the same message next time). Otherwise it is ``failed``: its ledger rows are released
        (its alerts are planned again next time) and its recipient is owed a message."""
        text = error[:ERROR_LENGTH]
        with self.store.transaction():
            if maybe_delivered:
                self.conn.execute(
                    "UPDATE notify_messages SET error = ? WHERE id = ?", (text, row_id)
                )
                return
            self.conn.execute(
                "UPDATE notify_messages SET state = 'failed', content = NULL, error = ?, "
                "retry = 1, last_attempt_at = ? WHERE id = ?",
                (text, _iso(now), row_id),
            )
            self.conn.execute("DELETE FROM notify_ledger WHERE message = ?", (row_id,))

    def drop(self, row_id: int, now: dt.datetime, reason: str) -> None:
        """Give an unconfirmed message up (its route no longer exists): released, not owed."""
        with self.store.transaction():
            self.conn.execute(
                "UPDATE notify_messages SET state = 'failed', content = NULL, error = ?, "
                "retry = 0, last_attempt_at = ? WHERE id = ?",
                (reason[:ERROR_LENGTH], _iso(now), row_id),
            )
            self.conn.execute("DELETE FROM notify_ledger WHERE message = ?", (row_id,))


def forget_client(store: Any, namespace: str, client_id: str) -> int:
    """Remove everything the notification ledger holds about one client: its ledger rows, and
    the content of unconfirmed messages that mention it (they are dropped, not sent). Returns
    how many ledger rows went. For erasing a client from the store."""
    conn: sqlite3.Connection = store.conn
    with store.transaction():
        messages = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT l.message FROM notify_ledger l JOIN notify_messages m "
                "ON m.id = l.message WHERE l.namespace = ? AND l.client_id = ? "
                "AND m.content IS NOT NULL",
                (namespace, client_id),
            )
        ]
        for row_id in messages:
            conn.execute(
                "UPDATE notify_messages SET state = 'failed', content = NULL, retry = 0, "
                "error = 'dropped: a client it mentioned was erased' WHERE id = ?",
                (row_id,),
            )
            conn.execute(
                "DELETE FROM notify_ledger WHERE message = ? AND NOT (namespace = ? "
                "AND client_id = ?)",
                (row_id, namespace, client_id),
            )
        cur = conn.execute(
            "DELETE FROM notify_ledger WHERE namespace = ? AND client_id = ?",
            (namespace, client_id),
        )
        return cur.rowcount
