"""Built-in alert rules (rule ids are a contract).

Each rule is a small frozen object with ``id``, ``version``, ``family``, ``severity`` and a pure
``evaluate(history)``. Messages say what to discuss and carry the numbers; never names. They
name the measure that was given (ORS or CORS, SRS or CSRS) and, for a collateral rater (a
parent, a teacher), say whose rating it is and what to do with that view: a parent's high CORS
intake is not "what brings the client now".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar

from .. import exact
from ..hookspecs import hookimpl
from ..models import MISSED_STATUSES, Flag, Severity
from ..scoring import History, reliable_change_for
from . import fmt


def _rater(history: History) -> str | None:
    """None for the client's own rating, else the collateral rater's name (``parent``)."""
    rater = history.current.admin.rater
    return None if rater == "client" else rater.replace("_", " ")


def _whose(history: History, what: str) -> str:
    """``ORS`` for the client's own rating, ``The parent's CORS`` for a collateral rater's."""
    rater = _rater(history)
    return what if rater is None else f"The {rater}'s {what}"


@dataclass(frozen=True)
class SrsBelowCutoff:
    id: str = "srs.below_cutoff"
    version: int = 2
    family: str = "SRS"
    severity: Severity = "warning"
    opt_in: bool = False
    description: str = "SRS total in the clinical range (below the cutoff, 36 by default)"

    def evaluate(self, history: History) -> Flag | None:
        s = history.current.score
        if not s.clinical or s.cutoff is None:
            return None
        return Flag(
            self.id,
            self.version,
            self.severity,
            f"{_whose(history, 'Alliance')} {fmt(s.total)} ({history.measure.key}) is below "
            f"{fmt(s.cutoff)}: ask what to change about the relationship, goals or approach.",
            {
                "total": s.total,
                "cutoff": s.cutoff,
                "comparison": history.settings.clinical_comparison,
            },
        )


@dataclass(frozen=True)
class SrsDrop:
    id: str = "srs.drop"
    version: int = 2
    family: str = "SRS"
    severity: Severity = "warning"
    opt_in: bool = False
    description: str = (
        "SRS total fell by at least 1 point (setting srs_drop) since the previous session"
    )

    def evaluate(self, history: History) -> Flag | None:
        prev = history.previous
        if prev is None:
            return None
        threshold = history.settings.srs_drop
        drop = exact.diff(prev.score.total, history.current.score.total)
        if not exact.at_least(drop, threshold):
            return None
        return Flag(
            self.id,
            self.version,
            self.severity,
            f"{_whose(history, 'Alliance')} ({history.measure.key}) fell {fmt(drop)} points since "
            f"the last session ({fmt(prev.score.total)} → {fmt(history.current.score.total)}): "
            "ask what felt different this time.",
            {
                "previous": prev.score.total,
                "total": history.current.score.total,
                "drop": drop,
                "threshold": threshold,
            },
        )


@dataclass(frozen=True)
class OrsReliableDeterioration:
    id: str = "ors.reliable_deterioration"
    version: int = 2
    family: str = "ORS"
    severity: Severity = "alert"
    opt_in: bool = False
    description: str = "ORS fell by the reliable change (5 points by default) or more since intake"

    def evaluate(self, history: History) -> Flag | None:
        s = history.current.score
        if s.rc_class != "deteriorated":
            return None
        rc = reliable_change_for(history.measure, history.settings)
        inputs: dict[str, Any] = {
            "intake": s.intake,
            "total": s.total,
            "change_from_intake": s.change_from_intake,
            "reliable_change": rc,
            "session": s.session,
        }
        rater = _rater(history)
        who = "the client" if rater is None else f"the {rater} and the client"
        return Flag(
            self.id,
            self.version,
            self.severity,
            f"{_whose(history, history.measure.key)} has reliably deteriorated ({fmt(s.intake)} "
            f"at intake → {fmt(s.total)}, change {fmt(s.change_from_intake)}, RC {fmt(rc)}): "
            f"review the plan with {who} and in supervision.",
            inputs,
        )


