"""What a message says: pure planning from the alerts, the ledger's answers and the route.

For one route, :func:`plan_route` groups what is to be told by recipient — one message per
recipient per run:

- **new**: alerts that are ``open`` now, match the route's filters (severities, rules,
  clinicians) and were never told on this route. An alert carried forward to later sessions is
  the same alert (same id), so it is never told twice; an acknowledged alert is not told (a
  person has seen it); an alert that was raised and ended between two messages is not told
  (alerts are about now).
- **ended**: alerts this route told about that were superseded or closed since (when the
  route reports endings, ``ended = true``).

**Minimum necessary.** An item carries the client's label (the keyed pseudonym
``P-XXXXX-XXXXX`` by default, the client id with ``client_label = "id"``), the rule, its
severity, the rule's message, the session and its date, the alert's number, and where to look
(the client's caseload page when ``[notify] report_base`` or ``[reports] caseload_dir`` is set,
the source record when the route shows client ids: record keys often contain them). Never item
values — a rule whose flag carries them (``inputs["items"]``, e.g. ``srs.low_item``) is told by
its description instead of its message — and never names (fit-sync holds none). Scores
(latest ORS and SRS with change since intake) only with ``detail = "scores"``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..measures import COPYRIGHT_LINES
from .config import NotifyConfig, RouteConfig
from .ledger import OutgoingItem, Planned, new_message_id

__all__ = [
    "SEVERITY_RANK",
    "ClientScores",
    "RoutePlan",
    "client_message",
    "plan_route",
    "recipient_words",
    "selects",
]

SEVERITY_RANK = {"alert": 0, "warning": 1, "info": 2}
ITEM_NOTE = "Item values are not sent in messages: see the client's report."


@dataclass(frozen=True, slots=True)
class ClientScores:
    """A client's latest ORS-family and SRS-family scores in the latest episode."""

    ors_measure: str | None = None
    ors_total: float | None = None
    ors_intake: float | None = None
    ors_change: float | None = None
    ors_date: dt.date | None = None
    srs_measure: str | None = None
    srs_total: float | None = None
    srs_date: dt.date | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.ors_total is not None:
            out["ors"] = {
                "measure": self.ors_measure,
                "total": self.ors_total,
                "intake": self.ors_intake,
                "change_from_intake": self.ors_change,
                "date": self.ors_date.isoformat() if self.ors_date else None,
            }
        if self.srs_total is not None:
            out["srs"] = {
                "measure": self.srs_measure,
                "total": self.srs_total,
                "date": self.srs_date.isoformat() if self.srs_date else None,
            }
        return out


@dataclass
class RoutePlan:
    """The messages one route would send now, and the alerts it could not address."""

    route: str
    messages: list[Planned] = field(default_factory=list)
    #: open alerts the route selects but cannot send: clinician id → alert ids
    unrouted: dict[str, list[int]] = field(default_factory=dict)
    #: recipients with nothing to tell whose owed failures are made good by that
    settled: list[str] = field(default_factory=list)


def selects(route: RouteConfig, alert: Mapping[str, Any]) -> bool:
    """Does the route's filter take this alert?"""
    if route.severities is not None and alert["severity"] not in route.severities:
        return False
    if route.rules is not None and alert["rule_id"] not in route.rules:
        return False
    if route.clinicians is not None:
        cid = (alert.get("clinician_id") or "").strip().casefold()
        if cid not in {c.casefold() for c in route.clinicians}:
            return False
    return True


def recipient_words(key: str, route: str = "") -> str:
    """``clinician:T03`` → ``clinician T03``; ``fallback`` and ``all`` in words."""
    if key.startswith("clinician:"):
        cid = key.split(":", 1)[1]
        return f"clinician {cid}" if cid else "alerts without a clinician"
    if key == "fallback":
        return "the fallback addresses" + (f" of route {route}" if route else "")
    if key == "all":
        return f"route {route}" if route else "the route"
    return key


def _recipient(
    route: RouteConfig, notify: NotifyConfig, clinician: str | None, needs_addresses: bool
) -> tuple[str, tuple[str, ...]] | None:
    """(recipient key, addresses) of an alert of ``clinician`` on ``route``; None: nobody."""
    if not route.per_clinician:
        return "all", tuple(route.to) if isinstance(route.to, tuple) else ()
    addresses = notify.addresses_of(clinician)
    if addresses or not needs_addresses:
        return f"clinician:{clinician or ''}", addresses
    if route.fallback:
        return "fallback", route.fallback
    return None


def client_message(alert: Mapping[str, Any], description: str | None) -> str:
    """The rule's message, unless its flag carries item values: then its description."""
    inputs = alert.get("inputs") or {}
    if isinstance(inputs, Mapping) and "items" in inputs:
        about = (description or alert["rule_id"]).rstrip(".")
        return f"{about}. {ITEM_NOTE}"
    return str(alert["message"])


def _new_item(
    alert: Mapping[str, Any],
    route: RouteConfig,
    label: str,
    link: str | None,
    title: str,
    description: str | None,
    scores: ClientScores | None,
) -> dict[str, Any]:
    record = None
    if route.client_label == "id":
        record = {"source": alert["source"], "source_key": alert["source_key"]}
    item: dict[str, Any] = {
        "alert_id": alert["id"],
        "client": label,
        "rule_id": alert["rule_id"],
        "title": title,
        "severity": alert["severity"],
        "message": client_message(alert, description),
        "session": alert.get("session"),
        "first_session": alert.get("first_session"),
        "date": alert.get("date"),
        "raised_at": alert.get("raised_at"),
        "report": link,
        "record": record,
    }
    if route.detail == "scores" and scores is not None:
        item["scores"] = scores.as_dict()
    return item


