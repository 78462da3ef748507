"""SimplePractice bridge: the outbox (note.txt, summary.csv, index.csv) and its idempotence."""

from __future__ import annotations

import copy
import csv
import io
from pathlib import Path
from typing import Any

import pytest

from fit_adapters.simplepractice.note import MAX_NOTE, render_note, render_summary_csv
from fit_adapters.simplepractice.outbox import Outbox, slug
from fit_core.measures import COPYRIGHT_LINES
from fit_core.models import OutboxItem
from fit_core.scoring import encode_payload, payload_hash

LONG = (
    "Dropout risk: 2 of the last 3 appointments missed: reach out to the client and ask "
    "whether and how to continue."
)


def summary(client: str = "C001", clinician: str | None = "T07", **changes: Any) -> dict:
    """A client summary shaped like fit_core.episodes.client_summary's."""
    data: dict[str, Any] = {
        "client_id": client,
        "episode_id": "auto-2026-03-02",
        "clinician_id": clinician,
        "sessions": 3,
        "first_date": "2026-03-02",
        "last_date": "2026-03-16",
        "ors": {
            "measure": "ORS",
            "date": "2026-03-16",
            "session": 3,
            "total": 24.5,
            "intake": 18.0,
            "change_from_intake": 6.5,
            "rc_class": "improved",
            "clinical": True,
            "cutoff": 25.0,
            "status": None,
            "expected": None,
            "history": [18.0, 20.0, 24.5],
        },
        "srs": {
            "measure": "SRS",
            "date": "2026-03-16",
            "session": 3,
            "total": 39.0,
            "clinical": False,
            "change_from_previous": 1.0,
            "history": [38.0, 38.0, 39.0],
        },
        "flags": [
            {
                "rule_id": "ors.missing",
                "severity": "info",
                "date": "2026-03-16",
                "message": "1 attended session(s) without an ORS (2026-03-26): give the ORS at "
                "the start of every session.",
            },
            {
                "rule_id": "attendance.dropout_risk",
                "severity": "warning",
                "date": "2026-03-16",
                "message": LONG,
            },
        ],
        "next_appointment": None,
    }
    data.update(changes)
    return data


def item(payload: dict) -> OutboxItem:
    encoded = encode_payload(payload)
    key = f"client:clinic:{payload['client_id']}"
    return OutboxItem(
        "sp",
        key,
        payload,
        payload_hash(payload, encoded),
        {"namespace": "clinic", "client_id": payload["client_id"]},
        encoded,
    )


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- the note ----------------------------------------------------------------------------------


def test_note_says_scores_change_status_flags_and_copyright_within_600_chars() -> None:
    note = render_note(summary())
    assert len(note) <= MAX_NOTE
    assert "ORS 24.5 on 2026-03-16 (intake 18, change +6.5: improved)" in note
    assert "clinical range (cutoff 25)" in note and "Status: none (no trajectory model)" in note
    assert "SRS 39 on 2026-03-16 (change +1)" in note
    assert "No future appointment booked." in note
    lines = note.splitlines()
    assert lines.index("To discuss:") < lines.index("- " + LONG)  # warning first, then info
    assert lines[lines.index("- " + LONG) + 1].startswith("- 1 attended session")
    assert lines[-2:] == list(COPYRIGHT_LINES)


def test_note_abbreviates_many_long_flags_and_stays_within_600_chars() -> None:
    flags = [
        {
            "rule_id": f"x.rule{i}",
            "severity": "alert",
            "date": "2026-03-16",
            "message": "Discuss this at length " * 5,
        }
        for i in range(8)
    ]
    flags[0] = dict(flags[0], date="2026-03-09", message="An older alert to discuss.")
    note = render_note(summary(flags=flags, status="green"))
    assert len(note) <= MAX_NOTE
    assert note.splitlines()[-2:] == list(COPYRIGHT_LINES)
    # whole sentences only: what does not fit is left out and counted, never cut
    listed = [ln for ln in note.splitlines() if ln.startswith("- ")]
    assert listed and all(
        ln == "- " + ("Discuss this at length " * 5).strip() + "." for ln in listed
    )
    assert "…" not in note and "An older alert" not in note
    assert f"({8 - len(listed)} more open alerts, older or less urgent, not shown.)" in note


def test_a_note_never_cuts_a_sentence_whatever_the_alerts() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    words = st.lists(
        st.sampled_from(["Ask", "about", "the", "alliance", "ORS", "12.5"]), min_size=1
    )
    sentence = words.map(lambda w: " ".join(w)[:300] + ".")
    flag = st.fixed_dictionaries(
        {
            "rule_id": st.sampled_from(["a.one", "b.two", "c.three", "d.four", "e.five"]),
            "severity": st.sampled_from(["alert", "warning", "info"]),
            "date": st.sampled_from(["2026-03-02", "2026-03-09", "2026-03-16"]),
            "message": sentence,
        }
    )

    @settings(max_examples=150, deadline=None)
    @given(st.lists(flag, max_size=6))
    def check(flags: list[dict]) -> None:
        note = render_note(summary(flags=flags))
        assert len(note) <= MAX_NOTE and note.splitlines()[-2:] == list(COPYRIGHT_LINES)
        messages = {f["message"] for f in flags}
        for line in note.splitlines():
            if line.startswith("- "):
                assert line[2:] in messages  # a whole message, as raised

    check()


