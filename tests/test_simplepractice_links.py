"""SimplePractice bridge: linking a practice's clients in bulk, the quarantine and exit codes
over the life of the links (unlinked -> imported -> ignored), and `-v` counts that add up.

Synthetic practice of 40 invented clients (tests/data/simplepractice/sp_synthetic.py).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from fit_core.errors import ExitCode

sys.path.insert(0, str(Path(__file__).parent / "data" / "simplepractice"))
import sp_synthetic as syn
from sp_clinic import Clinic

NAMES = tuple({part for c in syn.practice().clients for part in c.name.split()})


@pytest.fixture
def clinic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Clinic:
    return Clinic(tmp_path, monkeypatch)


def no_names(*texts: str) -> None:
    blob = "\n".join(texts)
    for name in NAMES:
        assert name not in blob, f"a client name was printed: {name}"


def unlinked_rows(clinic: Clinic) -> dict[str, str]:
    """location -> reason of every quarantine entry (all must be 'client not linked')."""
    entries = clinic.quarantine()
    assert all(q["reasons"]["client"].startswith("client not linked") for q in entries)
    return {q["location"]: q["source_key"] for q in entries}


def test_import_37_links_in_one_command_and_the_quarantine_keeps_only_the_unlinked(
    clinic: Clinic,
) -> None:
    first = clinic.fit("sync")
    assert first.exit_code == ExitCode.PARTIAL
    assert len(unlinked_rows(clinic)) == 40 * 12 + 40  # every appointment and client row

    linked, rest = clinic.p.clients[:37], clinic.p.clients[37:]
    links = syn.write_link_file(clinic.tmp / "links-to-import.csv", linked)
    typo = links.read_text(encoding="utf-8").replace(",R005", ",R905")
    links.write_text(typo, encoding="utf-8")

    dry = clinic.fit("clients", "import", str(links), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would link 37 client(s)" in dry.stdout and "37 new" in dry.stdout
    assert "unknown client ids" in dry.stdout and "R905" in dry.stdout
    assert "nothing changed" in dry.stdout
    no_names(dry.output)
    assert clinic.fit("clients", "list", "--json").stdout.strip() == "[]"  # dry: no link

    syn.write_link_file(links, linked)  # the typo fixed
    res = clinic.fit("clients", "import", str(links))
    assert res.exit_code == 0, res.output
    assert "linked 37 client(s)" in res.stdout and "unknown" not in res.stdout
    no_names(res.output, (clinic.tmp / "links.csv").read_text(encoding="utf-8"))
    book = json.loads(clinic.fit("clients", "list", "--json").stdout)
    assert sorted(b["client_id"] for b in book) == [c.client_id for c in linked]

    # the next sync re-reads everything: rows now stored leave the quarantine
    second = clinic.fit("sync")
    assert second.exit_code == ExitCode.PARTIAL
    left = unlinked_rows(clinic)
    assert len(left) == 3 * 12 + 3
    stored = clinic.attendance()
    assert len(stored) == 37 * 12 and not set(left.values()) & set(stored)

    # nothing changed: still PARTIAL, the same entries
    third = clinic.fit("sync")
    assert third.exit_code == ExitCode.PARTIAL and "still quarantined" in third.stderr
    assert unlinked_rows(clinic) == left

    # the last three are reviewed and not in FIT: ignored, their entries go, exit 0
    todo = json.loads(clinic.fit("clients", "list", "--unlinked", "--json").stdout)
    assert len(todo) == 3 and {e["sp_client_id"] for e in todo} == {str(c.sp_id) for c in rest}
    for entry in todo:
        assert clinic.fit("clients", "ignore", entry["ref"]).exit_code == 0
    done = clinic.fit("sync")
    assert done.exit_code == 0, done.output
    assert clinic.quarantine() == []
    assert clinic.fit("sync").exit_code == 0


def test_import_leaves_out_rows_it_cannot_link_and_says_which_by_line(clinic: Clinic) -> None:
    clinic.fit("sync")
    a, b, c = clinic.p.clients[:3]
    path = clinic.tmp / "links.csv.in"
    path.write_text(
        "SimplePractice client;FIT id\n"  # a header, another delimiter
        f"{a.name};{a.client_id}\n"
        f"{b.name.upper()};{b.client_id}\n"
        f"{b.name};R777\n"  # the same client with another id: both left out
        f"{c.name};\n"  # no id
        f"id:{c.sp_id};{c.client_id}\n"  # by SimplePractice id
        f"Nobody Anywhere;R888\n"  # not in the exports: linked, with a warning
        f"{a.name};{a.client_id}\n",  # a repeat: fine
        encoding="utf-8",
    )
    res = clinic.fit("clients", "import", str(path))
    assert res.exit_code == ExitCode.PARTIAL, res.output
    assert "linked 3 client(s)" in res.stdout
    assert "not in the current exports" in res.stdout and "unknown client ids" in res.stdout
    left_out = [line for line in res.stderr.splitlines() if line.startswith("left out:")]
    assert len(left_out) == 3, res.stderr
    assert re.search(r"line 3: n:\w+: two client ids", res.stderr)
    assert "line 4: n:" in res.stderr and "R777" not in res.stdout
    assert "line 5: no client id" in res.stderr
    no_names(res.output)
    book = {e["client_id"] for e in json.loads(clinic.fit("clients", "list", "--json").stdout)}
    assert book == {a.client_id, c.client_id, "R888"}


def test_import_refuses_a_name_two_clients_share(clinic: Clinic) -> None:
    rows = clinic.exports / "clients.csv"
    twin = clinic.p.clients[0]
    first, last = twin.name.split(" ", 1)
    with rows.open("a", encoding="utf-8") as f:
        f.write(f"2999,{first},{last},02/14/1999,Active,Robin Lee\n")
    links = syn.write_link_file(clinic.tmp / "in.csv", [twin])
    res = clinic.fit("clients", "import", str(links))
    assert res.exit_code == ExitCode.PARTIAL and "share this name" in res.stderr
    assert "linked 0 client(s)" in res.stdout


def test_import_reads_xlsx_and_never_echoes_a_bad_file(clinic: Clinic) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["Links for FIT"])
    ws.append(["Name", "Client ID"])
    for c in clinic.p.clients[:5]:
        ws.append([c.name, c.client_id])
    book.save(clinic.tmp / "links.xlsx")
    res = clinic.fit("clients", "import", str(clinic.tmp / "links.xlsx"), "--dry-run")
    assert res.exit_code == 0 and "would link 5 client(s)" in res.stdout
    (clinic.tmp / "bad.xlsx").write_bytes(b"not a workbook")
    res = clinic.fit("clients", "import", str(clinic.tmp / "bad.xlsx"))
    assert res.exit_code == ExitCode.CONFIG and "cannot read the link file" in res.stderr


# --- counts and exit codes ---------------------------------------------------------------------


def test_verbose_counts_add_up_and_clients_are_counted_once(clinic: Clinic) -> None:
    clinic.link(37)
    for _ in range(2):
        res = clinic.fit("-v", "sync")
        lines = [line for line in res.stdout.splitlines() if line.startswith("sp:")]
        (line,) = lines
        m = re.search(
            r"pulled (\d+) \(new (\d+), changed (\d+), unchanged (\d+), quarantined (\d+)\)", line
        )
        assert m, line
        pulled, *parts = (int(g) for g in m.groups())
        assert pulled == sum(parts) and pulled > 0, line
        rescored = re.search(r"clients rescored (\d+)", res.stdout)
        assert rescored and 0 < int(rescored[1]) <= 40, res.stdout
        (clinic.exports / "clients.csv").touch()  # same content: nothing re-read
        clinic.link(38)  # a new link: everything re-read
    summary = json.loads(clinic.fit("sync", "--json").stdout)
    sp = next(s for s in summary["sources"] if s["name"] == "sp")
    assert sp["pulled"] == 0 and sp["outstanding"] == 2 * 13 and summary["exit_code"] == 1


def test_a_missing_name_key_exits_3_in_sync_and_check(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FIT_SP_NAME_KEY")
    sync = clinic.fit("sync")
    assert sync.exit_code == ExitCode.CONFIG, sync.output
    assert "name_key" in sync.stderr
    check = clinic.fit("check")
    assert check.exit_code == ExitCode.CONFIG and "name_key" in check.stdout
