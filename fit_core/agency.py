"""Agency statistics: the indices agencies report (the ICCE list), per group.

Pure functions over plain data: the caller (the store, or a notebook) summarises each rated
episode into an :class:`EpisodeSummary`, and :func:`agency_stats` turns them into one
:class:`GroupStats` for the whole agency (``group == "all"``) and one per group. Groups smaller
than ``min_n`` episodes are **shown and marked** (``small=True``), never hidden or pooled.

Units and populations, per group:

- An :class:`EpisodeSummary` is one *rated episode*: one client, episode and rater (a parent
  rating a child is a separate summary of the same episode). Episodes are counted once per
  (client_key, episode_id); ``n_collateral`` counts summaries whose rater is not ``"client"``.
- Each episode belongs to exactly one group, taken from its primary summary (the client-rated
  one if any, else the first seen); ``month`` is the month of the episode's first date. So the
  groups' episode counts add up to the "all" row (clients can appear in several groups).
- Sessions and days are per episode: the most sessions any rater has, and
  ``last date − first date`` in days over all its raters (0 for a one-day episode).
- *Outcome* figures (intake means, effect sizes, classes, target) use the summaries rated by
  ``outcome_rater`` (default ``"client"``; None = every rater) — raters are never mixed within
  one trajectory, and by default not within one figure. Change figures need at least 2 ORS
  (``n_ors >= 2``) with ``intake_ors`` and ``last_ors`` given; ``ended_only=True`` keeps only
  ended episodes for them.

Formulas (sources in :mod:`fit_core.stats`):

- pre–post effect size ``d = mean(last − intake)/SD(intake)`` with a 95% CI from
  ``SE = √(2(1−r)/n + d²/(2n))`` (Becker 1988), see :func:`fit_core.stats.pre_post_effect_size`;
- severity-adjusted effect size: over outcome episodes with a clinical-range intake and an
  ``expected_last`` (the trajectory model's expected value at the last session), the residualized
  gain ``mean(last − expected_last)`` divided by ``SD(intake)`` of those same episodes, or by
  ``sd_reference`` when given (e.g. a normative intake SD, as ACORN standardises). 0 means "as
  expected for this case mix", positive is better. None without a model (no ``expected_last``).
- classes (Jacobson & Truax 1991, via :func:`fit_core.scoring.rc_class`): recovered (Δ ≥ RC and
  moved from the clinical range to at/above the cutoff), improved (Δ ≥ RC otherwise — an intake at
  or above the cutoff can improve but never recover), no reliable change, deteriorated (Δ ≤ −RC);
- reaching target: ``reached_target`` when the caller knows it, else ``last − intake ≥ RC``;
- endings: among ended episodes, planned / unplanned / unknown (the ICCE planned vs unilateral
  proxy of :func:`fit_core.endings.planned_ending`), each crossed with whether the target was
  reached; and, kept apart from that proxy, what the data show (``endings``): ``dropout``
  (attendance data: the client missed the last appointment(s), see :mod:`fit_core.endings`),
  ``reached`` (the target was reached), ``not_reached`` (attended to the end, or no attendance
  data, and the target was not reached: "unplanned" only by inference) and ``unknown`` (fewer
  than 2 ORS).
  ``pct_dropout`` is of the ended episodes that have attendance data; without any it is None;
- closed cases reaching target: ``pct_closed_reached_target``, of the *ended* outcome episodes
  (the population benchmarks such as "64–74 % of closed cases reach target" are for), whatever
  ``ended_only`` says;
- residual change index (per group): one least-squares line ``last = a + b·intake`` over all
  the agency's outcome episodes (the same population as the effect size); an episode's residual
  is ``last − (a + b·intake)``, how much more (or less) it changed than episodes with the same
  intake did in this agency. A group's index is the mean residual in points, with a 95% CI
  (``mean ± 1.96·SD/√n``), and standardised by the agency's intake SD (``residual_index``);
  0 means "as the agency does with this case mix". No trajectory model needed;
- collateral raters (``collateral``): per rater other than ``outcome_rater``, the same change
  figures from that rater's own ratings, never pooled with the client's;
- SRS items (``srs_item_means``): per SRS-family measure, the mean of each item (by its neutral
  key) over the episodes' administrations that gave items.

When ``by`` is given and not one episode has a value for it (no site recorded anywhere), there
are no group rows: a "(none)" group would only repeat the "all" row.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NamedTuple

from . import exact
from .scoring import rc_class
from .settings import Comparison, Settings
from .stats import Z_95, mean, ols, pre_post_effect_size, sample_sd

__all__ = ["GROUP_BY", "EpisodeSummary", "GroupBy", "GroupStats", "agency_stats"]

GroupBy = Literal["clinician", "site", "month", "age_band"]
GROUP_BY: tuple[str, ...] = ("clinician", "site", "month", "age_band")
NO_GROUP = "(none)"  # the group label for a missing clinician or site


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeSummary:
    """One rated episode (client + episode + rater), summarised for agency statistics.

    ``client_key`` identifies the client (e.g. ``(namespace, client_id)``). ``n_sessions`` counts
    this rater's sessions, ``n_ors`` their ORS-family administrations (change figures need 2).
    ``intake_ors`` is the first ORS total, ``last_ors`` the latest; ``ors_cutoff`` and ``rc`` are
    the clinical cutoff and reliable change for this measure and age band. ``intake_srs`` is the
    first SRS total, ``mean_srs`` the mean of the episode's SRS totals. ``ended`` says whether the
    episode is closed, ``planned_ending`` whether it ended as planned (None: unknown).
    ``expected_last`` is a trajectory model's expected ORS at the last session (None without a
    model), ``reached_target`` the caller's own target verdict (None: use ``last − intake ≥ rc``).
    ``ending_basis`` says what decided the ending (``"attendance"`` or ``"gap"``, see
    :mod:`fit_core.endings`); ``dropout`` whether attendance data show the client missed the last
    appointment(s) before it ended (None: no attendance data, or not ended). ``srs_items`` maps an
    SRS-family measure key to the mean of each of its items over this episode (item order);
    ``measures`` lists the measure keys the episode view holds (for copyright notices).
    """

    client_key: Hashable
    episode_id: str
    rater: str = "client"
    clinician_id: str | None = None
    site: str | None = None
    age_band: str = "unknown"
    first_date: dt.date
    last_date: dt.date
    n_sessions: int
    n_ors: int
    ors_cutoff: float
    rc: float
    intake_ors: float | None = None
    last_ors: float | None = None
    intake_srs: float | None = None
    mean_srs: float | None = None
    ended: bool = False
    planned_ending: bool | None = None
    expected_last: float | None = None
    reached_target: bool | None = None
    ending_basis: str | None = None
    dropout: bool | None = None
    srs_items: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    measures: tuple[str, ...] = ()

    @property
    def episode_key(self) -> tuple[Hashable, str]:
        return (self.client_key, self.episode_id)

    def target_reached(self) -> bool | None:
        """``reached_target`` if given, else ``last − intake ≥ rc``; None without 2 ORS."""
        if self.reached_target is not None:
            return self.reached_target
        if self.n_ors < 2 or self.intake_ors is None or self.last_ors is None:
            return None
        return exact.at_least(exact.diff(self.last_ors, self.intake_ors), self.rc)


@dataclass(frozen=True, slots=True)
class GroupStats:
    """Agency indices for one group (see the module docstring for populations and formulas).

    ``by`` is the grouping (``"all"`` for the whole-agency row) and ``group`` its value
    (``"all"``, a clinician id, a site, ``"YYYY-MM"``, an age band, or ``"(none)"``).
    Percentages are 0–100 and None when their denominator is 0; means are None without data.
    ``small`` is True when ``n_episodes < min_n``: show it, marked, never hide or pool it.
    ``outcome_population`` says which episodes the outcome figures are of: ``"all"`` (open and
    ended) or ``"ended"``.
    """

    by: str
    group: str
    small: bool
    n_clients: int
    n_episodes: int
    n_rated_episodes: int
    n_collateral: int
    clients_by_age_band: Mapping[str, int]
    mean_intake_ors: float | None
    mean_intake_ors_by_age_band: Mapping[str, float]
    mean_intake_srs: float | None
    mean_srs: float | None
    mean_sessions: float | None
    mean_days: float | None
    n_outcome: int
    effect_size: float | None
    effect_size_ci_low: float | None
    effect_size_ci_high: float | None
    n_severity_adjusted: int
    severity_adjusted_effect_size: float | None
    n_nonclinical_intake: int
    n_recovered: int
    n_improved: int
    n_no_change: int
    n_deteriorated: int
    pct_recovered: float | None
    pct_improved: float | None
    pct_no_change: float | None
    pct_deteriorated: float | None
    pct_reliably_improved: float | None
    n_reached_target: int
    pct_reached_target: float | None
    n_ended: int
    n_planned: int
    n_unplanned: int
    n_ending_unknown: int
    pct_planned: float | None
    pct_unplanned: float | None
    endings_by_target: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    outcome_population: str = "all"
    n_closed_outcome: int = 0
    n_closed_reached_target: int = 0
    pct_closed_reached_target: float | None = None
    endings: Mapping[str, int] = field(default_factory=dict)
    n_ended_attendance: int = 0
    n_dropout: int = 0
    pct_dropout: float | None = None
    n_residual: int = 0
    residual_change: float | None = None
    residual_change_ci_low: float | None = None
    residual_change_ci_high: float | None = None
    residual_index: float | None = None
    collateral: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    srs_item_means: Mapping[str, tuple[float | None, ...]] = field(default_factory=dict)

    def as_dict(self, ndigits: int | None = None) -> dict[str, Any]:
        """A JSON-ready dict; floats rounded to ``ndigits`` when given."""
        out = asdict(self)
        if ndigits is None:
            return out
        return {k: _round(v, ndigits) for k, v in out.items()}


def _round(v: Any, ndigits: int) -> Any:
    if isinstance(v, float):
        return round(v, ndigits)
    if isinstance(v, dict):
        return {k: _round(x, ndigits) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_round(x, ndigits) for x in v]
    return v


def _pct(k: int, n: int) -> float | None:
    return 100.0 * k / n if n else None


def _mean_or_none(values: list[float]) -> float | None:
    return mean(values) if values else None


class _Change(NamedTuple):
    """The change figures of one outcome summary, computed once."""

    intake: float
    last: float
    rc_class: str
    clinical: bool
    target: bool
    sa_gain: float | None  # last − expected_last for a clinical-range intake with a model
    ended: bool = False


class _Episode:
    """All summaries of one (client, episode), merged, with what every group needs precomputed."""

    __slots__ = (
        "attendance",
        "changes",
        "client",
        "closed",
        "collateral",
        "ended",
        "ending",
        "first",
        "kind",
        "last",
        "primary",
        "rated",
        "sessions",
        "summaries",
    )

    def __init__(self, s: EpisodeSummary) -> None:
        self.client = s.client_key
        self.primary = s
        self.summaries = [s]
        self.first, self.last, self.sessions = s.first_date, s.last_date, s.n_sessions
        self.rated: list[EpisodeSummary] = []
        self.changes: list[_Change] = []
        self.closed: list[_Change] = []  # the ended outcome changes (for "closed cases")
        self.collateral: dict[str, list[_Change]] = {}
        self.ended = False
        self.ending: tuple[str, str] = ("unknown", "unknown")
        self.kind = "unknown"
        self.attendance = False

    def add(self, s: EpisodeSummary) -> None:
        self.summaries.append(s)
        if self.primary.rater != "client" and s.rater == "client":
            self.primary = s
        self.first = min(self.first, s.first_date)
        self.last = max(self.last, s.last_date)
        self.sessions = max(self.sessions, s.n_sessions)

    def finish(self, outcome_rater: str | None, ended_only: bool, settings: Settings) -> None:
        """Compute the per-summary change figures and the ending once, for every group."""
        self.ended = any(s.ended for s in self.summaries)
        self.rated = [s for s in self.summaries if outcome_rater in (None, s.rater)]
        for s in self.summaries:
            change = _change(s, settings)
            if change is None:
                continue
            if s in self.rated:
                if change.ended:
                    self.closed.append(change)
                if not (ended_only and not change.ended):
                    self.changes.append(change)
            elif not (ended_only and not change.ended):
                self.collateral.setdefault(s.rater, []).append(change)
        if self.ended:
            ordered = [self.primary, *(s for s in self.summaries if s is not self.primary)]
            planned = next(
                (s.planned_ending for s in ordered if s.planned_ending is not None), None
            )
            kind = "unknown" if planned is None else "planned" if planned else "unplanned"
            who = outcome_rater or self.primary.rater
            outcome = next((s for s in ordered if s.rater == who), None)
            reached = None if outcome is None else outcome.target_reached()
            self.ending = (kind, "unknown" if reached is None else _REACHED[reached])
            dropout = next((s.dropout for s in ordered if s.dropout is not None), None)
            self.attendance = dropout is not None
            if dropout:
                self.kind = "dropout"
            else:
                self.kind = "unknown" if reached is None else _REACHED[reached]

    def group_key(self, by: str) -> str:
        p = self.primary
        if by == "clinician":
            return p.clinician_id or NO_GROUP
        if by == "site":
            return p.site or NO_GROUP
        if by == "month":
            return f"{self.first.year:04d}-{self.first.month:02d}"
        return p.age_band or NO_GROUP


_REACHED = {True: "reached", False: "not_reached"}
#: what the data show about how ended episodes ended (see the module docstring)
ENDING_KINDS: tuple[str, ...] = ("dropout", "reached", "not_reached", "unknown")


def _change(s: EpisodeSummary, settings: Settings) -> _Change | None:
    """The change figures of one summary (None without two ORS)."""
    intake, last = s.intake_ors, s.last_ors
    if s.n_ors < 2 or intake is None or last is None:
        return None
    clinical = settings.is_clinical(intake, s.ors_cutoff)
    cls = rc_class(intake, last, s.rc, s.ors_cutoff, settings, is_intake=False)
    gain = None if s.expected_last is None or not clinical else last - s.expected_last
    return _Change(intake, last, cls, clinical, bool(s.target_reached()), gain, s.ended)


class _Residuals:
    """The agency-wide line ``last = a + b·intake`` over the outcome changes, and its SD of
    intake; None-safe when it cannot be fitted (fewer than 3 episodes, one intake only)."""

    def __init__(self, changes: list[_Change]) -> None:
        self.fit: tuple[float, float] | None = None
        self.sd: float | None = None
        if len(changes) >= 3:
            try:
                a, b, _res = ols([c.intake for c in changes], [c.last for c in changes])
            except ValueError:
                return
            self.fit = (a, b)
            self.sd = sample_sd(c.intake for c in changes)

    def of(self, changes: list[_Change]) -> tuple[float | None, ...]:
        """(mean residual, CI low, CI high, standardised index) of a group's changes."""
        if self.fit is None or not changes:
            return (None, None, None, None)
        a, b = self.fit
        res = [c.last - (a + b * c.intake) for c in changes]
        m = mean(res)
        lo = hi = None
        if len(res) >= 2:
            half = Z_95 * sample_sd(res) / math.sqrt(len(res))
            lo, hi = m - half, m + half
        return (m, lo, hi, m / self.sd if self.sd else None)


