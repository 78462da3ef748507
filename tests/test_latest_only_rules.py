"""Rules that answer only at the latest administration (``latest_only``) score as before.

The scorer skips a ``latest_only`` rule before the latest administration of an episode and
rater. The built-in rules that say so (attendance.dropout_risk, ors.missing) must answer None
there anyway, for ``evaluate`` and ``review_on``: scoring with the attribute honoured and with
it hidden gives the same result, flags, review dates and rule failures, for clients with and
without attendance data, on many "today"s.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from fit_core.models import Administration, Appointment, ClientContext, Record
from fit_core.plugins import load_plugins
from fit_core.rules.builtin import BUILTIN_RULES
from fit_core.scoring import Scorer, group_by_client
from fit_core.settings import Settings
from fit_core.synthetic import generate_rows
from fit_core.validation import Validator

MEASURES = load_plugins().measures


class Hidden:
    """A rule without its ``latest_only`` attribute: evaluated on every administration."""

    def __init__(self, rule: Any) -> None:
        self._rule = rule
        for name in ("id", "version", "family", "severity", "description", "opt_in"):
            setattr(self, name, getattr(rule, name))
        if hasattr(rule, "review_on"):
            self.review_on = rule.review_on

    def evaluate(self, history: Any) -> Any:
        return self._rule.evaluate(history)


def clinic() -> list[tuple[list[Any], ClientContext | None]]:
    validator = Validator(MEASURES, dt.UTC, source="s", namespace="s", today=dt.date(2030, 1, 1))
    records = [Record(row["source_key"], dict(row)) for row in generate_rows(1500, seed=3)]
    admins = [a for a in validator.validate_many(records) if isinstance(a, Administration)]
    assert len(admins) == 1500
    rng = random.Random(7)
    out = []
    for (ns, cid), group in group_by_client(admins).items():
        context = None
        if rng.random() < 0.6:
            days = sorted({a.local_date for a in group})
            extra = [days[-1] + dt.timedelta(days=7 * i) for i in range(1, rng.randint(1, 4))]
            appointments = tuple(
                Appointment(
                    "pm",
                    f"{cid}-{d.isoformat()}",
                    ns,
                    cid,
                    dt.datetime.combine(d, dt.time(9), tzinfo=dt.UTC),
                    d,
                    rng.choice(["attended", "attended", "no_show", "late_cancel", "scheduled"]),
                    None,
                    None,
                    False,
                )
                for d in [*days, *extra]
            )
            context = ClientContext(appointments)
        out.append((group, context))
    return out


def test_latest_only_rules_give_what_evaluating_them_everywhere_gives() -> None:
    clients = clinic()
    assert any(getattr(r, "latest_only", False) for r in BUILTIN_RULES)
    hidden = [Hidden(r) if getattr(r, "latest_only", False) else r for r in BUILTIN_RULES]
    compared = 0
    for today in (dt.date(2022, 3, 1), dt.date(2023, 6, 15), dt.date(2025, 1, 1), None):
        settings = Settings(as_of=today)
        fast = Scorer(MEASURES, settings, BUILTIN_RULES)
        slow = Scorer(MEASURES, settings, hidden)
        for group, context in clients:
            assert fast.score(group, context) == slow.score(group, context)
            compared += 1
    assert compared > 200
