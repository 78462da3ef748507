"""Every rule id at its boundaries (sessions 3/5/6/9, exactly 25, statuses, dates), through
the public scoring API."""

from __future__ import annotations

import datetime as dt

import pytest

from fit_core.measures import BUILTIN_MEASURES
from fit_core.models import Administration
from fit_core.rules.builtin import BUILTIN_RULES
from fit_core.scoring import Expectation, score_client
from fit_core.settings import Settings

MEASURES = {m.key: m for m in BUILTIN_MEASURES}
DAY0 = dt.date(2026, 2, 2)


def adm(
    key: str,
    week: int,
    measure: str,
    total: float,
    *,
    items=None,
    rater="client",
    age=None,
    days: int | None = None,
) -> Administration:
    day = DAY0 + dt.timedelta(days=7 * week if days is None else days)
    when = dt.datetime.combine(day, dt.time(10), tzinfo=dt.UTC)
    if measure.endswith("SRS"):
        when += dt.timedelta(minutes=50)
    return Administration(
        source="t",
        source_key=key,
        namespace="t",
        client_id="C1",
        measure=measure,
        administered_at=when,
        local_date=day,
        date_only=False,
        total=total,
        items=items,
        rater=rater,
        age=age,
    )


class LineModel:
    """A trajectory model for tests: expected = intake + 2 per session, bands ±2, severe −4."""

    def expect(self, measure: str, intake: float, session: int) -> Expectation | None:
        if measure != "ORS" or session < 2:
            return None
        e = intake + 2 * (session - 1)
        return Expectation(e, e - 2, e + 2, e - 4)


def flags(admins, settings=None, model=None) -> dict[str, set[str]]:
    s = settings or Settings(as_of=DAY0 + dt.timedelta(days=400))
    res = score_client(admins, MEASURES, s, BUILTIN_RULES, model)
    assert not res.rule_failures
    return {x.admin.source_key: {f.rule_id for f in x.flags} for x in res.scored}


def ors_series(totals: list[float]) -> list[Administration]:
    return [adm(f"o{i + 1}", i, "ORS", t) for i, t in enumerate(totals)]


# --- checkpoint and last chance ---------------------------------------------------------------


def test_checkpoint_fires_at_sessions_3_to_5_and_last_chance_at_6_to_9() -> None:
    out = flags(ors_series([15.0] * 10))
    assert [("ors.checkpoint" in out[f"o{k}"]) for k in range(1, 11)] == [
        False,
        False,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        False,
    ]
    assert [("ors.last_chance" in out[f"o{k}"]) for k in range(1, 11)] == [
        False,
        False,
        False,
        False,
        False,
        True,
        True,
        True,
        True,
        False,
    ]


def test_checkpoint_is_quiet_once_change_reaches_the_rc() -> None:
    out = flags(ors_series([15.0, 17.0, 20.0, 19.9]))
    assert "ors.checkpoint" not in out["o3"]  # +5.0 is reliable change
    assert "ors.checkpoint" in out["o4"]  # +4.9 is not


def test_checkpoint_windows_are_settings() -> None:
    out = flags(ors_series([15.0] * 4), Settings(checkpoint_sessions=(2, 2)))
    assert [("ors.checkpoint" in out[f"o{k}"]) for k in range(1, 5)] == [False, True, False, False]


# --- high intake ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "age", "fires"),
    [(25.0, None, True), (24.9, None, False), (27.9, 15, False), (28.0, 15, True)],
)
def test_high_intake_at_the_cutoff(total: float, age: int | None, fires: bool) -> None:
    out = flags([adm("o1", 0, "ORS", total, age=age), adm("o2", 1, "ORS", total, age=age)])
    assert ("ors.high_intake" in out["o1"]) is fires
    assert "ors.high_intake" not in out["o2"]  # only the intake


def test_high_intake_with_at_or_below_comparison() -> None:
    out = flags([adm("o1", 0, "ORS", 25.0)], Settings(clinical_comparison="at_or_below"))
    assert "ors.high_intake" not in out["o1"]


# --- on track / off track -----------------------------------------------------------------------