@dataclass(frozen=True)
class OrsNotOnTrack:
    id: str = "ors.not_on_track"
    version: int = 2
    family: str = "ORS"
    severity: Severity = "warning"
    opt_in: bool = False
    description: str = (
        "ORS below the expected band (25th percentile) of the trajectory model: orange"
    )

    def evaluate(self, history: History) -> Flag | None:
        s = history.current.score
        if s.status != "orange":
            return None
        return Flag(
            self.id,
            self.version,
            self.severity,
            f"Not on track at session {s.session}: {_whose(history, history.measure.key)} "
            f"{fmt(s.total)} is below the expected range (from {fmt(s.expected_low)}): ask what "
            "is not helping and what to change.",
            _expected_inputs(s),
        )


@dataclass(frozen=True)
class OrsOffTrackSevere:
    id: str = "ors.off_track_severe"
    version: int = 2
    family: str = "ORS"
    severity: Severity = "alert"
    opt_in: bool = False
    description: str = "ORS below the severe line (10th percentile) of the trajectory model: red"

    def evaluate(self, history: History) -> Flag | None:
        s = history.current.score
        if s.status != "red":
            return None
        return Flag(
            self.id,
            self.version,
            self.severity,
            f"Well off track at session {s.session}: {_whose(history, history.measure.key)} "
            f"{fmt(s.total)} is below the severe line ({fmt(s.expected_severe)}): discuss a "
            "change of approach or referral, and bring it to supervision.",
            _expected_inputs(s),
        )


def _expected_inputs(s: Any) -> dict[str, Any]:
    return {
        "total": s.total,
        "session": s.session,
        "intake": s.intake,
        "expected": s.expected,
        "expected_low": s.expected_low,
        "expected_severe": s.expected_severe,
        "status": s.status,
    }


@dataclass(frozen=True)
class _NoChangeWindow:
    """Fires on ORS sessions within a window while change from intake is below the RC.

    The message says which: no reliable change, or a reliable deterioration (a client who got
    worse is never told "no reliable change")."""

    id: str
    severity: Severity
    description: str
    what: str
    window_setting: str
    version: int = 2
    family: str = "ORS"
    opt_in: bool = False

    def evaluate(self, history: History) -> Flag | None:
        s = history.current.score
        first, last = getattr(history.settings, self.window_setting)
        if s.rc_class is None or s.rc_class == "intake" or not first <= s.session <= last:
            return None
        rc = reliable_change_for(history.measure, history.settings)
        if rc is None or s.change_from_intake is None or exact.at_least(s.change_from_intake, rc):
            return None
        numbers = f"change {fmt(s.change_from_intake)}, RC {fmt(rc)}"
        subject = _whose(history, history.measure.key)
        if s.rc_class == "deteriorated":
            # worse than no change: say so (ors.reliable_deterioration fires beside it)
            what = (
                f"{subject} has reliably deteriorated by session {s.session} ({fmt(s.intake)} at "
                f"intake → {fmt(s.total)}, {numbers}): {self.what}"
            )
        elif _rater(history) is None:
            what = f"No reliable change by session {s.session} ({numbers}): {self.what}"
        else:
            what = f"{subject}: no reliable change by session {s.session} ({numbers}): {self.what}"
        return Flag(
            self.id,
            self.version,
            self.severity,
            what,
            {
                "session": s.session,
                "intake": s.intake,
                "total": s.total,
                "change_from_intake": s.change_from_intake,
                "reliable_change": rc,
                "rc_class": s.rc_class,
                "window": [first, last],
            },
        )


ORS_CHECKPOINT = _NoChangeWindow(
    id="ors.checkpoint",
    severity="warning",
    description="No reliable change from intake at sessions 3-5 (setting checkpoint_sessions)",
    what="have the checkpoint conversation: is this helping, what should change?",
    window_setting="checkpoint_sessions",
)
ORS_LAST_CHANCE = _NoChangeWindow(
    id="ors.last_chance",
    severity="alert",
    description="No reliable change from intake at sessions 6-9 (setting last_chance_sessions)",
    what="last-chance conversation: consider a different approach, another clinician or a "
    "referral.",
    window_setting="last_chance_sessions",
)


