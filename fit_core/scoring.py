"""Scoring: episodes, sessions, change, reliable-change classes and rules for one client.

Pure functions over plain data: no I/O, no clock (``Settings.as_of`` fixes "today"), no globals.

- An episode is the explicit ``episode_id``, or else a new one starts after
  ``Settings.episode_gap_days`` without administrations (auto ids ``auto-<first date>``).
- Sessions are numbered by clinic-local date within client + episode + rater: ORS and SRS on the
  same date are one session.
- A trajectory is client + episode + rater + measure family; the intake is its first ORS.
- **One age band per episode**: every administration of an episode is scored with the age band
  (and so the clinical cutoff) of the episode's first administration that states an age (given,
  or from the practice system's date of birth); the measure's default band when none does. A
  client who turns 18 during an episode keeps the adolescent cutoff until the episode ends, so
  the intake is never re-tested against another cutoff, and ``fit stats`` (which reads the
  intake's cutoff) classifies the episode the same way.
- A trajectory model speaks only for the raters it was fitted on (:func:`model_covers`; by
  default the client): a parent's ratings get no expected band and no on-track status from a
  model fitted on clients' ratings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Any, Protocol

from . import exact
from .endings import Ending, episode_ending, latest_episode_ids
from .measures import Measure
from .models import (
    Administration,
    ClientContext,
    Flag,
    FlagState,
    OutboxItem,
    RcClass,
    Score,
    Scored,
    Status,
)
from .settings import Settings


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a trajectory model expects of an ORS at one session, given the intake."""

    expected: float
    low: float
    high: float
    severe: float | None = None


class TrajectoryModel(Protocol):
    """Anything that can say what to expect: a clinic-fitted model or a supplied table.

    A model may also say whose ratings it speaks for, with a ``raters`` attribute (a tuple of
    rater names) or a ``covers(measure, rater) -> bool`` method; without either it speaks for
    the client's own ratings only (see :func:`model_covers`).
    """

    def expect(self, measure: str, intake: float, session: int) -> Expectation | None: ...


DEFAULT_MODEL_RATERS: tuple[str, ...] = ("client",)


def model_for(model: TrajectoryModel | None, measure: str, rater: str) -> TrajectoryModel | None:
    """The model that speaks for ``rater``'s ratings on ``measure``, or None.

    Never mixes raters: a model fitted on clients' ratings does not colour a parent's. A set of
    models (:class:`fit_core.trajectories.ModelSet`) picks one with ``select(measure, rater)``;
    a single model answers with ``covers(measure, rater)`` when it has one, else its
    ``measures`` (when it lists them) and ``raters`` (default: the client).
    """
    if model is None:
        return None
    select = getattr(model, "select", None)
    if callable(select):
        return select(measure, rater)
    covers = getattr(model, "covers", None)
    if callable(covers):
        return model if covers(measure, rater) else None
    measures = getattr(model, "measures", None)
    if measures is not None and measure not in measures:
        return None  # a model of the ORS says nothing about the CORS: no status, not grey
    return model if rater in tuple(getattr(model, "raters", DEFAULT_MODEL_RATERS)) else None


def model_covers(model: TrajectoryModel | None, measure: str, rater: str) -> bool:
    """Does ``model`` speak for ``rater``'s ratings on ``measure``? See :func:`model_for`."""
    return model_for(model, measure, rater) is not None


