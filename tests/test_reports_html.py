"""`fit report client|clinic` on the demo clinic: self-contained HTML, licensing lines, --no-srs,
--pseudonym, file modes, errors and exit codes. (The browser checks are in test_reports_browser.)
"""

from __future__ import annotations

import re
import stat
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fit_cli.demo import run_demo
from fit_cli.main import cli
from fit_cli.reports import report
from fit_core.measures import BUILTIN_MEASURES, COPYRIGHT_LINES
from fit_core.store import Store

TABLE = "intake,session,expected,lower,upper,severe\n" + "".join(
    f"{i},{k},{min(40, i + 1.5 * k)},{min(40, i + 1.5 * k) - 3},{min(40, i + 1.5 * k) + 2},"
    f"{min(40, i + 1.5 * k) - 6}\n"
    for i in (0, 20, 40)
    for k in range(2, 11)
)
EXTERNAL = re.compile(r"""(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def run(cfg: Path, *args: str) -> Result:
    return CliRunner().invoke(report, list(args), obj={"config_path": cfg})


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo clinic with a supplied trajectory table, and its busiest two-rater client."""
    d = tmp_path_factory.mktemp("demo")
    run_demo(d)
    cfg = d / "config.toml"
    store = Store.open(d / "fit.sqlite3")
    try:
        admins = list(store.iter_administrations())
    finally:
        store.close()
    counts = Counter(a.client_id for a in admins)
    raters: dict[str, set[str]] = {}
    for a in admins:
        raters.setdefault(a.client_id, set()).add(a.rater)
    two = [c for c in counts if len(raters[c]) > 1] or list(counts)
    client = max(two, key=lambda c: counts[c])
    measure = next(a.measure for a in admins if a.client_id == client and "ORS" in a.measure)
    (d / "table.csv").write_text(TABLE, encoding="utf-8")
    res = CliRunner().invoke(
        cli,
        ["--config", str(cfg), "trajectories", "load", str(d / "table.csv"), "--measure", measure],
    )
    assert res.exit_code == 0, res.output
    return cfg, client


@pytest.fixture(scope="module")
def client_html(demo: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    cfg, client = demo
    out = tmp_path_factory.mktemp("reports") / "new" / "dir"
    res = run(cfg, "client", client, "--out", str(out))
    assert res.exit_code == 0, res.output
    paths = [Path(line) for line in res.stdout.split()]
    assert paths and all(p.exists() for p in paths)
    return paths


def test_client_report_is_self_contained_and_private(client_html: list[Path]) -> None:
    for path in client_html:
        html = path.read_text(encoding="utf-8")
        assert html.startswith("<!doctype html>")
        assert not EXTERNAL.search(html), EXTERNAL.search(html)
        assert "<script" not in html.lower() and "<link" not in html.lower()
        assert "@import" not in html and "url(http" not in html
        assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in html
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        # each measure on the page brings its own notice, and only those measures do
        shown = set(re.findall(r"\((ORS|CORS|SRS|CSRS|GSRS)\)", html))
        assert shown
        for m in BUILTIN_MEASURES:
            assert m.copyright is not None
            line = m.copyright.replace("&", "&amp;")
            assert (line in html) == (m.key in shown), m.key
    out = client_html[0].parent
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_client_report_has_charts_tables_and_flags(client_html: list[Path]) -> None:
    html = client_html[0].read_text(encoding="utf-8")
    # ORS and SRS, each as wide, narrow (phone) and print variants, ids unique on the page
    assert html.count("<svg") == 6
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    assert re.search(r"C?ORS total 0–40", html) and "Session" in html
    assert "cutoff 25" in html or "cutoff 28" in html or "cutoff 32" in html
    assert "cutoff 36" in html
    assert "<table" in html and "Scores by session" in html
    assert 'class="legend"' in html and "Expected range" in html  # the table is the model
    assert re.search(r"Flags \(\d+ open or acknowledged", html)
    assert "@page" in html and "@media print" in html
    assert 'name="viewport"' in html


def test_no_srs_removes_every_trace_of_the_alliance(demo: tuple[Path, str], tmp_path: Path) -> None:
    cfg, client = demo
    res = run(cfg, "client", client, "--no-srs", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    for line in res.stdout.split():
        html = Path(line).read_text(encoding="utf-8")
        assert "srs" not in html.lower()
        assert "alliance" not in html.lower()
        assert "ORS ©" in html  # the outcome measure's notice (ORS or CORS), no SRS notice
        assert html.count("<svg") == 3


def test_pseudonym_hides_the_client_id(demo: tuple[Path, str], tmp_path: Path) -> None:
    cfg, client = demo
    res = run(cfg, "client", client, "--pseudonym", "--out", str(tmp_path / "a"))
    assert res.exit_code == 0, res.output
    paths = [Path(p) for p in res.stdout.split()]
    for path in paths:
        assert client not in path.name
        html = path.read_text(encoding="utf-8")
        assert client not in html
        assert re.search(r"Client P-[A-Z2-7]{5}-[A-Z2-7]{5}", html)
        assert "Episode 1" in html
    key = cfg.parent / "fit.sqlite3.pseudonym-key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = run(cfg, "client", client, "--pseudonym", "--out", str(tmp_path / "b"))
    assert [Path(p).name for p in again.stdout.split()] == [p.name for p in paths]


def test_svg_format_writes_the_charts_alone(demo: tuple[Path, str], tmp_path: Path) -> None:
    cfg, client = demo
    res = run(
        cfg,
        "client",
        client,
        "--format",
        "svg",
        "--episode",
        f"{client}-E1",
        "--out",
        str(tmp_path),
    )
    assert res.exit_code == 0, res.output
    paths = [Path(p) for p in res.stdout.split()]
    assert [p.name.rsplit("-", 1)[1] for p in paths] == ["ors.svg", "srs.svg"]
    for p in paths:
        text = p.read_text(encoding="utf-8")
        assert text.startswith("<?xml") and "<svg" in text and "<title" in text
        assert not EXTERNAL.search(text)
        assert stat.S_IMODE(p.stat().st_mode) == 0o600


def test_clinic_report_marks_small_groups(demo: tuple[Path, str], tmp_path: Path) -> None:
    cfg, _client = demo
    res = run(cfg, "clinic", "--by", "clinician", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    (path,) = [Path(p) for p in res.stdout.split()]
    assert path.name == "fit-clinic-by-clinician.html"
    html = path.read_text(encoding="utf-8")
    assert not EXTERNAL.search(html) and "<script" not in html.lower()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert html.count("<svg") == 10  # six charts, four of them with a phone variant
    # classes, effect sizes, alliance, endings, and the demo's parents in their own table
    assert html.count("<table") == 5 and "Collateral raters (their own ratings)" in html
    assert 'class="small-badge"' in html and "small)" in html  # 40 clients: every group small
    for line in COPYRIGHT_LINES:
        assert line.replace("&", "&amp;") in html
    for title in ("Outcome classes", "Effect sizes", "Distribution of change", "Endings"):
        assert title in html


def test_unknown_client_and_episode_exit_config(demo: tuple[Path, str], tmp_path: Path) -> None:
    cfg, client = demo
    res = run(cfg, "client", "NOBODY", "--out", str(tmp_path))
    assert res.exit_code == 3 and "no administrations for client 'NOBODY'" in res.output
    res = run(cfg, "client", client, "--episode", "nope", "--out", str(tmp_path))
    assert res.exit_code == 3 and "has no episode 'nope'" in res.output
    assert not list(tmp_path.iterdir())


def test_missing_extra_exits_config_naming_it(
    demo: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, client = demo
    monkeypatch.setitem(sys.modules, "jinja2", None)
    res = run(cfg, "client", client, "--out", str(tmp_path))
    assert res.exit_code == 3
    assert "jinja2" in res.output and "pip install 'fit-sync[reports]'" in res.output


def test_missing_browser_exits_config(
    demo: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, client = demo
    monkeypatch.setenv("FIT_CHROMIUM", str(tmp_path / "no-such-browser"))
    res = run(cfg, "client", client, "--format", "png", "--out", str(tmp_path))
    assert res.exit_code == 3 and "FIT_CHROMIUM" in res.output
    monkeypatch.delenv("FIT_CHROMIUM")
    monkeypatch.setenv("PATH", str(tmp_path))
    res = run(cfg, "client", client, "--format", "pdf", "--out", str(tmp_path))
    assert res.exit_code == 3 and "apt-get install chromium" in res.output


def test_pseudonyms_are_keyed_and_stable(tmp_path: Path) -> None:
    from fit_core.reports.pseudonym import load_or_create_key, pseudonym

    key = load_or_create_key(tmp_path / "s.sqlite3")
    assert load_or_create_key(tmp_path / "s.sqlite3") == key
    assert stat.S_IMODE((tmp_path / "s.sqlite3.pseudonym-key").stat().st_mode) == 0o600
    p = pseudonym(key, "ns", "C1")
    assert re.fullmatch(r"P-[A-Z2-7]{5}-[A-Z2-7]{5}", p)
    assert pseudonym(key, "ns", "C1") == p
    assert pseudonym(key, "other", "C1") != p
    assert pseudonym(load_or_create_key(tmp_path / "t.sqlite3"), "ns", "C1") != p
    assert load_or_create_key(":memory:") != load_or_create_key(":memory:")
