"""What goes into the clinic report: agency statistics plus the distribution of change.

Pure: from :class:`fit_core.agency.EpisodeSummary` objects (one per rated episode) to one
:class:`ClinicData`. The figures are exactly those of :func:`fit_core.agency.agency_stats` (and
so of ``fit stats``); the distribution of change uses the same population as its outcome
figures: client-rated episodes with at least two ORS, change = latest − intake.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..agency import NO_GROUP, EpisodeSummary, GroupStats, agency_stats
from ..settings import Comparison

__all__ = ["BY_LABELS", "ClinicData", "clinic_data", "outcome_changes"]

BY_LABELS: dict[str, str] = {
    "clinician": "clinician",
    "site": "site",
    "month": "month",
    "age_band": "age band",
}
OUTCOME_RATER = "client"


@dataclass(frozen=True, slots=True)
class ClinicData:
    """The clinic report's content. ``overall`` is the "all" row, ``groups`` one per group.

    ``changes`` are the change scores (latest − intake) of the outcome episodes, overall and per
    group (same grouping as the statistics); ``rc`` the reliable change most episodes use.
    """

    by: str
    min_n: int
    as_of: dt.date
    since: dt.date | None
    overall: GroupStats
    groups: tuple[GroupStats, ...]
    changes: tuple[float, ...]
    changes_by_group: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    rc: float = 5.0

    @property
    def by_label(self) -> str:
        return BY_LABELS.get(self.by, self.by)

    @property
    def rows(self) -> tuple[GroupStats, ...]:
        """The "all" row first, then the groups."""
        return (self.overall, *self.groups)


def _group_key(s: EpisodeSummary, by: str) -> str:
    if by == "clinician":
        return s.clinician_id or NO_GROUP
    if by == "site":
        return s.site or NO_GROUP
    if by == "month":
        return f"{s.first_date.year:04d}-{s.first_date.month:02d}"
    return s.age_band or NO_GROUP


def outcome_changes(
    summaries: Iterable[EpisodeSummary], by: str | None = None
) -> tuple[list[float], dict[str, list[float]], float]:
    """Change scores of the outcome episodes, overall and per group, and the usual RC.

    Outcome episodes: rated by the client, at least two ORS, intake and latest known; each
    (client, episode) counts once.
    """
    changes: list[float] = []
    per_group: dict[str, list[float]] = defaultdict(list)
    rcs: Counter[float] = Counter()
    seen: set[object] = set()
    for s in summaries:
        if s.rater != OUTCOME_RATER or s.n_ors < 2:
            continue
        if s.intake_ors is None or s.last_ors is None or s.episode_key in seen:
            continue
        seen.add(s.episode_key)
        change = round(s.last_ors - s.intake_ors, 2)
        changes.append(change)
        rcs[s.rc] += 1
        if by is not None:
            per_group[_group_key(s, by)].append(change)
    rc = rcs.most_common(1)[0][0] if rcs else 5.0
    return changes, dict(per_group), rc


def clinic_data(
    summaries: Iterable[EpisodeSummary],
    *,
    by: str,
    as_of: dt.date,
    min_n: int = 10,
    since: dt.date | None = None,
    clinical_comparison: Comparison = "below",
) -> ClinicData:
    """The clinic report's data: :func:`agency_stats` grouped ``by``, plus change scores.

    ``since`` only labels the report: filter the summaries before calling (as ``fit stats``
    does, by the episode's first date).
    """
    items = list(summaries)
    stats = agency_stats(
        items,
        by=by,  # type: ignore[arg-type]
        min_n=min_n,
        outcome_rater=OUTCOME_RATER,
        clinical_comparison=clinical_comparison,
    )
    changes, per_group, rc = outcome_changes(items, by)
    return ClinicData(
        by=by,
        min_n=min_n,
        as_of=as_of,
        since=since,
        overall=stats[0],
        groups=tuple(stats[1:]),
        changes=tuple(changes),
        changes_by_group={k: tuple(v) for k, v in sorted(per_group.items())},
        rc=rc,
    )
