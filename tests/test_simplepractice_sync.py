"""SimplePractice bridge end to end: CSV-collected ORS/SRS + SimplePractice exports through the
real sync engine -> enriched scores, ors.missing, dropout flags on the configured patterns (and
not otherwise), the outbox; and the `fit clients` / `fit outbox` commands.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import fit_adapters.csv as csv_plugin
import fit_adapters.simplepractice as sp_plugin
from fit_cli.main import cli
from fit_core.config import config_from_mapping
from fit_core.errors import ConfigError, ExitCode
from fit_core.hookspecs import hookimpl
from fit_core.models import Scored
from fit_core.plugins import load_plugins
from fit_core.rules import builtin as builtin_rules
from fit_core.store import Store
from fit_core.sync import RunSummary, SyncEngine

sys.path.insert(0, str(Path(__file__).parent / "data" / "simplepractice"))
import sp_synthetic as syn

NAMES = ("Alex", "Blair", "Zoe", "Drew", "Jordan", "Casey")


class Capture:
    """A plugin that keeps what the engine scored (to check the enrichment)."""

    def __init__(self) -> None:
        self.scored: dict[tuple[str, str], Scored] = {}
        self.batches: list[tuple[str, set[str]]] = []

    @hookimpl
    def fit_scored(self, source: str, scored: list[Scored]) -> None:
        self.batches.append((source, {s.admin.source for s in scored}))
        for s in scored:
            self.scored[(s.admin.client_id, s.admin.source_key)] = s


def config_table(tmp_path: Path, exports: Path, **sp_extra: Any) -> dict[str, Any]:
    scores = tmp_path / "scores"
    scores.mkdir(exist_ok=True)
    (scores / "fit.csv").write_text(syn.SCORES, encoding="utf-8")
    (tmp_path / "out").mkdir(exist_ok=True)
    rules_table = sp_extra.pop("rules", {"dropout_missed": 2, "dropout_window": 3})
    return {
        "store": {"path": str(tmp_path / "fit.sqlite3")},
        "sync": {"timezone": syn.TIMEZONE},
        "sources": {
            # ORS/SRS first: the practice source runs after them (see docs/simplepractice.md)
            "clinic_csv": {
                "adapter": "csv",
                "namespace": "clinic",
                "path": str(scores),
                "scores_path": str(tmp_path / "out" / "scores.csv"),
            },
            "sp": {"adapter": "simplepractice", **syn.sp_options(tmp_path, exports, **sp_extra)},
        },
        "rules": rules_table,
    }


def secret(source: str, key: str) -> str:
    if (source, key) == ("sp", "name_key"):
        return syn.NAME_KEY
    raise ConfigError(f"no secret {key!r} for {source!r}")


class Harness:
    def __init__(
        self, tmp_path: Path, exports: Path, now: dt.datetime = syn.NOW, **sp_extra: Any
    ) -> None:
        self.capture = Capture()
        self.config = config_from_mapping(config_table(tmp_path, exports, **sp_extra))
        registry = load_plugins(
            extra=[builtin_rules, csv_plugin, sp_plugin, self.capture], entry_points=False
        )
        self.store = Store.open(self.config.store_path)
        self.engine = SyncEngine(
            self.config, registry, self.store, secret=secret, clock=lambda: now
        )
        self.outbox = tmp_path / "outbox"

    def run(self) -> RunSummary:
        return self.engine.run()

    def flags(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for f in self.store.list_flags("open"):
            out.setdefault(f["client_id"], set()).add(f["rule_id"])
        return out

    def note(self, client: str) -> str:
        (path,) = self.outbox.glob(f"*/{client}/note.txt")
        return path.read_text(encoding="utf-8")


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    exports = syn.inbox(tmp_path, syn.STATUS_REPORT, syn.BILLING_REPORT)
    syn.link_all(tmp_path / "links.csv")
    h = Harness(tmp_path, exports)
    yield h
    h.store.close()


def test_exports_enrich_scores_raise_attendance_flags_and_fill_the_outbox(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    summary = harness.run()
    by = {s.name: s for s in summary.sources}
    assert by["clinic_csv"].status == "ok"
    # unlinked, ambiguous and unknown-status rows: reported by row, the rest went through
    assert by["sp"].status == "partial" and summary.exit_code == ExitCode.PARTIAL
    assert by["sp"].quarantined == 7 and by["sp"].pushed == 4
    quarantined = {q["location"]: q["reasons"] for q in harness.store.quarantined("sp")}
    assert quarantined["appointment_status.csv line 15"]["client"].startswith("client not linked")
    assert "'Rescheduled'" in quarantined["appointment_status.csv line 20"]["status"]
    # enrichment: clinician from the appointment that day, age band from the date of birth
    scored = harness.capture.scored
    alex = [s for (c, _), s in scored.items() if c == "C001" and s.admin.measure == "ORS"]
    assert {s.admin.clinician_id for s in alex} == {"T07"}
    assert {s.score.age_band for s in alex} == {"adult"}
    blair = [s for (c, _), s in scored.items() if c == "C002" and s.admin.measure == "ORS"]
    assert {s.score.age_band for s in blair} == {"adolescent"} and blair[0].score.cutoff == 28
    assert {s.admin.clinician_id for s in blair} == {"Sam Okafor, PhD"}
    # flags: Alex missed his last two appointments but is booked again (04/06): a booking is a
    # plan, no dropout risk; Blair missed one and came back -> none either
    flags = harness.flags()
    assert "attendance.dropout_risk" not in flags.get("C001", set())
    assert "attendance.dropout_risk" not in flags.get("C002", set())
    assert "ors.missing" in flags["C002"] and "ors.missing" not in flags.get("C001", set())
    (missing,) = [
        f
        for f in harness.store.list_flags("open")
        if f["client_id"] == "C002" and f["rule_id"] == "ors.missing"
    ]
    assert missing["inputs"]["dates"] == ["2026-03-17"]
    # the outbox: one folder per clinician and client, a note and a summary each
    note = harness.note("C001")
    assert len(note) <= 600 and "ORS 24.5 on 2026-03-16" in note
    assert "Next appointment: 2026-04-06." in note and "Dropout risk" not in note
    assert "(intake 18, change +6.5: improved)" in note and "© 2000" in note
    assert (harness.outbox / "T07" / "C001" / "summary.csv").is_file()
    blair_note = harness.note("C002")
    assert "without an ORS (2026-03-17)" in blair_note and "Next appointment: 2026-04-07." in (
        blair_note
    )
    index = list(csv.DictReader(io.StringIO((harness.outbox / "index.csv").read_text())))
    assert sorted(r["client_id"] for r in index) == ["C001", "C002", "C003", "C004"]
    assert {r["state"] for r in index} == {"new"}
    # no client name anywhere: logs, quarantine, bookmarks, the store, the outbox
    blob = caplog.text + json.dumps(harness.store.quarantined()) + str(harness.store.bookmark("sp"))
    blob += "".join(p.read_text(errors="replace") for p in harness.outbox.rglob("*") if p.is_file())
    store = harness.config.store_path
    for path in (store, store.with_name(store.name + "-wal")):  # WAL mode: data may be there
        if path.exists():
            blob += path.read_bytes().decode("latin-1")
    for name in NAMES:
        assert name not in blob


def test_fit_scored_names_the_source_being_synced_not_a_practice_source(
    harness: Harness,
) -> None:
    """A changed setting rescores every client while the first source (the CSV one) syncs: each
    batch is announced with that source's name, even for clients whose practice source (which
    gets a progress note per client) is another one."""
    harness.run()
    harness.capture.batches.clear()
    harness.store.set_meta("scoring_fingerprint", "{}")  # as if the settings had changed
    harness.run()
    assert harness.capture.batches
    assert {source for source, _ in harness.capture.batches} == {"clinic_csv"}
    assert set().union(*(admins for _, admins in harness.capture.batches)) == {"clinic_csv"}


def test_second_sync_without_changes_writes_nothing(harness: Harness) -> None:
    harness.run()
    harness.run()  # the csv source re-pushes the flags the practice data added
    files = {p: p.read_bytes() for p in harness.outbox.rglob("*") if p.is_file()}
    third = harness.run()
    assert [s.pushed for s in third.sources] == [0, 0]
    assert {p: p.read_bytes() for p in harness.outbox.rglob("*") if p.is_file()} == files


def test_dropout_fires_on_the_configured_pattern_only(tmp_path: Path) -> None:
    exports = syn.inbox(tmp_path, syn.STATUS_REPORT, syn.BILLING_REPORT)
    syn.link_all(tmp_path / "links.csv")
    strict = Harness(tmp_path, exports, rules={"dropout_missed": 3, "dropout_window": 3})
    try:
        strict.run()
        assert all("attendance.dropout_risk" not in f for f in strict.flags().values())
    finally:
        strict.store.close()


def test_a_new_export_with_renamed_columns_adds_a_late_cancel_and_an_unscored_session(
    harness: Harness, tmp_path: Path
) -> None:
    harness.run()
    assert "attendance.dropout_risk" not in harness.flags().get("C002", set())
    exports = tmp_path / "exports"
    (exports / syn.RENAMED_REPORT).write_bytes((syn.HERE / syn.RENAMED_REPORT).read_bytes())
    columns = {"appointments": {"date": ["Appt Date", "Date"], "time": "Appt Time"}}
    later = syn.NOW + dt.timedelta(hours=1)  # same day: the same dates are "past"
    again = Harness(tmp_path, exports, now=later, columns=columns)
    try:
        again.run()
        flags = again.flags()
        # Blair: no-show 03/24, late cancel 03/27, then she came on 03/31 (and is booked for
        # 04/07): 2 of the last 3 missed, but the latest was attended -> no dropout risk
        assert "attendance.dropout_risk" not in flags.get("C002", set())
        # Alex attended on 03/26 without an ORS
        assert "ors.missing" in flags["C001"]
        index = list(csv.DictReader(io.StringIO((again.outbox / "index.csv").read_text())))
        # only Alex's note changed (a new alert); Blair's late cancel changes no line of hers
        assert {(r["client_id"], r["state"]) for r in index} == {("C001", "changed")}
    finally:
        again.store.close()


def test_dry_run_writes_no_outbox(tmp_path: Path) -> None:
    exports = syn.inbox(tmp_path, syn.STATUS_REPORT)
    syn.link_all(tmp_path / "links.csv")
    h = Harness(tmp_path, exports)
    try:
        summary = h.engine.run(dry_run=True)
        assert {s.name: s.would_push for s in summary.sources}["sp"] >= 3
        assert not h.outbox.exists() and h.store.bookmark("sp") is None
    finally:
        h.store.close()


def test_a_missing_name_key_fails_the_source_with_the_command_to_set_it(tmp_path: Path) -> None:
    exports = syn.inbox(tmp_path, syn.STATUS_REPORT)
    h = Harness(tmp_path, exports)
    h.engine.secret = lambda source, key: (_ for _ in ()).throw(
        ConfigError(
            f"secret {key!r} for source {source!r} is not set",
            hint=f"run `fit keys set {source} {key}`",
        )
    )
    try:
        summary = h.run()
        sp = {s.name: s for s in summary.sources}["sp"]
        assert sp.status == "failed" and sp.exit_code == ExitCode.CONFIG
        assert "fit keys set sp name_key" in (sp.error or "")
    finally:
        h.store.close()


# --- the commands --------------------------------------------------------------------------------


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


@pytest.fixture
def fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `fit ...` against a config with the csv and simplepractice sources."""
    exports = syn.inbox(tmp_path, syn.STATUS_REPORT, syn.BILLING_REPORT)
    table = config_table(tmp_path, exports)
    lines = [
        f"[store]\npath = {json.dumps(table['store']['path'])}",
        f'[sync]\ntimezone = "{syn.TIMEZONE}"',
    ]
    for name, src in table["sources"].items():
        lines.append(f"[sources.{name}]")
        lines += [f"{k} = {_toml(v)}" for k, v in src.items()]
    config = tmp_path / "config.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("FIT_SP_NAME_KEY", syn.NAME_KEY)

    def run(*args: str, input: str | None = None) -> Any:
        return CliRunner().invoke(cli, ["--config", str(config), *args], input=input)

    return run


