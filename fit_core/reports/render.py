"""From prepared pages to files: HTML, PNG (screenshot), PDF (print) or the bare SVG charts.

Every file is written with :func:`fit_core.reports.output.write_private` (mode 0600). PNG and
PDF go through headless Chromium in a private temporary folder, so the browser's own files never
land anywhere else.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .client_data import ClientPage
from .clinic_data import ClinicData
from .output import write_private

if TYPE_CHECKING:  # pragma: no cover
    from .charts import FigureCache

__all__ = ["FORMATS", "PNG_WIDTH", "html_to", "write_client", "write_clinic"]

FORMATS = ("html", "png", "svg", "pdf")
PNG_WIDTH = 1280


def html_to(fmt: str, html: str, dest: Path, *, chromium: str | None = None) -> Path:
    """Write ``html`` to ``dest`` as ``html``, or render it to ``png``/``pdf`` with Chromium."""
    if fmt == "html":
        return write_private(dest, html)
    from . import browser

    exe = browser.find_chromium(chromium)
    with tempfile.TemporaryDirectory(prefix="fit-report-") as tmp:
        src = Path(tmp) / "report.html"
        write_private(src, html)
        made = Path(tmp) / f"out.{fmt}"
        if fmt == "png":
            browser.screenshot(src, made, width=PNG_WIDTH, exe=exe)
        elif fmt == "pdf":
            browser.print_pdf(src, made, exe=exe)
        else:  # pragma: no cover - guarded by the CLI's choices
            raise ValueError(f"unknown format {fmt!r}")
        return write_private(dest, made.read_bytes())


def write_client(
    page: ClientPage,
    out_dir: Path,
    stem: str,
    fmt: str,
    *,
    generated: dt.date,
    rule_titles: Mapping[str, str] | None = None,
    chromium: str | None = None,
    cache: FigureCache | None = None,
) -> list[Path]:
    """Write one client page in ``fmt``; ``svg`` writes each chart as its own file.

    ``cache`` (a :class:`fit_core.reports.charts.FigureCache`) speeds up many pages in a row.
    """
    if fmt == "svg":
        from .charts import chart_svg
        from .style import WIDE

        paths = []
        for key, chart in (("ors", page.ors), ("srs", page.srs)):
            if chart is None:
                continue
            title = f"{chart.title_measure} by session · {page.client_label} · {page.episode_label}"
            svg = chart_svg(chart, page.dates, WIDE, key, title, standalone=True)
            paths.append(write_private(out_dir / f"{stem}-{key}.svg", svg))
        return paths
    from .html import render_client

    html = render_client(page, generated=generated, rule_titles=rule_titles, cache=cache)
    return [html_to(fmt, html, out_dir / f"{stem}.{fmt}", chromium=chromium)]


def write_clinic(
    data: ClinicData,
    out_dir: Path,
    stem: str,
    fmt: str,
    *,
    generated: dt.date,
    chromium: str | None = None,
) -> list[Path]:
    """Write the clinic report in ``fmt``; ``svg`` writes each chart as its own file."""
    if fmt == "svg":
        from .clinic_charts import clinic_svgs
        from .style import WIDE

        svgs = clinic_svgs(data, (WIDE,), standalone=True)
        return [
            write_private(out_dir / f"{stem}-{key.removesuffix('_wide')}.svg", svg)
            for key, svg in svgs.items()
        ]
    from .html import render_clinic

    html = render_clinic(data, generated=generated)
    return [html_to(fmt, html, out_dir / f"{stem}.{fmt}", chromium=chromium)]
