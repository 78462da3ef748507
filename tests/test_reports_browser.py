"""A demo client's report in a real headless browser (Chromium): the PNG is not blank, the DOM
holds the charts and tables, and the printed PDF is one page.

These tests need Chromium (Debian: `apt-get install chromium`; .ci/run installs it). Without it
they FAIL rather than skip: a green run must mean the pages were really rendered.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from fit_cli.demo import run_demo
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
