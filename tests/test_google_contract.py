"""The google_forms adapter passes the adapter contract suite, against the loopback fake."""

from __future__ import annotations

import datetime as dt
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from fit_adapters.google_forms.adapter import GoogleFormsAdapter
from fit_adapters.google_forms.client import Timing
from fit_core.adapter import Adapter
from fit_core.testing import AdapterContract, make_context

sys.path.insert(0, str(Path(__file__).parent))
from fakes.google_fake import (
    FakeClock,
    FormLayout,
    GoogleFake,
    measure_form,
    populate,
    service_account_json,
)

SHEET = "contractBook01"
EMAIL = "contract@clinic-test.iam.gserviceaccount.com"


_CLOCK = FakeClock()


class _FastGoogleForms(GoogleFormsAdapter):
    """The adapter with a clock that never really waits (retries and throttles)."""

    timing = Timing(clock=_CLOCK.clock, sleep=_CLOCK.sleep, rng=random.Random(0))


class TestGoogleFormsContract(AdapterContract):
    """Two forms (ORS and SRS) of 12 responses each, a spreadsheet without a Scores tab yet."""

    adapter_class: ClassVar[type[Adapter]] = _FastGoogleForms
    source_name = "clinic_forms"
    fake: GoogleFake
    layouts: dict[str, FormLayout]

    @pytest.fixture(autouse=True)
    def _fake(self) -> Iterator[None]:
        with GoogleFake.running() as fake:
            self.fake = fake
            self.layouts = {}
            yield

    def source_options(self, tmp_path: Path) -> dict[str, Any]:
        fake = self.fake
        if not fake.forms:
            for form_id, measure in (("ors0000form1", "ORS"), ("srs0000form1", "SRS")):
                doc, layout = measure_form(form_id, [measure])
                fake.add_form(form_id, doc)
                populate(fake, layout, 12, seed=len(form_id) + ord(measure[0]), clients=4)
                self.layouts[measure] = layout
            fake.add_spreadsheet(SHEET)
        forms = [
            {
                "form_id": layout.form_id,
                "client_id": {"id": layout.client},
                "clinician": "Clinician",
                "measures": {m: dict(zip(("q1", "q2", "q3", "q4"), layout.items[m], strict=True))},
            }
            for m, layout in self.layouts.items()
        ]
        return {
            **fake.endpoints(),
            "spreadsheet_id": SHEET,
            "forms": forms,
            "deletion_check_hours": 0,  # every sync lists all responses: deletions show at once
        }

    def add_bad_record(self, tmp_path: Path) -> str:
        layout = self.layouts["ORS"]
        q = layout.items["ORS"]
        answers = {layout.client: "G9999", q[0]: "4", q[1]: "11", q[2]: "3", q[3]: "5"}
        return self.fake.add_response(
            layout.form_id, answers, submitted=dt.datetime(2025, 1, 7, 8, 0, tzinfo=dt.UTC)
        )

    def target_state(self, adapter: Adapter) -> object:
        grid = self.fake.tab(SHEET, "Scores")
        return None if grid is None else [list(map(str, row)) for row in grid]

    def delete_record(self, tmp_path: Path) -> str:
        """The form owner deletes the latest ORS response (its client has earlier ones)."""
        form = self.fake.forms[self.layouts["ORS"].form_id]
        rid = max(form.responses, key=lambda r: form.responses[r]["lastSubmittedTime"])
        self.fake.delete_response(form.doc["formId"], rid)
        return rid

    def target_keys(self, adapter: Adapter) -> set[str]:
        grid = self.fake.tab(SHEET, "Scores") or []
        return {str(row[0]) for row in grid[1:] if row and row[0]}

    def make_adapter(self, tmp_path: Path) -> Adapter:
        cls = self.adapter_class
        ctx = make_context(
            self.source_name,
            self.source_options(tmp_path),
            tmp_path,
            adapter=cls,
            secrets={"service_account": service_account_json(EMAIL)},
        )
        return cls(ctx)

    def secret(self, source: str, key: str) -> str:
        if key == "service_account":
            return service_account_json(EMAIL)
        return super().secret(source, key)

    def test_contract_source_has_no_scores_tab_at_first(self, tmp_path: Path) -> None:
        self.source_options(tmp_path)
        assert self.fake.tab(SHEET, "Scores") is None
