"""Expected treatment response, by open methods only.

Commercial expected-treatment-response curves for the ORS are proprietary: this module
never ships or imitates them. It offers the two open alternatives, both implementing
:class:`fit_core.scoring.TrajectoryModel`:

1. :class:`ClinicModel`, fitted by :func:`fit_clinic_model` from the clinic's *own* closed
   episodes (the ACORN case-mix method, psychoutcomes.org): for every session number ``k`` from 2
   to ``max_session``, an ordinary least squares line ``expected_k = a_k + b_k·intake`` over the
   episodes that have an ORS at session ``k``, with bands from the percentiles of that session's
   residuals::

       expected = a_k + b_k·intake
       severe   = expected + P10(residuals_k)     (red below this)
       low      = expected + P25(residuals_k)     (green at or above this, orange below)
       high     = expected + P75(residuals_k)

   Percentiles by linear interpolation (:func:`fit_core.stats.percentile`). A session with fewer
   than ``min_n`` episodes is not fitted (it is recorded with its n and the reason), and the whole
   fit is refused (:class:`InsufficientData`) when no session can be fitted.
2. :class:`SuppliedTable`, a licensed user's own table loaded from CSV by
   :func:`load_supplied_table` (columns intake, session, expected, lower, upper, optional severe).

Without either there is no on-track status; everything else still works.

Pure functions and frozen data; the only I/O is the explicit CSV loader. There is no clock:
the caller passes ``fitted_at``.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from .scoring import Expectation
from .stats import ols, percentile_sorted

__all__ = [
    "CLINIC_MODEL_KIND",
    "SUPPLIED_TABLE_KIND",
    "ClinicModel",
    "EpisodeSeries",
    "InsufficientData",
    "ModelSet",
    "SessionFit",
    "SkippedSession",
    "StoredModel",
    "SuppliedTable",
    "SuppliedTableError",
    "TableRow",
    "fit_clinic_model",
    "load_supplied_table",
    "model_from_dict",
    "percent_of_expected_change",
]

DEFAULT_RATERS: tuple[str, ...] = ("client",)
"""Whose ratings a model speaks for when it does not say (see
:func:`fit_core.scoring.model_covers`): the client's own."""
CLINIC_MODEL_KIND = "clinic_fitted"
SUPPLIED_TABLE_KIND = "supplied_table"
FORMAT_VERSION = 1
METHOD = (
    "per-session OLS expected_k = a_k + b_k*intake over the clinic's closed episodes; "
    "bands = expected + residual percentiles (ACORN case-mix method)"
)
_DIGITS = 2  # expectations are rounded to 2 decimals: hand-checkable, stable in JSON
_MEMO_MAX = 100_000  # bound on a model's expect() memo (401 intakes x 9 sessions in practice)


def _frozen_map(m: Mapping[Any, Any]) -> Mapping[Any, Any]:
    # A private copy, typed read-only. (Not MappingProxyType: models must stay picklable.)
    return dict(m)


def _finite(value: Any, what: str) -> float:
    """``value`` as a float; ValueError unless it is a finite real number (bool is not)."""
    t = type(value)
    if (t is float or t is int) or (isinstance(value, int | float) and t is not bool):
        v = float(value)
        if math.isfinite(v):
            return v
    raise ValueError(f"{what} must be a finite number, got {value!r}")