def agency_stats(
    summaries: Iterable[EpisodeSummary],
    *,
    by: GroupBy | None = None,
    min_n: int = 10,
    outcome_rater: str | None = "client",
    ended_only: bool = False,
    clinical_comparison: Comparison = "below",
    sd_reference: float | None = None,
) -> list[GroupStats]:
    """Agency indices for everyone (first row, ``group == "all"``) and, with ``by``, per group.

    ``by`` is ``"clinician"``, ``"site"``, ``"month"`` (of the episode's first date) or
    ``"age_band"``; groups follow in sorted order. ``min_n`` marks small groups.
    ``outcome_rater`` picks whose ratings the outcome figures use (None: all raters);
    ``ended_only`` restricts change figures to ended episodes; ``clinical_comparison`` is the
    cutoff boundary setting (:class:`fit_core.settings.Settings`); ``sd_reference`` replaces the
    sample SD in the severity-adjusted effect size. See the module docstring for the formulas.
    """
    if by is not None and by not in GROUP_BY:
        raise ValueError(f"by must be one of {', '.join(GROUP_BY)} or None, got {by!r}")
    if sd_reference is not None and not (math.isfinite(sd_reference) and sd_reference > 0):
        raise ValueError(f"sd_reference must be a positive number, got {sd_reference!r}")
    episodes: dict[tuple[Hashable, str], _Episode] = {}
    for s in summaries:
        ep = episodes.get(s.episode_key)
        if ep is None:
            episodes[s.episode_key] = _Episode(s)
        else:
            ep.add(s)
    settings = Settings(clinical_comparison=clinical_comparison)
    for ep in episodes.values():
        ep.finish(outcome_rater, ended_only, settings)
    everyone = list(episodes.values())
    residuals = _Residuals([c for ep in everyone for c in ep.changes])
    population = "ended" if ended_only else "all"

    def stats(by_: str, group: str, eps: list[_Episode]) -> GroupStats:
        return _group_stats(by_, group, eps, min_n, sd_reference, residuals, population)

    out = [stats("all", "all", everyone)]
    if by is not None:
        groups: dict[str, list[_Episode]] = {}
        for ep in everyone:
            groups.setdefault(ep.group_key(by), []).append(ep)
        if set(groups) != {NO_GROUP}:  # nobody has a value: "(none)" would repeat "all"
            out.extend(stats(by, g, groups[g]) for g in sorted(groups))
    return out


