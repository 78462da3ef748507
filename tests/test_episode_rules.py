"""One rule per episode, used by scoring and by the statistics alike: the age band of an episode,
and whose ratings a trajectory model speaks for."""

from __future__ import annotations

import datetime as dt
import io

from fit_core.agency import agency_stats
from fit_core.episodes import episodes_of, summarize
from fit_core.measures import BUILTIN_MEASURES
from fit_core.models import Administration
from fit_core.scoring import Scorer, model_covers, score_client
from fit_core.settings import Settings
from fit_core.trajectories import load_supplied_table

MEASURES = {m.key: m for m in BUILTIN_MEASURES}
AS_OF = dt.date(2026, 9, 1)
SETTINGS = Settings(as_of=AS_OF)
TABLE = "intake,session,expected,lower,upper,severe\n" + "".join(
    f"{i},{k},{i + k},{i + k - 2},{i + k + 2},{i + k - 4}\n" for i in (0, 40) for k in range(2, 9)
)


def adm(
    key: str,
    week: int,
    total: float,
    *,
    age: int | None,
    rater: str = "client",
    measure: str = "ORS",
) -> Administration:
    when = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC) + dt.timedelta(weeks=week)
    return Administration(
        source="t",
        source_key=key,
        namespace="t",
        client_id="C1",
        measure=measure,
        administered_at=when,
        local_date=when.date(),
        date_only=False,
        total=total,
        episode_id="E1",
        rater=rater,
        age=age,
    )


def test_an_episode_keeps_the_age_band_of_its_intake_when_the_client_turns_18() -> None:
    # intake 26.0 at 17 (adolescent cutoff 28: clinical range); at 18 the adult cutoff would be 25
    admins = [adm("a", 0, 26.0, age=17), adm("b", 1, 29.0, age=17), adm("c", 2, 31.5, age=18)]
    scored = score_client(admins, MEASURES, SETTINGS).scored
    assert {s.score.cutoff for s in scored} == {28.0}
    assert {s.score.age_band for s in scored} == {"adolescent"}
    latest = scored[-1].score
    # the intake is not re-tested against 25: it moved out of the clinical range, so recovered
    assert latest.rc_class == "recovered" and latest.clinical is False
    # fit stats classifies the same episode the same way
    (view,) = episodes_of(scored)
    summary = summarize(view, MEASURES, SETTINGS, AS_OF)
    assert summary is not None and summary.ors_cutoff == 28.0 and summary.age_band == "adolescent"
    (all_row,) = agency_stats([summary])
    assert (all_row.n_recovered, all_row.n_improved) == (1, 0)


def test_the_first_stated_age_decides_when_the_intake_has_none() -> None:
    admins = [adm("a", 0, 26.0, age=None), adm("b", 1, 27.0, age=15), adm("c", 2, 31.0, age=None)]
    scored = score_client(admins, MEASURES, SETTINGS).scored
    assert [s.score.cutoff for s in scored] == [28.0, 28.0, 28.0]
    (view,) = episodes_of(scored)
    summary = summarize(view, MEASURES, SETTINGS, AS_OF)
    assert summary is not None and summary.age_band == "adolescent"


def test_a_model_fitted_on_clients_does_not_colour_a_parents_ratings() -> None:
    model = load_supplied_table(io.StringIO(TABLE))
    assert model_covers(model, "ORS", "client") and not model_covers(model, "ORS", "parent")
    admins = [
        adm("c1", 0, 15.0, age=30),
        adm("c2", 1, 10.0, age=30),
        adm("p1", 0, 20.0, age=30, rater="parent"),
        adm("p2", 1, 12.0, age=30, rater="parent"),
    ]
    scored = {
        s.admin.source_key: s.score
        for s in Scorer(MEASURES, SETTINGS, (), model).score(admins).scored
    }
    assert scored["c2"].status == "red" and scored["c2"].expected == 17.0
    assert scored["p2"].status is None and scored["p2"].expected is None
    assert scored["p1"].status is None


def test_a_model_that_names_its_raters_colours_them() -> None:
    class PerRater:
        raters = ("parent",)

        def expect(self, measure: str, intake: float, session: int):
            return load_supplied_table(io.StringIO(TABLE)).expect(measure, intake, session)

    admins = [adm("c1", 0, 15.0, age=30), adm("c2", 1, 10.0, age=30)]
    admins += [
        adm("p1", 0, 20.0, age=30, rater="parent"),
        adm("p2", 1, 12.0, age=30, rater="parent"),
    ]
    scored = {
        s.admin.source_key: s.score
        for s in Scorer(MEASURES, SETTINGS, (), PerRater()).score(admins).scored
    }
    assert scored["c2"].status is None
    assert scored["p2"].status == "red"


def test_messages_name_the_measure_and_whose_rating_it_is() -> None:
    from fit_core.rules.builtin import BUILTIN_RULES

    admins = [
        adm("c1", 0, 33.0, age=9, measure="CORS"),
        adm("p1", 0, 34.0, age=9, measure="CORS", rater="parent"),
        adm("p2", 1, 27.0, age=9, measure="CORS", rater="parent"),
    ]
    scored = score_client(admins, MEASURES, SETTINGS, BUILTIN_RULES).scored
    flags = {(s.admin.source_key, f.rule_id): f.message for s in scored for f in s.flags}
    child = flags[("c1", "ors.high_intake")]
    assert child.startswith("Intake CORS 33.0 is at or above the cutoff 32.0")
    assert "brings the client now" in child
    parent = flags[("p1", "ors.high_intake")]
    assert parent.startswith("The parent's intake CORS 34.0")
    assert "brings the client now" not in parent and "client's own rating" in parent
    worse = flags[("p2", "ors.reliable_deterioration")]
    assert worse.startswith("The parent's CORS has reliably deteriorated")
    assert "with the parent and the client" in worse
