"""From scored administrations to episodes: summaries for agency statistics and series for
fitting expected trajectories. Pure functions over plain data.

When an episode has ended, and whether the ending was planned, is decided by
:mod:`fit_core.endings` (the one definition the alerts, ``fit stats`` and the reports share).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import exact
from .agency import EpisodeSummary
from .endings import Ending, episode_ending, latest_episode_ids, planned_ending
from .measures import Measure
from .models import ClientContext, OutboxItem, Scored
from .scoring import encode_payload, payload_hash, reliable_change_for
from .settings import Settings
from .trajectories import EpisodeSeries


@dataclass(frozen=True, slots=True)
class EpisodeView:
    """Every scored administration of one client + episode + rater, oldest first."""

    client: tuple[str, str]
    episode_id: str
    rater: str
    items: tuple[Scored, ...]

    def family(self, family: str, measures: Mapping[str, Measure]) -> list[Scored]:
        return [s for s in self.items if measures[s.admin.measure].family == family]

    @property
    def last_date(self) -> dt.date:
        return self.items[-1].admin.local_date

    @property
    def first_date(self) -> dt.date:
        return self.items[0].admin.local_date


def episodes_of(scored: Iterable[Scored]) -> Iterator[EpisodeView]:
    """Group the scored administrations of ONE client into episode views."""
    groups: dict[tuple[str, str], list[Scored]] = defaultdict(list)
    client: tuple[str, str] | None = None
    for s in scored:
        client = s.admin.client
        groups[(s.score.episode_id, s.admin.rater)].append(s)
    for (episode_id, rater), items in groups.items():
        items.sort(key=lambda x: (x.admin.administered_at, x.admin.source_key))
        yield EpisodeView(client or ("", ""), episode_id, rater, tuple(items))


def is_ended(
    view: EpisodeView,
    as_of: dt.date,
    settings: Settings,
    context: ClientContext | None = None,
    *,
    latest: bool = True,
) -> bool:
    """Has the episode ended by ``as_of``? See :func:`fit_core.endings.episode_ending`."""
    return ending_of(view, as_of, settings, context, latest=latest).ended


def ending_of(
    view: EpisodeView,
    as_of: dt.date,
    settings: Settings,
    context: ClientContext | None = None,
    *,
    latest: bool = True,
) -> Ending:
    """The :class:`~fit_core.endings.Ending` of an episode view (the one definition the alerts,
    ``fit stats`` and the reports share). ``latest``: this is the client's latest episode (see
    :func:`latest_views`)."""
    appointments = context.appointments if context is not None else ()
    return episode_ending(
        view.first_date, view.last_date, as_of, settings, appointments, latest=latest
    )


def latest_views(views: Iterable[EpisodeView]) -> list[tuple[EpisodeView, bool]]:
    """A client's episode views, each with whether it belongs to the client's latest episode
    (:func:`fit_core.endings.latest_episode_ids`, as scoring decides it)."""
    views = list(views)
    latest = latest_episode_ids((v.episode_id, v.last_date) for v in views)
    return [(v, v.episode_id in latest) for v in views]


def summarize(
    view: EpisodeView,
    measures: Mapping[str, Measure],
    settings: Settings,
    as_of: dt.date,
    *,
    site: str | None = None,
    context: ClientContext | None = None,
    latest: bool = True,
) -> EpisodeSummary | None:
    """An :class:`EpisodeSummary` of one episode view (None when it holds no ORS).

    ``context`` (practice data) and ``latest`` (this is the client's latest episode) decide when
    the episode counts as ended and whether the ending was planned: see :mod:`fit_core.endings`.
    """
    ors = view.family("ORS", measures)
    srs = view.family("SRS", measures)
    if not ors:
        return None
    first, last = ors[0], ors[-1]
    measure = measures[first.admin.measure]
    rc = reliable_change_for(measure, settings) or 0.0
    cutoff = first.score.cutoff if first.score.cutoff is not None else 0.0
    ending = ending_of(view, as_of, settings, context, latest=latest)
    reached = len(ors) >= 2 and exact.at_least(exact.diff(last.score.total, first.score.total), rc)
    clinicians = [s.admin.clinician_id for s in view.items if s.admin.clinician_id]
    sites = [s.admin.site for s in view.items if s.admin.site]
    return EpisodeSummary(
        client_key=view.client,
        episode_id=view.episode_id,
        rater=view.rater,
        clinician_id=clinicians[-1] if clinicians else None,
        site=site or (sites[-1] if sites else None),
        age_band=first.score.age_band if _has_age(view) else _band(measure),
        first_date=view.first_date,
        last_date=view.last_date,
        n_sessions=max(s.score.session for s in view.items),
        n_ors=len(ors),
        ors_cutoff=cutoff,
        rc=rc,
        intake_ors=first.score.total,
        last_ors=last.score.total,
        intake_srs=srs[0].score.total if srs else None,
        mean_srs=round(sum(s.score.total for s in srs) / len(srs), 2) if srs else None,
        ended=ending.ended,
        planned_ending=planned_ending(ending, reached),
        expected_last=last.score.expected if len(ors) >= 2 else None,
        ending_basis=ending.basis,
        dropout=bool(ending.missed_at_end) if ending.ended and _has_attendance(context) else None,
        srs_items=_srs_item_means(srs),
        measures=tuple(dict.fromkeys(s.admin.measure for s in view.items)),
    )


def _has_attendance(context: ClientContext | None) -> bool:
    return context is not None and context.has_attendance


def _srs_item_means(srs: Sequence[Scored]) -> dict[str, tuple[float, ...]]:
    """Per SRS-family measure, the mean of each item over the administrations that gave items."""
    cols: dict[str, list[list[float]]] = {}
    for s in srs:
        items = s.admin.items
        if items is None:
            continue
        for col, v in zip(
            cols.setdefault(s.admin.measure, [[] for _ in items]), items, strict=False
        ):
            col.append(v)
    return {k: tuple(round(sum(c) / len(c), 2) for c in v if c) for k, v in cols.items()}


def _has_age(view: EpisodeView) -> bool:
    """Whether any administration of the episode view states an age (scoring then uses the
    episode's age band, see :mod:`fit_core.scoring`)."""
    return any(s.admin.age is not None for s in view.items)


def _band(measure: Measure) -> str:
    """Without an age: a child measure still says "child"; otherwise unknown."""
    return "child" if measure.default_band == "child" else "unknown"


def trajectory_series(
    view: EpisodeView, measures: Mapping[str, Measure], measure_key: str, *, rater: str = "client"
) -> EpisodeSeries | None:
    """The ORS series of one episode rated by ``rater`` for fitting (None if not that measure
    or rater: a model is fitted on one rater's ratings, never a mix)."""
    if view.rater != rater:
        return None
    ors = [s for s in view.family("ORS", measures) if s.admin.measure == measure_key]
    if len(ors) < 2:
        return None
    totals: dict[int, float] = {}
    for s in ors:
        totals.setdefault(s.score.session, s.score.total)  # first ORS of a session
    if 1 not in totals:
        return None
    return EpisodeSeries(totals[1], totals)


# --- client summaries for practice systems -------------------------------------------------------


def context_sources(context: ClientContext) -> set[str]:
    """The practice-system sources that know this client (they get a client summary)."""
    sources = {a.source for a in context.appointments}
    if context.info is not None:
        sources.add(context.info.source)
    return sources


def client_summary(
    scored: Sequence[Scored], context: ClientContext | None = None
) -> dict[str, Any]:
    """The latest state of a client, JSON-ready: what a progress note or a dashboard needs.

    Uses the client-rated trajectory of the latest episode: latest ORS (total, date, session,
    change from intake, class, status), latest SRS, open flags (rule id, severity, message), and
    the next booked appointment when practice data has one.
    """
    own = [s for s in scored if s.admin.rater == "client"] or list(scored)
    if not own:
        return {}
    own.sort(key=lambda s: (s.admin.administered_at, s.admin.source_key))
    episode = own[-1].score.episode_id
    latest = [s for s in own if s.score.episode_id == episode]
    ors = [s for s in latest if s.score.rc_class is not None]
    srs = [s for s in latest if s.score.rc_class is None]
    flags = [
        {
            "rule_id": f.rule_id,
            "severity": f.severity,
            "message": f.message,
            "date": s.admin.local_date.isoformat(),
        }
        for s in scored
        if s.score.episode_id == episode
        for f in s.flags
        if f.state == "open"
    ]
    last_ors, last_srs = (ors[-1] if ors else None), (srs[-1] if srs else None)
    out: dict[str, Any] = {
        "client_id": own[-1].admin.client_id,
        "episode_id": episode,
        "clinician_id": next(
            (s.admin.clinician_id for s in reversed(latest) if s.admin.clinician_id), None
        ),
        "sessions": max(s.score.session for s in latest),
        "first_date": latest[0].admin.local_date.isoformat(),
        "last_date": latest[-1].admin.local_date.isoformat(),
        "ors": None,
        "srs": None,
        "flags": flags,
    }
    if last_ors is not None:
        sc = last_ors.score
        out["ors"] = {
            "measure": last_ors.admin.measure,
            "date": last_ors.admin.local_date.isoformat(),
            "session": sc.session,
            "total": sc.total,
            "intake": sc.intake,
            "change_from_intake": sc.change_from_intake,
            "rc_class": sc.rc_class,
            "clinical": sc.clinical,
            "cutoff": sc.cutoff,
            "status": sc.status,
            "expected": sc.expected,
            "history": [s.score.total for s in ors],
            "points": [
                {
                    "date": s.admin.local_date.isoformat(),
                    "session": s.score.session,
                    "total": s.score.total,
                    "change_from_intake": s.score.change_from_intake,
                    "rc_class": s.score.rc_class,
                    "status": s.score.status,
                }
                for s in ors
            ],
        }
    if last_srs is not None:
        sc = last_srs.score
        out["srs"] = {
            "measure": last_srs.admin.measure,
            "date": last_srs.admin.local_date.isoformat(),
            "session": sc.session,
            "total": sc.total,
            "clinical": sc.clinical,
            "change_from_previous": sc.change_from_previous,
            "history": [s.score.total for s in srs],
            "points": [
                {
                    "date": s.admin.local_date.isoformat(),
                    "session": s.score.session,
                    "total": s.score.total,
                    "change_from_previous": s.score.change_from_previous,
                }
                for s in srs
            ],
        }
    if context is not None:
        upcoming = [a for a in context.appointments if a.status == "scheduled"]
        out["next_appointment"] = upcoming[0].local_date.isoformat() if upcoming else None
    return out


def client_outbox_item(
    source: str, client: tuple[str, str], scored: Sequence[Scored], context: ClientContext
) -> OutboxItem:
    """An outbox row for a practice-system source: the client's summary, keyed per client."""
    payload = client_summary(scored, context)
    encoded = encode_payload(payload)
    return OutboxItem(
        source,
        f"client:{client[0]}:{client[1]}",
        payload,
        payload_hash(payload, encoded),
        {"namespace": client[0], "client_id": client[1]},
        encoded,
    )
