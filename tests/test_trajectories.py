"""fit_core.trajectories: clinic-fitted model, supplied tables, percent of expected change."""

from __future__ import annotations

import datetime as dt
import io
import json
import pickle
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fit_core.measures import BUILTIN_MEASURES
from fit_core.models import Administration
from fit_core.scoring import Expectation, TrajectoryModel, score_client
from fit_core.settings import Settings
from fit_core.trajectories import (
    ClinicModel,
    EpisodeSeries,
    InsufficientData,
    SuppliedTable,
    SuppliedTableError,
    fit_clinic_model,
    load_supplied_table,
    model_from_dict,
    percent_of_expected_change,
)


def true_a(k: int) -> float:
    return 4 + 0.8 * k


def true_b(k: int) -> float:
    return 0.9 - 0.02 * k


def synthetic_episodes(n: int, seed: int = 42, *, max_len: int = 12) -> list[EpisodeSeries]:
    """Closed episodes whose session-k totals are a_k + b_k·intake + N(0, 2.5)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        intake = round(rng.uniform(4, 36), 1)
        length = rng.randint(2, max_len)
        totals = {
            k: true_a(k) + true_b(k) * intake + rng.gauss(0, 2.5) for k in range(2, length + 1)
        }
        out.append(EpisodeSeries(intake, totals))
    return out


@pytest.fixture(scope="module")
def episodes() -> list[EpisodeSeries]:
    return synthetic_episodes(4000)


@pytest.fixture(scope="module")
def model(episodes: list[EpisodeSeries]) -> ClinicModel:
    return fit_clinic_model(episodes, version="3", fitted_at="2026-01-05T10:00:00Z")


# --- fitting ----------------------------------------------------------------------------------


def test_recovers_known_coefficients(model: ClinicModel) -> None:
    assert sorted(model.sessions) == list(range(2, 11))
    for k, fit in model.sessions.items():
        # SE(b) ≈ 2.5 / (9.2·√n) < 0.01 and SE(a) < 0.25 for n > 1000: generous tolerances
        assert fit.n > 1000
        assert fit.b == pytest.approx(true_b(k), abs=0.03), k
        assert fit.a == pytest.approx(true_a(k), abs=0.7), k
        assert fit.resid_sd == pytest.approx(2.5, abs=0.2)
        # N(0, 2.5): P10 ≈ -3.20, P25 ≈ -1.69, P75 ≈ +1.69
        assert fit.resid_severe == pytest.approx(-3.20, abs=0.35)
        assert fit.resid_low == pytest.approx(-1.69, abs=0.3)
        assert fit.resid_high == pytest.approx(1.69, abs=0.3)
    assert model.n_episodes == 4000
    assert model.version == "3" and model.fitted_at == "2026-01-05T10:00:00Z"


def test_matches_numpy_independently(episodes: list[EpisodeSeries], model: ClinicModel) -> None:
    for k, fit in model.sessions.items():
        x = np.array([e.intake for e in episodes if k in e.totals_by_session])
        y = np.array([e.totals_by_session[k] for e in episodes if k in e.totals_by_session])
        b, a = np.polyfit(x, y, 1)
        resid = y - (a + b * x)
        assert fit.n == len(x)
        assert fit.a == pytest.approx(a, abs=1e-9)
        assert fit.b == pytest.approx(b, abs=1e-10)
        assert fit.resid_low == pytest.approx(np.percentile(resid, 25), abs=1e-9)
        assert fit.resid_high == pytest.approx(np.percentile(resid, 75), abs=1e-9)
        assert fit.resid_severe == pytest.approx(np.percentile(resid, 10), abs=1e-9)
        assert fit.intake_min == x.min() and fit.intake_max == x.max()


def test_expectation_arithmetic(model: ClinicModel) -> None:
    fit = model.sessions[4]
    e = model.expect("ORS", 18.0, 4)
    assert e is not None
    base = fit.a + fit.b * 18.0
    assert e.expected == round(base, 2)
    assert e.low == round(base + fit.resid_low, 2)
    assert e.high == round(base + fit.resid_high, 2)
    assert e.severe == round(base + fit.resid_severe, 2)


@given(st.floats(min_value=0, max_value=40), st.integers(min_value=2, max_value=10))
def test_bands_are_ordered(model: ClinicModel, intake: float, session: int) -> None:
    e = model.expect("ORS", intake, session)
    assert e is not None
    assert e.severe is not None
    assert 0 <= e.severe <= e.low <= e.expected <= e.high <= 40
    if e.high < 40 and e.severe > 0:  # strict away from the clipped ends
        assert e.severe < e.low < e.expected < e.high


def test_expect_none_cases(model: ClinicModel) -> None:
    assert model.expect("ORS", 20, 1) is None  # the intake has no expectation
    assert model.expect("ORS", 20, 11) is None  # beyond max_session
    assert model.expect("CORS", 20, 3) is None  # a measure the model was not fitted for
    assert model.expect("SRS", 20, 3) is None


def test_expectations_are_clipped_to_the_score_range(model: ClinicModel) -> None:
    e = model.expect("ORS", 40.0, 10)
    assert e is not None and e.high <= 40 and e.expected <= 40


def test_several_measures() -> None:
    m = fit_clinic_model(synthetic_episodes(400), min_n=30, measure=("ORS", "CORS"))
    assert m.measures == ("ORS", "CORS")
    assert m.expect("CORS", 20, 3) == m.expect("ORS", 20, 3) is not None


def test_sessions_below_min_n_are_skipped_with_their_n() -> None:
    eps = synthetic_episodes(120, seed=3)  # lengths 2..12: later sessions have fewer episodes
    m = fit_clinic_model(eps, min_n=60)
    counts = {k: sum(k in e.totals_by_session for e in eps) for k in range(2, 11)}
    for k, n in counts.items():
        if n >= 60:
            assert m.sessions[k].n == n
            assert k not in m.skipped
        else:
            assert k not in m.sessions
            assert m.skipped[k].n == n
            assert "60" in m.skipped[k].reason
            assert m.expect("ORS", 20, k) is None
    assert m.skipped  # the test data must exercise both paths
    rows = m.describe()
    assert [r["session"] for r in rows] == list(range(2, 11))
    assert {r["status"] for r in rows} == {"fitted", "skipped"}
    assert all(r["n"] == counts[r["session"]] for r in rows)
    fitted = next(r for r in rows if r["status"] == "fitted")
    assert {"a", "b", "resid_p10", "resid_p25", "resid_p75"} <= set(fitted)
    json.dumps(rows)


def test_refuses_to_fit_below_min_n() -> None:
    eps = synthetic_episodes(25, seed=9)
    with pytest.raises(InsufficientData) as info:
        fit_clinic_model(eps, min_n=30)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.min_n == 30
    assert err.best_n == 25 and err.best_session == 2  # every episode has session 2
    assert "30" in str(err) and "n = 25" in str(err)


def test_refuses_without_any_follow_up() -> None:
    with pytest.raises(InsufficientData) as info:
        fit_clinic_model([EpisodeSeries(20.0, {})] * 50)
    assert info.value.best_n == 0 and info.value.best_session is None
    with pytest.raises(InsufficientData):
        fit_clinic_model([])


def test_constant_intakes_are_skipped_with_a_reason() -> None:
    eps = [EpisodeSeries(20.0, {2: 20.0 + i % 5}) for i in range(40)]
    with pytest.raises(InsufficientData, match="same intake"):
        fit_clinic_model(eps, min_n=30)
    eps += [EpisodeSeries(10.0 + i % 7, {3: 15.0 + i % 3}) for i in range(40)]
    m = fit_clinic_model(eps, min_n=30, max_session=3)
    assert list(m.sessions) == [3]
    assert "same" in m.skipped[2].reason


def test_accepts_session_pairs() -> None:
    eps = synthetic_episodes(300, seed=8)
    pairs = [[(1, e.intake), *sorted(e.totals_by_session.items())] for e in eps]
    assert fit_clinic_model(pairs) == fit_clinic_model(eps)
    maps = [{1: e.intake, **e.totals_by_session} for e in eps]
    assert fit_clinic_model(maps) == fit_clinic_model(eps)


@pytest.mark.parametrize(
    ("episode", "message"),
    [
        ([(2, 20.0)], "intake"),
        ([(1, 20.0), (2, 21.0), (2, 22.0)], "twice"),
        ([(1, 20.0), (0, 21.0)], "whole numbers"),
        ([(1, 20.0), (2, float("nan"))], "finite"),
        ([(1, "20"), (2, 21.0)], "finite number"),
    ],
)
def test_bad_episodes_are_named(episode: list[tuple[int, float]], message: str) -> None:
    good = [[(1, 20.0), (2, 22.0)]] * 3
    with pytest.raises(ValueError, match=message) as info:
        fit_clinic_model([*good, episode])
    assert "episode 3" in str(info.value)


def test_episode_series_checks_session_one() -> None:
    with pytest.raises(ValueError, match="differs"):
        EpisodeSeries(20.0, {1: 21.0, 2: 22.0})
    e = EpisodeSeries(20, {1: 20, 2: 22})
    assert e.intake == 20.0 and e.totals_by_session[2] == 22.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_session": 1},
        {"min_n": 2},
        {"low_pct": 80},
        {"severe_pct": 30},
        {"high_pct": 101},
        {"measure": ()},
    ],
)
def test_bad_parameters(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        fit_clinic_model(synthetic_episodes(50), **kwargs)  # type: ignore[arg-type]


def test_round_trips_through_json(model: ClinicModel) -> None:
    data = json.loads(json.dumps(model.to_dict()))
    assert data["kind"] == "clinic_fitted"
    back = ClinicModel.from_dict(data)
    assert back == model
    assert model_from_dict(data) == model
    for k in (2, 5, 10):
        assert back.expect("ORS", 17.3, k) == model.expect("ORS", 17.3, k)
    assert pickle.loads(pickle.dumps(model)) == model


def test_round_trip_keeps_skipped_sessions() -> None:
    m = fit_clinic_model(synthetic_episodes(120, seed=3), min_n=60, measure="CORS")
    back = ClinicModel.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back == m and back.skipped == m.skipped and back.measures == ("CORS",)


def test_from_dict_rejects_other_things(model: ClinicModel) -> None:
    with pytest.raises(ValueError, match="clinic_fitted"):
        ClinicModel.from_dict({"kind": "supplied_table", "format": 1})
    data = model.to_dict()
    with pytest.raises(ValueError, match="format"):
        ClinicModel.from_dict({**data, "format": 99})
    del data["sessions"][0]["a"]
    with pytest.raises(ValueError, match="not a valid clinic model"):
        ClinicModel.from_dict(data)
    with pytest.raises(ValueError, match="unknown trajectory model kind"):
        model_from_dict({"kind": "proprietary"})


def test_plugs_into_score_client(model: ClinicModel) -> None:
    """The model drives status colours through scoring's TrajectoryModel protocol."""
    m: TrajectoryModel = model
    measures = {x.key: x for x in BUILTIN_MEASURES}
    e2, e3, e4 = (model.expect("ORS", 15.0, k) for k in (2, 3, 4))
    assert e2 and e3 and e4 and e3.severe is not None and e4.severe is not None
    assert e3.severe < e3.low - 0.5
    totals = [15.0, e2.expected, e3.low - 0.5, e4.severe - 1]
    admins = [
        Administration(
            source="t",
            source_key=f"k{i}",
            namespace="t",
            client_id="c1",
            measure="ORS",
            administered_at=dt.datetime(2025, 1, 6 + 7 * i, 12, tzinfo=dt.UTC),
            local_date=dt.date(2025, 1, 6 + 7 * i),
            date_only=True,
            total=t,
            episode_id="e1",
        )
        for i, t in enumerate(totals)
    ]
    result = score_client(admins, measures, Settings(), model=m)
    by_session = {s.score.session: s.score for s in result.scored}
    assert [by_session[k].status for k in (1, 2, 3, 4)] == ["grey", "green", "orange", "red"]
    assert by_session[2].expected == e2.expected
    assert by_session[4].expected_severe == e4.severe


