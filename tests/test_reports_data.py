"""Report data preparation: which points, lines, cutoffs, bands and flags go on a page.

Pure functions over hand-made administrations; nothing is drawn here.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Sequence

import pytest

from fit_core.agency import EpisodeSummary
from fit_core.measures import BUILTIN_MEASURES
from fit_core.models import Administration, Record, Scored
from fit_core.reports.client_data import FlagRecord, client_pages, flags_from_scored
from fit_core.reports.client_view import client_cards, client_table, session_ranges
from fit_core.reports.clinic_data import clinic_data, outcome_changes
from fit_core.reports.clinic_view import clinic_tables
from fit_core.reports.legend import chart_legend
from fit_core.rules.builtin import BUILTIN_RULES
from fit_core.scoring import score_client
from fit_core.settings import Settings
from fit_core.trajectories import load_supplied_table
from fit_core.validation import Validator

MEASURES = {m.key: m for m in BUILTIN_MEASURES}
AS_OF = dt.date(2026, 3, 1)
SETTINGS = Settings(as_of=AS_OF)


def admins(rows: Sequence[dict[str, str]]) -> list[Administration]:
    v = Validator(MEASURES, "UTC", source="t")
    out = []
    for i, row in enumerate(rows):
        a = v.validate(Record(source_key=f"k{i}", data=row))
        assert isinstance(a, Administration), a
        out.append(a)
    return out


def row(day: int, measure: str, total: float, **extra: str) -> dict[str, str]:
    base = {
        "client_id": "C1",
        "administered_at": (dt.date(2026, 1, 5) + dt.timedelta(days=7 * day)).isoformat(),
        "measure": measure,
        "total": str(total),
        "age": "30",
        "clinician_id": "T1",
        "episode_id": "C1-E1",
    }
    base.update(extra)
    return base


# client: ORS 18 → 12 (reliable deterioration) → 13 → 24; SRS 35 (below 36) → 38 → 36.5 → 39
# parent: ORS 20 → 21 at sessions 1-2
ROWS = [
    row(0, "ORS", 18),
    row(0, "SRS", 35),
    row(0, "ORS", 20, rater="parent"),
    row(1, "ORS", 12),
    row(1, "SRS", 38),
    row(1, "ORS", 21, rater="parent"),
    row(2, "ORS", 13),
    row(2, "SRS", 36.5),
    row(3, "ORS", 24),
    row(3, "SRS", 39),
]

TABLE = "intake,session,expected,lower,upper,severe\n" + "".join(
    f"{i},{k},{i + 2 * k},{i + 2 * k - 3},{i + 2 * k + 3},{i + 2 * k - 6}\n"
    for i in (0, 20, 40)
    for k in range(2, 9)
)


def scored(rows: Sequence[dict[str, str]] = ROWS, model: object = None) -> list[Scored]:
    return list(score_client(admins(rows), MEASURES, SETTINGS, BUILTIN_RULES, model).scored)  # type: ignore[arg-type]


def test_one_page_per_episode_with_raters_as_separate_lines() -> None:
    (page,) = client_pages(scored(), MEASURES, SETTINGS)
    assert page.client_label == "C1" and page.episode_label == "C1-E1"
    assert page.sessions == (1, 2, 3, 4) and page.clinician_id == "T1"
    ors = page.ors
    assert ors is not None
    assert [line.label for line in ors.lines] == ["Client (ORS)", "Parent (ORS)"]
    client, parent = ors.lines
    assert client.primary and not parent.primary
    assert [(p.session, p.total) for p in client.points] == [(1, 18), (2, 12), (3, 13), (4, 24)]
    assert [(p.session, p.total) for p in parent.points] == [(1, 20), (2, 21)]
    assert page.intake is not None and page.intake.total == 18
    assert page.latest is not None and page.latest.total == 24


def test_cutoff_is_age_band_specific_and_rc_zone_is_intake_plus_minus_rc() -> None:
    (adult,) = client_pages(scored(), MEASURES, SETTINGS)
    assert adult.ors is not None
    assert [(c.value, c.band) for c in adult.ors.cutoffs] == [(25.0, "adult")]
    assert adult.ors.cutoffs[0].label == "Clinical cutoff 25 (adult)"
    assert adult.ors.rc == 5.0 and adult.ors.rc_zone == (13.0, 23.0)
    teen_rows = [{**r, "age": "15"} for r in ROWS]
    (teen,) = client_pages(scored(teen_rows), MEASURES, SETTINGS)
    assert teen.ors is not None and [c.value for c in teen.ors.cutoffs] == [28.0]
    # the zone is clipped to the scale
    low = [{**r, "total": "2"} if r["measure"] == "ORS" else r for r in ROWS]
    (page,) = client_pages(scored(low), MEASURES, SETTINGS)
    assert page.ors is not None and page.ors.rc_zone == (0.0, 7.0)


def test_srs_chart_has_the_36_line_and_an_axis_that_shows_every_score() -> None:
    (page,) = client_pages(scored(), MEASURES, SETTINGS)
    srs = page.srs
    assert srs is not None
    assert [c.value for c in srs.cutoffs] == [36.0]
    assert srs.y_min == 30.0 and srs.y_max == 40.0
    low = [*ROWS, row(4, "SRS", 22)]
    (page2,) = client_pages(scored(low), MEASURES, SETTINGS)
    assert page2.srs is not None and page2.srs.y_min <= 22


def test_flags_are_numbered_per_rule_and_marked_on_the_sessions_that_raised_them() -> None:
    # the client stays worse (12, 13, 11) and the alliance low from session 2 on: both alerts
    # hold now, each on the sessions of its unbroken run
    worse = [
        {**r, "total": "11"} if (r["measure"], r["total"]) == ("ORS", "24") else r for r in ROWS
    ]
    worse = [
        {**r, "total": "34"} if r["measure"] == "SRS" and r["total"] != "35" else r for r in worse
    ]
    (page,) = client_pages(scored(worse), MEASURES, SETTINGS)
    by_rule = {g.rule_id: g for g in page.flags}
    assert {"srs.below_cutoff", "ors.reliable_deterioration"} <= set(by_rule)
    det = by_rule["ors.reliable_deterioration"]
    assert det.chart == "ORS" and det.severity == "alert" and det.sessions == (2, 3, 4)
    assert det.notes[0].on_point and "deteriorated" in det.latest.message
    below = by_rule["srs.below_cutoff"]
    assert below.chart == "SRS" and below.sessions == (1, 2, 3, 4)
    # numbers follow the session the rule first fired in
    assert below.number < det.number
    assert page.ors is not None and page.srs is not None
    point = next(p for p in page.ors.lines[0].points if p.session == 2)
    assert det.number in point.flags
    assert below.number in page.srs.lines[0].points[0].flags
    lane = page.ors.flags_by_session()
    assert det.number in [n.number for n in lane[2]]
    assert all(n.chart == "SRS" for notes in page.srs.flags_by_session().values() for n in notes)


def test_alerts_that_no_longer_hold_are_not_on_the_page() -> None:
    # 18 → 12 → 13 → 24: the deterioration of sessions 2-3 was superseded by session 4, the
    # low alliance of session 1 by session 2; neither is an alert now
    (page,) = client_pages(scored(), MEASURES, SETTINGS)
    shown = {g.rule_id for g in page.flags}
    assert not shown & {"ors.reliable_deterioration", "srs.below_cutoff", "srs.drop"}


def test_only_open_and_acknowledged_flags_are_shown() -> None:
    items = scored(ROWS[:2])
    key = (items[0].admin.source, items[0].admin.source_key)
    flags = [
        FlagRecord(*key, "ors.high_intake", "info", "open one", "open"),
        FlagRecord(*key, "ors.checkpoint", "warning", "acknowledged one", "acknowledged"),
        FlagRecord(*key, "ors.last_chance", "alert", "superseded one", "superseded"),
        FlagRecord(*key, "ors.reliable_deterioration", "alert", "closed one", "closed"),
        FlagRecord("t", "unknown-key", "ors.not_on_track", "warning", "elsewhere", "open"),
    ]
    (page,) = client_pages(items, MEASURES, SETTINGS, flags=flags)
    shown = {g.rule_id: g for g in page.flags}
    assert set(shown) == {"ors.high_intake", "ors.checkpoint"}
    assert shown["ors.checkpoint"].acknowledged


def test_no_srs_leaves_out_srs_lines_and_srs_flags() -> None:
    items = scored()
    assert any(f.rule_id.startswith("srs.") for f in flags_from_scored(items))
    (page,) = client_pages(items, MEASURES, SETTINGS, include_srs=False)
    assert page.srs is None and not page.include_srs
    assert page.flags and all(not g.rule_id.startswith("srs.") for g in page.flags)
    table = client_table(page)
    assert not any("SRS" in c for c in table.columns)
    assert not any("SRS" in card.label for card in client_cards(page))


def test_expected_band_from_the_model_with_projection_and_status() -> None:
    model = load_supplied_table(io.StringIO(TABLE))
    items = scored(model=model)
    (page,) = client_pages(items, MEASURES, SETTINGS, model=model)
    ors = page.ors
    assert ors is not None
    seen = [b for b in ors.band if not b.projected]
    ahead = [b for b in ors.band if b.projected]
    assert [b.session for b in seen] == [2, 3, 4]
    assert [b.session for b in ahead] == [5, 6, 7] and ors.x_max == 7
    b2 = seen[0]
    assert (b2.expected, b2.low, b2.high, b2.severe) == (22.0, 19.0, 25.0, 16.0)  # intake 18
    statuses = [p.status for p in ors.lines[0].points]
    assert statuses[0] == "grey" and statuses[1] == "red"  # 12 < severe 16
    assert ors.lines[0].has_status
    assert "supplied table" in page.model_note
    legend = chart_legend(ors)
    labels = [item.label for item in legend]
    assert "Expected range" in labels and "Well off track (below severe line)" in labels
    # status markers are the primary rater's; the parent keeps its own line style and marker,
    # a shape no status uses (squares mean "no expectation", diamonds the intake)
    parent = next(item for item in legend if item.label == "Parent (ORS)")
    assert parent.marker == "^" and not parent.filled
    assert all(p.status is None for p in ors.lines[1].points)  # no model for a parent's ratings
    # without a model there is no band and the note says why
    (plain,) = client_pages(scored(), MEASURES, SETTINGS)
    assert plain.ors is not None and plain.ors.band == ()
    assert "no trajectory model" in plain.model_note


def test_episodes_pseudonymous_labels_and_episode_filter() -> None:
    rows = [*ROWS, *(dict(r, episode_id="C1-E2", administered_at="2026-06-01") for r in ROWS[:2])]
    items = scored(rows)
    pages = client_pages(items, MEASURES, SETTINGS, client_label="P-ABCDE-FGHIJ", pseudonymous=True)
    assert [p.episode_label for p in pages] == ["Episode 1", "Episode 2"]
    assert all(p.client_label == "P-ABCDE-FGHIJ" and p.n_episodes == 2 for p in pages)
    only = client_pages(items, MEASURES, SETTINGS, episode="C1-E2")
    assert [p.episode_id for p in only] == ["C1-E2"] and only[0].episode_number == 2


def test_table_and_cards() -> None:
    (page,) = client_pages(scored(), MEASURES, SETTINGS)
    table = client_table(page)
    assert table.columns[:4] == ("Session", "Date", "Client (ORS)", "Parent (ORS)")
    assert table.rows[1][:4] == ("2", "12 Jan", "12.0", "21.0")
    change = table.columns.index("Change")
    assert table.rows[3][change] == "+6.0" and table.rows[1][change] == "−6.0"
    cards = {c.label: c for c in client_cards(page)}
    assert cards["Intake ORS"].value == "18.0" and cards["Intake ORS"].note == "clinical range"
    assert cards["Change from intake"].note == "reliably improved"
    assert cards["Latest SRS"].value == "39.0"


def test_session_ranges() -> None:
    assert session_ranges([2, 3, 5, 6, 7, 9]) == "2–3, 5–7, 9"
    assert session_ranges([4]) == "4" and session_ranges([]) == ""


def summary(
    client: str, clinician: str, intake: float, last: float, **kw: object
) -> EpisodeSummary:
    base: dict[str, object] = {
        "client_key": ("ns", client),
        "episode_id": f"{client}-E1",
        "clinician_id": clinician,
        "first_date": dt.date(2025, 1, 6),
        "last_date": dt.date(2025, 3, 6),
        "n_sessions": 6,
        "n_ors": 6,
        "ors_cutoff": 25.0,
        "rc": 5.0,
        "intake_ors": intake,
        "last_ors": last,
        "mean_srs": 37.0,
        "ended": True,
    }
    base.update(kw)
    return EpisodeSummary(**base)  # type: ignore[arg-type]


def test_clinic_data_marks_small_groups_and_keeps_the_outcome_population() -> None:
    big = [summary(f"A{i}", "T1", 15.0 + i % 5, 24.0 + i % 7) for i in range(12)]
    small = [summary(f"B{i}", "T2", 18.0 + i, 16.0 + i) for i in range(3)]
    extra = [
        summary("A0", "T1", 10.0, 30.0, rater="parent"),  # collateral: not an outcome
        summary("C0", "T2", 18.0, 18.0, n_ors=1),  # one ORS: no change score
    ]
    data = clinic_data([*big, *small, *extra], by="clinician", as_of=dt.date(2025, 6, 1), min_n=10)
    assert data.overall.group == "all" and [g.group for g in data.groups] == ["T1", "T2"]
    t1, t2 = data.groups
    assert not t1.small and t2.small
    assert len(data.changes) == 15 and data.rc == 5.0
    assert sorted(data.changes_by_group) == ["T1", "T2"]
    assert data.changes_by_group["T2"] == (-2.0, -2.0, -2.0)
    outcomes, effects, alliance, endings, collateral = clinic_tables(data)
    assert [r.name for r in outcomes.rows] == ["All", "T1", "T2"]
    assert [r.small for r in outcomes.rows] == [False, False, True]
    assert outcomes.columns[0] == "Clinician" and "Effect size [95% CI]" in effects.columns
    assert alliance.rows[0].css == "all" and alliance.rows[2].css == "small"
    # T2 has 3 outcome episodes: its effect size is withheld, and says why
    assert effects.rows[2].cells[1] == "withheld (n=3 < 10)"
    assert re.fullmatch(r"\d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\]", effects.rows[1].cells[1])
    assert [r.cells[0] for r in collateral.rows] == ["parent", "parent"]  # All and T1
    assert endings.columns[1:4] == ("Ended", "With attendance data", "Dropout")
    changes, per_group, rc = outcome_changes(small)
    assert changes == [-2.0, -2.0, -2.0] and per_group == {} and rc == 5.0


def test_clinic_data_matches_agency_stats() -> None:
    from fit_core.agency import agency_stats

    items = [summary(f"A{i}", f"T{i % 3}", 12.0 + i % 9, 20.0 + i % 11) for i in range(40)]
    data = clinic_data(items, by="clinician", as_of=dt.date(2025, 6, 1))
    direct = agency_stats(items, by="clinician")
    assert [g.as_dict() for g in data.rows] == [g.as_dict() for g in direct]


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "..."])
def test_safe_names(bad: str) -> None:
    from fit_core.reports.output import safe_name

    name = safe_name(bad)
    assert name and "/" not in name and not name.startswith(".")


def test_values_are_escaped() -> None:
    from fit_core.reports.html import render_client

    (page,) = client_pages(scored(), MEASURES, SETTINGS, client_label="<b>x</b>")
    html = render_client(page, generated=dt.date(2026, 3, 1))
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_reused_figures_draw_exactly_what_fresh_ones_do() -> None:
    from fit_core.reports.charts import FigureCache
    from fit_core.reports.html import render_client

    model = load_supplied_table(io.StringIO(TABLE))
    (busy,) = client_pages(scored(model=model), MEASURES, SETTINGS, model=model)
    short_rows = [{**r, "client_id": "C2"} for r in ROWS[:5]]
    (short,) = client_pages(scored(short_rows), MEASURES, SETTINGS)
    cache = FigureCache()
    render_client(busy, generated=AS_OF, cache=cache)
    reused = render_client(short, generated=AS_OF, cache=cache)
    assert reused == render_client(short, generated=AS_OF)