def _ended_item(alert: Mapping[str, Any], label: str, title: str) -> dict[str, Any]:
    by = alert.get("closed_by") or {}
    return {
        "alert_id": alert["id"],
        "client": label,
        "rule_id": alert["rule_id"],
        "title": title,
        "severity": alert["severity"],
        "state": alert["state"],
        "reason": alert.get("close_reason"),
        "session": by.get("session"),
        "date": by.get("date"),
        "closed_at": alert.get("closed_at"),
    }


def _by_client(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each client's items together: the clients with the most severe alert first, then by
    label; within a client the most severe first."""
    worst: dict[str, int] = {}
    for it in items:
        rank = SEVERITY_RANK.get(it["severity"], 9)
        worst[it["client"]] = min(rank, worst.get(it["client"], 9))
    return sorted(
        items,
        key=lambda it: (
            worst[it["client"]],
            str(it["client"]),
            SEVERITY_RANK.get(it["severity"], 9),
            it["alert_id"],
        ),
    )


def plan_route(
    route: RouteConfig,
    notify: NotifyConfig,
    *,
    open_alerts: Iterable[Mapping[str, Any]],
    told: set[int],
    ended: Sequence[tuple[Mapping[str, Any], str]],
    due: Callable[[str], bool],
    needs_addresses: bool,
    label: Callable[[str, str], str],
    client_link: Callable[[str, str], str | None],
    caseload_link: Callable[[str | None], str | None],
    titles: Mapping[str, str],
    descriptions: Mapping[str, str],
    scores: Mapping[tuple[str, str], ClientScores],
    since: Mapping[str, str],
    owed: set[str],
    now: dt.datetime,
    local_now: dt.datetime,
    kind: str,
    slot: str | None = None,
) -> RoutePlan:
    """The messages of one route for the recipients that are ``due`` (see module docstring).

    ``told``: alert ids with a ``new`` row on the route; ``ended``: (alert, recipient key) of
    told alerts that ended since; ``since``: recipient key → when its last message went;
    ``owed``: recipients with a failed message to make good."""
    plan = RoutePlan(route.name)
    new: dict[str, list[dict[str, Any]]] = defaultdict(list)
    items: dict[str, list[OutgoingItem]] = defaultdict(list)
    addresses: dict[str, tuple[str, ...]] = {}
    open_count: dict[str, int] = defaultdict(int)
    clinician_of: dict[str, str | None] = {}
    for alert in open_alerts:
        if alert["state"] != "open" or not selects(route, alert):
            continue
        cid = alert.get("clinician_id")
        who = _recipient(route, notify, cid, needs_addresses)
        if who is None:
            if alert["id"] not in told:
                plan.unrouted.setdefault(cid or "", []).append(alert["id"])
            continue
        key, addr = who
        open_count[key] += 1
        clinician_of.setdefault(key, cid if route.per_clinician else None)
        if alert["id"] in told or not due(key):
            continue
        addresses[key] = addr
        ns, client = alert["namespace"], alert["client_id"]
        title = titles.get(alert["rule_id"], alert["rule_id"])
        new[key].append(
            _new_item(
                alert,
                route,
                label(ns, client),
                client_link(ns, client),
                title,
                descriptions.get(alert["rule_id"]),
                scores.get((ns, client)),
            )
        )
        items[key].append(OutgoingItem(alert["id"], "new", ns, client))
    gone: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if route.ended:
        for alert, key in ended:
            if not due(key):
                continue
            ns, client = alert["namespace"], alert["client_id"]
            title = titles.get(alert["rule_id"], alert["rule_id"])
            gone[key].append(_ended_item(alert, label(ns, client), title))
            items[key].append(OutgoingItem(alert["id"], "ended", ns, client))
            if key not in addresses:
                again = _readdress(key, route, notify)
                if again is None:
                    continue
                addresses[key] = again
            if key.startswith("clinician:"):
                clinician_of.setdefault(key, key.split(":", 1)[1] or None)
    for key in sorted(set(new) | set(gone)):
        if key not in addresses or (needs_addresses and not addresses[key]):
            continue
        clinician = clinician_of.get(key)
        content = {
            "route": route.name,
            "kind": kind,
            "recipient": {
                "key": key,
                "words": recipient_words(key, route.name),
                "clinician_id": clinician,
            },
            "addresses": list(addresses[key]),
            "created_at": now.astimezone(dt.UTC).isoformat(timespec="seconds"),
            "local_time": local_now.strftime("%Y-%m-%d %H:%M"),
            "timezone": str(local_now.tzinfo),
            "since": since.get(key),
            "new": _by_client(new.get(key, [])),
            "ended": _by_client(gone.get(key, [])),
            "open": open_count.get(key, 0),
            "caseload": caseload_link(clinician) if route.per_clinician else caseload_link(None),
            "detail": route.detail,
            "client_label": route.client_label,
            "copyright": list(COPYRIGHT_LINES),
        }
        plan.messages.append(
            Planned(route.name, key, kind, content, tuple(items[key]), new_message_id(), slot)
        )
    planned = {m.recipient for m in plan.messages}
    plan.settled = sorted(k for k in owed if k not in planned and due(k))
    return plan


def _readdress(key: str, route: RouteConfig, notify: NotifyConfig) -> tuple[str, ...] | None:
    """The addresses of a recipient key now (for an ended alert told to it earlier)."""
    if key == "all":
        return tuple(route.to) if isinstance(route.to, tuple) else ()
    if key == "fallback":
        return route.fallback or None
    cid = key.split(":", 1)[1] if key.startswith("clinician:") else None
    found = notify.addresses_of(cid)
    return found