def test_status_colours_and_not_on_track_rules() -> None:
    # intake 15: expected at session 2 = 17, low 15, severe 13
    admins = [
        adm("o1", 0, "ORS", 15.0),
        adm("o2", 1, "ORS", 15.0),
        adm("o3", 2, "ORS", 15.0),
        adm("o4", 3, "ORS", 15.0),
    ]
    res = score_client(admins, MEASURES, Settings(), BUILTIN_RULES, LineModel())
    by = {x.admin.source_key: x for x in res.scored}
    assert [by[k].score.status for k in ("o1", "o2", "o3", "o4")] == [
        "grey",
        "green",
        "orange",
        "red",
    ]
    assert by["o2"].score.expected == 17 and by["o2"].score.percent_of_expected == 0.0
    ids = {k: {f.rule_id for f in v.flags} for k, v in by.items()}
    assert "ors.not_on_track" in ids["o3"] and "ors.off_track_severe" not in ids["o3"]
    assert "ors.off_track_severe" in ids["o4"] and "ors.not_on_track" not in ids["o4"]
    assert not ids["o2"] & {"ors.not_on_track", "ors.off_track_severe"}
    flag = next(f for f in by["o4"].flags if f.rule_id == "ors.off_track_severe")
    assert flag.inputs["expected_severe"] == 17.0 and flag.inputs["total"] == 15.0  # 21 - 4


def test_without_a_model_there_is_no_status_and_no_on_track_flags() -> None:
    res = score_client(ors_series([15.0, 5.0]), MEASURES, Settings(), BUILTIN_RULES)
    assert all(x.score.status is None for x in res.scored)
    assert not any(
        f.rule_id.startswith("ors.") and "track" in f.rule_id for x in res.scored for f in x.flags
    )


# --- SRS items, missing SRS -------------------------------------------------------------------


def test_low_item_is_opt_in() -> None:
    admins = [adm("s1", 0, "SRS", 37.9, items=(10.0, 10.0, 9.0, 8.9))]
    assert "srs.low_item" not in flags(admins)["s1"]
    out = flags(admins, Settings(enabled_rules=frozenset({"srs.low_item"}), as_of=DAY0))
    assert "srs.low_item" in out["s1"]
    out = flags(
        [adm("s1", 0, "SRS", 38.0, items=(10.0, 10.0, 9.0, 9.0))],
        Settings(enabled_rules=frozenset({"srs.low_item"}), as_of=DAY0),
    )
    assert "srs.low_item" not in out["s1"]


def test_srs_missing_only_once_the_day_is_over() -> None:
    admins = [adm("o1", 0, "ORS", 20.0), adm("s1", 0, "SRS", 38.0), adm("o2", 1, "ORS", 21.0)]
    same_day = Settings(as_of=DAY0 + dt.timedelta(days=7))
    assert "srs.missing" not in flags(admins, same_day)["o2"]
    next_day = Settings(as_of=DAY0 + dt.timedelta(days=8))
    out = flags(admins, next_day)
    assert "srs.missing" in out["o2"] and "srs.missing" not in out["o1"]
    assert "srs.missing" not in flags(admins, Settings())["o2"]  # no "today": date rules quiet


# --- dropout risk ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("days", "fires"), [(29, False), (30, True), (90, True), (91, False)])
def test_dropout_risk_after_dropout_days_while_the_episode_is_open(days: int, fires: bool) -> None:
    admins = [adm("o1", 0, "ORS", 20.0), adm("s1", 0, "SRS", 38.0)]
    out = flags(admins, Settings(as_of=DAY0 + dt.timedelta(days=days)))
    assert ("attendance.dropout_risk" in out["s1"]) is fires  # on the latest administration
    assert "attendance.dropout_risk" not in out["o1"]


def test_review_dates_for_date_rules() -> None:
    admins = [adm("o1", 0, "ORS", 20.0)]
    res = score_client(admins, MEASURES, Settings(as_of=DAY0), BUILTIN_RULES)
    assert res.review_on == DAY0 + dt.timedelta(days=1)  # srs.missing once the day is over
    res = score_client(admins, MEASURES, Settings(as_of=DAY0 + dt.timedelta(days=2)), BUILTIN_RULES)
    assert res.review_on == DAY0 + dt.timedelta(days=30)  # dropout risk
    res = score_client(
        admins, MEASURES, Settings(as_of=DAY0 + dt.timedelta(days=95)), BUILTIN_RULES
    )
    assert res.review_on is None  # the episode has ended


def test_collateral_raters_do_not_raise_dropout_risk() -> None:
    admins = [adm("p1", 0, "ORS", 20.0, rater="parent")]
    out = flags(admins, Settings(as_of=DAY0 + dt.timedelta(days=40)))
    assert "attendance.dropout_risk" not in out["p1"]


def test_every_design_rule_id_is_registered_with_a_version_and_message() -> None:
    ids = {r.id for r in BUILTIN_RULES}
    assert ids >= {
        "ors.reliable_deterioration",
        "ors.not_on_track",
        "ors.off_track_severe",
        "ors.checkpoint",
        "ors.last_chance",
        "ors.high_intake",
        "srs.below_cutoff",
        "srs.drop",
        "srs.low_item",
        "srs.missing",
        "attendance.dropout_risk",
    }
    for r in BUILTIN_RULES:
        assert r.version >= 1 and r.description and r.severity in ("info", "warning", "alert")
