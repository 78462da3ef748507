"""The store's alerts: the ``flags`` table (one row per alert) and ``flag_events`` (every
transition, with its time). The lifecycle itself is decided by :mod:`fit_core.alerts`; this
module only reads and writes it. :class:`AlertStore` is mixed into
:class:`fit_core.store.Store`.

What later features build on (digests, charts, notifications):

- :meth:`AlertStore.list_flags` — alerts by state (``open``, ``acknowledged``, ``current`` for
  both, ``superseded``, ``closed``, ``ended`` for both, ``all``), rule, client;
- :meth:`AlertStore.alert` — one alert with its full history;
- :meth:`AlertStore.alert_events` — transitions (raised, carried, acknowledged, reopened,
  superseded, closed) in time order, e.g. everything since the last digest;
- :meth:`AlertStore.set_flag_state` — acknowledge / reopen.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from .alerts import ACTIVE_STATES, FINAL_STATES, STATES, Close, Holding, Plan, StoredAlert
from .models import Administration, Flag

__all__ = ["LIFECYCLE_MIGRATION", "STATE_FILTERS", "AlertStateError", "AlertStore"]

#: what ``fit alerts --state`` and :meth:`AlertStore.list_flags` accept
STATE_FILTERS: dict[str, tuple[str, ...]] = {
    **{s: (s,) for s in STATES},
    "current": ACTIVE_STATES,
    "ended": FINAL_STATES,
    "resolved": FINAL_STATES,  # the name before the lifecycle had two final states
    "all": STATES,
}

_COLUMNS = (
    "id, namespace, client_id, episode_id, rater, family, rule_id, rule_version, severity, "
    "message, inputs, state, source, source_key, session, local_date, measure, clinician_id, "
    "site, first_source, first_source_key, first_session, first_date, raised_at, updated_at, "
    "acknowledged_at, closed_at, close_reason, closed_by_source, closed_by_key, "
    "closed_by_session, closed_by_date"
)
_NAMES = tuple(c.strip() for c in _COLUMNS.split(","))

#: the lifecycle migration: one row per alert (not per administration), scope columns, the
#: acknowledgement kept apart from the state, the closing recorded, and an event table.
#: Rows from before keep their id and acknowledgement; "resolved" becomes "superseded"; the
#: clients with active alerts are rescored, which fills in the scopes and merges the alerts that
#: were stored once per session.
LIFECYCLE_MIGRATION: tuple[str, ...] = (
    """CREATE TABLE flags_v2 (
        id INTEGER PRIMARY KEY,
        namespace TEXT NOT NULL,
        client_id TEXT NOT NULL,
        episode_id TEXT,
        rater TEXT,
        family TEXT,
        rule_id TEXT NOT NULL,
        rule_version INTEGER NOT NULL,
        severity TEXT NOT NULL,
        message TEXT NOT NULL,
        inputs TEXT NOT NULL,
        state TEXT NOT NULL,
        source TEXT NOT NULL,
        source_key TEXT NOT NULL,
        session INTEGER,
        local_date TEXT,
        measure TEXT,
        clinician_id TEXT,
        site TEXT,
        first_source TEXT,
        first_source_key TEXT,
        first_session INTEGER,
        first_date TEXT,
        raised_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        acknowledged_at TEXT,
        closed_at TEXT,
        close_reason TEXT,
        closed_by_source TEXT,
        closed_by_key TEXT,
        closed_by_session INTEGER,
        closed_by_date TEXT
    )""",
    """INSERT INTO flags_v2 (id, namespace, client_id, rater, rule_id, rule_version, severity,
        message, inputs, state, source, source_key, local_date, measure, clinician_id, site,
        raised_at, updated_at, acknowledged_at, closed_at, close_reason)
    SELECT f.id, f.namespace, f.client_id, a.rater, f.rule_id, f.rule_version, f.severity,
        f.message, f.inputs,
        CASE f.state WHEN 'resolved' THEN 'superseded' ELSE f.state END,
        f.source, f.source_key, a.local_date, a.measure, a.clinician_id, a.site,
        f.raised_at, f.updated_at,
        CASE f.state WHEN 'acknowledged' THEN f.updated_at END,
        CASE f.state WHEN 'resolved' THEN f.updated_at END,
        CASE f.state WHEN 'resolved' THEN 'superseded' END
    FROM flags f LEFT JOIN administrations a
        ON a.source = f.source AND a.source_key = f.source_key""",
    "DROP TABLE flags",
    "ALTER TABLE flags_v2 RENAME TO flags",
    "CREATE INDEX flags_client ON flags (namespace, client_id)",
    "CREATE INDEX flags_state ON flags (state)",
    "CREATE INDEX flags_anchor ON flags (source, source_key)",
    """CREATE TABLE flag_events (
        id INTEGER PRIMARY KEY,
        flag_id INTEGER NOT NULL,
        at TEXT NOT NULL,
        event TEXT NOT NULL,
        state TEXT NOT NULL,
        source TEXT,
        source_key TEXT,
        session INTEGER,
        detail TEXT
    )""",
    "CREATE INDEX flag_events_flag ON flag_events (flag_id)",
    "CREATE INDEX flag_events_at ON flag_events (at)",
    """INSERT INTO flag_events (flag_id, at, event, state, source, source_key)
    SELECT id, raised_at, 'raised', 'open', source, source_key FROM flags""",
    """INSERT INTO flag_events (flag_id, at, event, state, source, source_key)
    SELECT id, updated_at, 'acknowledged', 'acknowledged', source, source_key FROM flags
    WHERE state = 'acknowledged'""",
    """INSERT INTO flag_events (flag_id, at, event, state, source, source_key, detail)
    SELECT id, updated_at, 'superseded', 'superseded', source, source_key, 'superseded'
    FROM flags WHERE state = 'superseded'""",
    """INSERT INTO dirty_clients (namespace, client_id)
    SELECT DISTINCT namespace, client_id FROM flags WHERE state IN ('open', 'acknowledged')
    ON CONFLICT (namespace, client_id) DO NOTHING""",
)

_INPUTS = json.JSONEncoder(sort_keys=True, default=str).encode


class AlertStateError(ValueError):
    """A transition the lifecycle does not allow (e.g. acknowledging a superseded alert)."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class AlertStore:
    """The alert methods of :class:`fit_core.store.Store` (a mixin: needs ``conn``,
    ``transaction`` and ``_for_clients``)."""

    conn: sqlite3.Connection

    def _for_clients(self, sql: str, clients: Any) -> Iterator[Any]:  # provided by Store
        raise NotImplementedError

    # --- the sync's side -------------------------------------------------------------------------

    def active_alerts(
        self, clients: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[StoredAlert]]:
        """The open and acknowledged alerts of ``clients``, per client."""
        out: dict[tuple[str, str], list[StoredAlert]] = {}
        for r in self._for_clients(
            "SELECT namespace, client_id, id, rule_id, state, source, source_key, episode_id, "
            "rater, family, local_date FROM flags WHERE state IN ('open', 'acknowledged') "
            "AND namespace = ? AND client_id IN ({marks})",
            clients,
        ):
            out.setdefault((r[0], r[1]), []).append(
                StoredAlert(
                    id=r[2],
                    rule_id=r[3],
                    state=r[4],
                    source=r[5],
                    source_key=r[6],
                    episode_id=r[7],
                    rater=r[8],
                    family=r[9],
                    local_date=dt.date.fromisoformat(r[10]) if r[10] else None,
                )
            )
        return out

    def apply_alerts(
        self, plans: Sequence[tuple[tuple[str, str], Plan]], at: str
    ) -> tuple[list[tuple[Administration, Flag, int]], int, set[tuple[str, str]]]:
        """Write the plans of :func:`fit_core.alerts.reconcile` (inside the caller's
        transaction). Returns the new alerts (administration, flag, id), how many alerts
        closed, and the clients whose alerts a person changed meanwhile (acknowledged or
        reopened since they were read): keep those dirty, their payloads are out of date."""
        opened: list[tuple[Administration, Flag, int]] = []
        closed = 0
        raced: set[tuple[str, str]] = set()
        c = self.conn
        for client, plan in plans:
            for carry in plan.carry:
                h, alert = carry.holding, carry.alert
                row = _holding_values(h)
                row = (*row, *_first_values(h), at, alert.id)
                cur = c.execute(_CARRY + " AND state = ?", (*row, alert.state))
                if cur.rowcount == 0:
                    raced.add(client)
                    c.execute(_CARRY, row)
                if (alert.source, alert.source_key) != h.anchor.admin.key:
                    self._event(alert.id, at, "carried", alert.state, h.anchor, h.flag.message)
            for new in plan.open:
                h = new.holding
                a = h.anchor.admin
                cur = c.execute(
                    "INSERT INTO flags (namespace, client_id, state, first_source, "
                    "first_source_key, first_session, first_date, raised_at, updated_at, "
                    f"{_HOLDING_COLS}) VALUES ({','.join('?' * 24)})",
                    (
                        a.namespace,
                        a.client_id,
                        "open",
                        h.first.admin.source,
                        h.first.admin.source_key,
                        h.first.score.session,
                        h.first.admin.local_date.isoformat(),
                        at,
                        at,
                        *_holding_values(h),
                    ),
                )
                alert_id = int(cur.lastrowid or 0)
                self._event(alert_id, at, "raised", "open", h.anchor, h.flag.message)
                opened.append((a, h.flag, alert_id))
            for close in plan.close:
                closed += self._close(close, at)
        return opened, closed, raced

    def _close(self, close: Close, at: str) -> int:
        by = close.by
        scope = close.scope or (None, None, None)
        cur = self.conn.execute(
            "UPDATE flags SET state = ?, close_reason = ?, closed_at = ?, updated_at = ?, "
            "closed_by_source = ?, closed_by_key = ?, closed_by_session = ?, closed_by_date = ?, "
            "episode_id = COALESCE(episode_id, ?), rater = COALESCE(rater, ?), "
            "family = COALESCE(family, ?) WHERE id = ? AND state IN ('open', 'acknowledged')",
            (
                close.state,
                close.reason,
                at,
                at,
                by.admin.source if by else None,
                by.admin.source_key if by else None,
                by.score.session if by else None,
                by.admin.local_date.isoformat() if by else None,
                *scope,
                close.alert.id,
            ),
        )
        if cur.rowcount:
            self._event(close.alert.id, at, close.state, close.state, by, close.reason)
        return cur.rowcount

    def _event(
        self, flag_id: int, at: str, event: str, state: str, where: Any, detail: str | None
    ) -> None:
        a = where.admin if where is not None else None
        self.conn.execute(
            "INSERT INTO flag_events (flag_id, at, event, state, source, source_key, session, "
            "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                flag_id,
                at,
                event,
                state,
                a.source if a else None,
                a.source_key if a else None,
                where.score.session if where is not None else None,
                detail,
            ),
        )

    # --- reading ---------------------------------------------------------------------------------

    def list_flags(
        self,
        state: str | None = "open",
        rule: str | None = None,
        client: str | None = None,
        *,
        namespace: str | None = None,
    ) -> list[dict[str, Any]]:
        """Alerts, newest first. ``state`` is a state or a filter of :data:`STATE_FILTERS`
        (None: every state). Each row has the alert's scope, where it is attached now
        (``source``, ``source_key``, ``session``, ``date``), where it began
        (``first_session``, ``first_date``), who it concerns (``clinician_id``, ``site``) and,
        once ended, when, why and by what (``closed_at``, ``close_reason``, ``closed_by``)."""
        sql = f"SELECT {_COLUMNS} FROM flags WHERE 1 = 1"
        args: list[Any] = []
        if state and state != "all":
            states = STATE_FILTERS.get(state)
            if states is None:
                raise AlertStateError(
                    f"unknown alert state {state!r} (known: {', '.join(STATE_FILTERS)})"
                )
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args.extend(states)
        if rule:
            sql += " AND rule_id = ?"
            args.append(rule)
        if client:
            sql += " AND client_id = ?"
            args.append(client)
        if namespace:
            sql += " AND namespace = ?"
            args.append(namespace)
        sql += " ORDER BY raised_at DESC, id DESC"
        return [_row(r) for r in self.conn.execute(sql, args)]

    def alert(self, flag_id: int) -> dict[str, Any] | None:
        """One alert (as in :meth:`list_flags`) with ``history``: its events, oldest first."""
        r = self.conn.execute(f"SELECT {_COLUMNS} FROM flags WHERE id = ?", (flag_id,)).fetchone()
        if r is None:
            return None
        out = _row(r)
        out["history"] = self.alert_events(alert_id=flag_id)
        return out

    def alert_events(
        self,
        *,
        since: str | None = None,
        alert_id: int | None = None,
        events: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Alert transitions in time order: ``{id, alert_id, at, event, state, source,
        source_key, session, detail}``. ``since`` (an ISO time, exclusive) gives what happened
        after a point in time, e.g. the last digest; ``events`` filters by kind (``raised``,
        ``carried``, ``acknowledged``, ``reopened``, ``superseded``, ``closed``)."""
        sql = (
            "SELECT id, flag_id, at, event, state, source, source_key, session, detail "
            "FROM flag_events WHERE 1 = 1"
        )
        args: list[Any] = []
        if since is not None:
            sql += " AND at > ?"
            args.append(since)
        if alert_id is not None:
            sql += " AND flag_id = ?"
            args.append(alert_id)
        if events:
            sql += f" AND event IN ({','.join('?' * len(events))})"
            args.extend(events)
        cols = ("id", "alert_id", "at", "event", "state", "source", "source_key", "session")
        out = []
        for r in self.conn.execute(sql + " ORDER BY at, id", args):
            d = dict(zip(cols, r[:8], strict=True))
            d["detail"] = r[8]
            out.append(d)
        return out

    def count_flags(self, state: str = "open") -> int:
        states = STATE_FILTERS.get(state, (state,))
        return self.conn.execute(
            f"SELECT COUNT(*) FROM flags WHERE state IN ({','.join('?' * len(states))})", states
        ).fetchone()[0]

    # --- a person's side -------------------------------------------------------------------------

    def set_flag_state(self, flag_id: int, state: str) -> bool:
        """Acknowledge (``open`` → ``acknowledged``) or reopen (``acknowledged`` → ``open``) an
        alert; its client is rescored (and re-pushed) at the next sync. Returns False when there
        is no such alert; raises :class:`AlertStateError` for a superseded or closed one."""
        if state not in ACTIVE_STATES:
            raise AlertStateError(f"an alert can be set to open or acknowledged, not {state!r}")
        with self.transaction():  # type: ignore[attr-defined]
            row = self.conn.execute(
                "SELECT state, close_reason, closed_at FROM flags WHERE id = ?", (flag_id,)
            ).fetchone()
            if row is None:
                return False
            current = row[0]
            if current in FINAL_STATES:
                raise AlertStateError(
                    f"alert #{flag_id} is {current} ({row[1]}, {row[2]}): it no longer holds, "
                    "so there is nothing to acknowledge or reopen"
                )
            if current == state:
                return True
            at = _now()
            self.conn.execute(
                "UPDATE flags SET state = ?, updated_at = ?, acknowledged_at = ? WHERE id = ?",
                (state, at, at if state == "acknowledged" else None, flag_id),
            )
            self.conn.execute(
                "INSERT INTO flag_events (flag_id, at, event, state) VALUES (?, ?, ?, ?)",
                (flag_id, at, "acknowledged" if state == "acknowledged" else "reopened", state),
            )
            self.conn.execute(
                "INSERT INTO dirty_clients (namespace, client_id) SELECT namespace, client_id "
                "FROM flags WHERE id = ? ON CONFLICT (namespace, client_id) DO NOTHING",
                (flag_id,),
            )
        return True


_HOLDING_NAMES = (
    "episode_id",
    "rater",
    "family",
    "rule_id",
    "rule_version",
    "severity",
    "message",
    "inputs",
    "source",
    "source_key",
    "session",
    "local_date",
    "measure",
    "clinician_id",
    "site",
)
_HOLDING_COLS = ", ".join(_HOLDING_NAMES)
_HOLDING_SET = ", ".join(f"{n} = ?" for n in _HOLDING_NAMES)
# carrying an alert forward: where it holds now; where it began is kept (filled in once for
# alerts stored before the lifecycle, which did not know it)
_CARRY = (
    f"UPDATE flags SET {_HOLDING_SET}, first_source = COALESCE(first_source, ?), "
    "first_source_key = COALESCE(first_source_key, ?), "
    "first_session = COALESCE(first_session, ?), first_date = COALESCE(first_date, ?), "
    "updated_at = ? WHERE id = ?"
)


def _first_values(h: Holding) -> tuple[Any, ...]:
    f = h.first
    return (f.admin.source, f.admin.source_key, f.score.session, f.admin.local_date.isoformat())


def _holding_values(h: Holding) -> tuple[Any, ...]:
    a, f = h.anchor.admin, h.flag
    return (
        h.episode_id,
        h.rater,
        h.family,
        f.rule_id,
        f.version,
        f.severity,
        f.message,
        _INPUTS(dict(f.inputs)),
        a.source,
        a.source_key,
        h.anchor.score.session,
        a.local_date.isoformat(),
        a.measure,
        a.clinician_id,
        a.site,
    )


def _row(r: Sequence[Any]) -> dict[str, Any]:
    d: dict[str, Any] = dict(zip(_NAMES, r, strict=True))
    d["inputs"] = json.loads(d["inputs"])
    d["version"] = d.pop("rule_version")
    d["date"] = d.pop("local_date")
    by = {
        "source": d.pop("closed_by_source"),
        "source_key": d.pop("closed_by_key"),
        "session": d.pop("closed_by_session"),
        "date": d.pop("closed_by_date"),
    }
    d["closed_by"] = by if any(v is not None for v in by.values()) else None
    return d