@dataclass(frozen=True)
class OrsHighIntake:
    id: str = "ors.high_intake"
    version: int = 2
    family: str = "ORS"
    severity: Severity = "info"
    opt_in: bool = False
    description: str = "Intake ORS at or above the clinical cutoff"

    def evaluate(self, history: History) -> Flag | None:
        s = history.current.score
        if s.rc_class != "intake" or s.clinical or s.cutoff is None:
            return None
        m = history.measure.key
        rater = _rater(history)
        if rater is None:
            text = (
                f"Intake {m} {fmt(s.total)} is at or above the cutoff {fmt(s.cutoff)}: explore "
                "what brings the client now; reliable improvement is less likely, watch for "
                "deterioration."
            )
        else:
            text = (
                f"The {rater}'s intake {m} {fmt(s.total)} is at or above the cutoff "
                f"{fmt(s.cutoff)}: the {rater} sees the client doing well; ask what brings the "
                f"{rater} to ask for help now and compare with the client's own rating."
            )
        return Flag(
            self.id,
            self.version,
            self.severity,
            text,
            {"intake": s.total, "cutoff": s.cutoff, "age_band": s.age_band, "rater": rater},
        )


@dataclass(frozen=True)
class SrsLowItem:
    id: str = "srs.low_item"
    version: int = 1
    family: str = "SRS"
    severity: Severity = "info"
    opt_in: bool = True
    description: str = "An SRS item below 9 (setting srs_low_item); opt-in, threshold unconfirmed"

    def evaluate(self, history: History) -> Flag | None:
        a = history.current.admin
        if a.items is None:
            return None
        threshold = history.settings.srs_low_item
        low = [
            (key, value)
            for key, value in zip(history.measure.item_keys, a.items, strict=False)
            if exact.below(value, threshold)
        ]
        if not low:
            return None
        labels = dict(zip(history.measure.item_keys, history.measure.item_labels, strict=False))
        names = ", ".join(f"{labels[k].lower()} {fmt(v)}" for k, v in low)
        return Flag(
            self.id,
            self.version,
            self.severity,
            f"Low alliance item ({names}): check in about that part of the session.",
            {"items": dict(low), "threshold": threshold},
        )


@dataclass(frozen=True)
class SrsMissing:
    id: str = "srs.missing"
    version: int = 2
    family: str = "ORS"
    severity: Severity = "info"
    opt_in: bool = False
    description: str = "The latest ORS sessions have no SRS (a session counts once its day is over)"

    def evaluate(self, history: History) -> Flag | None:
        today = history.settings.as_of
        if today is None:
            return None
        srs_dates = history.dates_by_family.get("SRS", frozenset())
        current = history.current.admin.local_date
        if current in srs_dates:
            return None
        # the ORS sessions without an SRS that end the trajectory so far, newest first; today's
        # session is skipped (its SRS comes at the end of it)
        missing: list[tuple[int, dt.date]] = []
        for s in history.recent():
            day = s.admin.local_date
            if (missing and missing[-1][1] == day) or (day == current and day >= today):
                continue
            if day in srs_dates:
                break
            missing.append((s.score.session, day))
        if not missing:
            return None
        missing.reverse()
        sessions = [n for n, _ in missing]
        if len(missing) == 1:
            text = (
                f"No SRS for session {sessions[0]}: ask for the alliance rating at the end of "
                "the next session."
            )
        else:
            text = (
                f"No SRS for the last {len(missing)} sessions ({sessions[0]} to {sessions[-1]}): "
                "ask for the alliance rating at the end of every session."
            )
        return Flag(
            self.id,
            self.version,
            self.severity,
            text,
            {
                "session": sessions[-1],
                "date": missing[-1][1].isoformat(),
                "sessions": sessions,
                "dates": [d.isoformat() for _, d in missing],
            },
        )

    def review_on(self, history: History) -> dt.date | None:
        a = history.current.admin
        today = history.settings.as_of
        if today is not None and a.local_date >= today:
            return a.local_date + dt.timedelta(days=1)
        return None


_SRS_FAMILY = frozenset({"SRS", "CSRS", "GSRS"})


