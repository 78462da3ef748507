"""The data that flows through fit-sync: frozen dataclasses, no behaviour beyond small helpers.

An adapter yields :class:`Record` (a source row mapped onto fit-sync's field names, values still as
the source gave them) or :class:`RecordError` (a row the adapter itself could not read). The core
validates each record once into an :class:`Administration`, scores it into a :class:`Score`, runs
the rules to get :class:`Flag` objects, and hands :class:`OutboxItem` rows back to the adapter
to push.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .fastinit import fast_init

Severity = Literal["info", "warning", "alert"]
FlagState = Literal["open", "acknowledged", "superseded", "closed"]
RcClass = Literal["intake", "recovered", "improved", "no_reliable_change", "deteriorated"]
Status = Literal["green", "orange", "red", "grey"]


@fast_init
@dataclass(frozen=True, slots=True)
class Record:
    """One administration as an adapter read it, before validation.

    ``data`` uses fit-sync's field names (``client_id``, ``administered_at``, ``measure``,
    ``q1``..``q4``, ``total``, ``clinician_id``, ``episode_id``, ``rater``, ``age``, ``session``)
    with the source's raw values (strings are fine: the core parses them). ``scale`` says how the
    item values are expressed (see :mod:`fit_core.measures`): ``"points"`` (0-10), ``"cm"``,
    ``"mm"``, ``"percent"`` (0-100 slider) or ``"range:LOW:HIGH"`` for an integer scale.
    ``location`` is a human pointer for error messages (``"scores.csv line 12"``), never PHI.
    ``extra`` carries adapter-specific keys the adapter needs again at push time (for REDCap the
    event and repeat instance); it is stored and handed back on :class:`OutboxItem`.
    """

    source_key: str
    data: Mapping[str, Any]
    scale: str = "points"
    modified_at: dt.datetime | None = None
    location: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordError:
    """A source row the adapter could not turn into a :class:`Record` (it is quarantined).

    ``reasons`` maps a field name to a message; messages never contain the answers themselves.
    """

    source_key: str
    reasons: Mapping[str, str]
    location: str = ""
    raw: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Deleted:
    """A record the source no longer holds: an adapter yields it in its pull stream.

    The core removes the stored administration (or quarantine entry) of ``source_key``,
    rescores its client, and removes the record's row at the target. A key the store does not
    hold is ignored, so an adapter may say "gone" for keys it is unsure were ever read.
    ``location`` is a human pointer for messages (``"form X response Y"``), never PHI.
    """

    source_key: str
    location: str = ""


@fast_init
@dataclass(frozen=True, slots=True)
class Administration:
    """One validated ORS/SRS-family administration."""

    source: str
    source_key: str
    namespace: str
    client_id: str
    measure: str
    administered_at: dt.datetime  # timezone-aware, UTC
    local_date: dt.date  # clinic-local date: sessions are grouped by it
    date_only: bool  # the source gave a date without a time
    total: float
    items: tuple[float, float, float, float] | None = None
    clinician_id: str | None = None
    episode_id: str | None = None
    rater: str = "client"
    age: int | None = None
    session_hint: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    site: str | None = None  # the clinic site or team, for grouping statistics

    @property
    def client(self) -> tuple[str, str]:
        """The client's identity: (namespace, client_id)."""
        return (self.namespace, self.client_id)

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.source_key)

    def administered_at_text(self) -> str:
        """The administration time as shown to users: a date for date-only input, else UTC ISO."""
        if self.date_only:
            return self.local_date.isoformat()
        return self.administered_at.isoformat().replace("+00:00", "Z")


@fast_init
@dataclass(frozen=True, slots=True)
class Flag:
    """What a rule said about one administration.

    ``state`` is the alert lifecycle state of that verdict (see :mod:`fit_core.alerts`):
    ``open`` (it holds at the latest administration of its scope), ``acknowledged`` (it holds
    and a clinician acknowledged it), ``superseded`` (a later administration no longer raises
    it here) or ``closed`` (its episode has ended). Only ``open`` flags are pushed.
    """

    rule_id: str
    version: int
    severity: Severity
    message: str
    inputs: Mapping[str, Any] = field(default_factory=dict)
    state: FlagState = "open"

    def brief(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "version": self.version,
            "severity": self.severity,
            "message": self.message,
        }


