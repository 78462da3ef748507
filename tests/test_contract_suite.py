"""The adapter contract suite itself (fit_core.testing): what it accepts from a pull.

``Adapter.pull`` may yield Records and RecordErrors, ``Deleted`` for records the source no
longer holds, and practice data (``Appointment``, ``ClientInfo``) alongside the records. The
suite's pull check must pass such an adapter, and still fail one that yields anything else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from fit_adapters.csv.adapter import CsvAdapter
from fit_core.adapter import Adapter
from fit_core.models import Appointment, ClientInfo, Deleted, Record, RecordError
from fit_core.testing import AdapterContract

EXPORT = (
    "client_id,administered_at,measure,q1,q2,q3,q4,total,rater\n"
    "C001,2024-03-01,ORS,4.1,5.0,3.2,4.4,,client\n"
    "C001,2024-03-08,ORS,6.0,6.2,5.5,6.1,,client\n"
)
STARTS = dt.datetime(2024, 3, 8, 9, 0, tzinfo=dt.UTC)

Pulled = Record | RecordError | Deleted | Appointment | ClientInfo


class MixedCsv(CsvAdapter):
    """The CSV adapter, followed by what one system holding both ORS/SRS and appointments
    would also yield: an appointment, the client's practice record, a deletion, and ``extra``."""

    extra: ClassVar[list[Any]] = []

    def pull(self, bookmark: str | None) -> Iterator[Pulled]:
        yield from super().pull(bookmark)
        yield Appointment(
            self.context.name, "appt-1", "clinic", "C001", STARTS, STARTS.date(), "attended"
        )
        yield ClientInfo(self.context.name, "clinic", "C001", clinician_id="T1")
        yield Deleted("row-gone", "a.csv row 9")
        yield from self.extra


class MixedContract(AdapterContract):
    """Not collected (no ``Test`` prefix): the tests below call its checks one by one."""

    adapter_class = MixedCsv
    source_name = "mixed"

    def source_options(self, tmp_path: Path) -> dict[str, str]:
        inbox = tmp_path / "inbox"
        inbox.mkdir(exist_ok=True)
        (inbox / "a.csv").write_text(EXPORT, encoding="utf-8")
        return {"path": str(inbox), "scores_path": str(tmp_path / "scores.csv")}


@pytest.fixture
def adapter(tmp_path: Path) -> Iterator[Adapter]:
    instance = MixedContract().make_adapter(tmp_path)
    yield instance
    instance.close()
    MixedCsv.extra = []


def test_pull_check_accepts_deletions_and_practice_data(adapter: Adapter) -> None:
    kinds = {type(i).__name__ for i in MixedContract().pull_all(adapter)}
    assert kinds == {"Record", "Appointment", "ClientInfo", "Deleted"}
    MixedContract().test_pull_yields_records_that_validate(adapter)


def test_pull_check_fails_on_anything_else(adapter: Adapter) -> None:
    MixedCsv.extra = [{"client_id": "C001"}]
    with pytest.raises(AssertionError, match="pull yielded dict"):
        MixedContract().test_pull_yields_records_that_validate(adapter)


def test_pull_check_fails_on_a_deletion_without_a_key(adapter: Adapter) -> None:
    MixedCsv.extra = [Deleted("")]
    with pytest.raises(AssertionError, match="empty Deleted key"):
        MixedContract().test_pull_yields_records_that_validate(adapter)


def test_pull_check_fails_on_practice_data_without_a_client(adapter: Adapter) -> None:
    MixedCsv.extra = [ClientInfo("mixed", "clinic", "")]
    with pytest.raises(AssertionError, match="ClientInfo without a client"):
        MixedContract().test_pull_yields_records_that_validate(adapter)
