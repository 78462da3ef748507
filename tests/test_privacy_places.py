"""Erasure reaches every place: a SimplePractice outbox (note, scores file, report page) and its
link book, a CSV scores file, and places a plugin registers (synthetic data only)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fit_adapters.csv as csv_plugin
import fit_adapters.simplepractice as sp_plugin
from fit_core.config import config_from_mapping
from fit_core.erasure import PrivacyJob, erase_client, register_place, survey_client
from fit_core.errors import ConfigError
from fit_core.hookspecs import hookimpl
from fit_core.plugins import load_plugins
from fit_core.rules import builtin
from fit_core.store import Store
from fit_core.sync import SyncEngine

sys.path.insert(0, str(Path(__file__).parent / "data" / "simplepractice"))
import sp_synthetic as syn

PRIVACY_KEY = "places-test-privacy-key"


def secret(source: str, key: str) -> str:
    if (source, key) == ("sp", "name_key"):
        return syn.NAME_KEY
    if (source, key) == ("privacy", "hash_key"):
        return PRIVACY_KEY
    raise ConfigError(f"no secret {key!r} for {source!r}")


class LedgerPlace:
    """A plugin's place: a notification ledger that names clients."""

    order = 50

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = "notification ledger"

    def survey(self, job: PrivacyJob) -> list[str]:
        n = sum(job.client_id in line for line in self.path.read_text().splitlines())
        return [f"{n} notification(s)"] if n else []

    def erase(self, job: PrivacyJob) -> list[str]:
        lines = self.path.read_text().splitlines()
        kept = [line for line in lines if job.client_id not in line]
        self.path.write_text("".join(f"{line}\n" for line in kept))
        return [f"{len(lines) - len(kept)} notification(s) removed"]


def make(tmp_path: Path, plugin: object | None = None) -> tuple[Any, Any]:
    syn.inbox(tmp_path, syn.STATUS_REPORT, syn.BILLING_REPORT)
    syn.link_all(tmp_path / "links.csv")
    scores = tmp_path / "scores"
    scores.mkdir()
    (scores / "fit.csv").write_text(syn.SCORES, encoding="utf-8")
    config = config_from_mapping(
        {
            "store": {"path": str(tmp_path / "fit.sqlite3")},
            "sync": {"timezone": syn.TIMEZONE},
            "sources": {
                "clinic_csv": {
                    "adapter": "csv",
                    "namespace": "clinic",
                    "path": str(scores),
                    "scores_path": str(tmp_path / "scores.out.csv"),
                },
                "sp": {
                    "adapter": "simplepractice",
                    **syn.sp_options(tmp_path, tmp_path / "exports"),
                },
            },
        }
    )
    extra = [builtin, csv_plugin, sp_plugin, *([plugin] if plugin else [])]
    return config, load_plugins(extra=extra, entry_points=False)


def run(config: Any, registry: Any) -> Any:
    store = Store.open(config.store_path)
    try:
        return SyncEngine(config, registry, store, secret=secret, clock=lambda: syn.NOW).run()
    finally:
        store.close()


def test_erasing_a_linked_client_clears_the_outbox_the_links_and_the_scores(
    tmp_path: Path,
) -> None:
    config, registry = make(tmp_path)
    run(config, registry)
    outbox = tmp_path / "outbox"
    folders = [p for p in outbox.rglob("*") if p.is_dir() and p.name == "C001"]
    assert folders and (folders[0] / "note.txt").exists()
    assert "C001" in (tmp_path / "links.csv").read_text(encoding="utf-8")

    store = Store.open(config.store_path)
    try:
        job = PrivacyJob(store, config, registry, secret, "clinic", "C001")
        survey = {p.place: p.lines for p in survey_client(job).places}
        assert survey["target sp"] == ["the client's summary (note, scores file, report page)"]
        assert survey["target clinic_csv"] == ["6 score row(s)"]
        report = erase_client(PrivacyJob(store, config, registry, secret, "clinic", "C001"))
    finally:
        store.close()
    places = {p.place: p.lines for p in report.places}
    assert not report.incomplete, places
    assert any("link(s) in the link book set to ignored" in x for x in places["target sp"])
    assert report.sources["clinic_csv"] == 6 and report.sources["sp"] >= 5
    leftovers = [
        str(p)
        for p in (*outbox.rglob("*"), tmp_path / "links.csv", tmp_path / "scores.out.csv")
        if "C001" in str(p) or (p.is_file() and b"C001" in p.read_bytes())
    ]
    assert leftovers == []

    # the sources still hold C001: the CSV rows are refused and named; SimplePractice's rows
    # of that client are skipped as an ignored link (the practice keeps its own records)
    summary = run(config, registry)
    by = {s.name: s for s in summary.sources}
    assert by["clinic_csv"].refused == 0  # unchanged file: not read again
    (tmp_path / "scores" / "fit.csv").write_text(syn.SCORES + "\n", encoding="utf-8")
    by = {s.name: s for s in run(config, registry).sources}
    assert by["clinic_csv"].refused == 6 and by["clinic_csv"].new == 0
    assert any("erased" in p for p in by["clinic_csv"].problems)
    assert not [p for p in outbox.rglob("*") if "C001" in str(p)]


def test_a_plugin_place_is_surveyed_and_erased(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    ledger.write_text("C001 alert 1\nC002 alert 2\nC001 alert 3\n")

    class Plugin:
        @staticmethod
        @hookimpl
        def fit_register_privacy_places(register: Callable[[Any], None]) -> None:
            register(lambda job: [LedgerPlace(ledger)])

    config, registry = make(tmp_path, Plugin)
    run(config, registry)
    store = Store.open(config.store_path)
    try:
        job = PrivacyJob(store, config, registry, secret, "clinic", "C001")
        assert {p.place: p.lines for p in survey_client(job).places}["notification ledger"] == [
            "2 notification(s)"
        ]
        report = erase_client(PrivacyJob(store, config, registry, secret, "clinic", "C001"))
    finally:
        store.close()
    assert report.places[0].place == "notification ledger"  # plugins run before the store
    assert report.places[0].lines == ["2 notification(s) removed"]
    assert ledger.read_text() == "C002 alert 2\n"


def test_a_place_registered_in_code_is_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fit_core.erasure as erasure

    monkeypatch.setattr(erasure, "_FACTORIES", [])
    ledger = tmp_path / "pages.txt"
    ledger.write_text("C002 page\n")
    register_place(lambda job: [LedgerPlace(ledger)])
    config, registry = make(tmp_path)
    run(config, registry)
    store = Store.open(config.store_path)
    try:
        report = erase_client(PrivacyJob(store, config, registry, secret, "clinic", "C002"))
    finally:
        store.close()
    assert {p.place: p.lines for p in report.places}["notification ledger"] == [
        "1 notification(s) removed"
    ]
    assert ledger.read_text() == ""
