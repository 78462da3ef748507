"""The REDCap adapter passes the adapter contract suite against the loopback fake REDCap."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fakes.redcap_fake import (
    INTAKE,
    TOKEN,
    RedcapFake,
    clinic_project,
    scores_state,
    source_options,
)

from fit_adapters.redcap import bookmark as redcap_bookmark
from fit_adapters.redcap.adapter import RedcapAdapter
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