# --- input ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EpisodeSeries:
    """The ORS totals of one closed episode (one client, episode, rater and measure family).

    ``intake`` is the session-1 total. ``totals_by_session`` maps a session number (as numbered
    by :func:`fit_core.scoring.score_client`: by date, SRS-only sessions included, so numbers may
    have gaps) to that session's ORS total; a session-1 entry, if present, must equal ``intake``
    and is otherwise ignored.
    """

    intake: float
    totals_by_session: Mapping[int, float]

    def __post_init__(self) -> None:
        intake = _finite(self.intake, "intake")
        totals: dict[int, float] = {}
        isfinite = math.isfinite
        for k, v in self.totals_by_session.items():
            if not isinstance(k, int) or isinstance(k, bool) or k < 1:
                raise ValueError(f"session numbers must be whole numbers >= 1, got {k!r}")
            totals[k] = v if type(v) is float and isfinite(v) else _finite(v, f"session {k} total")
        if 1 in totals and totals[1] != intake:
            raise ValueError(f"session 1 total {totals[1]} differs from the intake {intake}")
        object.__setattr__(self, "intake", intake)
        object.__setattr__(self, "totals_by_session", totals)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[int, float]]) -> EpisodeSeries:
        """Build from ``(session_number, ors_total)`` pairs; session 1 is the intake.

        Raises :class:`ValueError` without a session 1 or with a session given twice.
        """
        totals: dict[int, float] = {}
        for k, v in pairs:
            if k in totals:
                raise ValueError(f"session {k} is given twice")
            totals[k] = v
        if 1 not in totals:
            raise ValueError("an episode needs its intake (session 1)")
        return cls(totals[1], totals)


EpisodeInput = EpisodeSeries | Mapping[int, float] | Sequence[tuple[int, float]]
"""One closed episode: an :class:`EpisodeSeries`, ``{session: total}`` or ``[(session, total)]``."""


class InsufficientData(ValueError):
    """Too few closed episodes to fit any session of a clinic model.

    ``min_n`` is the minimum asked for; ``best_n`` and ``best_session`` the largest number of
    episodes any session had (``best_session`` is None with no usable episodes at all).
    """

    def __init__(self, message: str, *, min_n: int, best_n: int, best_session: int | None) -> None:
        super().__init__(message)
        self.min_n = min_n
        self.best_n = best_n
        self.best_session = best_session


# --- the clinic-fitted model ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionFit:
    """One session's fitted line and residual percentiles.

    ``expected = a + b·intake``; the bands are ``expected + resid_severe`` (10th percentile by
    default), ``+ resid_low`` (25th) and ``+ resid_high`` (75th). ``n`` episodes were used, with
    intakes from ``intake_min`` to ``intake_max`` (outside that range the line is extrapolated);
    ``resid_sd`` is the residual standard deviation ``√(Σe²/(n − 2))``.
    """

    a: float
    b: float
    n: int
    resid_low: float
    resid_high: float
    resid_severe: float
    resid_sd: float
    intake_min: float
    intake_max: float


@dataclass(frozen=True, slots=True)
class SkippedSession:
    """A session number the model could not fit, with the n it had and why."""

    n: int
    reason: str


def _clip(v: float, lo: float, hi: float) -> float:
    return round(v if lo <= v <= hi else (lo if v < lo else hi), _DIGITS)