# --- supplied table ---------------------------------------------------------------------------

TABLE = """Intake, Session ,EXPECTED,lower,upper,severe
10,2,14,12,16,10
20,2,23,21,25,19
30,2,31,29,33,27
10,3,16,14,18,12
20,3,25,23,27,21
"""


def test_supplied_table_interpolates_within_a_session() -> None:
    t = load_supplied_table(io.StringIO(TABLE))
    assert t.sessions == (2, 3)
    assert t.expect("ORS", 20, 2) == Expectation(23, 21, 25, 19)
    assert t.expect("ORS", 15, 2) == Expectation(18.5, 16.5, 20.5, 14.5)
    assert t.expect("ORS", 22.5, 2) == Expectation(25.0, 23.0, 27.0, 21.0)
    assert t.expect("ORS", 12.5, 3) == Expectation(18.25, 16.25, 20.25, 14.25)


def test_supplied_table_clamps_outside_the_intake_range() -> None:
    t = load_supplied_table(io.StringIO(TABLE))
    assert t.expect("ORS", 2, 2) == Expectation(14, 12, 16, 10)
    assert t.expect("ORS", 38, 2) == Expectation(31, 29, 33, 27)
    assert t.intake_range(3) == (10, 20)


def test_supplied_table_none_outside_its_sessions_and_measures() -> None:
    t = load_supplied_table(io.StringIO(TABLE))
    assert t.expect("ORS", 20, 4) is None
    assert t.expect("ORS", 20, 1) is None
    assert t.expect("CORS", 20, 2) is None
    t2 = load_supplied_table(io.StringIO(TABLE), measures=("ORS", "CORS"))
    assert t2.expect("CORS", 20, 2) == Expectation(23, 21, 25, 19)


