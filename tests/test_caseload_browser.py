"""A caseload page in a real headless browser (Chromium) at phone and desktop width: not blank,
the clients in attention order on the screen (not only in the markup), nothing cut off.

Needs Chromium (Debian: `apt-get install chromium`); without it these tests FAIL rather than
skip, as the other browser tests do.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from caseload_clinic import AS_OF, EXPECTED_T01, caseload_clinic

from fit_core.reports import browser
from fit_core.reports.caseload_write import write_caseload

# after the page has laid out: each client's top edge, its attention group and whether it fits
# the width (added to a copy of the page only; the page itself forbids scripts)
PROBE = """<script>
const rows = [...document.querySelectorAll('li.client')].map(li => {
  const r = li.getBoundingClientRect();
  return {client: li.dataset.client, attention: li.dataset.attention, top: r.top,
          left: r.left, right: r.right};
});
document.body.setAttribute('data-probe', JSON.stringify({rows: rows,
  width: document.documentElement.clientWidth,
  scroll: document.documentElement.scrollWidth}));
</script>"""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("caseload")
    clinic = caseload_clinic(tmp)
    out = tmp / "pages"
    write_caseload(clinic.config, clinic.registry, clinic.store, out, as_of=AS_OF)
    clinic.close()
    yield out / "caseload-T01.html"


def probe(page: Path, width: int) -> dict[str, object]:
    html = page.read_text(encoding="utf-8")
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    copy = page.with_name(f"probe-{width}.html")
    copy.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = browser.dump_dom(copy, width=width)
    found = re.search(r"data-probe=\"([^\"]+)\"", dom)
    assert found, "the probe did not run"
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.parametrize("width", [390, 1280])
def test_clients_are_shown_in_attention_order(page: Path, width: int) -> None:
    data = probe(page, width)
    rows = data["rows"]
    assert [r["client"] for r in rows] == EXPECTED_T01  # type: ignore[index]
    tops = [r["top"] for r in rows]  # type: ignore[index]
    assert tops == sorted(tops) and len(set(tops)) == len(tops)  # one below the other
    assert data["scroll"] <= data["width"]  # nothing wider than the screen
    for r in rows:  # type: ignore[attr-defined]
        assert 0 <= r["left"] < r["right"] <= data["width"]


@pytest.mark.parametrize(("width", "scale"), [(390, 2.0), (1280, 1.0)])
def test_the_page_is_not_blank(page: Path, tmp_path: Path, width: int, scale: float) -> None:
    import numpy as np
    from PIL import Image

    png = browser.screenshot(page, tmp_path / "shot.png", width=width, scale=scale)
    with Image.open(png) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.int16)
    height, w, _ = rgb.shape
    assert w == int(width * scale) and height > 600 * scale
    ink = (rgb.min(axis=2) < 235).mean()
    assert ink > 0.04  # text, tiles and rows
    coloured = rgb[(rgb.max(axis=2) - rgb.min(axis=2)) > 80]
    hues = {tuple(int(c) for c in px) for px in coloured[:: max(1, len(coloured) // 4000)]}
    # the four attention colours are all on the page (Okabe-Ito red, orange, blue, green)
    for colour in ((0xD5, 0x5E, 0x00), (0xE6, 0x9F, 0x00), (0x00, 0x72, 0xB2), (0x00, 0x9E, 0x73)):
        assert any(sum(abs(a - b) for a, b in zip(px, colour, strict=True)) < 40 for px in hues)


def test_it_prints(page: Path, tmp_path: Path) -> None:
    pdf = browser.print_pdf(page, tmp_path / "caseload.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 1  # five clients fit one sheet
