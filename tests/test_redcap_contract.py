"""The REDCap adapter passes the adapter contract suite against the loopback fake REDCap."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fakes.redcap_fake import (
    INTAKE,
    SESSION,
    TOKEN,
    RedcapFake,
    accepted,
    clinic_project,
    scores_state,
    source_options,
)

from fit_adapters.redcap import bookmark as redcap_bookmark
from fit_adapters.redcap.adapter import RedcapAdapter
from fit_adapters.redcap.rows import source_key
from fit_core.adapter import Adapter
from fit_core.errors import ConfigError
from fit_core.testing import AdapterContract, make_context


class TestRedcapContract(AdapterContract):
    """Longitudinal project, repeating instruments and a repeating event, 20 records."""

    adapter_class = RedcapAdapter
    source_name = "clinic_redcap"
    timezone = "America/Chicago"
    bookmark_is_time = False  # JSON: {"since": ISO time, "writes_until": ISO time or null}

    @pytest.fixture(autouse=True)
    def _fake(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        # no settle wait before back-to-back re-syncs (request counts are tested elsewhere)
        monkeypatch.setattr(redcap_bookmark, "SETTLE", 0.0)
        self.fake = RedcapFake(clinic_project(20, seed=7)).start()
        yield
        self.fake.stop()

    def source_options(self, tmp_path: Path) -> Mapping[str, Any]:
        return source_options(self.fake)

    def make_adapter(self, tmp_path: Path) -> Adapter:
        ctx = make_context(
            self.source_name,
            self.source_options(tmp_path),
            tmp_path,
            adapter=RedcapAdapter,
            timezone=self.timezone,
            secrets={"token": TOKEN},
        )
        return RedcapAdapter(ctx)

    def secret(self, source: str, key: str) -> str:
        if key == "token":
            return TOKEN
        raise ConfigError(f"no secret {key!r}")

    def add_bad_record(self, tmp_path: Path) -> str:
        project = self.fake.project
        project.put(
            "9999",
            {
                "ors_1": 50,
                "ors_2": 150,
                "ors_3": 40,
                "ors_4": 40,
                "ors_complete": 2,
                "ors_timestamp": "2024-05-01 10:00:00",
            },
            event=INTAKE,
            modified=self.fake.now_local(),
        )
        return f"9999|{INTAKE}|ors|"

    def target_state(self, adapter: Adapter) -> object:
        return scores_state(self.fake.project) or None

    def delete_record(self, tmp_path: Path) -> str:
        """Someone deletes the data of one ORS session (a repeating instrument) of a record
        that has other sessions: the record stays, that instance is gone."""
        project = self.fake.project
        sessions: dict[str, list[int]] = {}
        for record, key, form in accepted(project):
            if form == "ors" and key[0] == SESSION and key[1] == "ors" and key[2] is not None:
                sessions.setdefault(record, []).append(key[2])
        record, instances = next((r, sorted(n)) for r, n in sorted(sessions.items()) if len(n) > 2)
        self.target_keys(self.make_adapter(tmp_path))  # remember where its scores are
        self.fake.delete_record(record, instrument="ors", event=SESSION, instance=instances[1])
        return source_key(record, SESSION, "ors", instances[1])

    def target_keys(self, adapter: Adapter) -> set[str]:
        """The administrations whose total is in the scoring instrument (each found where a
        push puts it: its event's row, its repeating event's row, or its session's row by
        date). Where each administration's scores go is remembered across calls, so one
        deleted since can still be looked for."""
        project = self.fake.project
        tz = ZoneInfo(self.timezone)
        where = self.__dict__.setdefault("_where", {})
        for record, (event, ri, instance), form in accepted(project):
            key = source_key(record, event, form, instance)
            if ri:
                stamp = project.value(
                    record,
                    f"{form}_timestamp",
                    event=event,
                    repeat_instrument=ri,
                    instance=instance,
                )
                day = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz)
                where[key] = (record, event, form, day.date().isoformat(), None)
            else:
                where[key] = (record, event, form, None, instance)
        state = scores_state(project)
        out = set()
        for key, (record, event, form, day, instance) in where.items():
            for (rec, (ev, ri, n)), values in state.items():
                if rec != record or ev != event or not values.get(f"fit_{form}_total"):
                    continue
                if (day is not None and ri and values.get("fit_date") == day) or (
                    day is None and not ri and n == instance
                ):
                    out.add(key)
        return out