def test_supplied_table_without_severe(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "etr.csv"
    path.write_text(
        "\ufeffsession,intake,expected,lower,upper,note\n2,20,23,21,25,x\n\n3,20,24,22,26,\n"
    )
    t = load_supplied_table(path)
    assert t.name == "etr.csv"
    assert t.expect("ORS", 20, 3) == Expectation(24, 22, 26, None)
    assert t.describe() == [
        {"session": 2, "rows": 1, "intake_min": 20, "intake_max": 20, "severe": False},
        {"session": 3, "rows": 1, "intake_min": 20, "intake_max": 20, "severe": False},
    ]


def test_supplied_table_round_trips() -> None:
    t = load_supplied_table(io.StringIO(TABLE), name="licensed")
    data = json.loads(json.dumps(t.to_dict()))
    back = SuppliedTable.from_dict(data)
    assert back == t and model_from_dict(data) == t
    assert back.expect("ORS", 15, 2) == t.expect("ORS", 15, 2)
    assert pickle.loads(pickle.dumps(t)).expect("ORS", 15, 2) == t.expect("ORS", 15, 2)


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("intake,session,expected,lower\n20,2,23,21\n", 1, None, "missing column"),
        ("", 1, None, "empty"),
        ("intake,session,expected,lower,upper\n", 1, None, "no rows"),
        (
            "intake,session,expected,lower,upper\n20,2,23,21,25\n20,2,x,21,25\n",
            3,
            "expected",
            "not a number",
        ),
        ("intake,session,expected,lower,upper\n20,2.5,23,21,25\n", 2, "session", "whole"),
        ("intake,session,expected,lower,upper\n20,0,23,21,25\n", 2, "session", "1 or more"),
        ("intake,session,expected,lower,upper\n20,2,,21,25\n", 2, "expected", "empty"),
        ("intake,session,expected,lower,upper\n20,2,23,24,25\n", 2, "lower", "lower <="),
        ("intake,session,expected,lower,upper\n20,2,23,21,22\n", 2, "upper", "lower <="),
        ("intake,session,expected,lower,upper,severe\n20,2,23,21,25,22\n", 2, "severe", "severe"),
        ("intake,session,expected,lower,upper,severe\n20,2,23,21,25,\n", 2, "severe", "empty"),
        ("intake,session,expected,lower,upper\n20,2,23,21\n", 2, "upper", "too short"),
        ("intake,session,expected,lower,upper\n20,2,23,21,inf\n", 2, "upper", "finite"),
        (
            "intake,session,expected,lower,upper\n20,2,23,21,25\n20.0,2,23,21,25\n",
            3,
            "intake",
            "line 2",
        ),
        ("intake,Intake,session,expected,lower,upper\n", 1, "intake", "twice"),
    ],
)
def test_supplied_table_errors_name_line_and_column(
    text: str, line: int, column: str | None, message: str
) -> None:
    with pytest.raises(SuppliedTableError, match=message) as info:
        load_supplied_table(io.StringIO(text))
    err = info.value
    assert err.line == line
    assert err.column == column
    assert f"line {line}" in str(err)
    if column:
        assert repr(column) in str(err)


# --- percent of expected change ---------------------------------------------------------------


def test_percent_of_expected_change() -> None:
    assert percent_of_expected_change(15, 20, 25) == 50.0
    assert percent_of_expected_change(15, 25, 25) == 100.0
    assert percent_of_expected_change(15, 10, 25) == -50.0
    assert percent_of_expected_change(15, 30, 25) == 150.0
    assert percent_of_expected_change(20, 22, 20) is None
    assert percent_of_expected_change(30, 28, 26) == 50.0  # expected a fall, half of it happened


@given(
    st.floats(min_value=0, max_value=40),
    st.floats(min_value=0, max_value=40),
    st.floats(min_value=0, max_value=40),
)
def test_percent_of_expected_change_properties(intake: float, total: float, exp: float) -> None:
    p = percent_of_expected_change(intake, total, exp)
    if abs(exp - intake) < 1e-9:
        assert p is None
    else:
        assert p is not None
        assert intake + p / 100 * (exp - intake) == pytest.approx(total, abs=1e-6)