@dataclass(frozen=True)
class DropoutRisk:
    id: str = "attendance.dropout_risk"
    version: int = 2
    family: str = "ANY"
    severity: Severity = "warning"
    opt_in: bool = False
    #: None before the latest administration of the episode and rater (see Rule)
    latest_only: ClassVar[bool] = True
    description: str = (
        "An open episode with nothing booked and either no session for dropout_days (30), or "
        "the latest appointment missed with dropout_missed (2) of the last dropout_window (3) "
        "missed (no-shows, late cancellations; needs attendance data)"
    )

    def evaluate(self, history: History) -> Flag | None:
        a = history.current.admin
        today = history.settings.as_of
        ending = history.ending
        if today is None or ending is None or a.rater != "client" or not history.is_last:
            return None
        if ending.ended or ending.next_booked is not None:
            return None  # an ended episode is no risk any more; a booking is a plan
        settings = history.settings
        last = ending.last_session
        days = (today - last).days
        recent = ending.held[-settings.dropout_window :]
        missed = sum(1 for ap in recent if ap.status in MISSED_STATUSES)
        reasons = []
        if days >= settings.dropout_days:
            reasons.append(f"no session for {days} days (last on {last.isoformat()})")
        if ending.missed_at_end and missed >= settings.dropout_missed:
            reasons.append(
                f"{missed} of the last {len(recent)} appointments missed, the latest on "
                f"{recent[-1].local_date.isoformat()}"
            )
        if not reasons:
            return None
        return Flag(
            self.id,
            self.version,
            self.severity,
            f"Dropout risk: {'; '.join(reasons)}, and nothing booked: reach out to the client "
            "and ask whether and how to continue.",
            {
                "days_since_last": days,
                "dropout_days": settings.dropout_days,
                "last": last.isoformat(),
                "missed": missed,
                "missed_at_end": ending.missed_at_end,
                "window": len(recent),
                "dropout_missed": settings.dropout_missed,
                "next_booked": False,
                "episode_ends_on": ending.ended_on.isoformat() if ending.ended_on else None,
                "basis": ending.basis,
            },
        )

    def review_on(self, history: History) -> dt.date | None:
        """When the no-session pattern starts (the scorer reviews the episode's end itself)."""
        a = history.current.admin
        today = history.settings.as_of
        ending = history.ending
        if today is None or ending is None or a.rater != "client" or not history.is_last:
            return None
        start = ending.last_session + dt.timedelta(days=history.settings.dropout_days)
        return start if today < start else None


@dataclass(frozen=True)
class OrsMissing:
    id: str = "ors.missing"
    version: int = 1
    family: str = "ANY"
    severity: Severity = "info"
    opt_in: bool = False
    #: None before the latest administration of the episode and rater (see Rule)
    latest_only: ClassVar[bool] = True
    description: str = "Attended appointments with no ORS that day (needs attendance data)"

    def evaluate(self, history: History) -> Flag | None:
        missing = self._missing(history)
        if not missing:
            return None
        dates = ", ".join(d.isoformat() for d in missing[-5:])
        return Flag(
            self.id,
            self.version,
            self.severity,
            f"{len(missing)} attended session(s) without an ORS ({dates}): give the ORS at the "
            "start of every session.",
            {"missing": len(missing), "dates": [d.isoformat() for d in missing]},
        )

    def _missing(self, history: History) -> list[dt.date]:
        a = history.current.admin
        ctx, today = history.context, history.settings.as_of
        if ctx is None or today is None or a.rater != "client" or not history.is_last:
            return []
        group = history.group or (a,)
        first = group[0].local_date
        until = group[-1].local_date + dt.timedelta(days=history.settings.episode_gap_days)
        ors_dates = history.dates_by_family.get("ORS", frozenset())
        return [
            ap.local_date
            for ap in ctx.appointments
            if ap.status == "attended"
            and first <= ap.local_date < today
            and ap.local_date <= until
            and ap.local_date not in ors_dates
        ]

    def review_on(self, history: History) -> dt.date | None:
        a = history.current.admin
        ctx, today = history.context, history.settings.as_of
        if ctx is None or today is None or a.rater != "client" or not history.is_last:
            return None
        upcoming = [ap.local_date for ap in ctx.appointments if ap.local_date >= today]
        return min(upcoming) + dt.timedelta(days=1) if upcoming else None


BUILTIN_RULES = (
    SrsBelowCutoff(),
    SrsDrop(),
    OrsReliableDeterioration(),
    OrsNotOnTrack(),
    OrsOffTrackSevere(),
    ORS_CHECKPOINT,
    ORS_LAST_CHANCE,
    OrsHighIntake(),
    SrsLowItem(),
    SrsMissing(),
    DropoutRisk(),
    OrsMissing(),
)


@hookimpl
def fit_register_rules(register: Any) -> None:
    for rule in BUILTIN_RULES:
        register(rule)


@hookimpl
def fit_register_measures(register: Any) -> None:
    from ..measures import BUILTIN_MEASURES

    for measure in BUILTIN_MEASURES:
        register(measure)