def test_clients_list_unlinked_shows_hashes_and_rows_never_names(fit: Any) -> None:
    res = fit("clients", "list", "--unlinked", "--json")
    assert res.exit_code == 0, res.output
    entries = json.loads(res.stdout)
    assert Counter(e["state"] for e in entries) == {"unlinked": 5, "ambiguous": 1}
    drew = next(e for e in entries if e["sp_client_id"] == "1004")
    assert drew["rows"] == 3 and drew["ref"].startswith("n:") and "name" not in drew
    assert drew["where"] == [
        "appointment_status.csv line 15",
        "appointment_status.csv line 16",
        "clients.xlsx row 6",
    ]
    for name in NAMES:
        assert name not in res.output
    text = fit("clients", "list", "--unlinked").stdout
    assert "appointment_status.csv line 15" in text and "2 clients share this name" in text


def test_show_names_only_on_a_terminal(fit: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    res = fit("clients", "list", "--unlinked", "--show-names")
    assert res.exit_code == ExitCode.USAGE and "terminal" in res.output
    import fit_adapters.simplepractice.cli as sp_cli

    monkeypatch.setattr(sp_cli, "stdout_is_terminal", lambda: True)
    res = fit("clients", "list", "--unlinked", "--show-names")
    assert res.exit_code == 0 and "name: Drew Unlinked" in res.stdout


def test_link_by_hash_by_id_from_stdin_ignore_unlink(fit: Any, tmp_path: Path) -> None:
    listed = json.loads(fit("clients", "list", "--unlinked", "--json").stdout)
    drew = next(e for e in listed if e["sp_client_id"] == "1004")
    res = fit("clients", "link", drew["ref"][:8], "C009", "--source", "sp")
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith(f"linked {drew['ref']} -> C009 in namespace clinic")
    # ambiguous by name: refused; by SimplePractice id: fine
    res = fit("clients", "link", "Jordan Same", "C010")
    assert res.exit_code == ExitCode.CONFIG and "share the name" in res.output
    assert fit("clients", "link", "1005", "C010").exit_code == 0
    assert fit("clients", "ignore", "id:1006").exit_code == 0
    res = fit("clients", "link", "-", "C001", input="Blair Sample\n")
    assert res.exit_code == 0 and "-> C001" in res.stdout
    assert "Blair" not in (tmp_path / "links.csv").read_text()
    links = {e["ref"]: e for e in json.loads(fit("clients", "list", "--json").stdout)}
    assert links["id:1005"]["client_id"] == "C010" and links["id:1006"]["ignored"]
    assert fit("clients", "unlink", "1005").exit_code == 0
    assert fit("clients", "unlink", "1005").exit_code == ExitCode.USAGE
    remaining = json.loads(fit("clients", "list", "--unlinked", "--json").stdout)
    unlinked = {e["sp_client_id"] for e in remaining if e["state"] == "unlinked"}
    assert unlinked == {"1001", "1003", "1007"}  # Drew and Blair are linked now
    assert [e["sp_client_id"] for e in remaining if e["state"] == "ambiguous"] == ["1005"]


def test_outbox_list_and_clear_after_a_sync(fit: Any, tmp_path: Path) -> None:
    syn.link_all(tmp_path / "links.csv")
    res = fit("sync")
    assert res.exit_code == ExitCode.PARTIAL, res.output
    entries = json.loads(fit("outbox", "list", "--json").stdout)
    assert {e["client_id"] for e in entries} == {"C001", "C002", "C003", "C004"}
    assert all(e["in_latest_run"] and e["state"] == "new" for e in entries)
    assert "NEW" in fit("outbox", "list").stdout
    assert fit("outbox", "clear").exit_code == ExitCode.USAGE
    res = fit("outbox", "clear", "--client", "C001")
    assert res.exit_code == 0 and "1 client(s)" in res.stdout
    assert not list((tmp_path / "outbox").glob("*/C001"))
    assert fit("outbox", "clear", "--all").exit_code == 0
    assert json.loads(fit("outbox", "list", "--json").stdout) == []


def test_keys_set_knows_the_name_key(fit: Any) -> None:
    res = fit("keys", "list", "--json")
    assert res.exit_code == 0, res.output
    assert "name_key" in res.stdout


def test_dates_cross_dst_in_the_clinic_timezone() -> None:
    from fit_adapters.simplepractice.values import to_utc

    tz = __import__("zoneinfo").ZoneInfo(syn.TIMEZONE)
    assert to_utc(dt.datetime(2026, 3, 6, 9), tz).hour == 15  # CST
    assert to_utc(dt.datetime(2026, 3, 9, 9), tz).hour == 14  # CDT after 03/08
