"""The caseload pages: who is on them, in which order, with what, written as privately as every
report, kept current after each sync and cleaned of clients no longer active."""

from __future__ import annotations

import datetime as dt
import json
import re
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from caseload_clinic import AS_OF, EXPECTED_T01, _row, caseload_clinic
from notify_clinic import NotifyClinic

from fit_core.reports.caseload_data import ATTENTION, attention_of
from fit_core.reports.caseload_files import MANIFEST, client_files, clinician_file
from fit_core.reports.caseload_html import sparkline_svg
from fit_core.reports.caseload_write import regenerate, write_caseload


def without_pseudonyms(text: str) -> str:
    """The text with every P-XXXXX-XXXXX taken out (a pseudonym may contain "G2" by chance)."""
    return re.sub(r"P-[A-Z2-7]{5}-[A-Z2-7]{5}", "P-…", text)


def order(html: str) -> list[tuple[str, str]]:
    return re.findall(r'data-attention="(\w+)"\s+data-client="([^"]+)"', html)


@pytest.fixture
def clinic(tmp_path: Path) -> NotifyClinic:
    c = caseload_clinic(tmp_path)
    yield c
    c.close()


def write(clinic: NotifyClinic, out: Path, **kwargs: object) -> object:
    return write_caseload(clinic.config, clinic.registry, clinic.store, out, as_of=AS_OF, **kwargs)


def test_attention_groups_in_order() -> None:
    assert attention_of(None, ["warning", "alert"], 0, 21) == ("red", ("1 alert",))
    assert attention_of("red", [], 0, 21) == ("red", ("well off track",))
    assert attention_of("orange", ["info"], 40, 21) == ("orange", ("not on track",))
    assert attention_of("green", ["info"], 21, 21) == ("stale", ("no session for 21 days",))
    assert attention_of("green", ["info"], 20, 21) == ("green", ())
    assert ATTENTION == ("red", "orange", "stale", "green")


def test_a_caseload_lists_active_clients_by_what_needs_attention(
    clinic: NotifyClinic, tmp_path: Path
) -> None:
    out = tmp_path / "caseload"
    result = write(clinic, out)
    page = (out / "caseload-T01.html").read_text(encoding="utf-8")
    assert order(page) == [
        ("red", "R1"), ("orange", "O1"), ("stale", "S1"), ("green", "G2"), ("green", "G1")
    ]  # fmt: skip
    assert [c for _a, c in order(page)] == EXPECTED_T01  # E1's episode has ended
    # each client: latest ORS and change since intake, SRS and its change, sessions, alerts
    r1 = page.split('data-client="R1"')[1].split("</li>\n</ol>")[0].split('data-client="O1"')[0]
    assert "<b>14.0</b>" in r1 and "−7.0 since intake" in r1 and "reliably deteriorated" in r1
    assert "<b>3</b>" in r1 and "last 8 Jun (2 days ago)" in r1
    assert "Reliable deterioration" in r1 and "ORS has reliably deteriorated" in r1
    assert 'aria-label="ORS by session: 21, 17.5, 14"' in r1
    o1 = page.split('data-client="O1"')[1].split('data-client="S1"')[0]
    assert "<b>37.0</b>" in o1 and "−2.0 since first" in o1 and "Alliance dropped" in o1
    s1 = page.split('data-client="S1"')[1].split('data-client="G1"')[0]
    assert "no session for 25 days" in s1
    # the index: every clinician with the counts of each group
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'href="caseload-T01.html"' in index and 'href="caseload-T02.html"' in index
    assert re.search(r"T01</a></th>\s*<td>1</td><td>1</td><td>1</td><td>2</td><td>5</td>", index)
    assert result.clients == 6 and len(result.client_pages) == 6


