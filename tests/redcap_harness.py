"""Helpers for end-to-end tests of the REDCap adapter against the loopback fake (synthetic data).

:func:`make_engine` builds a :class:`~fit_core.sync.SyncEngine` with REDCap sources over a store
under ``tmp_path``; :func:`session_rows` and :func:`mixed_rows` read the fake's state the way a
clinician reads the scoring instrument: one row, one session.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fakes.redcap_fake import NOT_COMPLETED, TOKEN, FakeProject

from fit_adapters.redcap.adapter import RedcapAdapter
from fit_core.adapter import Adapter
from fit_core.config import config_from_mapping
from fit_core.errors import ConfigError
from fit_core.hookspecs import hookimpl
from fit_core.plugins import load_plugins
from fit_core.rules import builtin as builtin_rules
from fit_core.store import Store
from fit_core.sync import SourceResult, SyncEngine

SOURCE = "clinic_redcap"


def make_engine(
    tmp_path: Path,
    options: Mapping[str, Any],
    *,
    token: str = TOKEN,
    timezone: str = "America/Chicago",
    sources: Mapping[str, tuple[Mapping[str, Any], str]] | None = None,
) -> SyncEngine:
    """An engine with the REDCap source ``clinic_redcap`` (``options``, ``token``), or with
    ``sources`` (name -> (options, token)) instead."""

    class Shim:
        @staticmethod
        @hookimpl
        def fit_register_adapters(register: Callable[[type[Adapter]], None]) -> None:
            register(RedcapAdapter)

    table = dict(sources or {SOURCE: (options, token)})
    config = config_from_mapping(
        {
            "store": {"path": str(tmp_path / "fit.sqlite3")},
            "sync": {"timezone": timezone},
            "sources": {name: {"adapter": "redcap", **opts} for name, (opts, _) in table.items()},
        }
    )
    registry = load_plugins(extra=[builtin_rules, Shim], entry_points=False)

    def secret(source: str, key: str) -> str:
        if key == "token":
            return table[source][1]
        raise ConfigError(f"no secret {key}")

    return SyncEngine(config, registry, Store.open(config.store_path), secret=secret)


def run(engine: SyncEngine, name: str = SOURCE) -> SourceResult:
    """Sync everything; the result of source ``name``."""
    return {s.name: s for s in engine.run().sources}[name]


def accepted_by_date(
    project: FakeProject,
) -> dict[tuple[str, str, str], dict[str, list[tuple[int | None, float]]]]:
    """(record, event, clinic date) -> form -> [(instance, total)] of every administration a
    sync scores (status 2 and a survey timestamp; server and clinic zones are the same)."""
    out: dict[tuple[str, str, str], dict[str, list[tuple[int | None, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for record, rows in project.data.items():
        for (event, _ri, instance), row in rows.items():
            for form in ("ors", "srs"):
                stamp = row.get(f"{form}_timestamp", "")
                if row.get(f"{form}_complete") != "2" or not stamp or stamp == NOT_COMPLETED:
                    continue
                total = round(sum(int(row[f"{form}_{i}"]) for i in range(1, 5)) / 10, 1)
                out[(record, event, stamp[:10])][form].append((instance, total))
    return out


def mixed_rows(project: FakeProject, scores: str = "fit_scores") -> list[str]:
    """Scoring rows that do not describe exactly one session: a row whose ORS or SRS total is
    not the total of that measure on the row's date, or a session with no row or two.
    Returns descriptions (empty: every row is one session)."""
    sessions = accepted_by_date(project)
    problems: list[str] = []
    seen: dict[tuple[str, str, str], list[int | None]] = defaultdict(list)
    for (record, (event, _ri, instance)), values in project.form_rows(scores).items():
        day = values.get("fit_date", "")
        where = f"record {record} {event} #{instance}"
        if not day:
            problems.append(f"{where}: no date")
            continue
        seen[(record, event, day)].append(instance)
        expected = sessions.get((record, event, day), {})
        for form in ("ors", "srs"):
            written = values.get(f"fit_{form}_total", "")
            totals = {f"{t:.1f}" for _, t in expected.get(form, [])}
            if written and written not in totals:
                problems.append(f"{where}: {form} total {written} is not of {day}")
            if totals and not written:
                problems.append(f"{where}: the {form} of {day} is missing")
        ors_session, srs_session = values.get("fit_ors_session"), values.get("fit_srs_session")
        if ors_session and srs_session and ors_session != srs_session:
            problems.append(f"{where}: two session numbers")
    for key in sessions:
        if len(seen.get(key, [])) != 1:
            problems.append(f"{key}: {len(seen.get(key, []))} rows")
    return problems


def paired_rows_would_mix(project: FakeProject) -> int:
    """How many (record, event, n) pair ORS #n with an SRS #n of another date: what the old
    layout (instance n of every measure in one row) would have mixed."""
    mixed = 0
    for rows in project.data.values():
        for (event, ri, n), row in rows.items():
            if ri != "srs" or not row.get("srs_timestamp") or row["srs_timestamp"] == NOT_COMPLETED:
                continue
            ors = rows.get((event, "ors", n), {}).get("ors_timestamp", "")
            if ors and ors[:10] != row["srs_timestamp"][:10]:
                mixed += 1
    return mixed


def now_local(tz: str) -> dt.datetime:
    """The wall time in ``tz`` (naive, whole seconds)."""
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(tz)).replace(tzinfo=None, microsecond=0)
