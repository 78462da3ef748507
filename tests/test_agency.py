"""fit_core.agency: agency indices against an independent numpy computation, and hand cases."""

from __future__ import annotations

import datetime as dt
import json
import random
import warnings
from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from fit_core.agency import GROUP_BY, EpisodeSummary, GroupStats, agency_stats

START = dt.date(2025, 1, 6)
BANDS = {"adult": 25.0, "adolescent": 28.0, "child": 32.0}


def summary(**kw: Any) -> EpisodeSummary:
    """An EpisodeSummary with dull defaults, for hand-written cases."""
    base: dict[str, Any] = {
        "client_key": ("ns", "c1"),
        "episode_id": "e1",
        "first_date": START,
        "last_date": START + dt.timedelta(days=35),
        "n_sessions": 6,
        "n_ors": 6,
        "ors_cutoff": 25.0,
        "rc": 5.0,
        "age_band": "adult",
        "clinician_id": "T1",
        "intake_ors": 18.0,
        "last_ors": 25.0,
    }
    base.update(kw)
    return EpisodeSummary(**base)


def synthetic_summaries(n_clients: int = 700, seed: int = 20) -> list[EpisodeSummary]:
    """A clinic's rated episodes: some collateral raters, second episodes, missing values."""
    rng = random.Random(seed)
    out: list[EpisodeSummary] = []
    clinicians = ["T01", "T02", "T03", "T04", "T05"]
    for c in range(n_clients):
        band = rng.choices(list(BANDS), weights=[80, 12, 8])[0]
        for e in range(1 if rng.random() < 0.9 else 2):
            # one clinician, site and band per episode; T06 sees only a handful (a small group)
            clin = "T06" if rng.random() < 0.008 else rng.choice(clinicians)
            site = None if rng.random() < 0.05 else rng.choice(["north", "south"])
            first = START + dt.timedelta(days=rng.randint(0, 300) + 400 * e)
            n_sessions = rng.choice([1, 1, 2, 3, 4, 5, 6, 7, 8, 10, 14])
            ended = rng.random() < 0.85
            planned = None if not ended or rng.random() < 0.1 else rng.random() < 0.7
            raters = ["client"] if band == "adult" or rng.random() < 0.5 else ["client", "parent"]
            if band == "child" and rng.random() < 0.2:
                raters = ["parent"]  # a young child rated only by a parent
            for rater in raters:
                intake = round(rng.gauss(19 if band == "adult" else 24, 6.5), 1)
                intake = min(40.0, max(0.0, intake))
                n_ors = max(0, n_sessions - (rng.random() < 0.1))
                last = None
                if n_ors >= 2:
                    last = round(min(40.0, max(0.0, intake + rng.gauss(5, 6))), 1)
                if rng.random() < 0.02:  # an exact-RC case now and then
                    last = round(intake + 5.0, 1) if intake <= 35 else last
                out.append(
                    EpisodeSummary(
                        client_key=("ns", f"C{c:05d}"),
                        episode_id=f"C{c:05d}-E{e + 1}",
                        rater=rater,
                        clinician_id=clin,
                        site=site,
                        age_band=band,
                        first_date=first + dt.timedelta(days=rng.randint(0, 2)),
                        last_date=first + dt.timedelta(days=7 * max(0, n_sessions - 1)),
                        n_sessions=n_sessions,
                        n_ors=n_ors,
                        ors_cutoff=BANDS[band],
                        rc=5.0,
                        intake_ors=intake if n_ors >= 1 else None,
                        last_ors=last,
                        intake_srs=None if rng.random() < 0.1 else round(rng.uniform(28, 40), 1),
                        mean_srs=round(rng.uniform(30, 40), 1),
                        ended=ended,
                        planned_ending=planned,
                        expected_last=(
                            None if last is None or rng.random() < 0.3 else intake + 4.0
                        ),
                        reached_target=(None if rng.random() < 0.9 else rng.random() < 0.5),
                    )
                )
    return out


