"""SimplePractice bridge: the client's report page in the outbox (reports extra installed).

The page is the one `fit report client` writes, for the client's latest episode: written
mode 0600 beside the note, self-contained (nothing fetched), with the client id and no name,
listed in index.csv; left out with report_page = false or without the extra.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "data" / "simplepractice"))
from sp_clinic import Clinic

pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")


def test_the_report_page_is_private_self_contained_and_names_no_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clinic = Clinic(tmp_path, monkeypatch, report_page=True)
    clinic.link(4)
    res = clinic.fit("sync")
    assert res.exit_code == 1  # 36 clients not linked
    outbox = tmp_path / "outbox"
    pages = sorted(outbox.glob("*/*/report.html"))
    assert {p.parent.name for p in pages} == {c.client_id for c in clinic.p.clients[:4]}
    for page in pages:
        assert page.stat().st_mode & 0o777 == 0o600
        html = page.read_text(encoding="utf-8")
        client = page.parent.name
        assert f"client {client}" in html and "Content-Security-Policy" in html
        assert "© 2000 Scott D. Miller and Barry L. Duncan" in html
        # self-contained: no script, image, style sheet or font from anywhere
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
        assert "<script" not in html.lower()
        for c in clinic.p.clients:
            for part in c.name.split():
                assert part not in html
    index = list(csv.DictReader(io.StringIO((outbox / "index.csv").read_text())))
    assert {r["report"] for r in index} == {
        f"{p.parent.parent.name}/{p.parent.name}/report.html" for p in pages
    }
    # nothing changed for them: their pages stay as they were
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in pages}
    clinic.fit("sync")
    clinic.link(5)  # a new link re-reads the exports and pushes the new client
    clinic.fit("sync")
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in pages} == before
    assert len(list(outbox.glob("*/*/report.html"))) == 5


def test_report_page_false_or_no_reports_extra_leaves_it_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    off = Clinic(tmp_path / "off", monkeypatch, report_page=False)
    off.link(2)
    off.fit("sync")
    assert list((tmp_path / "off" / "outbox").glob("*/*/note.txt"))
    assert not list((tmp_path / "off" / "outbox").glob("*/*/report.html"))

    from fit_core.errors import ConfigError
    from fit_core.reports import deps

    def missing() -> None:
        raise ConfigError("`fit report` needs matplotlib")

    monkeypatch.setattr(deps, "require_reports", missing)
    bare = Clinic(tmp_path / "bare", monkeypatch, report_page=True)
    bare.link(2)
    assert bare.fit("sync").exit_code == 1
    assert len(list((tmp_path / "bare" / "outbox").glob("*/*/note.txt"))) == 2
    assert not list((tmp_path / "bare" / "outbox").glob("*/*/report.html"))