class History:
    """What a rule sees: the administration being evaluated and what came before it.

    ``trajectory`` is the same client + episode + rater + measure family up to and including
    ``current`` (oldest first); ``episode`` is every scored administration of the client's
    episode and rater so far, both families; ``group`` is every administration of that episode
    and rater, later ones included (unscored), so a rule can tell whether ``current`` is the last
    one or whether a session's SRS exists. ``settings.as_of`` is "today" for date rules (None:
    unknown, and date rules stay silent); ``ending`` says whether the episode has ended by then.
    Read-only: rules must not change what they see.

    ``trajectory`` and ``episode`` are built when first asked for (most rules need only
    ``current`` and ``previous``), which keeps scoring linear in the length of an episode.
    """

    __slots__ = (
        "_episode",
        "_n_episode",
        "_n_traj",
        "_traj",
        "context",
        "current",
        "dates_by_family",
        "ending",
        "group",
        "measure",
        "settings",
    )

    def __init__(
        self,
        current: Scored,
        trajectory: Sequence[Scored],
        episode: Sequence[Scored],
        measure: Measure,
        settings: Settings,
        group: tuple[Administration, ...] = (),
        context: ClientContext | None = None,
        dates_by_family: Mapping[str, frozenset[dt.date]] | None = None,
        ending: Ending | None = None,
    ) -> None:
        self.current = current
        self._traj, self._n_traj = trajectory, len(trajectory)
        self._episode, self._n_episode = episode, len(episode)
        self.measure = measure
        self.settings = settings
        self.group = group
        self.context = context  # practice data (appointments), when a source has it
        #: measure family -> the dates of ``group`` that have an administration of it
        self.dates_by_family: Mapping[str, frozenset[dt.date]] = dates_by_family or {}
        #: whether the episode (of this rater) has ended by ``settings.as_of``, and how
        #: (:mod:`fit_core.endings`); None when "today" is unknown
        self.ending = ending

    @property
    def trajectory(self) -> tuple[Scored, ...]:
        return tuple(self._traj[: self._n_traj])

    @property
    def episode(self) -> tuple[Scored, ...]:
        return tuple(self._episode[: self._n_episode])

    def recent(self) -> Iterator[Scored]:
        """The trajectory newest first, ``current`` included (no copy: stop early when done)."""
        for i in range(self._n_traj - 1, -1, -1):
            yield self._traj[i]

    @property
    def previous(self) -> Scored | None:
        return self._traj[self._n_traj - 2] if self._n_traj > 1 else None

    @property
    def is_last(self) -> bool:
        """True when ``current`` is the latest administration of its episode and rater."""
        return not self.group or self.group[-1] is self.current.admin