@pytest.fixture(scope="module")
def summaries() -> list[EpisodeSummary]:
    return synthetic_summaries()


# --- an independent computation ---------------------------------------------------------------


def expected_stats(summaries: list[EpisodeSummary], by: str | None) -> dict[str, dict[str, Any]]:
    """The same indices, computed from scratch with numpy (no fit_core code)."""
    episodes: dict[Any, list[EpisodeSummary]] = defaultdict(list)
    for s in summaries:
        episodes[(s.client_key, s.episode_id)].append(s)

    def key_of(ss: list[EpisodeSummary]) -> str:
        p = next((s for s in ss if s.rater == "client"), ss[0])
        if by == "clinician":
            return p.clinician_id or "(none)"
        if by == "site":
            return p.site or "(none)"
        if by == "month":
            return min(s.first_date for s in ss).strftime("%Y-%m")
        return p.age_band

    groups: dict[str, list[list[EpisodeSummary]]] = defaultdict(list)
    for ss in episodes.values():
        groups["all"].append(ss)
        if by is not None:
            groups[key_of(ss)].append(ss)

    out = {}
    for g, eps in groups.items():
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # empty or 1-value slices: nan
            out[g] = _group_expected(eps)
    return out


def _group_expected(eps: list[list[EpisodeSummary]]) -> dict[str, Any]:
    flat = [s for ss in eps for s in ss]
    rated = [s for s in flat if s.rater == "client"]
    ch = [s for s in rated if s.n_ors >= 2 and s.last_ors is not None]
    intake = np.array([s.intake_ors for s in ch], dtype=float)
    last = np.array([s.last_ors for s in ch], dtype=float)
    cutoff = np.array([s.ors_cutoff for s in ch], dtype=float)
    delta = np.round(last - intake, 2)
    up, down = delta >= 5 - 1e-9, delta <= -5 + 1e-9
    clin_in = np.round(intake, 2) < np.round(cutoff, 2)
    clin_out = np.round(last, 2) < np.round(cutoff, 2)
    recovered = up & clin_in & ~clin_out
    given = np.array([s.reached_target is not None for s in ch])
    given_val = np.array([bool(s.reached_target) for s in ch])
    target = np.where(given, given_val, up)
    n = len(ch)
    d = (last - intake).mean() / intake.std(ddof=1)
    r = np.corrcoef(intake, last)[0, 1]
    se = np.sqrt(2 * (1 - r) / n + d**2 / (2 * n))
    exp_last = np.array([np.nan if s.expected_last is None else s.expected_last for s in ch])
    sa = clin_in & ~np.isnan(exp_last)
    sa_es = (last[sa] - exp_last[sa]).mean() / intake[sa].std(ddof=1)
    ended = [ss for ss in eps if any(s.ended for s in ss)]
    planned = [next(s.planned_ending for s in ss) for ss in ended]  # one value per episode
    intakes_by_band: dict[str, list[float]] = defaultdict(list)
    for s in rated:
        if s.intake_ors is not None:
            intakes_by_band[s.age_band].append(s.intake_ors)
    stats = {
        "n_clients": len({s.client_key for s in flat}),
        "n_episodes": len(eps),
        "n_rated_episodes": len(flat),
        "n_collateral": sum(s.rater != "client" for s in flat),
        "mean_intake_ors": np.mean([s.intake_ors for s in rated if s.intake_ors is not None]),
        "mean_intake_ors_by_age_band": {b: np.mean(v) for b, v in intakes_by_band.items()},
        "mean_intake_srs": np.mean([s.intake_srs for s in rated if s.intake_srs is not None]),
        "mean_sessions": np.mean([max(s.n_sessions for s in ss) for ss in eps]),
        "mean_days": np.mean(
            [(max(s.last_date for s in ss) - min(s.first_date for s in ss)).days for ss in eps]
        ),
        "n_outcome": n,
        "effect_size": d,
        "effect_size_ci_low": d - 1.959963984540054 * se,
        "effect_size_ci_high": d + 1.959963984540054 * se,
        "n_severity_adjusted": int(sa.sum()),
        "severity_adjusted_effect_size": sa_es,
        "pct_recovered": 100 * recovered.mean(),
        "pct_improved": 100 * (up & ~recovered).mean(),
        "pct_no_change": 100 * (~up & ~down).mean(),
        "pct_deteriorated": 100 * down.mean(),
        "pct_reached_target": 100 * target.mean(),
        "n_ended": len(ended),
        "n_planned": sum(p is True for p in planned),
        "n_unplanned": sum(p is False for p in planned),
        "n_ending_unknown": sum(p is None for p in planned),
    }
    # undefined figures (no data, no SD) are None in fit_core: nan here
    return {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in stats.items()}


