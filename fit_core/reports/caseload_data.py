"""What goes on a clinician's caseload page: pure data preparation, no drawing, no I/O.

One :class:`CaseloadClient` per active client (the client's latest episode has not ended, by
the one rule of :mod:`fit_core.endings`), built from that episode's :class:`ClientPage` (the
same numbers as the client's report) and the client's current alerts. Clients are sorted by
what needs attention:

1. ``red`` — an open or acknowledged alert of severity *alert*, or the latest ORS below the
   severe line of the trajectory model;
2. ``orange`` — an alert of severity *warning*, or the latest ORS below the expected range;
3. ``stale`` — no data lately: no session for ``stale_days`` (21) days or more;
4. ``green`` — none of these (on track, or no concerns raised).

A client is in the first group that applies. Within a group: more alerts of the group's
severity first, then the longest since the last session, then the label.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .client_data import ClientPage

__all__ = [
    "ATTENTION",
    "ATTENTION_STYLE",
    "CaseloadAlert",
    "CaseloadClient",
    "CaseloadPage",
    "attention_of",
    "caseload_pages",
    "client_row",
    "sort_key",
]

ATTENTION: tuple[str, ...] = ("red", "orange", "stale", "green")
#: attention → (group heading, short word, glyph): never colour alone
ATTENTION_STYLE: dict[str, tuple[str, str, str]] = {
    "red": ("Needs attention now", "attention", "✖"),
    "orange": ("Watch", "watch", "▼"),
    "stale": ("No data lately", "no data lately", "◷"),
    "green": ("No concerns", "no concerns", "●"),
}
_SEVERITY_OF = {"red": "alert", "orange": "warning"}
_SEV_RANK = {"alert": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class CaseloadAlert:
    """A current alert as the page lists it."""

    id: int
    rule_id: str
    title: str
    severity: str
    message: str
    state: str  # open or acknowledged
    session: int | None
    first_session: int | None
    date: str | None

    @property
    def show_title(self) -> bool:
        """False when the message already starts with the title ("Dropout risk: ...")."""
        return not self.message.lower().startswith(self.title.lower())


@dataclass(frozen=True, slots=True)
class CaseloadClient:
    """One row of a caseload page (labels already pseudonymised when asked)."""

    namespace: str
    client_id: str
    label: str
    clinician_id: str | None
    attention: str
    reasons: tuple[str, ...]
    episode_label: str
    n_sessions: int
    first_date: dt.date
    last_date: dt.date
    days_since: int
    ors_measure: str | None
    ors_intake: float | None
    ors_latest: float | None
    ors_change: float | None
    rc_class: str | None
    status: str | None
    srs_measure: str | None
    srs_first: float | None
    srs_latest: float | None
    srs_count: int
    series: tuple[float, ...]
    cutoff: float | None
    rc_zone: tuple[float, float] | None
    srs_cutoff: float | None
    alerts: tuple[CaseloadAlert, ...]
    href: str | None = None

    @property
    def srs_change(self) -> float | None:
        """Change of the SRS since the episode's first rating (None with fewer than two)."""
        if self.srs_count < 2 or self.srs_first is None or self.srs_latest is None:
            return None
        return round(self.srs_latest - self.srs_first, 2)


@dataclass(frozen=True)
class CaseloadPage:
    """A clinician's page (``clinician_id`` None: clients whose records name none)."""

    clinician_id: str | None
    clients: tuple[CaseloadClient, ...]
    as_of: dt.date
    stale_days: int

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(x.attention for x in self.clients)
        return {a: c.get(a, 0) for a in ATTENTION}

    def groups(self) -> list[tuple[str, tuple[CaseloadClient, ...]]]:
        """(attention, its clients) in attention order, empty groups left out."""
        return [
            (a, tuple(x for x in self.clients if x.attention == a))
            for a in ATTENTION
            if any(x.attention == a for x in self.clients)
        ]


def attention_of(
    status: str | None, severities: Iterable[str], days_since: int, stale_days: int
) -> tuple[str, tuple[str, ...]]:
    """The client's attention group and the reasons for it, in words."""
    sev = Counter(severities)
    reasons: list[str] = []
    if sev["alert"]:
        reasons.append(f"{sev['alert']} alert{'s' if sev['alert'] > 1 else ''}")
    if status == "red":
        reasons.append("well off track")
    if reasons:
        return "red", tuple(reasons)
    if sev["warning"]:
        reasons.append(f"{sev['warning']} warning{'s' if sev['warning'] > 1 else ''}")
    if status == "orange":
        reasons.append("not on track")
    if reasons:
        return "orange", tuple(reasons)
    if days_since >= stale_days:
        return "stale", (f"no session for {days_since} days",)
    return "green", ()


