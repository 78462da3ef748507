"""Scoring and the three starting rules, hand-checked at the boundaries, plus properties."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fit_core.measures import BUILTIN_MEASURES
from fit_core.models import Administration, Record
from fit_core.rules.builtin import BUILTIN_RULES
from fit_core.scoring import score_client
from fit_core.settings import Settings
from fit_core.validation import Validator

MEASURES = {m.key: m for m in BUILTIN_MEASURES}
UTC = dt.UTC


def adm(
    key: str,
    day: int,
    measure: str,
    total: float,
    *,
    client: str = "C1",
    rater: str = "client",
    episode: str | None = None,
    age: int | None = None,
    month: int = 1,
) -> Administration:
    when = dt.datetime(2026, month, day, 10, tzinfo=UTC) + (
        dt.timedelta(minutes=50) if measure.endswith("SRS") else dt.timedelta()
    )
    return Administration(
        source="t",
        source_key=key,
        namespace="t",
        client_id=client,
        measure=measure,
        administered_at=when,
        local_date=when.date(),
        date_only=False,
        total=total,
        episode_id=episode,
        rater=rater,
        age=age,
    )


def run(admins: list[Administration], s: Settings | None = None):
    res = score_client(admins, MEASURES, s or Settings(), BUILTIN_RULES)
    return {x.admin.source_key: x for x in res.scored}


def flag_ids(x) -> set[str]:
    return {f.rule_id for f in x.flags}


# --- sessions and episodes -------------------------------------------------------------------


def test_sessions_count_dates_and_ors_srs_same_day_share_a_session() -> None:
    out = run(
        [
            adm("o1", 5, "ORS", 18),
            adm("s1", 5, "SRS", 38),
            adm("o2", 12, "ORS", 20),
            adm("s2", 12, "SRS", 39),
            adm("o3", 19, "ORS", 21),
        ]
    )
    assert [out[k].score.session for k in ("o1", "s1", "o2", "s2", "o3")] == [1, 1, 2, 2, 3]
    assert out["o3"].score.intake == 18 and out["o3"].score.change_from_intake == 3
    assert out["o3"].score.change_from_previous == 1


def test_collateral_rater_has_its_own_trajectory() -> None:
    out = run(
        [
            adm("c1", 5, "ORS", 18),
            adm("p1", 6, "ORS", 30, rater="parent"),
            adm("c2", 12, "ORS", 12),
            adm("p2", 13, "ORS", 29, rater="parent"),
        ]
    )
    assert out["p1"].score.session == 1 and out["p1"].score.rc_class == "intake"
    assert out["p2"].score.intake == 30 and out["p2"].score.session == 2
    assert out["c2"].score.intake == 18 and "ors.reliable_deterioration" in flag_ids(out["c2"])


def test_gap_of_more_than_90_days_starts_a_new_episode() -> None:
    out = run(
        [
            adm("a", 1, "ORS", 15, month=1),
            adm("b", 1, "ORS", 25, month=4),
            adm("c", 2, "ORS", 16, month=4),
        ]
    )
    # Jan 1 → Apr 1 is exactly 90 days: same episode; Apr 2 is after it (gap 1 day)
    assert out["a"].score.episode_id == out["b"].score.episode_id == "auto-2026-01-01"
    out = run([adm("a", 1, "ORS", 15, month=1), adm("b", 2, "ORS", 25, month=4)])
    assert out["b"].score.episode_id == "auto-2026-04-02" and out["b"].score.session == 1


def test_explicit_episode_ids_win() -> None:
    out = run([adm("a", 1, "ORS", 15, episode="E1"), adm("b", 8, "ORS", 25, episode="E2")])
    assert out["b"].score.rc_class == "intake" and out["b"].score.episode_id == "E2"


# --- reliable change and classes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("intake", "last", "cls"),
    [
        (20.0, 25.0, "recovered"),  # +5 exactly, crosses 25 (25 is not clinical by default)
        (20.0, 24.9, "no_reliable_change"),  # +4.9
        (15.0, 20.0, "improved"),  # +5, still below 25
        (26.0, 31.0, "improved"),  # intake above cutoff never "recovers"
        (20.0, 15.0, "deteriorated"),  # -5 exactly
        (20.0, 15.1, "no_reliable_change"),
    ],
)
def test_rc_classes_at_the_boundaries(intake: float, last: float, cls: str) -> None:
    out = run([adm("a", 1, "ORS", intake), adm("b", 8, "ORS", last)])
    assert out["b"].score.rc_class == cls
    assert ("ors.reliable_deterioration" in flag_ids(out["b"])) == (cls == "deteriorated")


def test_exactly_25_is_not_clinical_by_default_but_is_with_at_or_below() -> None:
    assert run([adm("a", 1, "ORS", 25)])["a"].score.clinical is False
    s = Settings(clinical_comparison="at_or_below")
    assert run([adm("a", 1, "ORS", 25)], s)["a"].score.clinical is True
    # and at_or_below changes recovered: 20 → 25 no longer leaves the clinical range
    assert (
        run([adm("a", 1, "ORS", 20), adm("b", 8, "ORS", 25)], s)["b"].score.rc_class == "improved"
    )


def test_adolescent_and_child_cutoffs() -> None:
    assert run([adm("a", 1, "ORS", 27, age=15)])["a"].score.clinical is True  # 28 for 13-17
    assert run([adm("a", 1, "ORS", 27, age=18)])["a"].score.clinical is False  # 25 for adults
    x = run([adm("a", 1, "CORS", 31.9, age=9)])["a"].score
    assert x.clinical is True and x.cutoff == 32 and x.age_band == "child"


def test_configured_reliable_change() -> None:
    s = Settings(ors_reliable_change=7.6)
    out = run([adm("a", 1, "ORS", 20), adm("b", 8, "ORS", 13)], s)
    assert out["b"].score.rc_class == "no_reliable_change"


# --- SRS rules -------------------------------------------------------------------------------


def test_srs_exactly_36_is_not_below_cutoff_and_35_9_is() -> None:
    assert flag_ids(run([adm("s", 1, "SRS", 36.0)])["s"]) == set()
    f = run([adm("s", 1, "SRS", 35.9)])["s"].flags
    assert [x.rule_id for x in f] == ["srs.below_cutoff"]
    assert f[0].inputs["cutoff"] == 36 and f[0].inputs["total"] == 35.9


@pytest.mark.parametrize(("second", "fires"), [(38.0, True), (38.1, False), (37.95, True)])
def test_srs_drop_of_exactly_one_fires_and_0_9_does_not(second: float, fires: bool) -> None:
    out = run([adm("s1", 1, "SRS", 39.0), adm("s2", 8, "SRS", second)])
    assert ("srs.drop" in flag_ids(out["s2"])) is fires


def test_srs_drop_compares_with_the_previous_session_of_the_same_rater() -> None:
    out = run(
        [
            adm("s1", 1, "SRS", 39.0),
            adm("p1", 5, "SRS", 30.0, rater="parent"),
            adm("s2", 8, "SRS", 38.5),
        ]
    )
    assert "srs.drop" not in flag_ids(out["s2"])


def test_rules_can_be_disabled_and_failing_rules_are_reported() -> None:
    s = Settings(disabled_rules=frozenset({"srs.below_cutoff"}))
    assert flag_ids(run([adm("s", 1, "SRS", 20.0)], s)["s"]) == set()

    class Boom:
        id, version, family, description, opt_in = "srs.boom", 1, "SRS", "boom", False

        def evaluate(self, history):
            raise RuntimeError("bug")

    res = score_client([adm("s", 1, "SRS", 20.0)], MEASURES, Settings(), (Boom(), *BUILTIN_RULES))
    assert [f.rule_id for f in res.rule_failures] == ["srs.boom"]
    assert "srs.below_cutoff" in flag_ids(res.scored[0])


def test_flag_messages_say_what_to_discuss_and_carry_numbers() -> None:
    out = run([adm("a", 1, "ORS", 20), adm("b", 8, "ORS", 12.5)])
    (f,) = out["b"].flags
    assert "20.0" in f.message and "12.5" in f.message and "review" in f.message
    assert f.inputs == {
        "intake": 20.0,
        "total": 12.5,
        "change_from_intake": -7.5,
        "reliable_change": 5.0,
        "session": 2,
    }


# --- validation ------------------------------------------------------------------------------

V = Validator(MEASURES, "UTC", source="t")


def check(**data: object):
    base = {"client_id": "C1", "administered_at": "2026-01-05", "measure": "ORS"}
    return V.validate(Record("k", {**base, **data}))


def test_zero_is_a_score_and_empty_is_missing() -> None:
    a = check(q1="0", q2="0", q3="0", q4="0")
    assert isinstance(a, Administration) and a.total == 0.0
    assert check(q1="0", q2="", q3="0", q4="0") == {
        "q2": "missing: give all four items, or the total alone"
    }
    assert check(total="0").total == 0.0
    assert "total" in check()


def test_validation_errors_name_fields_not_values() -> None:
    e = check(q1="10.1", q2="5", q3="5", q4="5")
    assert set(e) == {"q1"} and "10.1" not in e["q1"]
    assert set(check(q1="x7", q2="5", q3="5", q4="5")) == {"q1"}
    assert set(check(q1="5", q2="5", q3="5", q4="5", total="20.06")) == {"total"}
    assert isinstance(check(q1="5", q2="5", q3="5", q4="5", total="20.05"), Administration)
    assert set(check(measure="PHQ")) == {"measure"}
    assert set(check(total="41")) == {"total"}
    assert set(check(total="5", administered_at="05/01/2026")) == {"administered_at"}
    assert set(check(client_id=" ", total="5")) == {"client_id"}


def test_decimal_comma_and_scales() -> None:
    a = check(q1="7,5", q2="5", q3="5", q4="5")
    assert a.items == (7.5, 5.0, 5.0, 5.0) and a.total == 22.5
    b = V.validate(
        Record(
            "k",
            {
                "client_id": "C",
                "administered_at": "2026-01-05",
                "measure": "SRS",
                "q1": "95",
                "q2": "100",
                "q3": "87",
                "q4": "90",
            },
            scale="percent",
        )
    )
    assert b.items == (9.5, 10.0, 8.7, 9.0) and b.total == 37.2
    c = V.validate(
        Record(
            "k",
            {
                "client_id": "C",
                "administered_at": "2026-01-05",
                "measure": "SRS",
                "q1": "101",
                "q2": "100",
                "q3": "87",
                "q4": "90",
            },
            scale="mm",
        )
    )
    assert set(c) == {"q1"}


def test_date_only_is_a_clinic_local_date() -> None:
    v = Validator(MEASURES, "America/Chicago", source="t")
    a = v.validate(
        Record(
            "k",
            {"client_id": "C", "administered_at": "2026-01-05", "measure": "ORS", "total": "20"},
        )
    )
    assert a.local_date == dt.date(2026, 1, 5) and a.administered_at.hour == 6
    b = v.validate(
        Record(
            "k",
            {
                "client_id": "C",
                "administered_at": "2026-01-05T23:30:00Z",
                "measure": "ORS",
                "total": "20",
            },
        )
    )
    assert b.local_date == dt.date(2026, 1, 5)  # 17:30 in Chicago


# --- properties ------------------------------------------------------------------------------

item = st.integers(min_value=0, max_value=100).map(lambda i: i / 10)


@settings(max_examples=200, deadline=None)
@given(st.tuples(item, item, item, item))
def test_total_is_the_sum_of_items_to_one_decimal(items: tuple[float, ...]) -> None:
    a = check(q1=str(items[0]), q2=str(items[1]), q3=str(items[2]), q4=str(items[3]))
    assert isinstance(a, Administration)
    assert abs(a.total - sum(items)) < 0.05 and 0 <= a.total <= 40
    assert round(a.total, 1) == a.total


totals = st.integers(min_value=0, max_value=400).map(lambda i: i / 10)


@settings(max_examples=100, deadline=None)
@given(st.lists(totals, min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_scores_do_not_depend_on_input_order(series: list[float], rnd) -> None:
    admins = [adm(f"k{i}", 1 + i, "ORS" if i % 2 == 0 else "SRS", t) for i, t in enumerate(series)]
    shuffled = admins[:]
    rnd.shuffle(shuffled)
    a, b = run(admins), run(shuffled)
    assert {k: (v.score, flag_ids(v)) for k, v in a.items()} == {
        k: (v.score, flag_ids(v)) for k, v in b.items()
    }


@settings(max_examples=100, deadline=None)
@given(st.lists(totals, min_size=2, max_size=12))
def test_rc_class_agrees_with_change_from_intake(series: list[float]) -> None:
    out = run([adm(f"k{i}", 1 + i, "ORS", t) for i, t in enumerate(series)])
    for k, v in out.items():
        s = v.score
        if k == "k0":
            assert s.rc_class == "intake"
            continue
        assert s.change_from_intake == pytest.approx(s.total - series[0], abs=1e-6)
        if s.change_from_intake <= -5:
            assert s.rc_class == "deteriorated" and "ors.reliable_deterioration" in flag_ids(v)
        elif s.change_from_intake >= 5:
            assert s.rc_class in ("recovered", "improved")
        else:
            assert s.rc_class == "no_reliable_change"