@pytest.mark.parametrize("by", [None, *GROUP_BY])
def test_matches_independent_numpy_computation(
    summaries: list[EpisodeSummary], by: str | None
) -> None:
    got = {g.group: g for g in agency_stats(summaries, by=by)}  # type: ignore[arg-type]
    want = expected_stats(summaries, by)
    assert set(got) == set(want)
    for group, exp in want.items():
        g = got[group].as_dict()
        for key, value in exp.items():
            if isinstance(value, dict):
                assert g[key].keys() == value.keys(), (group, key)
                for band, v in value.items():
                    assert g[key][band] == pytest.approx(v, abs=1e-9), (group, key, band)
            elif g["n_outcome"] < 3 and key.startswith("effect"):
                continue  # n < 3: no CI by design (checked in its own test)
            elif g["n_severity_adjusted"] < 2 and key.startswith("severity"):
                continue
            elif value is None:
                assert g[key] is None, (group, key)
            else:
                assert g[key] == pytest.approx(value, abs=1e-9), (group, key)


def test_all_row_is_consistent_with_the_groups(summaries: list[EpisodeSummary]) -> None:
    for by in GROUP_BY:
        rows = agency_stats(summaries, by=by)  # type: ignore[arg-type]
        total, groups = rows[0], rows[1:]
        assert (total.by, total.group) == ("all", "all")
        assert [g.group for g in groups] == sorted(g.group for g in groups)
        for field in (
            "n_episodes",
            "n_rated_episodes",
            "n_collateral",
            "n_outcome",
            "n_recovered",
            "n_improved",
            "n_no_change",
            "n_deteriorated",
            "n_reached_target",
            "n_ended",
            "n_planned",
            "n_unplanned",
            "n_ending_unknown",
            "n_severity_adjusted",
        ):
            assert sum(getattr(g, field) for g in groups) == getattr(total, field), (by, field)
        assert sum(g.n_clients for g in groups) >= total.n_clients
        weighted = sum(g.mean_sessions * g.n_episodes for g in groups) / total.n_episodes  # type: ignore[operator]
        assert weighted == pytest.approx(total.mean_sessions)
        assert total.n_recovered + total.n_improved + total.n_no_change + total.n_deteriorated == (
            total.n_outcome
        )


def test_small_groups_are_shown_and_marked(summaries: list[EpisodeSummary]) -> None:
    rows = {g.group: g for g in agency_stats(summaries, by="clinician")}
    assert "T06" in rows  # a clinician with a handful of episodes is still listed
    assert rows["T06"].small and rows["T06"].n_episodes < 10
    assert not rows["T01"].small and not rows["all"].small
    rows = {g.group: g for g in agency_stats(summaries, by="clinician", min_n=10_000)}
    assert all(g.small for g in rows.values())


def test_rates_are_plausible_for_a_realistic_clinic(summaries: list[EpisodeSummary]) -> None:
    total = agency_stats(summaries)[0]
    assert total.effect_size is not None and 0.4 < total.effect_size < 1.2
    assert total.effect_size_ci_low < total.effect_size < total.effect_size_ci_high  # type: ignore[operator]
    pcts = [total.pct_recovered, total.pct_improved, total.pct_no_change, total.pct_deteriorated]
    assert sum(pcts) == pytest.approx(100)  # type: ignore[arg-type]