def client_row(
    page: ClientPage,
    alerts: Sequence[Mapping[str, object]],
    *,
    namespace: str,
    client_id: str,
    clinician_id: str | None,
    as_of: dt.date,
    stale_days: int,
    titles: Mapping[str, str],
    href: str | None = None,
) -> CaseloadClient:
    """The caseload row of a client from its latest episode's page and its current alerts
    (rows as :meth:`fit_core.alert_store.AlertStore.list_flags` returns them)."""
    ors = page.ors.primary if page.ors else None
    srs = page.srs.primary if page.srs else None
    intake = ors.points[0] if ors and ors.points else None
    latest = ors.points[-1] if ors and ors.points else None
    listed = tuple(
        sorted(
            (
                CaseloadAlert(
                    id=int(a["id"]),  # type: ignore[call-overload]
                    rule_id=str(a["rule_id"]),
                    title=titles.get(str(a["rule_id"]), str(a["rule_id"])),
                    severity=str(a["severity"]),
                    message=str(a["message"]),
                    state=str(a["state"]),
                    session=a.get("session"),  # type: ignore[arg-type]
                    first_session=a.get("first_session"),  # type: ignore[arg-type]
                    date=a.get("date"),  # type: ignore[arg-type]
                )
                for a in alerts
            ),
            key=lambda x: (_SEV_RANK.get(x.severity, 9), x.rule_id, x.id),
        )
    )
    days = (as_of - page.last_date).days
    status = latest.status if latest is not None else None
    attention, reasons = attention_of(status, (a.severity for a in listed), days, stale_days)
    cutoffs = page.ors.cutoffs if page.ors else ()
    srs_cut = page.srs.cutoffs[-1].value if page.srs and page.srs.cutoffs else None
    return CaseloadClient(
        namespace=namespace,
        client_id=client_id,
        label=page.client_label,
        clinician_id=clinician_id,
        attention=attention,
        reasons=reasons,
        episode_label=page.episode_label,
        n_sessions=page.n_sessions,
        first_date=page.first_date,
        last_date=page.last_date,
        days_since=days,
        ors_measure="/".join(ors.measures) if ors else None,
        ors_intake=intake.total if intake else None,
        ors_latest=latest.total if latest else None,
        ors_change=latest.change_from_intake if latest and latest is not intake else None,
        rc_class=latest.rc_class if latest else None,
        status=status,
        srs_measure="/".join(srs.measures) if srs else None,
        srs_first=srs.points[0].total if srs and srs.points else None,
        srs_latest=srs.points[-1].total if srs and srs.points else None,
        srs_count=len(srs.points) if srs else 0,
        series=tuple(p.total for p in ors.points) if ors else (),
        cutoff=cutoffs[-1].value if cutoffs else None,
        rc_zone=page.ors.rc_zone if page.ors else None,
        srs_cutoff=srs_cut,
        alerts=listed,
        href=href,
    )


def sort_key(c: CaseloadClient) -> tuple[object, ...]:
    """Attention group, then more alerts of the group's severity, the longest since the last
    session, the label."""
    level = _SEVERITY_OF.get(c.attention)
    n = sum(1 for a in c.alerts if a.severity == level) if level else 0
    return (ATTENTION.index(c.attention), -n, -c.days_since, c.label)


def caseload_pages(
    rows: Iterable[CaseloadClient], as_of: dt.date, stale_days: int
) -> list[CaseloadPage]:
    """One page per clinician (sorted by clinician id; clients without one last)."""
    by: dict[str | None, list[CaseloadClient]] = {}
    for r in rows:
        by.setdefault(r.clinician_id, []).append(r)
    keys = sorted((k for k in by if k is not None), key=str.casefold)
    if None in by:
        keys.append(None)  # type: ignore[arg-type]
    return [CaseloadPage(k, tuple(sorted(by[k], key=sort_key)), as_of, stale_days) for k in keys]
