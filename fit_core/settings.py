"""Scoring and rule settings: the defaults of docs/clinical.md, as one frozen object.

``[rules]`` and ``[scoring]`` in the config file become a :class:`Settings`; every number here
is a default a clinic can change, never a hard-coded truth.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from . import exact
from .errors import ConfigError

Comparison = Literal["below", "at_or_below"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Every number the clinical logic uses.

    ``cutoffs`` overrides a measure's age-band cutoff, keyed ``"ORS.adult"``, ``"CORS.child"``,
    ``"SRS.all"`` ...; ``reliable_change`` overrides a measure's RC, keyed by measure.
    """

    clinical_comparison: Comparison = "below"
    srs_cutoff: float | None = None  # overrides every SRS-family cutoff when set
    ors_reliable_change: float | None = None  # overrides RC for the ORS family when set
    srs_drop: float = 1.0
    srs_low_item: float = 9.0
    episode_gap_days: int = 90
    checkpoint_sessions: tuple[int, int] = (3, 5)
    last_chance_sessions: tuple[int, int] = (6, 9)
    dropout_days: int = 30
    dropout_missed: int = 2
    dropout_window: int = 3
    episode_end_days: int = 60
    cutoffs: Mapping[str, float] = field(default_factory=dict)
    reliable_change: Mapping[str, float] = field(default_factory=dict)
    disabled_rules: frozenset[str] = frozenset()
    enabled_rules: frozenset[str] = frozenset()  # opt-in rules switched on
    as_of: dt.date | None = None

    def is_clinical(self, total: float, cutoff: float) -> bool:
        """True when ``total`` is in the clinical range (below the cutoff, by default).

        Compares the exact decimal values (:mod:`fit_core.exact`): 24.99 is below 25, 25.0 is
        not."""
        if self.clinical_comparison == "at_or_below":
            return exact.at_most(total, cutoff)
        return exact.below(total, cutoff)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


_NUMBER_KEYS = {"srs_cutoff", "ors_reliable_change", "srs_drop", "srs_low_item"}
# (lowest, highest, lowest allowed itself): a NaN, an infinity or a negative value would
# silently switch a rule off (a NaN reliable change removes every deterioration flag)
_NUMBER_RANGES: dict[str, tuple[float, float, bool]] = {
    "srs_cutoff": (0.0, 40.0, True),
    "ors_reliable_change": (0.0, 40.0, False),
    "srs_drop": (0.0, 40.0, False),
    "srs_low_item": (0.0, 10.0, True),
    "cutoffs": (0.0, math.inf, True),
    "reliable_change": (0.0, math.inf, False),
}


def _number(where: str, value: Any, key: str) -> float:
    """A finite number within the key's range, or ConfigError naming the key."""
    low, high, inclusive = _NUMBER_RANGES[key]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ConfigError(f"{where} must be a number")
    f = float(value)
    if math.isnan(f) or math.isinf(f):
        raise ConfigError(f"{where} must be a finite number (not nan or inf)")
    if f < low or (f == low and not inclusive) or f > high:
        bounds = f"{'at least' if inclusive else 'more than'} {low:g}"
        if high != math.inf:
            bounds += f" and at most {high:g}"
        raise ConfigError(f"{where} must be {bounds}")
    return f


def check_rule_ids(settings: Settings, known: Iterable[str]) -> None:
    """ConfigError when ``[rules] enabled`` or ``disabled`` names a rule that does not exist
    (a typo would otherwise leave the rule silently on, or off)."""
    ids = set(known)
    for key, names in (("disabled", settings.disabled_rules), ("enabled", settings.enabled_rules)):
        unknown = sorted(set(names) - ids)
        if unknown:
            raise ConfigError(
                f"[rules] {key} names unknown rule id {unknown[0]!r}",
                hint=f"known rule ids: {', '.join(sorted(ids))} (`fit rules` lists them)",
            )


def settings_from_config(rules: Mapping[str, Any] | None) -> Settings:
    """Build :class:`Settings` from the ``[rules]`` table, strictly: unknown keys are errors."""
    rules = dict(rules or {})
    known = {f.name for f in fields(Settings)} - {"as_of"}
    kwargs: dict[str, Any] = {}
    for key, value in rules.items():
        where = f"[rules] {key}"
        if key == "disabled":
            key = "disabled_rules"
        elif key == "enabled":
            key = "enabled_rules"
        if key not in known:
            raise ConfigError(
                f"unknown setting {where}",
                hint="see the README's config reference for the [rules] keys",
            )
        if key in _NUMBER_KEYS:
            kwargs[key] = _number(where, value, key)
        elif key in (
            "episode_gap_days",
            "dropout_days",
            "dropout_missed",
            "dropout_window",
            "episode_end_days",
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{where} must be a whole number of days >= 1")
            kwargs[key] = value
        elif key in ("checkpoint_sessions", "last_chance_sessions"):
            if (
                not isinstance(value, list)
                or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
                or not 2 <= value[0] <= value[1]
            ):
                raise ConfigError(f"{where} must be [first, last] sessions, e.g. [3, 5]")
            kwargs[key] = (value[0], value[1])
        elif key == "clinical_comparison":
            if value not in ("below", "at_or_below"):
                raise ConfigError(f'{where} must be "below" or "at_or_below"')
            kwargs[key] = value
        elif key in ("disabled_rules", "enabled_rules"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where} must be a list of rule ids")
            kwargs[key] = frozenset(value)
        elif key in ("cutoffs", "reliable_change"):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where} must be a table of numbers")
            kwargs[key] = {str(k): _number(f"[rules.{key}] {k}", v, key) for k, v in value.items()}
    return Settings(**kwargs)