def _group_stats(
    by: str,
    group: str,
    episodes: list[_Episode],
    min_n: int,
    sd_reference: float | None,
    residuals: _Residuals,
    population: str,
) -> GroupStats:
    summaries = [s for ep in episodes for s in ep.summaries]
    rated = [s for ep in episodes for s in ep.rated]
    change = [c for ep in episodes for c in ep.changes]

    bands: dict[str, set[Hashable]] = {}
    for s in summaries:
        bands.setdefault(s.age_band, set()).add(s.client_key)
    intake_by_band: dict[str, list[float]] = {}
    for s in rated:
        if s.intake_ors is not None:
            intake_by_band.setdefault(s.age_band, []).append(s.intake_ors)

    es = es_lo = es_hi = None
    if len(change) >= 2:
        try:
            e = pre_post_effect_size([c.intake for c in change], [c.last for c in change])
        except ValueError:  # every intake the same: no SD to standardise by
            pass
        else:
            es, es_lo, es_hi = e.d, e.ci_low, e.ci_high

    sa = [c for c in change if c.sa_gain is not None]
    sa_es = None
    if sa:
        sd = sd_reference
        if sd is None and len(sa) >= 2:
            sd = sample_sd(c.intake for c in sa)
        sa_es = mean(c.sa_gain for c in sa) / sd if sd else None  # type: ignore[misc]

    classes = dict.fromkeys(("recovered", "improved", "no_reliable_change", "deteriorated"), 0)
    for c in change:
        classes[c.rc_class] += 1
    n_out = len(change)
    n_target = sum(c.target for c in change)

    ended = [ep for ep in episodes if ep.ended]
    endings = {
        k: dict.fromkeys(("reached", "not_reached", "unknown"), 0)
        for k in ("planned", "unplanned", "unknown")
    }
    for ep in ended:
        kind, reached = ep.ending
        endings[kind][reached] += 1
    n_planned = sum(endings["planned"].values())
    n_unplanned = sum(endings["unplanned"].values())
    kinds = dict.fromkeys(ENDING_KINDS, 0)
    for ep in ended:
        kinds[ep.kind] += 1
    n_attendance = sum(ep.attendance for ep in ended)
    closed = [c for ep in episodes for c in ep.closed]
    n_closed_target = sum(c.target for c in closed)
    res_mean, res_lo, res_hi, res_index = residuals.of(change)

    return GroupStats(
        by=by,
        group=group,
        small=len(episodes) < min_n,
        n_clients=len({ep.client for ep in episodes}),
        n_episodes=len(episodes),
        n_rated_episodes=len(summaries),
        n_collateral=sum(s.rater != "client" for s in summaries),
        clients_by_age_band={b: len(c) for b, c in sorted(bands.items())},
        mean_intake_ors=_mean_or_none([v for vs in intake_by_band.values() for v in vs]),
        mean_intake_ors_by_age_band={b: mean(v) for b, v in sorted(intake_by_band.items())},
        mean_intake_srs=_mean_or_none([s.intake_srs for s in rated if s.intake_srs is not None]),
        mean_srs=_mean_or_none([s.mean_srs for s in rated if s.mean_srs is not None]),
        mean_sessions=_mean_or_none([ep.sessions for ep in episodes]),
        mean_days=_mean_or_none([(ep.last - ep.first).days for ep in episodes]),
        n_outcome=n_out,
        effect_size=es,
        effect_size_ci_low=es_lo,
        effect_size_ci_high=es_hi,
        n_severity_adjusted=len(sa),
        severity_adjusted_effect_size=sa_es,
        n_nonclinical_intake=sum(not c.clinical for c in change),
        n_recovered=classes["recovered"],
        n_improved=classes["improved"],
        n_no_change=classes["no_reliable_change"],
        n_deteriorated=classes["deteriorated"],
        pct_recovered=_pct(classes["recovered"], n_out),
        pct_improved=_pct(classes["improved"], n_out),
        pct_no_change=_pct(classes["no_reliable_change"], n_out),
        pct_deteriorated=_pct(classes["deteriorated"], n_out),
        pct_reliably_improved=_pct(classes["recovered"] + classes["improved"], n_out),
        n_reached_target=n_target,
        pct_reached_target=_pct(n_target, n_out),
        n_ended=len(ended),
        n_planned=n_planned,
        n_unplanned=n_unplanned,
        n_ending_unknown=sum(endings["unknown"].values()),
        pct_planned=_pct(n_planned, n_planned + n_unplanned),
        pct_unplanned=_pct(n_unplanned, n_planned + n_unplanned),
        endings_by_target=endings,
        outcome_population=population,
        n_closed_outcome=len(closed),
        n_closed_reached_target=n_closed_target,
        pct_closed_reached_target=_pct(n_closed_target, len(closed)),
        endings=kinds,
        n_ended_attendance=n_attendance,
        n_dropout=kinds["dropout"],
        pct_dropout=_pct(kinds["dropout"], n_attendance),
        n_residual=len(change) if res_mean is not None else 0,
        residual_change=res_mean,
        residual_change_ci_low=res_lo,
        residual_change_ci_high=res_hi,
        residual_index=res_index,
        collateral=_collateral(episodes),
        srs_item_means=_srs_items(rated),
    )