@fast_init
@dataclass(frozen=True, slots=True)
class Score:
    """What the core computed for one administration.

    ORS-family fields (``intake``, ``change_from_intake``, ``rc_class``, ``expected*``,
    ``status``) are None for the SRS family. ``expected*`` and ``status`` are None without a
    trajectory model.
    """

    total: float
    session: int
    episode_id: str
    age_band: str
    cutoff: float | None
    clinical: bool | None
    change_from_previous: float | None
    intake: float | None = None
    change_from_intake: float | None = None
    rc_class: RcClass | None = None
    expected: float | None = None
    expected_low: float | None = None
    expected_high: float | None = None
    expected_severe: float | None = None
    status: Status | None = None
    percent_of_expected: float | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Scored:
    """An administration with its score and the flags raised on it."""

    admin: Administration
    score: Score
    flags: tuple[Flag, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The `fit score --json` object (a contract: see the README)."""
        a, s = self.admin, self.score
        out: dict[str, Any] = {
            "source": a.source,
            "source_key": a.source_key,
            "client_id": a.client_id,
            "clinician_id": a.clinician_id,
            "episode_id": s.episode_id,
            "rater": a.rater,
            "measure": a.measure,
            "administered_at": a.administered_at_text(),
            "session": s.session,
            "total": s.total,
            "items": list(a.items) if a.items is not None else None,
            "age_band": s.age_band,
            "cutoff": s.cutoff,
            "clinical": s.clinical,
            "change_from_previous": s.change_from_previous,
        }
        # ORS-family fields are null for the SRS family: every object has the same keys
        out.update(
            intake=s.intake,
            change_from_intake=s.change_from_intake,
            rc_class=s.rc_class,
            expected=s.expected,
            expected_low=s.expected_low,
            expected_high=s.expected_high,
            expected_severe=s.expected_severe,
            status=s.status,
            percent_of_expected=s.percent_of_expected,
        )
        # what holds now (the same list a sync pushes); "raised" keeps every rule this session
        # fired, with its state (superseded by a later session, closed with the episode)
        out["flags"] = [f.brief() for f in self.flags if f.state == "open"]
        out["raised"] = [{"rule_id": f.rule_id, "state": f.state} for f in self.flags]
        return out


@fast_init
@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A row to push back to a source: the scores and open flags of one administration.

    ``payload`` is JSON-ready (see :func:`fit_core.scoring.push_payload`); ``extra`` is what the
    adapter attached to the :class:`Record` (for example REDCap's event and repeat instance).
    """

    source: str
    source_key: str
    payload: Mapping[str, Any]
    hash: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    encoded: str = field(default="", repr=False, compare=False)  # canonical JSON, if known


AppointmentStatus = Literal[
    "attended", "no_show", "late_cancel", "cancelled", "clinician_cancelled", "scheduled"
]
MISSED_STATUSES: frozenset[str] = frozenset({"no_show", "late_cancel"})


@dataclass(frozen=True, slots=True)
class Appointment:
    """An appointment from a practice system, linked to a client of an ORS/SRS namespace.

    Yielded by context adapters (e.g. the SimplePractice bridge) alongside or instead of
    :class:`Record`. ``starts_at`` is UTC; ``local_date`` the clinic-local date. ``status`` is
    normalised (see :data:`AppointmentStatus`); ``service_code`` is the billing (CPT) code, with
    ``intake`` true for a diagnostic evaluation (90791) that opens an episode.
    """

    source: str
    source_key: str
    namespace: str
    client_id: str
    starts_at: dt.datetime
    local_date: dt.date
    status: AppointmentStatus
    clinician_id: str | None = None
    service_code: str | None = None
    intake: bool = False


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """What a practice system knows about a client: date of birth, clinician, status."""

    source: str
    namespace: str
    client_id: str
    date_of_birth: dt.date | None = None
    clinician_id: str | None = None
    status: str | None = None  # e.g. "active", "inactive" as the practice system says


@dataclass(frozen=True, slots=True)
class ClientContext:
    """Practice data about one client that scoring and the rules may use (all optional)."""

    appointments: tuple[Appointment, ...] = ()
    info: ClientInfo | None = None

    @property
    def has_attendance(self) -> bool:
        return bool(self.appointments)
