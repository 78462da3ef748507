"""Built-in alert rules (rule ids are a contract: see DESIGN.md "Rule ids").

Each rule is a small frozen object with ``id``, ``version``, ``family``, ``severity`` and a pure
``evaluate(history)``. Messages say what to discuss and carry the numbers; never names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..hookspecs import hookimpl
from ..models import Flag, Severity
from ..scoring import History, reliable_change_for
from . import fmt


@dataclass(frozen=True)
class SrsBelowCutoff:
    id: str = "srs.below_cutoff"
    version: int = 1
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
            f"Alliance {fmt(s.total)} is below {fmt(s.cutoff)}: ask what to change about the "
            "relationship, goals or approach.",
            {
                "total": s.total,
                "cutoff": s.cutoff,
                "comparison": history.settings.clinical_comparison,
            },
        )


@dataclass(frozen=True)
class SrsDrop:
    id: str = "srs.drop"
    version: int = 1
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
        drop = round(prev.score.total - history.current.score.total, 2)
        if drop < threshold - 1e-9:
            return None
        return Flag(
            self.id,
            self.version,
            self.severity,
            f"Alliance fell {fmt(drop)} points since the last session ({fmt(prev.score.total)} → "
            f"{fmt(history.current.score.total)}): ask what felt different this time.",
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
    version: int = 1
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
        return Flag(
            self.id,
            self.version,
            self.severity,
            f"ORS has reliably deteriorated ({fmt(s.intake)} at intake → {fmt(s.total)}, "
            f"change {fmt(s.change_from_intake)}, RC {fmt(rc)}): review the plan with the client "
            f"and in supervision.",
            inputs,
        )


BUILTIN_RULES = (SrsBelowCutoff(), SrsDrop(), OrsReliableDeterioration())


@hookimpl
def fit_register_rules(register: Any) -> None:
    for rule in BUILTIN_RULES:
        register(rule)


@hookimpl
def fit_register_measures(register: Any) -> None:
    from ..measures import BUILTIN_MEASURES

    for measure in BUILTIN_MEASURES:
        register(measure)
