"""Matplotlib figures as inline SVG: self-contained, scalable, with unique ids per chart.

Charts are drawn on a bare :class:`matplotlib.figure.Figure` (no pyplot, so no global figure
state and no GUI backend) and saved with the SVG backend. Text stays text (``svg.fonttype =
"none"``) in the system sans-serif fonts, so nothing is embedded or fetched. Because several
charts sit in one HTML document, every ``id`` (and every ``#id`` reference) is prefixed with the
chart's own id, and the fixed hash salt makes the output reproducible.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from html import escape
from typing import TYPE_CHECKING

from .style import FONT_FAMILY

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^")]+)')
_HEAD = re.compile(r"^.*?(?=<svg\b)", re.S)
_SIZE = re.compile(r'<svg([^>]*?)\s(width|height)="[^"]*"')
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)


@contextmanager
def chart_style(font_size: float, salt: str) -> Iterator[None]:
    """matplotlib settings for one chart (restored afterwards: nothing global leaks)."""
    import matplotlib

    # the names written out in the call, where the type checker knows matplotlib's settings
    with matplotlib.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": salt,
            "font.family": "sans-serif",
            "font.sans-serif": FONT_FAMILY,
            "font.size": font_size,
            "axes.titlesize": font_size * 1.1,
            "axes.labelsize": font_size,
            "legend.fontsize": font_size * 0.92,
            "xtick.labelsize": font_size * 0.95,
            "ytick.labelsize": font_size * 0.95,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.edgecolor": "#555555",
            "axes.labelcolor": "#1A1A1A",
            "xtick.color": "#333333",
            "ytick.color": "#333333",
            "legend.frameon": False,
            "hatch.linewidth": 0.8,
        }
    ):
        yield


def to_svg(fig: Figure, chart_id: str, title: str, *, standalone: bool = False) -> str:
    """The figure as an SVG string with ids prefixed by ``chart_id`` and an accessible title.

    ``standalone`` keeps the XML declaration and the fixed size (for an .svg file); otherwise
    the SVG scales to its container (width and height removed, viewBox kept).
    """
    buf = io.StringIO()
    # dpi only sets the resolution of rasterized layers (e.g. thousands of dots)
    fig.savefig(buf, format="svg", dpi=150, metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = _METADATA.sub("", text)
    text = _ID.sub(lambda m: f'id="{chart_id}-{m.group(1)}"', text)
    text = _REF.sub(lambda m: f"{m.group(1)}{chart_id}-{m.group(2)}", text)
    safe_title = escape(title)
    attrs = f' role="img" aria-labelledby="{chart_id}-title" class="chart-svg"'
    text = text.replace("<svg ", f"<svg{attrs} ", 1)
    text = re.sub(
        r"(<svg\b[^>]*>)",
        lambda m: f'{m.group(1)}<title id="{chart_id}-title">{safe_title}</title>',
        text,
        count=1,
    )
    if standalone:
        return text
    text = _HEAD.sub("", text, count=1)
    for _ in range(2):
        text = _SIZE.sub(r"<svg\1", text, count=1)
    return text.strip()