def test_as_dict_is_json_ready(summaries: list[EpisodeSummary]) -> None:
    rows = agency_stats(summaries, by="site")
    text = json.dumps([r.as_dict(3) for r in rows])
    back = json.loads(text)
    assert back[0]["group"] == "all" and back[0]["by"] == "all"
    assert {r["group"] for r in back[1:]} == {"north", "south", "(none)"}
    assert back[0]["pct_recovered"] == round(rows[0].pct_recovered, 3)  # type: ignore[arg-type]


# --- hand-checked cases -----------------------------------------------------------------------


def test_hand_checked_classes_and_target() -> None:
    rows = agency_stats(
        [
            summary(client_key=1, intake_ors=18.0, last_ors=26.0),  # +8, crosses 25: recovered
            summary(client_key=2, intake_ors=15.0, last_ors=20.0),  # +5 exactly: improved
            summary(client_key=3, intake_ors=24.9, last_ors=29.9),  # +5, crosses: recovered
            summary(client_key=4, intake_ors=25.0, last_ors=32.0),  # at the cutoff: improved
            summary(client_key=5, intake_ors=20.0, last_ors=24.9),  # +4.9: no reliable change
            summary(client_key=6, intake_ors=20.0, last_ors=15.0),  # -5: deteriorated
            summary(client_key=7, intake_ors=20.0, last_ors=None, n_ors=1),  # intake only
            summary(client_key=8, intake_ors=20.0, last_ors=21.0, reached_target=True),
        ]
    )
    g = rows[0]
    assert g.n_outcome == 7
    assert (g.n_recovered, g.n_improved, g.n_no_change, g.n_deteriorated) == (2, 2, 2, 1)
    assert g.n_nonclinical_intake == 1
    assert g.n_reached_target == 5  # 4 with Δ ≥ 5, and client 8 by the caller's verdict
    assert g.pct_recovered == pytest.approx(200 / 7)
    assert g.mean_intake_ors == pytest.approx((18 + 15 + 24.9 + 25 + 20 * 4) / 8)


def test_intake_at_or_above_the_cutoff_is_never_recovered() -> None:
    cases = [summary(client_key=i, intake_ors=25.0 + i, last_ors=35.0 + i) for i in range(5)]
    g = agency_stats(cases)[0]
    assert g.n_recovered == 0 and g.n_improved == 5
    # with the boundary setting "at_or_below", exactly 25 counts as clinical and can recover
    g = agency_stats(cases, clinical_comparison="at_or_below")[0]
    assert g.n_recovered == 1 and g.n_improved == 4


def test_hand_checked_effect_sizes() -> None:
    cases = [
        summary(client_key=1, intake_ors=10.0, last_ors=15.0, expected_last=14.0),
        summary(client_key=2, intake_ors=20.0, last_ors=24.0, expected_last=23.0),
        summary(client_key=3, intake_ors=30.0, last_ors=38.0, expected_last=30.0),  # not clinical
    ]
    g = agency_stats(cases)[0]
    assert g.effect_size == pytest.approx((17 / 3) / 10.0)  # mean change 17/3, SD(intake) 10
    assert g.effect_size_ci_low is not None and g.effect_size_ci_high is not None
    # severity-adjusted: clients 1 and 2 only; gains 1 and 1; SD of their intakes √50
    assert g.n_severity_adjusted == 2
    assert g.severity_adjusted_effect_size == pytest.approx(1 / 50**0.5)
    g = agency_stats(cases, sd_reference=6.8)[0]
    assert g.severity_adjusted_effect_size == pytest.approx(1 / 6.8)


def test_without_a_model_there_is_no_severity_adjusted_effect_size() -> None:
    g = agency_stats([summary(client_key=i, intake_ors=10.0 + i) for i in range(5)])[0]
    assert g.severity_adjusted_effect_size is None and g.n_severity_adjusted == 0
    assert g.effect_size is not None