class Rule(Protocol):
    """An alert rule: ``evaluate`` returns a :class:`Flag` or None. Pure; must not do I/O.

    ``family`` is the measure family the rule runs on (``"ORS"``, ``"SRS"``, or ``"ANY"``).
    A rule is evaluated on every administration of its family; what it says at the *latest*
    one is what holds now (the open alert), earlier answers are history (see
    :mod:`fit_core.alerts`). An ``"ANY"`` rule speaks for the whole episode and rater and should
    answer only at its latest administration (``history.is_last``); one that answers None
    everywhere else (``evaluate`` and ``review_on``) may say so with a ``latest_only = True``
    attribute, and the scorer then calls it at the latest administration only.
    A rule whose answer depends on the date also has ``review_on(history) -> date | None``: the
    next clinic-local date on which its answer may change with no new data; the engine
    re-evaluates the client on that date.
    """

    # read-only members: a frozen dataclass or plain class attributes provide them
    @property
    def id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def family(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def opt_in(self) -> bool: ...

    def evaluate(self, history: History) -> Flag | None: ...


@dataclass(frozen=True, slots=True)
class RuleFailure:
    rule_id: str
    source_key: str
    error: str


@dataclass(frozen=True, slots=True)
class Track:
    """The administrations one alert scope looks at: an episode, a rater and a measure family.

    ``family`` is ``"ORS"`` or ``"SRS"`` (a plugin's family, for its measures), or ``"ANY"`` for
    rules that speak for the whole episode and rater (``items`` then holds both families).
    ``items`` are oldest first, with their flags; the latest one is where an alert holds now.
    ``ending`` is the episode's :class:`~fit_core.endings.Ending` (None when "today" is unknown).
    """

    episode_id: str
    rater: str
    family: str
    items: tuple[Scored, ...]
    ending: Ending | None = None

    @property
    def ended(self) -> bool:
        return self.ending is not None and self.ending.ended

    @property
    def latest(self) -> Scored:
        return self.items[-1]


@dataclass(frozen=True, slots=True)
class ClientResult:
    """One client scored: every administration with the flags raised on it (each flag's
    ``state`` says whether it holds now: ``open``; a later administration of its trajectory
    replaced it: ``superseded``; or its episode has ended: ``closed``), the rule scopes
    (:class:`Track`), rule failures and the next date a date rule or an episode's ending may
    change without new data."""

    scored: tuple[Scored, ...]
    rule_failures: tuple[RuleFailure, ...] = ()
    #: the earliest date a date rule may change its answer without new data (None: never)
    review_on: dt.date | None = None
    tracks: tuple[Track, ...] = ()


#: (administered_at, source, source_key): the order of a client's administrations
_sort_key = attrgetter("administered_at", "source", "source_key")


def assign_episodes(admins: Sequence[Administration], gap_days: int) -> dict[tuple[str, str], str]:
    """Episode id per administration key: the explicit id, or gap-based ``auto-<date>``."""
    out: dict[tuple[str, str], str] = {}
    implicit = sorted((a for a in admins if not a.episode_id), key=_sort_key)
    current: str | None = None
    last_date: dt.date | None = None
    for a in implicit:
        if last_date is None or (a.local_date - last_date).days > gap_days:
            current = f"auto-{a.local_date.isoformat()}"
        last_date = a.local_date
        out[a.key] = current  # type: ignore[assignment]
    for a in admins:
        if a.episode_id:
            out[a.key] = a.episode_id
    return out


def cutoff_for(measure: Measure, age: int | None, settings: Settings) -> tuple[str, float]:
    """(age band name, clinical cutoff) for a measure and age, with config overrides."""
    band = measure.band_for(age)
    cutoff = settings.cutoffs.get(f"{measure.key}.{band.name}", band.cutoff)
    if measure.family == "SRS" and settings.srs_cutoff is not None:
        cutoff = settings.srs_cutoff
    return band.name, cutoff


def reliable_change_for(measure: Measure, settings: Settings) -> float | None:
    if measure.key in settings.reliable_change:
        return settings.reliable_change[measure.key]
    if measure.family == "ORS" and settings.ors_reliable_change is not None:
        return settings.ors_reliable_change
    return measure.reliable_change


def rc_class(
    intake: float, current: float, rc: float, cutoff: float, settings: Settings, *, is_intake: bool
) -> RcClass:
    """Jacobson-Truax class from raw scores. An intake at or above the cutoff cannot "recover".

    Exact: a change of exactly the RC (15.0 → 20.0 with RC 5) is a reliable change."""
    if is_intake:
        return "intake"
    return _rc_class_of(exact.diff(current, intake), intake, current, rc, cutoff, settings)


def _rc_class_of(
    delta: float, intake: float, current: float, rc: float, cutoff: float, settings: Settings
) -> RcClass:
    """:func:`rc_class` after the intake, with ``delta`` = ``exact.diff(current, intake)``."""
    if exact.at_least(delta, rc):
        crossed = settings.is_clinical(intake, cutoff) and not settings.is_clinical(current, cutoff)
        return "recovered" if crossed else "improved"
    if exact.at_most(delta, -rc):
        return "deteriorated"
    return "no_reliable_change"


def status_for(total: float, exp: Expectation | None, *, is_intake: bool) -> Status:
    """grey (intake, or no model for the session), green, orange or red."""
    if is_intake or exp is None:
        return "grey"
    if exact.at_least(total, exp.low):
        return "green"
    if exp.severe is None or exact.at_least(total, exp.severe):
        return "orange"
    return "red"


def score_client(
    admins: Iterable[Administration],
    measures: Mapping[str, Measure],
    settings: Settings,
    rules: Sequence[Rule] = (),
    model: TrajectoryModel | None = None,
) -> ClientResult:
    """Score every administration of one client and run the rules on each.

    A rule that raises is reported in ``rule_failures`` by id; the other rules still run.
    To score many clients, build one :class:`Scorer` and call it per client (it caches the
    cutoffs and the active rules).
    """
    return Scorer(measures, settings, rules, model).score(admins)


class Scorer:
    """Scores clients with fixed measures, settings, rules and trajectory model."""

    def __init__(
        self,
        measures: Mapping[str, Measure],
        settings: Settings,
        rules: Sequence[Rule] = (),
        model: TrajectoryModel | None = None,
    ) -> None:
        self.measures = measures
        self.settings = settings
        self.model = model
        # per family: (rule, its review_on or None, whether it answers at the latest
        # administration only), "ANY" rules appended to every family
        by_family: dict[str, list[tuple[Rule, Any, bool]]] = defaultdict(list)
        for rule in rules:
            if rule_active(rule, settings):
                by_family[rule.family].append(
                    (
                        rule,
                        getattr(rule, "review_on", None),
                        getattr(rule, "latest_only", False) is True,
                    )
                )
        for family, family_rules in list(by_family.items()):
            if family != "ANY":
                family_rules.extend(by_family.get("ANY", ()))
        self._rules: dict[str, list[tuple[Rule, Any, bool]]] = dict(by_family)
        #: the active rules' ids and families ("ANY" rules speak for the whole episode)
        self.rule_families: dict[str, str] = {
            rule.id: rule.family for rule in rules if rule_active(rule, settings)
        }
        self._cutoffs: dict[tuple[str, int | None], tuple[str, float]] = {}
        self._rc: dict[str, float] = {}
        self._models: dict[tuple[str, str], TrajectoryModel | None] = {}

    def model_for(self, measure: str, rater: str) -> TrajectoryModel | None:
        """The trajectory model for this measure and rater, or None (cached)."""
        key = (measure, rater)
        if key not in self._models:
            self._models[key] = model_for(self.model, measure, rater)
        return self._models[key]

    def cutoff(self, measure: Measure, age: int | None) -> tuple[str, float]:
        key = (measure.key, age)
        hit = self._cutoffs.get(key)
        if hit is None:
            hit = self._cutoffs[key] = cutoff_for(measure, age, self.settings)
        return hit

    def reliable_change(self, measure: Measure) -> float:
        hit = self._rc.get(measure.key)
        if hit is None:
            hit = self._rc[measure.key] = reliable_change_for(measure, self.settings) or 0.0
        return hit

    def score(
        self, admins: Iterable[Administration], context: ClientContext | None = None
    ) -> ClientResult:
        """Score one client's administrations; ``context`` adds practice data (optional)."""
        admins = list(admins)
        if context is not None:
            admins = enrich(admins, context)
        settings = self.settings
        episodes = assign_episodes(admins, settings.episode_gap_days)
        by_ep_rater: dict[tuple[str, str], list[Administration]] = defaultdict(list)
        for a in admins:
            by_ep_rater[(episodes[a.key], a.rater)].append(a)
        for group in by_ep_rater.values():
            group.sort(key=_sort_key)
        latest = latest_episode_ids((ep, g[-1].local_date) for (ep, _r), g in by_ep_rater.items())
        episode_age = episode_ages(admins, episodes)
        appointments = context.appointments if context is not None else ()

        scored_all: list[Scored] = []
        tracks: list[Track] = []
        failures: list[RuleFailure] = []
        review: dt.date | None = None
        measures = self.measures
        rules_of = self._rules
        score_one = self._score_one
        for (episode_id, rater), group in by_ep_rater.items():
            group_t = tuple(group)
            ending = None
            if settings.as_of is not None:
                ending = episode_ending(
                    group[0].local_date,
                    group[-1].local_date,
                    settings.as_of,
                    settings,
                    appointments,
                    latest=episode_id in latest,
                )
                review = _earliest(review, ending.review_on)
            with_measure = [(a, measures[a.measure]) for a in group]
            by_family: dict[str, set[dt.date]] = defaultdict(set)
            for a, measure in with_measure:
                by_family[measure.family].add(a.local_date)
            family_dates = {f: frozenset(d) for f, d in by_family.items()}
            dates = sorted({a.local_date for a in group})
            session_of = {d: i + 1 for i, d in enumerate(dates)}
            trajectories: dict[str, list[Scored]] = defaultdict(list)
            episode_so_far: list[Scored] = []
            flagged = False
            for a, measure in with_measure:
                traj = trajectories[measure.family]
                score = score_one(
                    a, measure, traj, session_of[a.local_date], episode_id, episode_age[episode_id]
                )
                item = Scored(a, score)
                traj.append(item)
                episode_so_far.append(item)
                rules = rules_of.get(measure.family) or rules_of.get("ANY")
                if not rules:
                    continue
                flags: list[Flag] = []
                history = History(
                    item,
                    traj,
                    episode_so_far,
                    measure,
                    settings,
                    group_t,
                    context,
                    family_dates,
                    ending,
                )
                last = history.is_last
                for rule, review_on, latest_only in rules:
                    if latest_only and not last:
                        continue  # it answers None before the latest administration
                    try:
                        flag = rule.evaluate(history)
                        if review_on is not None:
                            when = review_on(history)
                            if when is not None and (review is None or when < review):
                                review = when
                    except Exception as exc:  # a plugin rule's bug must not stop the others
                        failures.append(RuleFailure(rule.id, a.source_key, type(exc).__name__))
                        continue
                    if flag is not None:
                        flags.append(flag)
                if flags:
                    flagged = True
                    item = Scored(a, score, tuple(flags))
                    traj[-1] = item
                    episode_so_far[-1] = item
            group_tracks = [
                Track(episode_id, rater, family, tuple(items), ending)
                for family, items in trajectories.items()
            ]
            group_tracks.append(Track(episode_id, rater, "ANY", tuple(episode_so_far), ending))
            if not flagged:  # nothing to settle: the items stay as they are
                scored_all.extend(episode_so_far)
                tracks.extend(group_tracks)
                continue
            settled = _settle(group_tracks, self.rule_families)
            scored_all.extend(settled.get(id(s), s) for s in episode_so_far)
            tracks.extend(
                Track(
                    t.episode_id,
                    t.rater,
                    t.family,
                    tuple(settled.get(id(s), s) for s in t.items),
                    t.ending,
                )
                for t in group_tracks
            )
        return ClientResult(tuple(scored_all), tuple(failures), review, tuple(tracks))

    def _score_one(
        self,
        a: Administration,
        measure: Measure,
        traj: list[Scored],
        session: int,
        episode_id: str,
        age: int | None,
    ) -> Score:
        settings = self.settings
        total = a.total
        band, cutoff = self._cutoffs.get((measure.key, age)) or self.cutoff(measure, age)
        clinical = settings.is_clinical(total, cutoff)
        change_prev = exact.diff(total, traj[-1].admin.total) if traj else None
        if measure.family != "ORS":
            return Score(total, session, episode_id, band, cutoff, clinical, change_prev)
        if traj:
            intake = traj[0].admin.total
            change = exact.diff(total, intake)
            rc = self.reliable_change(measure)
            cls = _rc_class_of(change, intake, total, rc, cutoff, settings)
        else:  # the intake itself
            intake, cls = total, "intake"
            change = exact.diff(total, intake)
        is_intake = not traj
        model = self.model_for(measure.key, a.rater) if self.model is not None else None
        if model is None:
            return Score(
                total, session, episode_id, band, cutoff, clinical, change_prev, intake, change, cls
            )
        exp = model.expect(measure.key, intake, session)
        return Score(
            total=total,
            session=session,
            episode_id=episode_id,
            age_band=band,
            cutoff=cutoff,
            clinical=clinical,
            change_from_previous=change_prev,
            intake=intake,
            change_from_intake=change,
            rc_class=cls,
            expected=exp.expected if exp else None,
            expected_low=exp.low if exp else None,
            expected_high=exp.high if exp else None,
            expected_severe=exp.severe if exp else None,
            status=status_for(total, exp, is_intake=is_intake),
            percent_of_expected=_percent_of_expected(intake, total, exp, is_intake),
        )


def episode_ages(
    admins: Iterable[Administration], episodes: Mapping[tuple[str, str], str]
) -> dict[str, int | None]:
    """The age each episode is scored with: that of its first administration (by time) that
    states one, None when none does (then the measure's default band applies)."""
    out: dict[str, int | None] = {}
    for a in sorted(admins, key=_sort_key):
        ep = episodes[a.key]
        if out.get(ep) is None:
            out[ep] = a.age
    return out


def _percent_of_expected(
    intake: float, total: float, exp: Expectation | None, is_intake: bool
) -> float | None:
    """Change from intake as a percentage of the expected change (None without a model)."""
    if exp is None or is_intake or abs(exp.expected - intake) < 1e-9:
        return None
    return round((total - intake) / (exp.expected - intake) * 100, 1)


def _earliest(a: dt.date | None, b: dt.date | None) -> dt.date | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _settle(tracks: Sequence[Track], families: Mapping[str, str]) -> dict[int, Scored]:
    """Each flag's state, from scratch: ``open`` at the latest administration of its scope,
    ``superseded`` on an earlier one, ``closed`` once the episode has ended.

    Returns the re-made :class:`Scored` items by ``id()`` of the original (only those with
    flags). A flag of a rule that is not among ``families`` keeps the scope of its measure.
    """
    latest: dict[str, int] = {t.family: id(t.items[-1]) for t in tracks if t.items}
    ended = bool(tracks) and tracks[0].ended
    by_family = {t.family: t for t in tracks}
    out: dict[int, Scored] = {}
    for t in tracks:
        if t.family == "ANY":
            continue
        for s in t.items:
            if not s.flags:
                continue
            states = []
            for f in s.flags:
                scope = families.get(f.rule_id, t.family)
                if scope not in by_family:
                    scope = t.family
                state: FlagState
                if id(s) != latest.get(scope):
                    state = "superseded"
                else:
                    state = "closed" if ended else "open"
                states.append(f if f.state == state else replace(f, state=state))
            out[id(s)] = Scored(s.admin, s.score, tuple(states))
    return out


def enrich(admins: list[Administration], context: ClientContext) -> list[Administration]:
    """Fill a missing clinician (the appointment's that day, else the client's) and a missing
    age (from the date of birth) from practice data. Source values always win."""
    info = context.info
    by_date = {a.local_date: a.clinician_id for a in context.appointments if a.clinician_id}
    born = info.date_of_birth if info else None
    out = []
    for a in admins:
        changes: dict[str, Any] = {}
        if a.clinician_id is None:
            clinician = by_date.get(a.local_date) or (info.clinician_id if info else None)
            if clinician:
                changes["clinician_id"] = clinician
        if a.age is None and born is not None and born <= a.local_date:
            changes["age"] = (
                a.local_date.year
                - born.year
                - ((a.local_date.month, a.local_date.day) < (born.month, born.day))
            )
        out.append(replace(a, **changes) if changes else a)
    return out


def rule_active(rule: Rule, settings: Settings) -> bool:
    if rule.id in settings.disabled_rules:
        return False
    return not rule.opt_in or rule.id in settings.enabled_rules


# --- what is pushed back ----------------------------------------------------------------------

PUSH_FIELDS = (
    "source_key",
    "client_id",
    "measure",
    "administered_at",
    "episode_id",
    "rater",
    "session",
    "total",
    "clinical",
    "change_from_previous",
    "intake",
    "change_from_intake",
    "rc_class",
    "expected",
    "expected_low",
    "expected_high",
    "expected_severe",
    "percent_of_expected",
    "status",
    "flags",
    "flag_message",
)


def push_payload(s: Scored) -> dict[str, Any]:
    """The scores and open flags of one administration as pushed to its source (JSON-ready).

    Keys are :data:`PUSH_FIELDS`, in that order (the order is part of the stored encoding).
    """
    a, sc = s.admin, s.score
    open_flags = [f for f in s.flags if f.state == "open"]
    return {
        "source_key": a.source_key,
        "client_id": a.client_id,
        "measure": a.measure,
        "administered_at": a.administered_at_text(),
        "episode_id": sc.episode_id,
        "rater": a.rater,
        "session": sc.session,
        "total": sc.total,
        "clinical": sc.clinical,
        "change_from_previous": sc.change_from_previous,
        "intake": sc.intake,
        "change_from_intake": sc.change_from_intake,
        "rc_class": sc.rc_class,
        "expected": sc.expected,
        "expected_low": sc.expected_low,
        "expected_high": sc.expected_high,
        "expected_severe": sc.expected_severe,
        "percent_of_expected": sc.percent_of_expected,
        "status": sc.status,
        "flags": [f.rule_id for f in open_flags],
        "flag_message": " | ".join(f.message for f in open_flags),
    }


def encode_payload(payload: Mapping[str, Any]) -> str:
    """Canonical JSON of a payload: what is stored and what is hashed.

    :func:`push_payload` builds its dict in a fixed key order, so no sorting is needed.
    """
    return _ENCODE(payload)


# one encoder for every payload: json.dumps() with options builds a new encoder per call
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def payload_hash(payload: Mapping[str, Any], encoded: str | None = None) -> str:
    blob = encoded if encoded is not None else encode_payload(payload)
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


def outbox_item(s: Scored) -> OutboxItem:
    payload = push_payload(s)
    encoded = encode_payload(payload)
    return OutboxItem(
        s.admin.source,
        s.admin.source_key,
        payload,
        payload_hash(payload, encoded),
        s.admin.extra,
        encoded,
    )


def group_by_client(
    admins: Iterable[Administration], key: Callable[[Administration], Any] | None = None
) -> dict[Any, list[Administration]]:
    """Group administrations by client identity (namespace, client_id)."""
    out: dict[Any, list[Administration]] = defaultdict(list)
    for a in admins:
        out[key(a) if key else a.client].append(a)
    return out
