"""Benchmark the clinical engine on N synthetic administrations (run by hand; prints figures).

    python benchmarks/bench_clinical.py --n 100000

Times, each in one process with the data already in memory (no store, no CSV):
  1. validate   - the N rows into Administrations (for reference; part of a sync, not of this)
  2. rescore    - sessions, episodes, scores and every rule, per client (Scorer.score)
  3. rescore+model - the same with a fitted trajectory model (statuses, on-track rules)
  4. fit        - fitting the clinic trajectory model from the ended episodes
  5. stats      - episode summaries and agency statistics (`fit stats` without the store)
Target (issue 3): rescoring and `fit stats` each under 2 s for 100k administrations.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import time
from collections.abc import Callable
from typing import Any

from fit_core.agency import agency_stats
from fit_core.episodes import episodes_of, is_ended, summarize, trajectory_series
from fit_core.measures import BUILTIN_MEASURES
from fit_core.models import Record
from fit_core.rules.builtin import BUILTIN_RULES
from fit_core.scoring import Scorer
from fit_core.settings import Settings
from fit_core.synthetic import generate_rows
from fit_core.trajectories import fit_clinic_model
from fit_core.validation import Validator


def timed(label: str, fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<16} {seconds:7.2f} s")
    return out, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    measures = {m.key: m for m in BUILTIN_MEASURES}
    rows = list(generate_rows(args.n, seed=args.seed))
    validator = Validator(measures, "UTC", source="bench")
    records = [Record(r["source_key"] or str(i), r) for i, r in enumerate(rows)]

    def validate() -> list[Any]:
        out = []
        for i in range(0, len(records), 2000):
            out.extend(validator.validate_many(records[i : i + 2000]))
        return out

    admins, _ = timed("validate", validate)
    admins = [a for a in admins if not isinstance(a, dict)]
    admins.sort(key=lambda a: a.client)
    clients = [list(g) for _, g in itertools.groupby(admins, key=lambda a: a.client)]
    today = max(a.local_date for a in admins) + dt.timedelta(days=120)
    settings = Settings(as_of=today)
    print(f"{len(admins)} administrations, {len(clients)} clients, as of {today}")

    scorer = Scorer(measures, settings, BUILTIN_RULES)
    scored, t_rescore = timed("rescore", lambda: [scorer.score(c).scored for c in clients])

    def fit() -> Any:
        series = [
            s
            for client in scored
            for view in episodes_of(client)
            if is_ended(view, today, settings)
            and (s := trajectory_series(view, measures, "ORS")) is not None
        ]
        return fit_clinic_model(series)

    model, t_fit = timed("fit", fit)
    with_model = Scorer(measures, settings, BUILTIN_RULES, model)
    scored, t_model = timed("rescore+model", lambda: [with_model.score(c).scored for c in clients])

    def stats() -> Any:
        summaries = [
            s
            for client in scored
            for view in episodes_of(client)
            if (s := summarize(view, measures, settings, today)) is not None
        ]
        return agency_stats(summaries, by="clinician")

    _, t_stats = timed("stats", stats)
    n = len(admins)
    print(f"rescore: {n / t_rescore:,.0f} administrations/s (target: {n:,} in < 2 s)")
    print(f"rescore+model: {n / t_model:,.0f} administrations/s; fit {t_fit:.2f} s")
    print(f"stats: {t_stats:.2f} s (target < 2 s)")


if __name__ == "__main__":
    main()
