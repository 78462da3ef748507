"""Reports that stay clear for long, hard episodes and read right for a supervisor: what goes
on the page, tested without a browser (the browser checks are in test_reports_browser)."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fit_core.agency import EpisodeSummary
from fit_core.demo_cases import DETERIORATING_ORS, deteriorating_client
from fit_core.measures import BUILTIN_MEASURES, copyright_lines
from fit_core.models import Administration, Record, Scored
from fit_core.reports.client_data import ChartData, ClientPage, FlagRun, Line, Point, client_pages
from fit_core.reports.client_view import client_cards, client_table, flag_counts, print_rows
from fit_core.reports.clinic_charts import clinic_svgs
from fit_core.reports.clinic_data import clinic_data
from fit_core.reports.html import copyright_lines as page_copyright
from fit_core.reports.html import render_client, render_clinic
from fit_core.reports.lanes import GAP_IN, cutoff_spot, place_tags, tag_width_in
from fit_core.reports.legend import chart_legend
from fit_core.reports.style import NARROW, WIDE
from fit_core.rules.builtin import BUILTIN_RULES
from fit_core.scoring import Scorer
from fit_core.settings import Settings
from fit_core.trajectories import load_supplied_table
from fit_core.validation import Validator

MEASURES = {m.key: m for m in BUILTIN_MEASURES}
FIRST = dt.date(2025, 9, 1)
AS_OF = FIRST + dt.timedelta(weeks=19, days=3)
SETTINGS = Settings(as_of=AS_OF)
# a model for sessions 2..10; its lower band has two decimals (x.x5) at every session
TABLE = "intake,session,expected,lower,upper,severe\n" + "".join(
    f"{i},{k},{i + 1.2 * k:.1f},{i + 1.2 * k - 2.95:.2f},{i + 1.2 * k + 2.5:.1f},"
    f"{i + 1.2 * k - 6:.1f}\n"
    for i in (0, 20, 40)
    for k in range(2, 11)
)


def validate(rows: list[dict[str, str]]) -> list[Administration]:
    v = Validator(MEASURES, "UTC", source="demo")
    out = []
    for row in rows:
        a = v.validate(Record(source_key=row["source_key"], data=row))
        assert isinstance(a, Administration), a
        out.append(a)
    return out


def long_scored() -> tuple[list[Scored], object]:
    model = load_supplied_table(io.StringIO(TABLE))
    admins = validate(deteriorating_client(FIRST))
    scored = Scorer(MEASURES, SETTINGS, BUILTIN_RULES, model).score(admins).scored  # type: ignore[arg-type]
    return list(scored), model


@pytest.fixture(scope="module")
def long_page() -> ClientPage:
    scored, model = long_scored()
    (page,) = client_pages(scored, MEASURES, SETTINGS, model=model, srs_items=True)  # type: ignore[arg-type]
    return page


# --- 1. past the model: a distinct marker, and a status that stays ---------------------------


def test_past_the_model_points_are_squares_by_reliable_change_not_intake_diamonds(
    long_page: ClientPage,
) -> None:
    ors = long_page.ors
    assert ors is not None and ors.primary is not None
    markers = [p.marker for p in ors.primary.points]
    assert markers[0] == "intake" and markers.count("intake") == 1
    assert set(markers[1:10]) <= {"green", "orange", "red"}  # sessions 2..10: the model
    assert markers[10:] == ["rc_deteriorated"] * 10  # sessions 11..20: reliably worse
    assert long_page.model_last_session == 10
    labels = [item.label for item in chart_legend(ors)]
    assert "Intake" in labels and "No expectation: reliably deteriorated" in labels
    assert not any("Intake / no expectation" in label for label in labels)
    cards = {c.label: c for c in client_cards(long_page)}
    status = cards["Status"]  # the tile stays after the model runs out
    assert status.value == "reliably deteriorated" and status.css == "st-red"
    assert "session 10" in status.note and status.glyph == "■"
    assert "expects nothing after session 10" in long_page.model_note


def test_an_improving_client_past_the_model_is_marked_improved() -> None:
    point = Point(12, FIRST, 30.0, "ORS", status="grey", rc_class="recovered")
    assert point.marker == "rc_improved"
    assert Point(12, FIRST, 19.0, "ORS", status="grey", rc_class="no_reliable_change").marker == (
        "rc_none"
    )
    assert Point(1, FIRST, 19.0, "ORS", status="grey", rc_class="intake").marker == "intake"
    assert Point(3, FIRST, 19.0, "ORS", status=None, rc_class="improved").marker is None


# --- 2. one tag per alert, packed without overlap -----------------------------------------------


def test_one_run_per_alert_with_the_sessions_it_held_on(long_page: ClientPage) -> None:
    runs = {r.number: r for r in long_page.runs}
    by_rule = {g.rule_id: g.number for g in long_page.flags}
    deterioration = runs[by_rule["ors.reliable_deterioration"]]
    # 19.5 → 14.35 at session 6 is −5.15; 14.9 at session 8 breaks the run; from 9 it holds
    assert (deterioration.first, deterioration.last, deterioration.severity) == (9, 20, "alert")
    assert len(long_page.runs) == len(long_page.flags) == 2  # one alert per condition
    assert client_cards(long_page)[-1].value == "2"


def test_the_flags_card_counts_them_by_severity(long_page: ClientPage) -> None:
    card = client_cards(long_page)[-1]
    severities = sorted(r.severity for r in long_page.runs)
    # the note accounts for every flag the card counts (never "2 ... no alerts")
    assert sum(int(part.split()[0]) for part in card.note.split(" · ")) == int(card.value)
    assert card.note.startswith("1 alert")
    assert all(s in card.note for s in severities)
    assert flag_counts(["warning", "info", "warning"]) == "2 warnings · 1 info"
    assert flag_counts(["warning"]) == "1 warning"
    assert flag_counts(["alert", "alert", "warning"]) == "2 alerts · 1 warning"


runs_strategy = st.lists(
    st.tuples(st.integers(1, 20), st.integers(0, 8), st.integers(1, 12)).map(
        lambda t: FlagRun(t[2], "ORS", t[0], min(20, t[0] + t[1]), "warning", "client")
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(runs=runs_strategy, phone=st.booleans())
def test_tags_in_one_lane_keep_apart_and_stay_inside_the_plot(
    runs: list[FlagRun], phone: bool
) -> None:
    variant = NARROW if phone else WIDE
    axes_w = variant.width - 1.0
    placed = place_tags(runs, 20, axes_w, variant.font_size)
    assert len(placed) == len(runs)
    per_in = 20 / axes_w
    for tag in placed:
        half = tag_width_in(tag.label, variant.font_size) * per_in / 2
        assert tag.x - half + 1e-9 >= 0.5 and tag.x + half <= 20.5 + 1e-9
    for i, a in enumerate(placed):
        for b in placed[i + 1 :]:
            if a.row != b.row:
                continue
            (a0, a1), (b0, b1) = a.span, b.span
            gap = max(b0 - a1, a0 - b1)
            assert gap >= GAP_IN * per_in - 1e-9, (a, b)


# --- 4. honest labels: cutoff label, rounding, the alliance tile ------------------------------


def chart_with(points: list[tuple[int, float]]) -> ChartData:
    line = Line(
        "client", "ORS", ("ORS",), tuple(Point(k, FIRST, v, "ORS") for k, v in points), True
    )
    return ChartData("ORS", (line,), (), 0.0, 40.0, max(k for k, _ in points))


def spot(chart: ChartData) -> tuple[float, str]:
    return cutoff_spot(
        chart,
        25.0,
        "cutoff 25",
        axes_width_in=8.1,
        axes_height_in=2.85,
        ylim=(-0.8, 40.8),
        font_pt=11.5,
        value_labels=True,
    )


def test_the_cutoff_label_never_sits_on_the_latest_point() -> None:
    clear = chart_with([(1, 12.0), (2, 14.0), (3, 15.0), (4, 13.0), (5, 16.0), (6, 17.0)])
    left, where = spot(clear)
    assert left > 0.8 and where == "above"  # nothing there: the right end, above the line
    near = chart_with([(1, 12.0), (2, 14.0), (3, 15.0), (4, 13.0), (5, 16.0), (6, 25.4)])
    assert spot(near) != (left, "above")
    crowded = chart_with([(k, 25.0 + (k % 3) * 0.8) for k in range(1, 13)])
    left, where = spot(crowded)
    assert 0.0 <= left <= 1.0 and where in ("above", "below")


def test_one_display_rounding_everywhere(long_page: ClientPage) -> None:
    table = client_table(long_page)
    rows = {r[0]: dict(zip(table.columns, r, strict=True)) for r in table.rows}
    assert rows["6"]["Client (ORS)"].endswith("14.35")  # as given, never 14.3 or 14.4
    assert rows["6"]["Change"] == "−5.15"
    # the expected range is written as in the alert's message: "from 21.15", not "21.1"
    scored, _model = long_scored()
    messages = [f.message for s in scored for f in s.flags if f.rule_id in ("ors.not_on_track",)]
    for message in messages:
        low = re.search(r"from (\d+\.\d+)", message)
        assert low and re.search(r"\.\d5$", low.group(1))
        session = re.search(r"at session (\d+)", message)
        assert session and rows[session.group(1)]["Expected range"].startswith(low.group(1))


def test_the_latest_srs_tile_says_which_session(long_page: ClientPage) -> None:
    srs = next(c for c in client_cards(long_page) if c.label == "Latest SRS")
    assert srs.value == "31.8"
    assert srs.note.startswith("session 20, ") and "below 36: discuss" in srs.note


# --- 5. print: a 20-session table keeps the intake and the last 12 -----------------------------


def test_the_printed_table_keeps_the_intake_and_the_last_12_sessions(
    long_page: ClientPage,
) -> None:
    table = client_table(long_page)
    hidden = [row[0] for row, h in zip(table.rows, table.print_hidden, strict=True) if h]
    assert hidden == [str(k) for k in range(2, 9)]
    assert "sessions 2–8" in table.print_note
    assert print_rows(tuple(range(1, 14))) == ((False,) * 13, "")
    html = render_client(long_page, generated=AS_OF)
    assert html.count('class="older"') == 7 and "Printed: the intake and the last 12" in html


# --- 6. per measure: notices --------------------------------------------------------------------


def test_a_childs_page_carries_the_child_measures_notices() -> None:
    rows = []
    for k, (cors, csrs) in enumerate((("28.0", "37.0"), ("30.0", "38.0"), ("33.5", "38.5"))):
        day = (FIRST + dt.timedelta(weeks=k)).isoformat()
        base = {"client_id": "K1", "episode_id": "K1-E1", "age": "9"}
        rows.append({**base, "administered_at": day, "measure": "CORS", "total": cors,
                     "source_key": f"c{k}"})  # fmt: skip
        rows.append({**base, "administered_at": day, "measure": "CORS", "total": "30.0",
                     "rater": "parent", "source_key": f"p{k}"})  # fmt: skip
        rows.append({**base, "administered_at": day, "measure": "CSRS", "total": csrs,
                     "source_key": f"s{k}"})  # fmt: skip
    admins = validate(rows)
    scored = Scorer(MEASURES, SETTINGS, BUILTIN_RULES).score(admins).scored
    (page,) = client_pages(scored, MEASURES, SETTINGS)
    lines = page_copyright(page.include_srs, page.measures)
    assert lines == copyright_lines(["CORS", "CSRS"])
    assert any(line.startswith("CORS © 2003") for line in lines)
    assert not any(line.startswith(("ORS ©", "SRS ©")) for line in lines)
    html = render_client(page, generated=AS_OF)
    assert "CSRS © 2003 Barry L. Duncan, Scott D. Miller &amp; Jacqueline A. Sparks." in html


def test_srs_items_use_the_neutral_domain_labels(long_page: ClientPage) -> None:
    items = long_page.srs_items
    assert items is not None and items.labels == MEASURES["SRS"].item_labels
    assert len(items.rows) == 20 and items.low == SETTINGS.srs_low_item
    html = render_client(long_page, generated=AS_OF)
    assert "SRS by domain" in html and "Approach or method" in html
    assert "▼ 8.9" in html  # session 1's approach item, below 9


# --- 3 and 7: clinic statistics ------------------------------------------------------------------


def summary(
    key: str, clinician: str | None, intake: float, last: float, **kw: object
) -> EpisodeSummary:
    base: dict[str, object] = {
        "client_key": ("ns", key),
        "episode_id": f"{key}-E1",
        "clinician_id": clinician,
        "first_date": dt.date(2025, 1, 6),
        "last_date": dt.date(2025, 3, 1),
        "n_sessions": 6,
        "n_ors": 6,
        "ors_cutoff": 25.0,
        "rc": 5.0,
        "intake_ors": intake,
        "last_ors": last,
        "mean_srs": 37.0,
        "ended": True,
        "measures": ("ORS", "SRS"),
    }
    base.update(kw)
    return EpisodeSummary(**base)  # type: ignore[arg-type]


def tiny_group_clinic(**kw: object) -> list[EpisodeSummary]:
    big = [summary(f"A{i}", "T1", 12.0 + i % 9, 20.0 + i % 11) for i in range(40)]
    big += [summary(f"B{i}", "T2", 14.0 + i % 7, 19.0 + i % 5) for i in range(25)]
    # three episodes: a pre-post d of about 14 with a huge interval
    tiny = [
        summary("C0", "T3", 10.0, 35.0),
        summary("C1", "T3", 10.5, 36.0),
        summary("C2", "T3", 11.0, 36.5),
    ]
    return [*big, *tiny]


def test_a_group_below_the_minimum_n_has_no_effect_size_point_on_the_chart() -> None:
    data = clinic_data(tiny_group_clinic(), by="clinician", as_of=AS_OF, min_n=10)
    t3 = next(g for g in data.groups if g.group == "T3")
    assert t3.n_outcome == 3 and t3.effect_size is not None and t3.effect_size > 10
    svgs = clinic_svgs(data)
    for variant in ("wide", "narrow"):
        svg = svgs[f"effect_{variant}"]
        assert f'id="effect-{variant}-effect-point-T1"' in svg  # a group with enough episodes
        assert f'id="effect-{variant}-effect-point-All"' in svg
        assert "effect-point-T3" not in svg  # the tiny group: no point, no interval
        assert "withheld: n=3 &lt; 10" in svg or "withheld: n=3 < 10" in svg
        # and its estimate does not stretch the axis: no number on the chart comes near it
        numbers = [float(t.replace("−", "-")) for t in re.findall(r">(−?\d+(?:\.\d+)?)<", svg)]
        assert numbers and max(numbers) < 8 < t3.effect_size
    html = render_clinic(data, generated=AS_OF)
    assert "withheld (n=3 &lt; 10)" in html


def test_clinic_report_names_its_population_and_has_no_none_group() -> None:
    data = clinic_data(tiny_group_clinic(), by="site", as_of=AS_OF, min_n=10)
    assert data.groups == () and data.no_groups
    html = render_clinic(data, generated=AS_OF)
    assert "No episode has a site recorded" in html and "(none)" not in html
    assert "open and ended" in html
    ended = clinic_data(tiny_group_clinic(), by="clinician", as_of=AS_OF, ended_only=True)
    assert "outcome figures of ended episodes" in render_clinic(ended, generated=AS_OF)
    # without attendance data the endings chart has no dropout bar and says why
    assert "dropout cannot be seen" in html and "Dropout: missed" not in html


def test_the_long_client_is_the_demo_case() -> None:
    rows = deteriorating_client(FIRST)
    assert [r["total"] for r in rows if r["measure"] == "ORS"] == list(DETERIORATING_ORS)
    srs = [r for r in rows if r["measure"] == "SRS"]
    for r in srs:
        items = [float(r[f"q{i}"]) for i in range(1, 5)]
        assert all(0 <= v <= 10 for v in items)