def test_empty_and_tiny_inputs() -> None:
    g = agency_stats([])[0]
    assert g.n_episodes == 0 and g.small
    assert g.effect_size is None and g.pct_recovered is None and g.mean_sessions is None
    g = agency_stats([summary()])[0]
    assert g.effect_size is None and g.pct_recovered == 100.0
    same = [summary(client_key=i, intake_ors=20.0, last_ors=20.0 + i) for i in range(3)]
    assert agency_stats(same)[0].effect_size is None  # no SD of intake to standardise by


def test_collateral_raters_are_counted_but_not_mixed_into_outcomes() -> None:
    cases = [
        summary(client_key=1, rater="client", intake_ors=20.0, last_ors=26.0, n_sessions=4),
        summary(client_key=1, rater="parent", intake_ors=10.0, last_ors=5.0, n_sessions=6),
        summary(client_key=2, episode_id="e9", rater="parent", intake_ors=12.0, last_ors=20.0),
    ]
    g = agency_stats(cases)[0]
    assert (g.n_clients, g.n_episodes, g.n_rated_episodes, g.n_collateral) == (2, 2, 3, 2)
    assert g.n_outcome == 1 and g.n_recovered == 1 and g.n_deteriorated == 0
    assert g.mean_sessions == pytest.approx((6 + 6) / 2)  # per episode: the most sessions
    g = agency_stats(cases, outcome_rater="parent")[0]
    assert g.n_outcome == 2 and g.n_deteriorated == 1 and g.n_improved == 1
    g = agency_stats(cases, outcome_rater=None)[0]
    assert g.n_outcome == 3


def test_endings_and_dropout_by_target() -> None:
    cases = [
        summary(client_key=1, ended=True, planned_ending=True, last_ors=25.0),  # +7: reached
        summary(client_key=2, ended=True, planned_ending=False, last_ors=19.0),  # +1: not
        summary(client_key=3, ended=True, planned_ending=False, last_ors=24.0),  # +6: reached
        summary(client_key=4, ended=True, planned_ending=None),
        summary(client_key=5, ended=False),
    ]
    g = agency_stats(cases)[0]
    assert (g.n_ended, g.n_planned, g.n_unplanned, g.n_ending_unknown) == (4, 1, 2, 1)
    assert g.pct_planned == pytest.approx(100 / 3) and g.pct_unplanned == pytest.approx(200 / 3)
    assert g.endings_by_target["unplanned"] == {"reached": 1, "not_reached": 1, "unknown": 0}
    assert g.endings_by_target["planned"]["reached"] == 1
    assert agency_stats(cases, ended_only=True)[0].n_outcome == 4


def test_month_groups_use_the_episode_start() -> None:
    cases = [
        summary(client_key=1, first_date=dt.date(2025, 1, 31), last_date=dt.date(2025, 3, 2)),
        summary(
            client_key=1,
            rater="parent",
            first_date=dt.date(2025, 2, 1),
            last_date=dt.date(2025, 3, 9),
        ),
        summary(client_key=2, first_date=dt.date(2025, 2, 3), last_date=dt.date(2025, 2, 3)),
    ]
    rows = {g.group: g for g in agency_stats(cases, by="month")}
    assert set(rows) == {"all", "2025-01", "2025-02"}
    assert rows["2025-01"].n_rated_episodes == 2  # the parent's series goes with its episode
    assert rows["2025-01"].mean_days == 37 and rows["2025-02"].mean_days == 0


def test_missing_clinician_and_bad_arguments() -> None:
    mixed = [summary(clinician_id=None), summary(client_key=2, clinician_id="T1")]
    rows = agency_stats(mixed, by="clinician")
    assert [r.group for r in rows] == ["all", "(none)", "T1"]
    # nobody has a site: a "(none)" group would only repeat "all", so there is none
    rows = agency_stats([summary(site=None), summary(client_key=2, site=None)], by="site")
    assert [r.group for r in rows] == ["all"]
    with pytest.raises(ValueError, match="by must be"):
        agency_stats([], by="therapist")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sd_reference"):
        agency_stats([], sd_reference=0)


