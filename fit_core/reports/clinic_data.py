"""What goes into the clinic report: agency statistics plus the distribution of change.

Pure: from :class:`fit_core.agency.EpisodeSummary` objects (one per rated episode) to one
:class:`ClinicData`. The figures are exactly those of :func:`fit_core.agency.agency_stats` (and
so of ``fit stats``); the distribution of change uses the same population as its outcome
figures: client-rated episodes with at least two ORS (ended ones only with ``ended_only``),
change = latest − intake.

Small groups are shown and marked; their **effect sizes** (and residual change index) are
withheld below ``min_n`` outcome episodes (:func:`effect_shown`): with three episodes a
pre–post d of 14 with an interval from 3 to 26 says nothing, and drawn on a shared axis it
squeezes every other group into a corner.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..agency import NO_GROUP, EpisodeSummary, GroupStats, agency_stats
from ..measures import Measure
from ..settings import Comparison

__all__ = ["BY_LABELS", "ClinicData", "clinic_data", "effect_shown", "outcome_changes"]

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
    ended_only: bool = False
    measures: tuple[str, ...] = ()
    srs_labels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    srs_items: bool = False

    @property
    def no_groups(self) -> bool:
        """True when grouping was asked for but no episode has a value for it (no site data):
        then there is only the "all" row, never a "(none)" row repeating it."""
        return not self.groups

    @property
    def population(self) -> str:
        """Which episodes the outcome figures are of, in words."""
        if self.ended_only:
            return "ended episodes with two or more ORS"
        return "episodes with two or more ORS, open and ended"

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


def effect_shown(g: GroupStats, min_n: int) -> bool:
    """Whether a group's effect size is shown: it needs ``min_n`` outcome episodes (the
    report's ``--min-n``, 10 by default). Below that it is withheld, and the page says so."""
    return g.effect_size is not None and g.n_outcome >= min_n


def outcome_changes(
    summaries: Iterable[EpisodeSummary], by: str | None = None, *, ended_only: bool = False
) -> tuple[list[float], dict[str, list[float]], float]:
    """Change scores of the outcome episodes, overall and per group, and the usual RC.

    Outcome episodes: rated by the client, at least two ORS, intake and latest known (ended,
    with ``ended_only``); each (client, episode) counts once.
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
        if ended_only and not s.ended:
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
    ended_only: bool = False,
    srs_items: bool = False,
    measures: Mapping[str, Measure] | None = None,
) -> ClinicData:
    """The clinic report's data: :func:`agency_stats` grouped ``by``, plus change scores.

    ``since`` only labels the report: filter the summaries before calling (as ``fit stats``
    does, by the episode's first date). ``ended_only`` restricts the outcome figures to ended
    episodes; ``srs_items`` adds the mean SRS item per group, labelled with ``measures``'
    neutral domain labels.
    """
    items = list(summaries)
    stats = agency_stats(
        items,
        by=by,  # type: ignore[arg-type]
        min_n=min_n,
        outcome_rater=OUTCOME_RATER,
        ended_only=ended_only,
        clinical_comparison=clinical_comparison,
    )
    changes, per_group, rc = outcome_changes(items, by, ended_only=ended_only)
    shown = tuple(dict.fromkeys(m for s in items for m in s.measures))
    labels = {
        k: measures[k].item_labels
        for k in stats[0].srs_item_means
        if measures is not None and k in measures
    }
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
        ended_only=ended_only,
        measures=shown,
        srs_labels=labels,
        srs_items=srs_items,
    )