def test_note_without_scores_flags_or_model_and_with_a_colour() -> None:
    note = render_note(summary(ors=None, srs=None, flags=[], next_appointment="2026-04-09"))
    assert "ORS: none in this episode yet." in note and "No open alerts." in note
    assert "Next appointment: 2026-04-09." in note
    data = summary()
    data["ors"] = dict(data["ors"], status="orange")
    assert "Status: orange." in render_note(data)


def test_summary_csv_lists_the_scores_and_guards_formulas() -> None:
    rows = list(csv.reader(io.StringIO(render_summary_csv(summary(client="=cmd")))))
    assert rows[0][:6] == [
        "client_id",
        "episode_id",
        "measure",
        "number",
        "total",
        "change_from_first",
    ]
    ors = [r for r in rows[1:] if r[2] == "ORS"]
    assert [r[4] for r in ors] == ["18", "20", "24.5"] and ors[-1][5] == "+6.5"
    assert ors[-1][6:10] == ["2026-03-16", "3", "improved", ""] and ors[0][6] == ""
    assert [r[4] for r in rows[1:] if r[2] == "SRS"] == ["38", "38", "39"]
    assert all(r[0] == "'=cmd" for r in rows[1:])


# --- the outbox folder -------------------------------------------------------------------------


def test_outbox_writes_per_clinician_and_client_private_and_atomic(tmp_path: Path) -> None:
    root = tmp_path / "outbox"
    keys = Outbox(root, "2026-04-02T15:00:00+00:00").write(
        [item(summary()), item(summary("C002", None))]
    )
    assert keys == ["client:clinic:C001", "client:clinic:C002"]
    note = root / "T07" / "C001" / "note.txt"
    assert note.read_text(encoding="utf-8") == render_note(summary())
    assert (root / "unassigned" / "C002" / "summary.csv").is_file()
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), path
    assert not list(root.rglob("*.tmp"))
    index = list(csv.DictReader(io.StringIO((root / "index.csv").read_text())))
    assert [(r["state"], r["client_id"], r["note"]) for r in index] == [
        ("new", "C001", "T07/C001/note.txt"),
        ("new", "C002", "unassigned/C002/note.txt"),
    ]


def test_pushing_the_same_items_again_changes_no_file(tmp_path: Path) -> None:
    root = tmp_path / "outbox"
    items = [item(summary()), item(summary("C002"))]
    Outbox(root, "run-1").write(items)
    before = tree(root)
    Outbox(root, "run-1").write(items)
    Outbox(root, "run-2").write(copy.deepcopy(items))
    assert tree(root) == before


def test_index_lists_only_what_changed_in_the_latest_run(tmp_path: Path) -> None:
    root = tmp_path / "outbox"
    Outbox(root, "run-1").write([item(summary()), item(summary("C002"))])
    changed = summary(srs=dict(summary()["srs"], total=33.0))
    Outbox(root, "run-2").write([item(changed), item(summary("C002")), item(summary("C003"))])
    index = list(csv.DictReader(io.StringIO((root / "index.csv").read_text())))
    assert [(r["state"], r["client_id"], r["changed_at"]) for r in index] == [
        ("changed", "C001", "run-2"),
        ("new", "C003", "run-2"),
    ]
    assert "SRS 33" in (root / "T07" / "C001" / "note.txt").read_text()


def test_a_client_whose_clinician_changes_moves_folder(tmp_path: Path) -> None:
    root = tmp_path / "outbox"
    Outbox(root, "run-1").write([item(summary())])
    Outbox(root, "run-2").write([item(summary(clinician="Sam Okafor, PhD"))])
    assert not (root / "T07").exists()
    (moved,) = [p for p in root.rglob("note.txt")]
    assert moved.parent.name == "C001" and moved.parent.parent.name == slug("Sam Okafor, PhD")
    assert slug("Sam Okafor, PhD").startswith("Sam_Okafor_PhD-")


def test_clear_one_client_or_all_and_files_deleted_by_hand_come_back(tmp_path: Path) -> None:
    root = tmp_path / "outbox"
    box = Outbox(root, "run-1")
    box.write([item(summary()), item(summary("C002"))])
    assert [e.client_id for e in box.clear("C001")] == ["C001"]
    assert not (root / "T07" / "C001").exists() and [e.client_id for e in box.entries()] == ["C002"]
    (root / "T07" / "C002" / "note.txt").unlink()
    box.write([item(summary("C002"))])
    assert (root / "T07" / "C002" / "note.txt").is_file()
    assert len(box.clear()) == 1 and box.entries() == []
    assert not (root / "T07").exists()


@pytest.mark.parametrize("value", ["C/../x", "..", "a b", "Ünïcode"])
def test_folder_names_are_safe_and_distinct(value: str) -> None:
    name = slug(value)
    assert "/" not in name and not name.startswith(".") and name != slug(value + "_")