def test_group_stats_is_frozen() -> None:
    g = agency_stats([summary()])[0]
    assert isinstance(g, GroupStats)
    with pytest.raises(AttributeError):
        g.n_episodes = 3  # type: ignore[misc]


def test_residual_change_index_compares_groups_with_the_same_intakes() -> None:
    # the agency's line through (10 → 15) and (20 → 25): T1 changes 3 points more, T2 3 less
    cases = [
        summary(client_key=1, clinician_id="T1", intake_ors=10.0, last_ors=18.0),
        summary(client_key=2, clinician_id="T1", intake_ors=20.0, last_ors=28.0),
        summary(client_key=3, clinician_id="T2", intake_ors=10.0, last_ors=12.0),
        summary(client_key=4, clinician_id="T2", intake_ors=20.0, last_ors=22.0),
    ]
    rows = {g.group: g for g in agency_stats(cases, by="clinician")}
    sd = float(np.std([10, 20, 10, 20], ddof=1))
    assert rows["all"].residual_change == pytest.approx(0.0, abs=1e-12)
    assert rows["T1"].residual_change == pytest.approx(3.0)
    assert rows["T2"].residual_change == pytest.approx(-3.0)
    assert rows["T1"].residual_index == pytest.approx(3.0 / sd)
    assert rows["T1"].n_residual == 2
    # both T1 residuals are +3: no spread, so the interval is the point
    assert rows["T1"].residual_change_ci_low == pytest.approx(3.0)
    assert agency_stats(cases[:2])[0].residual_change is None  # fewer than 3: no line


def test_collateral_raters_keep_their_own_aggregates() -> None:
    cases = [
        summary(client_key=1, intake_ors=18.0, last_ors=25.0),
        summary(client_key=1, rater="parent", intake_ors=20.0, last_ors=14.0),
        summary(client_key=2, intake_ors=16.0, last_ors=17.0),
        summary(client_key=2, rater="parent", intake_ors=22.0, last_ors=30.0),
    ]
    total = agency_stats(cases)[0]
    assert total.n_outcome == 2 and total.n_deteriorated == 0  # the client's ratings only
    parent = total.collateral["parent"]
    assert parent["n_episodes"] == 2 and parent["n_outcome"] == 2
    assert parent["n_deteriorated"] == 1 and parent["n_reliably_improved"] == 1
    assert parent["mean_intake_ors"] == pytest.approx(21.0)
    assert parent["mean_change"] == pytest.approx(1.0)
    assert "client" not in total.collateral


def test_endings_as_the_data_show_them() -> None:
    cases = [
        summary(client_key=1, ended=True, dropout=True, last_ors=25.0),  # missed the last one
        summary(client_key=2, ended=True, dropout=False, last_ors=19.0),  # attended, +1
        summary(client_key=3, ended=True, last_ors=25.0),  # no attendance data, +7
        summary(client_key=4, ended=True, last_ors=18.5),  # no attendance data, +0.5
        summary(client_key=5, ended=True, n_ors=1, last_ors=None),  # target unknown
        summary(client_key=6, ended=False, last_ors=30.0),  # open
    ]
    g = agency_stats(cases)[0]
    assert g.endings == {"dropout": 1, "reached": 1, "not_reached": 2, "unknown": 1}
    assert (g.n_ended_attendance, g.n_dropout) == (2, 1) and g.pct_dropout == 50.0
    # closed cases reaching target: ended episodes with 2+ ORS only (4 of them, 2 reached)
    assert (g.n_closed_outcome, g.n_closed_reached_target) == (4, 2)
    assert g.pct_closed_reached_target == 50.0
    assert g.n_outcome == 5 and g.outcome_population == "all"
    ended = agency_stats(cases, ended_only=True)[0]
    assert ended.n_outcome == 4 and ended.outcome_population == "ended"