def test_pages_are_self_contained_private_and_link_to_the_client_reports(
    clinic: NotifyClinic, tmp_path: Path
) -> None:
    out = tmp_path / "caseload"
    result = write(clinic, out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE((out / "clients").stat().st_mode) == 0o700
    for path in [*result.pages, *result.client_pages, out / MANIFEST]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    page = (out / "caseload-T01.html").read_text(encoding="utf-8")
    assert "default-src 'none'" in page and "<script" not in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched or linked out
    assert "ORS © 2000 Scott D. Miller and Barry L. Duncan." in page
    links = re.findall(r'<a class="name" href="([^"]+)">', page)
    assert len(links) == 5
    for link in links:
        assert re.fullmatch(r"clients/P-[A-Z2-7]{5}-[A-Z2-7]{5}\.html", link)
        client = (out / link).read_text(encoding="utf-8")
        assert "client report" in client and "default-src 'none'" in client
    # the manifest finds every file of a client, for erasing one
    (r1_page,) = client_files(out, "mem", "R1")
    assert r1_page == out / links[0]


def test_the_pseudonym_option_hides_client_ids_everywhere(
    clinic: NotifyClinic, tmp_path: Path
) -> None:
    out = tmp_path / "caseload"
    write(clinic, out, pseudonymous=True)
    for path in out.rglob("*.html"):
        text = without_pseudonyms(path.read_text(encoding="utf-8"))
        name = without_pseudonyms(path.name)
        for client in ("R1", "O1", "S1", "G1", "G2", "X9"):
            assert not re.search(rf"\b{client}\b", text), (path.name, client)
            assert client not in name
    page = (out / "caseload-T01.html").read_text(encoding="utf-8")
    assert len(re.findall(r'data-client="P-[A-Z2-7]{5}-[A-Z2-7]{5}"', page)) == 5


def test_one_clinician_only(clinic: NotifyClinic, tmp_path: Path) -> None:
    out = tmp_path / "caseload"
    result = write(clinic, out, clinicians=["t02"])
    assert [p.name for p in result.pages] == ["caseload-T02.html"]
    assert not (out / "index.html").exists() and result.clients == 1


def test_group_read_for_a_web_server(tmp_path: Path) -> None:
    c = caseload_clinic(tmp_path, reports={"caseload_group_read": True})
    out = tmp_path / "served"
    result = write(c, out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o750
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o640 for p in result.pages)
    c.close()


def test_after_a_sync_the_pages_follow_the_data(tmp_path: Path) -> None:
    from fit_core.aftersync import after_sync

    out = tmp_path / "caseload"
    c = caseload_clinic(tmp_path, reports={"caseload_dir": str(out)})
    now = dt.datetime.combine(AS_OF, dt.time(6), tzinfo=dt.UTC)
    assert after_sync(c.config, c.registry, c.store, clock=lambda: now) == []
    page = (out / "caseload-T01.html").read_text(encoding="utf-8")
    assert [x for _a, x in order(page)] == EXPECTED_T01
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    g2_page = out / manifest["clients"]["mem/G2"][0]
    assert "15.0" not in g2_page.read_text(encoding="utf-8")
    r1_page = out / manifest["clients"]["mem/R1"][0]
    r1_before = r1_page.stat().st_mtime_ns
    # G2 deteriorates today
    c.put("G2-o2", _row("G2", 0, "ORS", 15.0, "T01"))
    summary = c.sync()
    assert summary.rescored == {("mem", "G2")}
    assert "ors.reliable_deterioration" in {a["rule_id"] for a in c.store.list_flags(client="G2")}
    notes = after_sync(c.config, c.registry, c.store, rescored=summary.rescored,
                       clock=lambda: now)  # fmt: skip
    assert notes == []
    page = (out / "caseload-T01.html").read_text(encoding="utf-8")
    assert sorted(order(page)[:2]) == [("red", "G2"), ("red", "R1")]
    assert "15.0" in g2_page.read_text(encoding="utf-8")  # its report is drawn again
    assert r1_page.stat().st_mtime_ns == r1_before  # not rescored, same day: kept as it was
    c.close()


def test_switching_to_pseudonyms_redraws_every_report(tmp_path: Path) -> None:
    out = tmp_path / "caseload"
    c = caseload_clinic(tmp_path, reports={"caseload_dir": str(out)})
    now = dt.datetime.combine(AS_OF, dt.time(6), tzinfo=dt.UTC)
    assert len(regenerate(c.config, c.registry, c.store, clock=lambda: now).client_pages) == 6
    assert regenerate(c.config, c.registry, c.store, clock=lambda: now).kept == 6
    c.raw["reports"]["caseload_pseudonym"] = True
    from fit_core.config import config_from_mapping

    c.config = config_from_mapping(c.raw, path=tmp_path / "config.toml")
    again = regenerate(c.config, c.registry, c.store, clock=lambda: now)
    assert len(again.client_pages) == 6 and again.kept == 0
    for page in again.client_pages:
        text = without_pseudonyms(page.read_text(encoding="utf-8"))
        assert not re.search(r"\b(R1|O1|S1|G1|G2|X9)\b", text)
    c.close()


def test_a_client_whose_episode_ends_leaves_the_pages(tmp_path: Path) -> None:
    out = tmp_path / "caseload"
    c = caseload_clinic(tmp_path, reports={"caseload_dir": str(out)})
    regenerate(c.config, c.registry, c.store,
               clock=lambda: dt.datetime.combine(AS_OF, dt.time(6), tzinfo=dt.UTC))  # fmt: skip
    s1 = out / json.loads((out / MANIFEST).read_text(encoding="utf-8"))["clients"]["mem/S1"][0]
    assert s1.exists()
    later = dt.datetime.combine(AS_OF + dt.timedelta(days=70), dt.time(6), tzinfo=dt.UTC)
    c.at(later)
    c.sync()
    result = regenerate(c.config, c.registry, c.store, clock=lambda: later)
    assert not s1.exists() and s1.resolve() in result.removed
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert "mem/S1" not in manifest["clients"]
    c.close()


def test_sparkline_is_a_small_accessible_svg() -> None:
    svg = sparkline_svg([10.0, 20.5, 40.0], cutoff=25.0, rc_zone=(5.0, 15.0), status="red")
    assert svg.startswith("<svg") and 'aria-label="ORS by session: 10, 20.5, 40"' in svg
    assert 'stroke-dasharray="3 2"' in svg and 'fill="#D55E00"' in svg  # cutoff; red last point
    points = re.search(r'points="([^"]+)"', svg)
    assert points is not None
    ys = [float(p.split(",")[1]) for p in points.group(1).split()]
    assert ys[0] > ys[1] > ys[2] == 4.0  # higher scores draw higher; 40 at the top edge
    assert "<polyline" not in sparkline_svg([12.0])  # one session: a dot


def test_fit_report_caseload_command(clinic: NotifyClinic, tmp_path: Path) -> None:
    from fit_cli.main import cli

    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[store]\npath = "{clinic.config.store_path}"\n[sync]\ntimezone = "UTC"\n',
        encoding="utf-8",
    )
    out = tmp_path / "pages"
    res = CliRunner().invoke(
        cli,
        ["--config", str(cfg), "report", "caseload", "--out", str(out),
         "--as-of", AS_OF.isoformat(), "--clinician", "T01"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    lines = res.stdout.split()
    assert lines[0] == str(out / clinician_file("T01")) and len(lines) == 1 + 5
    # in the audit log, and every file in the store's record of files written for its client
    res = CliRunner().invoke(cli, ["--config", str(cfg), "audit", "--json"])
    (entry,) = [e for e in json.loads(res.stdout) if e.get("target") == "caseload"]
    assert entry["action"] == "report" and entry["counts"] == {"files": 6, "clients": 5}
    recorded = {f["path"] for f in clinic.store.client_files("mem", "R1")}
    (r1_page,) = client_files(out, "mem", "R1")
    assert recorded == {str((out / clinician_file("T01")).resolve()), str(r1_page.resolve())}
