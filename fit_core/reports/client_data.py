"""What goes on a client's report page: pure data preparation, no drawing, no I/O, no clock.

:func:`client_pages` turns one client's scored administrations (from
:class:`fit_core.scoring.Scorer`) into one :class:`ClientPage` per episode:

- one :class:`Line` per rater and measure family (a parent's ratings are a separate line, never
  mixed into the client's trajectory), with one :class:`Point` per administration;
- the clinical cutoff(s) of the ORS family for the client's age band, the SRS cutoff (36);
- the reliable-change zone: the primary rater's intake ± RC (inside it, no reliable change);
- the expected value and band of the trajectory model at each session of the primary rater
  (taken from the scores), and, when the model itself is passed, projected a few sessions ahead;
- the flags, numbered in session order, each attached to its session and chart, and one
  :class:`FlagRun` per alert: the sessions it has held on, drawn as one tag on the chart.

A point's :attr:`Point.marker` says how it is drawn: with a trajectory model that speaks for
its rater, its status (on track, below the range, below the severe line), the intake, or, past
the model's last session (no expectation), its reliable change from intake; without one, the
rater's own marker.

The *primary* rater is ``client`` when the client rated the episode, else the first rater seen.
Flags of ``srs.*`` rules belong to the SRS chart, every other flag to the ORS chart. With
``include_srs=False`` (client-facing output) SRS lines and ``srs.*`` flags are left out entirely.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..episodes import EpisodeView, episodes_of
from ..measures import Measure
from ..models import Scored
from ..scoring import TrajectoryModel, model_for, reliable_change_for
from ..settings import Settings

__all__ = [
    "Band",
    "ChartData",
    "ClientPage",
    "Cutoff",
    "FlagGroup",
    "FlagNote",
    "FlagRecord",
    "FlagRun",
    "Line",
    "Point",
    "SrsItemTable",
    "client_pages",
    "describe_model",
    "flags_from_scored",
]

SEVERITY_ORDER = {"alert": 0, "warning": 1, "info": 2}
SHOWN_STATES = ("open", "acknowledged")
PROJECT_AHEAD = 3  # sessions of expected band drawn past the last session (with a model)
SRS_AXIS_FLOOR = 30.0  # the SRS axis starts here unless a score is lower


@dataclass(frozen=True, slots=True)
class FlagRecord:
    """An alert as stored (or raised by scoring with rules): the administration it is attached
    to now, its rule, and ``first_session``, the session where its unbroken run began (None:
    that administration's session only). The page marks every session of the run."""

    source: str
    source_key: str
    rule_id: str
    severity: str
    message: str
    state: str = "open"
    first_session: int | None = None


@dataclass(frozen=True, slots=True)
class Point:
    """One administration on a chart. ``flags`` are the numbers of the flags raised on it."""

    session: int
    date: dt.date
    total: float
    measure: str
    status: str | None = None
    clinical: bool | None = None
    change_from_intake: float | None = None
    rc_class: str | None = None
    flags: tuple[int, ...] = ()
    items: tuple[float, ...] | None = None

    @property
    def marker(self) -> str | None:
        """How the point is drawn when its line is drawn by status (None: no model for it):
        ``green``/``orange``/``red`` (its status), ``intake``, or past the model's sessions
        ``rc_improved``/``rc_none``/``rc_deteriorated`` (its reliable change from intake)."""
        if self.status is None:
            return None
        if self.status != "grey":
            return self.status
        if self.rc_class in (None, "intake"):
            return "intake"
        if self.rc_class in ("recovered", "improved"):
            return "rc_improved"
        return "rc_deteriorated" if self.rc_class == "deteriorated" else "rc_none"


@dataclass(frozen=True, slots=True)
class Line:
    """The series of one rater on one chart (ORS family or SRS family)."""

    rater: str
    family: str
    measures: tuple[str, ...]
    points: tuple[Point, ...]
    primary: bool

    @property
    def has_status(self) -> bool:
        """True when a trajectory model speaks for this line's rater (its points have a status,
        grey where it expects nothing): the line is then drawn by :attr:`Point.marker`."""
        return any(p.status is not None for p in self.points)

    @property
    def label(self) -> str:
        """Legend text, e.g. ``Client (ORS)`` or ``Parent (CORS)``."""
        return f"{self.rater.replace('_', ' ').capitalize()} ({'/'.join(self.measures)})"


@dataclass(frozen=True, slots=True)
class Cutoff:
    """A horizontal cutoff line: value and the age band it belongs to."""

    value: float
    band: str

    @property
    def label(self) -> str:
        band = "" if self.band in ("all", "") else f" ({self.band})"
        return f"Clinical cutoff {_num(self.value)}{band}"


@dataclass(frozen=True, slots=True)
class Band:
    """The trajectory model's expectation at one session (``projected``: past the last one)."""

    session: int
    expected: float
    low: float
    high: float
    severe: float | None
    projected: bool = False


@dataclass(frozen=True, slots=True)
class FlagNote:
    """One flag raised on one administration. ``number`` is its rule's key on the page: the
    number drawn in the tag above the session, and the number of its :class:`FlagGroup`."""

    number: int
    chart: str  # "ORS" or "SRS": the chart whose flag lane carries it
    session: int
    date: dt.date
    measure: str
    rater: str
    rule_id: str
    severity: str
    message: str
    state: str
    on_point: bool  # True when the flagged administration is a point of that chart


@dataclass(frozen=True, slots=True)
class FlagRun:
    """One alert on a chart: its rule key, the sessions ``first``..``last`` it has held on (an
    unbroken run; ``last`` is where it holds now), its severity and rater. Drawn as one tag."""

    number: int
    chart: str
    first: int
    last: int
    severity: str
    rater: str


@dataclass(frozen=True, slots=True)
class FlagGroup:
    """Every shown flag of one rule on a page, oldest session first.

    The list under the charts has one entry per group (the latest message in full, the others
    on request), so a long episode with a rule firing at every session still fits one page.
    """

    number: int
    rule_id: str
    chart: str
    severity: str  # the most severe of its flags
    notes: tuple[FlagNote, ...]

    @property
    def sessions(self) -> tuple[int, ...]:
        return tuple(sorted({n.session for n in self.notes}))

    @property
    def latest(self) -> FlagNote:
        return self.notes[-1]

    @property
    def acknowledged(self) -> bool:
        """True when every flag of the group has been acknowledged."""
        return all(n.state == "acknowledged" for n in self.notes)


@dataclass(frozen=True, slots=True)
class ChartData:
    """Everything one chart shows. ``rc_zone`` is (low, high); ``band`` the model's sessions."""

    family: str
    lines: tuple[Line, ...]
    cutoffs: tuple[Cutoff, ...]
    y_min: float
    y_max: float
    x_max: int
    rc: float | None = None
    rc_zone: tuple[float, float] | None = None
    band: tuple[Band, ...] = ()
    flags: tuple[FlagNote, ...] = ()
    runs: tuple[FlagRun, ...] = ()

    @property
    def primary(self) -> Line | None:
        return next((line for line in self.lines if line.primary), None)

    @property
    def title_measure(self) -> str:
        p = self.primary or (self.lines[0] if self.lines else None)
        return "/".join(p.measures) if p else self.family

    def flags_by_session(self) -> dict[int, tuple[FlagNote, ...]]:
        """Per session, its flags with one entry per rule key (sorted by key)."""
        out: dict[int, dict[int, FlagNote]] = defaultdict(dict)
        for f in self.flags:
            kept = out[f.session].get(f.number)
            if kept is None or SEVERITY_ORDER.get(f.severity, 9) < SEVERITY_ORDER.get(
                kept.severity, 9
            ):
                out[f.session][f.number] = f
        return {k: tuple(v[n] for n in sorted(v)) for k, v in sorted(out.items())}


@dataclass(frozen=True, slots=True)
class SrsItemTable:
    """The primary rater's SRS items by session, under the measure's neutral domain labels
    (never item wording). ``low`` is the threshold below which an item is marked."""

    measure: str
    labels: tuple[str, ...]
    rows: tuple[tuple[int, dt.date, tuple[float, ...]], ...]
    low: float


@dataclass(frozen=True, slots=True)
class ClientPage:
    """One client episode's report page (labels already pseudonymised when asked)."""

    client_label: str
    episode_label: str
    episode_id: str
    episode_number: int
    n_episodes: int
    clinician_id: str | None
    first_date: dt.date
    last_date: dt.date
    n_sessions: int
    ors: ChartData | None
    srs: ChartData | None
    flags: tuple[FlagGroup, ...]
    model_note: str
    include_srs: bool
    sessions: tuple[int, ...]
    dates: Mapping[int, dt.date]
    srs_items: SrsItemTable | None = None
    model_last_session: int | None = None
    runs: tuple[FlagRun, ...] = ()

    @property
    def measures(self) -> tuple[str, ...]:
        """The measure keys shown on the page (their copyright notices go on it)."""
        charts = (self.ors, self.srs)
        return tuple(
            dict.fromkeys(m for c in charts if c is not None for ln in c.lines for m in ln.measures)
        )

    @property
    def latest(self) -> Point | None:
        """The primary rater's latest ORS-family point."""
        p = self.ors.primary if self.ors else None
        return p.points[-1] if p and p.points else None

    @property
    def intake(self) -> Point | None:
        p = self.ors.primary if self.ors else None
        return p.points[0] if p and p.points else None


def _num(v: float) -> str:
    return f"{v:g}" if float(v).is_integer() else f"{v:.1f}"


def describe_model(model: TrajectoryModel | None) -> str:
    """A one-line description of the trajectory model for the page (for a set of models, pass
    the one for the page's measure and rater: :func:`fit_core.scoring.model_for`)."""
    if model is None:
        return (
            "No expected trajectory: the store has no trajectory model "
            "(`fit trajectories fit` fits one from the clinic's own closed episodes)."
        )
    low = getattr(model, "low_pct", None)
    high = getattr(model, "high_pct", None)
    if low is not None and high is not None:
        sev = getattr(model, "severe_pct", None)
        sev_text = f", severe line at the {_num(sev)}th" if sev is not None else ""
        return (
            "Expected trajectory: fitted from this clinic's own closed episodes "
            f"(band {_num(low)}th–{_num(high)}th percentile{sev_text})."
        )
    name = getattr(model, "name", None)
    return f"Expected trajectory: supplied table{f' {name}' if name else ''}."


def _model_note(
    model: TrajectoryModel | None, ors: ChartData | None, last_expected: int | None
) -> str:
    if ors is None:
        return ""
    primary = ors.primary
    if model is not None and primary is not None and not primary.has_status:
        who = primary.rater.replace("_", " ")
        return (
            f"No expected trajectory for this episode: the clinic has no trajectory model for "
            f"{ors.title_measure} rated by the {who}, so there is no on-track status (a model "
            "fitted on other ratings is not used)."
        )
    if model is not None and not ors.band:
        return (
            f"No expected trajectory for this episode: the clinic's trajectory model has no "
            f"expectation for {ors.title_measure} at these sessions, so there is no on-track "
            "status."
        )
    text = describe_model(
        model_for(model, primary.points[0].measure, primary.rater) if primary else model
    )
    past = [p for p in primary.points if p.marker and p.marker.startswith("rc_")] if primary else []
    if past and last_expected is not None:
        text += (
            f" It expects nothing after session {last_expected}: later sessions are squares, "
            "filled by the reliable change from intake (blue improved, red deteriorated, hollow "
            "no reliable change)."
        )
    return text


def flags_from_scored(
    scored: Iterable[Scored], measures: Mapping[str, Measure] | None = None
) -> list[FlagRecord]:
    """The alerts that hold now in scored administrations (scoring with rules), as records,
    each with the session where its unbroken run began (found with ``measures``' families)."""
    scored = list(scored)
    runs: dict[tuple[str, str, str], list[Scored]] = defaultdict(list)
    for s in sorted(scored, key=_when):
        family = measures[s.admin.measure].family if measures else s.admin.measure
        runs[(s.score.episode_id, s.admin.rater, family)].append(s)
    first: dict[tuple[str, str, str], int] = {}
    for items in runs.values():
        for i, s in enumerate(items):
            for f in s.flags:
                if f.state not in SHOWN_STATES:
                    continue
                j = i
                while j > 0 and any(g.rule_id == f.rule_id for g in items[j - 1].flags):
                    j -= 1
                first[(s.admin.source, s.admin.source_key, f.rule_id)] = items[j].score.session
    return [
        FlagRecord(
            s.admin.source,
            s.admin.source_key,
            f.rule_id,
            f.severity,
            f.message,
            f.state,
            first.get((s.admin.source, s.admin.source_key, f.rule_id)),
        )
        for s in scored
        for f in s.flags
        if f.state in SHOWN_STATES
    ]


def _families(
    views: Sequence[EpisodeView], measures: Mapping[str, Measure]
) -> dict[str, list[tuple[str, list[Scored]]]]:
    """family → [(rater, scored items of that family)], primary rater first."""
    out: dict[str, list[tuple[str, list[Scored]]]] = defaultdict(list)
    for view in views:
        for family in ("ORS", "SRS"):
            items = view.family(family, measures)
            if items:
                out[family].append((view.rater, items))
    return out


def _primary_rater(views: Sequence[EpisodeView]) -> str:
    raters = [v.rater for v in views]
    if "client" in raters:
        return "client"
    return min(views, key=lambda v: v.first_date).rater


def _flag_chart(rule_id: str) -> str:
    return "SRS" if rule_id.startswith("srs.") else "ORS"


def _flag_notes(
    items: Sequence[Scored],
    flags: Iterable[FlagRecord],
    measures: Mapping[str, Measure],
    include_srs: bool,
) -> tuple[list[FlagGroup], dict[tuple[str, str], list[int]], list[FlagRun]]:
    """The shown flags of one episode grouped by rule, the points they mark, and their runs.

    Rules are numbered 1, 2, ... in the order they first fire (then ORS before SRS, then by
    severity). Returns the groups, per administration key the rule numbers drawn there, and
    one :class:`FlagRun` per alert (the sessions it has held on).
    """
    by_key = {(s.admin.source, s.admin.source_key): s for s in items}
    found: list[tuple[tuple[object, ...], FlagRecord, Scored]] = []
    spans: list[tuple[FlagRecord, str, int, int, str]] = []
    seen: set[tuple[str, str, str]] = set()
    for f in flags:
        anchor = by_key.get((f.source, f.source_key))
        key = (f.source, f.source_key, f.rule_id)
        if anchor is None or f.state not in SHOWN_STATES or key in seen:
            continue
        seen.add(key)
        chart = _flag_chart(f.rule_id)
        if chart == "SRS" and not include_srs:
            continue
        run = _run(anchor, f.first_session, items, measures)
        sessions = [s.score.session for s in run]
        spans.append((f, chart, min(sessions), max(sessions), anchor.admin.rater))
        for s in run:
            order = (
                s.score.session,
                0 if chart == "ORS" else 1,
                SEVERITY_ORDER.get(f.severity, 9),
                f.rule_id,
                s.admin.rater != "client",
                s.admin.rater,
            )
            found.append((order, f, s))
    found.sort(key=lambda t: t[0])
    numbers: dict[str, int] = {}
    for _order, f, _s in found:
        numbers.setdefault(f.rule_id, len(numbers) + 1)
    grouped: dict[str, list[FlagNote]] = defaultdict(list)
    point_flags: dict[tuple[str, str], list[int]] = defaultdict(list)
    for _order, f, s in found:
        chart = _flag_chart(f.rule_id)
        family = measures[s.admin.measure].family
        on_point = family == chart
        number = numbers[f.rule_id]
        if on_point and number not in point_flags[(s.admin.source, s.admin.source_key)]:
            point_flags[(s.admin.source, s.admin.source_key)].append(number)
        # a session-level flag (e.g. dropout risk) may sit on an SRS administration: without
        # SRS in the output, it is shown against the session only
        measure = s.admin.measure if include_srs or family != "SRS" else ""
        grouped[f.rule_id].append(
            FlagNote(
                number=number,
                chart=chart,
                session=s.score.session,
                date=s.admin.local_date,
                measure=measure,
                rater=s.admin.rater,
                rule_id=f.rule_id,
                severity=f.severity,
                message=f.message,
                state=f.state,
                on_point=on_point,
            )
        )
    groups = [
        FlagGroup(
            number=numbers[rule],
            rule_id=rule,
            chart=notes[0].chart,
            severity=min((n.severity for n in notes), key=lambda v: SEVERITY_ORDER.get(v, 9)),
            notes=tuple(notes),
        )
        for rule, notes in grouped.items()
    ]
    groups.sort(key=lambda g: g.number)
    runs = sorted(
        {
            FlagRun(numbers[f.rule_id], chart, first, last, f.severity, rater)
            for f, chart, first, last, rater in spans
        },
        key=lambda r: (r.first, r.number, r.last, r.rater),
    )
    return groups, point_flags, runs


def _run(
    anchor: Scored,
    first_session: int | None,
    items: Sequence[Scored],
    measures: Mapping[str, Measure],
) -> list[Scored]:
    """The administrations an alert has held on: its rater's and family's sessions from
    ``first_session`` to the one it is attached to (only that one without a first session)."""
    if first_session is None or first_session >= anchor.score.session:
        return [anchor]
    family = measures[anchor.admin.measure].family
    return [
        s
        for s in items
        if s.admin.rater == anchor.admin.rater
        and measures[s.admin.measure].family == family
        and first_session <= s.score.session <= anchor.score.session
    ]


def _line(
    rater: str,
    family: str,
    items: Sequence[Scored],
    primary: bool,
    point_flags: Mapping[tuple[str, str], list[int]],
) -> Line:
    points = tuple(
        Point(
            session=s.score.session,
            date=s.admin.local_date,
            total=s.score.total,
            measure=s.admin.measure,
            status=s.score.status,
            clinical=s.score.clinical,
            change_from_intake=s.score.change_from_intake,
            rc_class=s.score.rc_class,
            flags=tuple(point_flags.get((s.admin.source, s.admin.source_key), ())),
            items=s.admin.items,
        )
        for s in items
    )
    ms = tuple(dict.fromkeys(s.admin.measure for s in items))
    return Line(rater, family, ms, points, primary)


def _band(
    primary: Sequence[Scored], model: TrajectoryModel | None, x_max: int
) -> tuple[list[Band], int]:
    """The expected band at the primary rater's sessions, plus projected sessions (with the
    model for that measure and rater only)."""
    band: dict[int, Band] = {}
    for s in primary:
        sc = s.score
        if sc.expected is None or sc.expected_low is None or sc.expected_high is None:
            continue
        band.setdefault(
            sc.session,
            Band(sc.session, sc.expected, sc.expected_low, sc.expected_high, sc.expected_severe),
        )
    if primary:
        model = model_for(model, primary[0].admin.measure, primary[0].admin.rater)
    if model is not None and primary:
        intake = primary[0].score.intake
        measure = primary[0].admin.measure
        last = max(s.score.session for s in primary)
        if intake is not None:
            for k in range(2, last + PROJECT_AHEAD + 1):
                if k in band:
                    continue
                e = model.expect(measure, intake, k)
                if e is not None:
                    band[k] = Band(k, e.expected, e.low, e.high, e.severe, projected=k > last)
                    x_max = max(x_max, k)
    return [band[k] for k in sorted(band)], x_max


def _ors_chart(
    family_items: list[tuple[str, list[Scored]]],
    primary_rater: str,
    notes: Sequence[FlagNote],
    runs: Sequence[FlagRun],
    point_flags: Mapping[tuple[str, str], list[int]],
    measures: Mapping[str, Measure],
    settings: Settings,
    model: TrajectoryModel | None,
) -> ChartData:
    family_items = sorted(family_items, key=lambda t: t[0] != primary_rater)
    primary_items = family_items[0][1]
    lines = tuple(
        _line(r, "ORS", items, r == primary_rater and i == 0, point_flags)
        for i, (r, items) in enumerate(family_items)
    )
    cutoffs = _cutoffs(it for _r, items in family_items for it in items)
    x_max = max(p.session for line in lines for p in line.points)
    x_max = max([x_max, *(n.session for n in notes)])
    band, x_max = _band(primary_items, model, x_max)
    rc = reliable_change_for(measures[primary_items[0].admin.measure], settings)
    intake = primary_items[0].score.total
    zone = (max(0.0, intake - rc), min(40.0, intake + rc)) if rc else None
    return ChartData(
        family="ORS",
        lines=lines,
        cutoffs=cutoffs,
        y_min=0.0,
        y_max=40.0,
        x_max=x_max,
        rc=rc,
        rc_zone=zone,
        band=tuple(band),
        flags=tuple(n for n in notes if n.chart == "ORS"),
        runs=tuple(r for r in runs if r.chart == "ORS"),
    )


def _cutoffs(items: Iterable[Scored]) -> tuple[Cutoff, ...]:
    seen: dict[tuple[float, str], Cutoff] = {}
    for s in items:
        if s.score.cutoff is not None:
            key = (s.score.cutoff, s.score.age_band)
            seen.setdefault(key, Cutoff(s.score.cutoff, s.score.age_band))
    return tuple(sorted(seen.values(), key=lambda c: c.value))


def _srs_chart(
    family_items: list[tuple[str, list[Scored]]],
    primary_rater: str,
    notes: Sequence[FlagNote],
    runs: Sequence[FlagRun],
    point_flags: Mapping[tuple[str, str], list[int]],
    x_max: int,
) -> ChartData:
    family_items = sorted(family_items, key=lambda t: t[0] != primary_rater)
    lines = tuple(
        _line(r, "SRS", items, i == 0 and r == primary_rater, point_flags)
        for i, (r, items) in enumerate(family_items)
    )
    low = min(p.total for line in lines for p in line.points)
    y_min = SRS_AXIS_FLOOR if low >= SRS_AXIS_FLOOR + 1 else max(0.0, 5.0 * ((low - 1) // 5))
    x_max = max([x_max, *(p.session for line in lines for p in line.points)])
    return ChartData(
        family="SRS",
        lines=lines,
        cutoffs=_cutoffs(it for _r, items in family_items for it in items),
        y_min=y_min,
        y_max=40.0,
        x_max=x_max,
        flags=tuple(n for n in notes if n.chart == "SRS"),
        runs=tuple(r for r in runs if r.chart == "SRS"),
    )


def _page(
    views: Sequence[EpisodeView],
    flags: Sequence[FlagRecord],
    measures: Mapping[str, Measure],
    settings: Settings,
    model: TrajectoryModel | None,
    include_srs: bool,
    srs_items: bool = False,
) -> dict[str, object]:
    """The charts, flags and dates of one episode (all its raters)."""
    items = [s for v in views for s in v.items]
    primary = _primary_rater(views)
    groups, point_flags, runs = _flag_notes(items, flags, measures, include_srs)
    notes = [n for g in groups for n in g.notes]
    fams = _families(views, measures)
    ors = None
    if fams.get("ORS"):
        ors = _ors_chart(fams["ORS"], primary, notes, runs, point_flags, measures, settings, model)
    srs = None
    if include_srs and fams.get("SRS"):
        srs = _srs_chart(fams["SRS"], primary, notes, runs, point_flags, ors.x_max if ors else 1)
    dates: dict[int, dt.date] = {}
    for s in items:
        if s.admin.rater == primary or s.score.session not in dates:
            dates.setdefault(s.score.session, s.admin.local_date)
    clinicians = [s.admin.clinician_id for s in sorted(items, key=_when) if s.admin.clinician_id]
    return {
        "ors": ors,
        "srs": srs,
        "flags": tuple(groups),
        "dates": dict(sorted(dates.items())),
        "sessions": tuple(sorted({s.score.session for s in items})),
        "clinician_id": clinicians[-1] if clinicians else None,
        "first_date": min(v.first_date for v in views),
        "last_date": max(v.last_date for v in views),
        "srs_items": _srs_item_table(srs, settings, measures)
        if srs is not None and srs_items
        else None,
        "model_last_session": _last_expected(ors),
        "runs": tuple(runs),
    }


def _last_expected(ors: ChartData | None) -> int | None:
    """The last session of the primary rater for which the model gave an expectation."""
    seen = [b.session for b in ors.band if not b.projected] if ors is not None else []
    return max(seen) if seen else None


def _srs_item_table(
    srs: ChartData, settings: Settings, measures: Mapping[str, Measure]
) -> SrsItemTable | None:
    """The primary rater's SRS items by session (None when no administration gave items)."""
    line = srs.primary
    if line is None:
        return None
    rows = tuple((p.session, p.date, p.items) for p in line.points if p.items is not None)
    if not rows:
        return None
    measure = line.measures[0]
    labels = measures[measure].item_labels if measure in measures else ()
    width = max(len(r[2]) for r in rows)
    if len(labels) != width:
        labels = tuple(f"Item {i + 1}" for i in range(width))
    return SrsItemTable(measure, labels, rows, settings.srs_low_item)


def _when(s: Scored) -> tuple[dt.datetime, str]:
    return (s.admin.administered_at, s.admin.source_key)


def client_pages(
    scored: Iterable[Scored],
    measures: Mapping[str, Measure],
    settings: Settings,
    *,
    flags: Iterable[FlagRecord] | None = None,
    model: TrajectoryModel | None = None,
    include_srs: bool = True,
    client_label: str | None = None,
    pseudonymous: bool = False,
    episode: str | None = None,
    srs_items: bool = False,
) -> list[ClientPage]:
    """One :class:`ClientPage` per episode of ONE client, oldest episode first.

    ``flags`` are the stored alerts (None: the alerts that hold in ``scored``); only open and
    acknowledged ones are shown, each on the sessions it has held on. ``model`` (optional)
    projects the expected band a few sessions past the last one. ``client_label`` replaces the
    client id on the page; with ``pseudonymous=True`` episodes are labelled "Episode 1",
    "Episode 2"... instead of their ids (source episode ids often embed the client id).
    ``episode`` keeps only that episode id. ``srs_items`` adds the alliance items by session
    under their neutral domain labels.
    """
    scored = list(scored)
    flag_list = list(flags) if flags is not None else flags_from_scored(scored, measures)
    by_episode: dict[str, list[EpisodeView]] = defaultdict(list)
    for view in episodes_of(scored):
        by_episode[view.episode_id].append(view)
    ordered = sorted(by_episode.items(), key=lambda kv: min(v.first_date for v in kv[1]))
    label = client_label
    if label is None:
        label = ordered[0][1][0].client[1] if ordered else ""
    pages = []
    for number, (episode_id, views) in enumerate(ordered, start=1):
        if episode is not None and episode_id != episode:
            continue
        parts = _page(views, flag_list, measures, settings, model, include_srs, srs_items)
        pages.append(
            ClientPage(
                client_label=label,
                episode_label=f"Episode {number}" if pseudonymous else episode_id,
                episode_id=episode_id,
                episode_number=number,
                n_episodes=len(ordered),
                model_note=_model_note(
                    model,
                    parts["ors"],  # type: ignore[arg-type]
                    parts["model_last_session"],  # type: ignore[arg-type]
                ),
                include_srs=include_srs,
                n_sessions=len(parts["sessions"]),  # type: ignore[arg-type]
                **parts,  # type: ignore[arg-type]
            )
        )
    return pages