@dataclass(frozen=True, slots=True)
class ClinicModel:
    """A clinic-fitted expected-treatment-response model (see the module docstring).

    Implements :class:`fit_core.scoring.TrajectoryModel`. ``measures`` are the measure keys the
    episodes came from (``("ORS",)`` by default); ``expect`` answers None for any other measure.
    ``version`` and ``fitted_at`` are whatever the caller stored them as (the module has no
    clock). Expectations are clipped to ``score_range`` (0–40) and rounded to 2 decimals.
    Answers are memoised per (measure, intake, session): same inputs, same (shared) object.
    """

    measures: tuple[str, ...]
    sessions: Mapping[int, SessionFit]
    skipped: Mapping[int, SkippedSession]
    n_episodes: int
    max_session: int
    min_n: int
    low_pct: float
    high_pct: float
    severe_pct: float
    version: str | None = None
    fitted_at: str | None = None
    score_range: tuple[float, float] = (0.0, 40.0)
    method: str = field(default=METHOD)
    raters: tuple[str, ...] = DEFAULT_RATERS
    # memo of expect() results (intakes repeat at 0.1 resolution); not part of the model's value
    _memo: dict[tuple[str, float, int], Expectation | None] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "measures", tuple(self.measures))
        object.__setattr__(self, "sessions", _frozen_map(self.sessions))
        object.__setattr__(self, "skipped", _frozen_map(self.skipped))
        object.__setattr__(self, "score_range", tuple(self.score_range))
        object.__setattr__(self, "raters", tuple(self.raters))

    def expect(self, measure: str, intake: float, session: int) -> Expectation | None:
        """The expected ORS at ``session`` for a client with this ``intake``.

        None for session 1 (the intake itself), a session that was not fitted or lies beyond
        ``max_session``, or a measure not in ``measures``.
        """
        key = (measure, intake, session)
        try:
            return self._memo[key]
        except KeyError:
            pass
        out = None
        fit = self.sessions.get(session) if measure in self.measures else None
        if fit is not None:
            lo, hi = self.score_range
            e = fit.a + fit.b * intake
            out = Expectation(
                expected=_clip(e, lo, hi),
                low=_clip(e + fit.resid_low, lo, hi),
                high=_clip(e + fit.resid_high, lo, hi),
                severe=_clip(e + fit.resid_severe, lo, hi),
            )
        if len(self._memo) < _MEMO_MAX:
            self._memo[key] = out
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists of objects, no int keys); :meth:`from_dict` reads it back."""
        return {
            "kind": CLINIC_MODEL_KIND,
            "format": FORMAT_VERSION,
            "method": self.method,
            "version": self.version,
            "fitted_at": self.fitted_at,
            "measures": list(self.measures),
            "raters": list(self.raters),
            "n_episodes": self.n_episodes,
            "max_session": self.max_session,
            "min_n": self.min_n,
            "low_pct": self.low_pct,
            "high_pct": self.high_pct,
            "severe_pct": self.severe_pct,
            "score_range": list(self.score_range),
            "sessions": [{"session": k, **_fit_dict(f)} for k, f in sorted(self.sessions.items())],
            "skipped": [
                {"session": k, "n": s.n, "reason": s.reason}
                for k, s in sorted(self.skipped.items())
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClinicModel:
        """Rebuild a model from :meth:`to_dict`'s output; :class:`ValueError` if it is not one."""
        _check_kind(data, CLINIC_MODEL_KIND)
        try:
            sessions = {
                int(row["session"]): SessionFit(
                    a=float(row["a"]),
                    b=float(row["b"]),
                    n=int(row["n"]),
                    resid_low=float(row["resid_low"]),
                    resid_high=float(row["resid_high"]),
                    resid_severe=float(row["resid_severe"]),
                    resid_sd=float(row["resid_sd"]),
                    intake_min=float(row["intake_min"]),
                    intake_max=float(row["intake_max"]),
                )
                for row in data["sessions"]
            }
            skipped = {
                int(row["session"]): SkippedSession(int(row["n"]), str(row["reason"]))
                for row in data["skipped"]
            }
            lo, hi = data.get("score_range", (0.0, 40.0))
            return cls(
                measures=tuple(str(m) for m in data["measures"]),
                sessions=sessions,
                skipped=skipped,
                n_episodes=int(data["n_episodes"]),
                max_session=int(data["max_session"]),
                min_n=int(data["min_n"]),
                low_pct=float(data["low_pct"]),
                high_pct=float(data["high_pct"]),
                severe_pct=float(data["severe_pct"]),
                version=None if data.get("version") is None else str(data["version"]),
                fitted_at=None if data.get("fitted_at") is None else str(data["fitted_at"]),
                score_range=(float(lo), float(hi)),
                method=str(data.get("method", METHOD)),
                raters=_raters(data),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a valid clinic model: {type(exc).__name__}: {exc}") from exc

    def describe(self) -> list[dict[str, Any]]:
        """One row per session 2..max_session for ``fit trajectories show`` (JSON-ready).

        Fitted rows carry ``a``, ``b``, the residual percentiles, the intake range and ``n``;
        skipped rows carry ``n`` and ``reason``. Numbers are rounded to 3 decimals for display.
        """
        rows: list[dict[str, Any]] = []
        for k in range(2, self.max_session + 1):
            fit = self.sessions.get(k)
            if fit is not None:
                rows.append(
                    {
                        "session": k,
                        "status": "fitted",
                        "n": fit.n,
                        "a": round(fit.a, 3),
                        "b": round(fit.b, 3),
                        f"resid_p{_pct(self.severe_pct)}": round(fit.resid_severe, 3),
                        f"resid_p{_pct(self.low_pct)}": round(fit.resid_low, 3),
                        f"resid_p{_pct(self.high_pct)}": round(fit.resid_high, 3),
                        "resid_sd": round(fit.resid_sd, 3),
                        "intake_min": fit.intake_min,
                        "intake_max": fit.intake_max,
                        "reason": None,
                    }
                )
            else:
                skip = self.skipped.get(k, SkippedSession(0, "no episodes"))
                rows.append({"session": k, "status": "skipped", "n": skip.n, "reason": skip.reason})
        return rows


def _pct(p: float) -> str:
    return str(int(p)) if float(p).is_integer() else str(p).replace(".", "_")


def _fit_dict(f: SessionFit) -> dict[str, Any]:
    return {
        "a": f.a,
        "b": f.b,
        "n": f.n,
        "resid_low": f.resid_low,
        "resid_high": f.resid_high,
        "resid_severe": f.resid_severe,
        "resid_sd": f.resid_sd,
        "intake_min": f.intake_min,
        "intake_max": f.intake_max,
    }


def _raters(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``raters`` of a stored model (models stored before raters were recorded: client)."""
    raters = data.get("raters")
    if raters is None:
        return DEFAULT_RATERS
    if isinstance(raters, str) or not all(isinstance(r, str) and r for r in raters):
        raise ValueError(f"raters must be a list of rater names, got {raters!r}")
    return tuple(raters)


def _check_kind(data: Mapping[str, Any], kind: str) -> None:
    if not isinstance(data, Mapping) or data.get("kind") != kind:
        got = data.get("kind") if isinstance(data, Mapping) else type(data).__name__
        raise ValueError(f"expected a {kind} model, got {got!r}")
    if data.get("format") != FORMAT_VERSION:
        raise ValueError(
            f"unsupported {kind} format {data.get('format')!r} "
            f"(this version reads format {FORMAT_VERSION})"
        )


def fit_clinic_model(
    episodes: Iterable[EpisodeInput],
    *,
    max_session: int = 10,
    min_n: int = 30,
    low_pct: float = 25,
    high_pct: float = 75,
    severe_pct: float = 10,
    measure: str | Sequence[str] = "ORS",
    version: str | None = None,
    fitted_at: str | None = None,
    rater: str = "client",
) -> ClinicModel:
    """Fit a :class:`ClinicModel` from closed episodes (see the module docstring for the method).

    ``episodes`` are :class:`EpisodeSeries`, ``{session_number: ors_total}`` mappings or
    sequences of ``(session_number, ors_total)`` pairs, with session 1 the intake. Feed one
    rater's trajectories (normally the client's): never mix raters in one
    trajectory. ``measure`` names the measure key(s) the model answers for (``"ORS"``, or
    ``("ORS", "CORS")`` if the caller pooled both); ``rater`` the rater whose episodes these are
    (the model then speaks for that rater's ratings only).

    For each ``k`` in 2..``max_session``: the episodes with a total at session ``k`` give pairs
    (intake, total_k); with at least ``min_n`` of them (and intakes that vary) the OLS line and
    the residual percentiles ``severe_pct ≤ low_pct < high_pct`` are stored, else the session is
    recorded as skipped with its n and reason.

    Raises :class:`InsufficientData` when no session can be fitted, and :class:`ValueError` for
    bad parameters or episodes.
    """
    if isinstance(max_session, bool) or not isinstance(max_session, int) or max_session < 2:
        raise ValueError(f"max_session must be a whole number >= 2, got {max_session!r}")
    if isinstance(min_n, bool) or not isinstance(min_n, int) or min_n < 3:
        raise ValueError(f"min_n must be a whole number >= 3, got {min_n!r}")
    if not 0 <= severe_pct <= low_pct < high_pct <= 100:
        raise ValueError(
            "percentiles must satisfy 0 <= severe_pct <= low_pct < high_pct <= 100, got "
            f"severe {severe_pct}, low {low_pct}, high {high_pct}"
        )
    measures = (measure,) if isinstance(measure, str) else tuple(measure)
    if not measures:
        raise ValueError("measure must name at least one measure key")

    xs: dict[int, list[float]] = {k: [] for k in range(2, max_session + 1)}
    ys: dict[int, list[float]] = {k: [] for k in range(2, max_session + 1)}
    n_episodes = 0
    for i, ep in enumerate(episodes):
        if not isinstance(ep, EpisodeSeries):
            try:
                ep = EpisodeSeries.from_pairs(ep.items() if isinstance(ep, Mapping) else ep)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"episode {i}: {exc}") from exc
        n_episodes += 1
        for k, total in ep.totals_by_session.items():
            if k in xs:
                xs[k].append(ep.intake)
                ys[k].append(total)

    sessions: dict[int, SessionFit] = {}
    skipped: dict[int, SkippedSession] = {}
    for k in range(2, max_session + 1):
        x, y = xs[k], ys[k]
        n = len(x)
        if n < min_n:
            reason = "no episodes" if n == 0 else f"fewer than {min_n} episodes (min_n)"
            skipped[k] = SkippedSession(n, reason)
            continue
        if min(x) == max(x):
            skipped[k] = SkippedSession(n, "every intake is the same: no line can be fitted")
            continue
        a, b, resid = ols(x, y)
        rs = sorted(resid)
        sessions[k] = SessionFit(
            a=a,
            b=b,
            n=n,
            resid_low=percentile_sorted(rs, low_pct),
            resid_high=percentile_sorted(rs, high_pct),
            resid_severe=percentile_sorted(rs, severe_pct),
            resid_sd=math.sqrt(math.fsum(e * e for e in resid) / (n - 2)),
            intake_min=min(x),
            intake_max=max(x),
        )

    if not sessions:
        best_k = max(xs, key=lambda k: (len(xs[k]), -k))
        best_n = len(xs[best_k])
        if best_n >= min_n:
            why = f"every session with at least {min_n} episodes has the same intake for all"
        else:
            best = f"session {best_k} with n = {best_n}" if best_n else "no session after intake"
            why = (
                f"no session from 2 to {max_session} has at least {min_n} closed episodes "
                f"(best: {best}, from {n_episodes} episodes)"
            )
        raise InsufficientData(
            f"cannot fit an expected-trajectory model: {why}; collect more closed episodes, "
            "or load a supplied table",
            min_n=min_n,
            best_n=best_n,
            best_session=best_k if best_n else None,
        )
    return ClinicModel(
        measures=measures,
        sessions=sessions,
        skipped=skipped,
        n_episodes=n_episodes,
        max_session=max_session,
        min_n=min_n,
        low_pct=float(low_pct),
        high_pct=float(high_pct),
        severe_pct=float(severe_pct),
        version=version,
        fitted_at=fitted_at,
        raters=(rater,),
    )


# --- a supplied table -------------------------------------------------------------------------


class SuppliedTableError(ValueError):
    """A supplied table that cannot be read; ``line`` and ``column`` locate it when known."""

    def __init__(self, message: str, *, line: int | None = None, column: str | None = None) -> None:
        where = ", ".join(
            p for p in (f"line {line}" if line else "", f"column {column!r}" if column else "") if p
        )
        super().__init__(f"{where}: {message}" if where else message)
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True)
class TableRow:
    """One row of a supplied table (``severe`` None when the table has no severe column)."""

    intake: float
    session: int
    expected: float
    lower: float
    upper: float
    severe: float | None = None


REQUIRED_COLUMNS = ("intake", "session", "expected", "lower", "upper")
OPTIONAL_COLUMNS = ("severe",)


@dataclass(frozen=True, slots=True)
class SuppliedTable:
    """A licensed user's expected-response table, as a :class:`~fit_core.scoring.TrajectoryModel`.

    Lookup (:meth:`expect`): among the rows for the same session, **linear interpolation** in
    intake between the two rows with the nearest intakes below and above; an intake outside the
    session's intake range takes the nearest end row (no extrapolation). A session the table does
    not list gives None, as does a measure not in ``measures``. ``lower`` is the green/orange line,
    ``severe`` (optional) the orange/red one. Results are rounded to 2 decimals.
    """

    rows: tuple[TableRow, ...]
    measures: tuple[str, ...] = ("ORS",)
    name: str | None = None
    raters: tuple[str, ...] = DEFAULT_RATERS
    _by_session: Mapping[int, tuple[TableRow, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _memo: dict[tuple[str, float, int], Expectation | None] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(self.rows))
        object.__setattr__(self, "measures", tuple(self.measures))
        object.__setattr__(self, "raters", tuple(self.raters))
        by: dict[int, list[TableRow]] = {}
        for r in self.rows:
            by.setdefault(r.session, []).append(r)
        for k, rs in by.items():
            rs.sort(key=lambda r: r.intake)
            for prev, cur in itertools.pairwise(rs):
                if prev.intake == cur.intake:
                    raise SuppliedTableError(
                        f"two rows for session {k} and intake {cur.intake}", column="intake"
                    )
        object.__setattr__(self, "_by_session", {k: tuple(v) for k, v in sorted(by.items())})

    @property
    def sessions(self) -> tuple[int, ...]:
        return tuple(self._by_session)

    def intake_range(self, session: int) -> tuple[float, float] | None:
        rs = self._by_session.get(session)
        return (rs[0].intake, rs[-1].intake) if rs else None

    def expect(self, measure: str, intake: float, session: int) -> Expectation | None:
        """Interpolated expectation for ``intake`` at ``session`` (see the class docstring)."""
        key = (measure, intake, session)
        try:
            return self._memo[key]
        except KeyError:
            pass
        out = self._lookup(measure, intake, session)
        if len(self._memo) < _MEMO_MAX:
            self._memo[key] = out
        return out

    def _lookup(self, measure: str, intake: float, session: int) -> Expectation | None:
        if measure not in self.measures:
            return None
        rs = self._by_session.get(session)
        if not rs:
            return None
        if intake <= rs[0].intake:
            return _row_expectation(rs[0])
        if intake >= rs[-1].intake:
            return _row_expectation(rs[-1])
        lo_i, hi_i = 0, len(rs) - 1  # binary search: rs[lo_i].intake < intake < rs[hi_i].intake
        while hi_i - lo_i > 1:
            mid = (lo_i + hi_i) // 2
            if rs[mid].intake <= intake:
                lo_i = mid
            else:
                hi_i = mid
        a, b = rs[lo_i], rs[hi_i]
        if a.intake == intake:
            return _row_expectation(a)
        t = (intake - a.intake) / (b.intake - a.intake)

        def lerp(u: float, v: float) -> float:
            return round(u + t * (v - u), _DIGITS)

        severe = None if a.severe is None or b.severe is None else lerp(a.severe, b.severe)
        return Expectation(
            lerp(a.expected, b.expected), lerp(a.lower, b.lower), lerp(a.upper, b.upper), severe
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        return {
            "kind": SUPPLIED_TABLE_KIND,
            "format": FORMAT_VERSION,
            "name": self.name,
            "measures": list(self.measures),
            "raters": list(self.raters),
            "rows": [
                {
                    "intake": r.intake,
                    "session": r.session,
                    "expected": r.expected,
                    "lower": r.lower,
                    "upper": r.upper,
                    "severe": r.severe,
                }
                for r in self.rows
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SuppliedTable:
        _check_kind(data, SUPPLIED_TABLE_KIND)
        try:
            rows = tuple(
                _checked_row(
                    float(r["intake"]),
                    int(r["session"]),
                    float(r["expected"]),
                    float(r["lower"]),
                    float(r["upper"]),
                    None if r.get("severe") is None else float(r["severe"]),
                    line=None,
                )
                for r in data["rows"]
            )
            return cls(
                rows,
                tuple(str(m) for m in data["measures"]),
                None if data.get("name") is None else str(data["name"]),
                _raters(data),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a valid supplied table: {type(exc).__name__}: {exc}") from exc

    def describe(self) -> list[dict[str, Any]]:
        """One row per session: how many table rows and the intake range they cover."""
        return [
            {
                "session": k,
                "rows": len(rs),
                "intake_min": rs[0].intake,
                "intake_max": rs[-1].intake,
                "severe": all(r.severe is not None for r in rs),
            }
            for k, rs in self._by_session.items()
        ]


def _row_expectation(r: TableRow) -> Expectation:
    sev = None if r.severe is None else round(r.severe, _DIGITS)
    return Expectation(
        round(r.expected, _DIGITS), round(r.lower, _DIGITS), round(r.upper, _DIGITS), sev
    )


def _checked_row(
    intake: float,
    session: int,
    expected: float,
    lower: float,
    upper: float,
    severe: float | None,
    *,
    line: int | None,
) -> TableRow:
    if session < 1:
        raise SuppliedTableError(
            f"session must be 1 or more, got {session}", line=line, column="session"
        )
    for name, v in (
        ("intake", intake),
        ("expected", expected),
        ("lower", lower),
        ("upper", upper),
        ("severe", severe),
    ):
        if v is not None and not math.isfinite(v):
            raise SuppliedTableError(f"{v!r} is not a finite number", line=line, column=name)
    if not lower <= expected <= upper:
        raise SuppliedTableError(
            f"need lower <= expected <= upper, got {lower} / {expected} / {upper}",
            line=line,
            column="lower" if lower > expected else "upper",
        )
    if severe is not None and severe > lower:
        raise SuppliedTableError(
            f"severe ({severe}) must not be above lower ({lower})", line=line, column="severe"
        )
    return TableRow(intake, session, expected, lower, upper, severe)


def _parse_number(text: str, *, line: int, column: str) -> float:
    t = text.strip()
    if not t:
        raise SuppliedTableError("is empty: a number is required", line=line, column=column)
    try:
        v = float(t)
    except ValueError:
        raise SuppliedTableError(f"{t!r} is not a number", line=line, column=column) from None
    if not math.isfinite(v):
        raise SuppliedTableError(f"{t!r} is not a finite number", line=line, column=column)
    return v


def load_supplied_table(
    source: str | os.PathLike[str] | IO[str],
    *,
    measures: str | Sequence[str] = "ORS",
    name: str | None = None,
    raters: str | Sequence[str] = DEFAULT_RATERS,
) -> SuppliedTable:
    """Read a supplied expected-response table from a CSV file path or an open text stream.

    Columns (header names, case-insensitive, surrounding spaces ignored, any order):
    ``intake, session, expected, lower, upper`` required, ``severe`` optional (if present every
    row needs a value); other columns are ignored. ``session`` is a whole number >= 1. Each row
    must satisfy ``severe <= lower <= expected <= upper``; a (session, intake) pair may appear
    once. Blank lines are skipped. Errors are :class:`SuppliedTableError` naming the line (the
    header is line 1) and the column. ``measures`` are the measure keys the table applies to,
    ``raters`` the raters whose ratings it speaks for (default: the client).
    """
    label: str | None  # the table's name in messages: the file's name unless given
    if isinstance(source, str | os.PathLike):
        with open(source, newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
        label = name or os.path.basename(os.fspath(source))
    else:
        text = source.read()
        label = name
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise SuppliedTableError("the table is empty (no header line)", line=1)
    cols = [h.strip().lower() for h in header]
    index: dict[str, int] = {}
    for i, c in enumerate(cols):
        if c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
            if c in index:
                raise SuppliedTableError("the column appears twice", line=1, column=c)
            index[c] = i
    missing = [c for c in REQUIRED_COLUMNS if c not in index]
    if missing:
        raise SuppliedTableError(
            f"missing column(s) {', '.join(missing)}; the header needs "
            f"{', '.join(REQUIRED_COLUMNS)} (and optionally severe)",
            line=1,
        )
    has_severe = "severe" in index
    rows: list[TableRow] = []
    seen: dict[tuple[int, float], int] = {}
    line = 1
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue

        def cell(col: str, cells: list[str] = cells, line: int = line) -> str:
            i = index[col]
            if i >= len(cells):
                raise SuppliedTableError("is missing (the row is too short)", line=line, column=col)
            return cells[i]

        num = {c: _parse_number(cell(c), line=line, column=c) for c in REQUIRED_COLUMNS}
        sess = num["session"]
        if not sess.is_integer():
            raise SuppliedTableError(
                f"{cell('session').strip()!r} is not a whole session number",
                line=line,
                column="session",
            )
        severe = _parse_number(cell("severe"), line=line, column="severe") if has_severe else None
        row = _checked_row(
            num["intake"],
            int(sess),
            num["expected"],
            num["lower"],
            num["upper"],
            severe,
            line=line,
        )
        key = (row.session, row.intake)
        if key in seen:
            raise SuppliedTableError(
                f"session {row.session}, intake {row.intake} already given on line {seen[key]}",
                line=line,
                column="intake",
            )
        seen[key] = line
        rows.append(row)
    if not rows:
        raise SuppliedTableError("the table has a header but no rows", line=line)
    ms = (measures,) if isinstance(measures, str) else tuple(measures)
    rs = (raters,) if isinstance(raters, str) else tuple(raters)
    return SuppliedTable(tuple(rows), ms, label, rs)


def model_from_dict(data: Mapping[str, Any]) -> ClinicModel | SuppliedTable:
    """Rebuild whichever model :meth:`ClinicModel.to_dict`/:meth:`SuppliedTable.to_dict` wrote."""
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind == CLINIC_MODEL_KIND:
        return ClinicModel.from_dict(data)
    if kind == SUPPLIED_TABLE_KIND:
        return SuppliedTable.from_dict(data)
    raise ValueError(f"unknown trajectory model kind {kind!r}")


# --- the models in force: one per measure and rater ----------------------------------------


@dataclass(frozen=True, slots=True)
class StoredModel:
    """A model as the store keeps it: its id, kind (``clinic`` or ``table``) and save time."""

    id: int
    kind: str
    model: ClinicModel | SuppliedTable
    created_at: str | None = None

    @property
    def measures(self) -> tuple[str, ...]:
        return self.model.measures

    @property
    def raters(self) -> tuple[str, ...]:
        return self.model.raters


@dataclass(frozen=True, slots=True)
class ModelSet:
    """The trajectory models in force, at most one for each measure and rater.

    A clinic has an adult (ORS) and a child (CORS) model at once, each fitted on its own
    episodes, and may have one per rater; fitting one never replaces another's. Implements
    :class:`fit_core.scoring.TrajectoryModel`: :meth:`select` gives the model for a measure and
    rater (scoring uses it, so a parent's ratings are read against a parent model or none),
    :meth:`expect` answers for the client's ratings.
    """

    entries: tuple[StoredModel, ...]

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any]]) -> ModelSet | None:
        """From store rows ``(id, kind, data[, created_at])``, oldest first (a newer model wins
        where two speak for the same measure and rater); None when there are none."""
        entries = tuple(
            StoredModel(int(r[0]), str(r[1]), model_from_dict(r[2]), r[3] if len(r) > 3 else None)
            for r in rows
        )
        return cls(entries) if entries else None

    def select(self, measure: str, rater: str) -> ClinicModel | SuppliedTable | None:
        """The model for ``measure`` rated by ``rater`` (the newest that speaks for both)."""
        for e in reversed(self.entries):
            if measure in e.measures and rater in e.raters:
                return e.model
        return None

    def covers(self, measure: str, rater: str) -> bool:
        return self.select(measure, rater) is not None

    def expect(self, measure: str, intake: float, session: int) -> Expectation | None:
        """The client-rated expectation (see :meth:`select` for other raters)."""
        model = self.select(measure, "client")
        return None if model is None else model.expect(measure, intake, session)

    @property
    def measures(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for e in self.entries for m in e.measures))


# --- percent of expected change ---------------------------------------------------------------


def percent_of_expected_change(intake: float, total: float, expected: float) -> float | None:
    """How much of the expected change from intake a client has made, in percent.

    ``(total − intake)/(expected − intake)·100``: 100 means on the expected path, 50 half-way,
    a negative value a change in the opposite direction. None when ``expected == intake`` (no
    change was expected, so the ratio is undefined).
    """
    denom = expected - intake
    if abs(denom) < 1e-9:
        return None
    return (total - intake) / denom * 100.0
