"""Reports in a real headless browser (Chromium): a demo client's PNG is not blank, its DOM
holds the charts and tables, and its printed PDF is one page; a 20-session deteriorating
client's flag tags never overlap or get cut, at desktop and phone width, even with a dozen
alerts at once, and the episode prints on one page.

These tests need Chromium (Debian: `apt-get install chromium`; .ci/run installs it). Without it
they FAIL rather than skip: a green run must mean the pages were really rendered.
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
import io
import json
import re
import stat
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from fit_cli.demo import run_demo
from fit_cli.main import cli  # the CLI first: fit_cli.reports alone would import it half-way
from fit_cli.reports import report
from fit_core.reports import browser
from fit_core.store import Store


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    d = tmp_path_factory.mktemp("demo")
    run_demo(d)
    store = Store.open(d / "fit.sqlite3")
    try:
        first = next(store.iter_administrations()).client_id
    finally:
        store.close()
    return d / "config.toml", first


def render(cfg: Path, client: str, out: Path, fmt: str) -> Path:
    res = CliRunner().invoke(
        report,
        ["client", client, "--format", fmt, "--out", str(out)],
        obj={"config_path": cfg},
    )
    assert res.exit_code == 0, res.output
    path = Path(res.stdout.split()[0])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return path


def test_chromium_is_installed() -> None:
    assert cli.get_command(click.Context(cli), "report") is not None
    assert browser.find_chromium()  # fails (no skip) when CI lacks the browser


def test_png_of_a_client_report_is_not_blank(demo: tuple[Path, str], tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    png = render(*demo, tmp_path, "png")
    with Image.open(png) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.int16)
    height, width, _ = rgb.shape
    assert width == 1280 and height > 1200  # the whole page, blank space below trimmed
    ink = (rgb.min(axis=2) < 235).mean()
    assert ink > 0.05  # text, charts and tables, not a white page
    coloured = rgb[(rgb.max(axis=2) - rgb.min(axis=2)) > 60]
    assert len(np.unique(coloured, axis=0)) > 50  # chart colours: zones, lines, markers


def test_dom_has_the_charts_and_tables(demo: tuple[Path, str], tmp_path: Path) -> None:
    html = render(*demo, tmp_path, "html")
    dom = browser.dump_dom(html)
    assert len(re.findall(r"<svg\b", dom)) >= 6
    assert "<table" in dom and "<tbody>" in dom
    assert re.search(r"C?ORS total 0–40", dom) and "Scores by session" in dom
    assert "ORS © 2000 Scott D. Miller and Barry L. Duncan." in dom


def test_pdf_prints_on_one_page(demo: tuple[Path, str], tmp_path: Path) -> None:
    pdf = render(*demo, tmp_path, "pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 1


# --- a long, hard episode: 20 sessions, a client who reliably deteriorated --------------------

LONG_FIRST = dt.date(2025, 9, 1)
LONG_AS_OF = LONG_FIRST + dt.timedelta(weeks=19, days=3)
LONG_TABLE = "intake,session,expected,lower,upper,severe\n" + "".join(
    f"{i},{k},{min(40, i + 1.2 * k)},{min(40, i + 1.2 * k) - 3},{min(40, i + 1.2 * k) + 2.5},"
    f"{min(40, i + 1.2 * k) - 6}\n"
    for i in (0, 20, 40)
    for k in range(2, 11)
)
#: many alerts at once, on consecutive sessions (rule, severity, first session, last session)
CROWDED = (
    ("ors.checkpoint", "warning", 3, 5),
    ("ors.high_intake", "info", 4, 4),
    ("ors.last_chance", "alert", 6, 9),
    ("ors.reliable_deterioration", "alert", 9, 20),
    ("ors.not_on_track", "warning", 18, 20),
    ("plugin.one", "info", 19, 19),
    ("plugin.two", "warning", 20, 20),
    ("plugin.three", "alert", 20, 20),
    ("plugin.four", "info", 17, 19),
    ("plugin.five", "info", 12, 13),
    ("plugin.six", "warning", 19, 20),
    ("plugin.seven", "info", 20, 20),
)


def long_page(*, crowded: bool) -> Any:
    from fit_core.demo_cases import deteriorating_client
    from fit_core.measures import BUILTIN_MEASURES
    from fit_core.models import Record
    from fit_core.reports.client_data import FlagRecord, client_pages
    from fit_core.rules.builtin import BUILTIN_RULES
    from fit_core.scoring import Scorer
    from fit_core.settings import Settings
    from fit_core.trajectories import load_supplied_table
    from fit_core.validation import Validator

    measures = {m.key: m for m in BUILTIN_MEASURES}
    model = load_supplied_table(io.StringIO(LONG_TABLE))
    validator = Validator(measures, "UTC", source="demo")
    admins = [
        validator.validate(Record(source_key=r["source_key"], data=r))
        for r in deteriorating_client(LONG_FIRST)
    ]
    settings = Settings(as_of=LONG_AS_OF)
    scored = Scorer(measures, settings, BUILTIN_RULES, model).score(admins).scored  # type: ignore[arg-type]
    flags = None
    if crowded:
        key = "C900001-E1-S{:02d}-{}".format
        flags = [
            FlagRecord(
                "demo", key(last, "ORS"), rule, sev, f"What to discuss ({rule}).", "open", first
            )
            for rule, sev, first, last in CROWDED
        ]
        flags += [
            FlagRecord("demo", key(20, "SRS"), "srs.below_cutoff", "warning", "m", "open", 8),
            FlagRecord("demo", key(20, "SRS"), "srs.drop", "warning", "m", "open", 20),
            FlagRecord("demo", key(19, "SRS"), "srs.low_item", "info", "m", "open", 18),
        ]
    (page,) = client_pages(scored, measures, settings, model=model, flags=flags)
    return page


BOXES_SCRIPT = """<script>
window.addEventListener('load', () => {
  const box = r => ({x0: r.left, x1: r.right, y0: r.top, y1: r.bottom});
  const out = [];
  document.querySelectorAll('svg').forEach(svg => {
    const s = svg.getBoundingClientRect();
    if (s.width === 0) return;
    const tags = [...svg.querySelectorAll('[id*="flagtag-"]')].map(
      g => ({id: g.id, ...box(g.getBoundingClientRect())}));
    out.push({id: svg.getAttribute('aria-labelledby'), ...box(s), tags: tags});
  });
  const pre = document.createElement('pre');
  pre.id = 'boxes';
  pre.textContent = JSON.stringify({width: document.documentElement.clientWidth, svgs: out});
  document.body.appendChild(pre);
});
</script>"""


def laid_out_boxes(html: str, tmp_path: Path, width: int) -> dict[str, Any]:
    """The flag tags' boxes as Chromium lays the page out at ``width`` CSS pixels.

    The page forbids scripts (its Content-Security-Policy); this test copy drops that policy
    and adds a script that writes every visible chart's box and its tags' boxes into the DOM.
    Headless Chromium's window is at least 500 px wide, so a phone's width is set on the page.
    """
    test_html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    test_html = test_html.replace(
        "</head>", f"<style>html {{ width: {width}px; overflow: hidden; }}</style></head>"
    )
    test_html = test_html.replace("</body>", BOXES_SCRIPT + "</body>")
    path = tmp_path / f"boxes-{width}.html"
    path.write_text(test_html, encoding="utf-8")
    dom = browser.dump_dom(path, width=max(width, 500))
    found = re.search(r'<pre id="boxes">(.*?)</pre>', dom, re.S)
    assert found, "the measuring script did not run"
    return json.loads(html_lib.unescape(found.group(1)))


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"] and b["y0"] < a["y1"]


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("crowded", [False, True])
def test_flag_tags_never_overlap_and_are_never_cut(
    tmp_path: Path, width: int, crowded: bool
) -> None:
    from fit_core.reports.html import render_client

    page = long_page(crowded=crowded)
    html = render_client(page, generated=LONG_AS_OF)
    laid = laid_out_boxes(html, tmp_path, width)
    charts = {c["id"].split("-")[1]: c for c in laid["svgs"]}
    want = "wide" if width > 600 else "narrow"
    assert set(charts) == {want}, charts.keys()  # the drawing made for this width is shown
    svgs = [c for c in laid["svgs"] if c["tags"]]
    n_tags = sum(len(c["tags"]) for c in svgs)
    assert n_tags == len(page.runs) == (len(CROWDED) + 3 if crowded else 2)
    for chart in svgs:
        assert chart["x1"] <= laid["width"] + 0.5  # the chart fits the screen
        tags = chart["tags"]
        for tag in tags:  # inside its chart: not clipped at the edge
            assert chart["x0"] <= tag["x0"] and tag["x1"] <= chart["x1"], tag["id"]
            assert chart["y0"] <= tag["y0"] and tag["y1"] <= chart["y1"], tag["id"]
        for i, a in enumerate(tags):
            for b in tags[i + 1 :]:
                assert not overlaps(a, b), (a["id"], b["id"])


def test_a_20_session_episode_prints_on_one_page(tmp_path: Path) -> None:
    from fit_core.reports.html import render_client

    page = long_page(crowded=False)
    assert page.n_sessions == 20
    src = tmp_path / "long.html"
    src.write_text(render_client(page, generated=LONG_AS_OF), encoding="utf-8")
    pdf = browser.print_pdf(src, tmp_path / "long.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 1


SCROLL_SCRIPT = """<script>
window.addEventListener('load', () => {
  const out = [...document.querySelectorAll('.scroll')].map(d => ({
    title: (d.closest('section')?.querySelector('h2')?.textContent || '').trim(),
    scroll: d.scrollWidth, client: d.clientWidth}));
  const pre = document.createElement('pre');
  pre.id = 'boxes';
  pre.textContent = JSON.stringify({width: document.documentElement.clientWidth,
    page: document.querySelector('main').scrollWidth, tables: out});
  document.body.appendChild(pre);
});
</script>"""


@pytest.mark.parametrize("width", [1280, 390])
def test_clinic_tables_are_never_cut_off(
    demo: tuple[Path, str], tmp_path: Path, width: int
) -> None:
    """No clinic table needs a horizontal scroll (which a PNG or a print would cut off): at
    desktop width every column fits, on a phone each group is a card."""
    cfg, _client = demo
    res = CliRunner().invoke(
        report, ["clinic", "--srs-items", "--out", str(tmp_path)], obj={"config_path": cfg}
    )
    assert res.exit_code == 0, res.output
    html = Path(res.stdout.split()[0]).read_text(encoding="utf-8")
    test_html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    test_html = test_html.replace(
        "</head>", f"<style>html {{ width: {width}px; }}</style></head>"
    ).replace("</body>", SCROLL_SCRIPT + "</body>")
    path = tmp_path / "clinic.html"
    path.write_text(test_html, encoding="utf-8")
    dom = browser.dump_dom(path, width=max(width, 500))
    found = re.search(r'<pre id="boxes">(.*?)</pre>', dom, re.S)
    assert found
    laid = json.loads(html_lib.unescape(found.group(1)))
    titles = [t["title"] for t in laid["tables"]]
    assert "Effect sizes and targets" in titles and any("by domain" in t for t in titles)
    for t in laid["tables"]:
        assert t["scroll"] <= t["client"] + 1, t  # the whole table is visible
    assert laid["page"] <= width + 1