def _collateral(episodes: list[_Episode]) -> dict[str, dict[str, Any]]:
    """Per collateral rater: that rater's own outcome figures (never pooled with the client's)."""
    by_rater: dict[str, list[_Change]] = {}
    n_eps: dict[str, int] = {}
    for ep in episodes:
        for s in ep.summaries:
            if s not in ep.rated:
                n_eps[s.rater] = n_eps.get(s.rater, 0) + 1
        for rater, changes in ep.collateral.items():
            by_rater.setdefault(rater, []).extend(changes)
    out: dict[str, dict[str, Any]] = {}
    for rater in sorted(n_eps):
        ch = by_rater.get(rater, [])
        n = len(ch)
        es = None
        if n >= 2:
            try:
                es = pre_post_effect_size([c.intake for c in ch], [c.last for c in ch]).d
            except ValueError:
                es = None
        up = sum(c.rc_class in ("recovered", "improved") for c in ch)
        down = sum(c.rc_class == "deteriorated" for c in ch)
        out[rater] = {
            "n_episodes": n_eps[rater],
            "n_outcome": n,
            "mean_intake_ors": mean(c.intake for c in ch) if ch else None,
            "mean_change": mean(c.last - c.intake for c in ch) if ch else None,
            "effect_size": es,
            "n_reliably_improved": up,
            "n_deteriorated": down,
            "pct_reliably_improved": _pct(up, n),
            "pct_deteriorated": _pct(down, n),
        }
    return out


def _srs_items(rated: list[EpisodeSummary]) -> dict[str, tuple[float | None, ...]]:
    """Per SRS-family measure, the mean of each item over the episodes that gave items."""
    sums: dict[str, list[list[float]]] = {}
    for s in rated:
        for key, items in s.srs_items.items():
            cols = sums.setdefault(key, [[] for _ in items])
            for col, v in zip(cols, items, strict=False):
                col.append(v)
    return {k: tuple(mean(c) if c else None for c in cols) for k, cols in sorted(sums.items())}
