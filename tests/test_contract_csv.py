"""The CSV adapter passes the adapter contract suite (synthetic data only)."""

from __future__ import annotations

import csv
from pathlib import Path

from fit_adapters.csv.adapter import CsvAdapter
from fit_core.adapter import Adapter
from fit_core.testing import AdapterContract

EXPORT_A = (
    "client_id,administered_at,measure,q1,q2,q3,q4,total,rater,age\n"
    "C001,2024-03-01,ORS,4.1,5.0,3.2,4.4,,client,34\n"
    "C001,2024-03-01,SRS,9.0,9.1,8.8,9.5,,client,34\n"
    "C001,2024-03-08,ORS,6.0,6.2,5.5,6.1,,client,34\n"
    "C001,2024-03-08,SRS,,,,,31.5,client,34\n"
    "C002,2024-03-02,ORS,,,,,22.0,client,41\n"
    "C002,2024-03-02,ORS,,,,,24.0,parent,41\n"
)
EXPORT_B = (
    "client_id;administered_at;measure;q1;q2;q3;q4;total\n"
    "C003;2024-03-04;CORS;7,5;6,0;8,0;7,0;\n"
    "C003;2024-03-11;CORS;2,5;3,0;2,0;2,0;\n"
    "C003;2024-03-11;GSRS;9;9;9;9;\n"
)


class TestCsvContract(AdapterContract):
    """Folder mode over two synthetic exports (comma and semicolon, one with a decimal comma)."""

    adapter_class = CsvAdapter
    source_name = "clinic_csv"

    def source_options(self, tmp_path: Path) -> dict[str, str]:
        inbox = tmp_path / "inbox"
        inbox.mkdir(exist_ok=True)
        for name, text in (("a.csv", EXPORT_A), ("b.csv", EXPORT_B)):
            if not (inbox / name).exists():
                (inbox / name).write_text(text, encoding="utf-8")
        (tmp_path / "out").mkdir(exist_ok=True)
        return {"path": str(inbox), "scores_path": str(tmp_path / "out" / "scores.csv")}

    def add_bad_record(self, tmp_path: Path) -> str:
        (tmp_path / "inbox" / "c.csv").write_text(
            "client_id,administered_at,measure,q1,q2,q3,q4,source_key\n"
            "C004,2024-03-05,ORS,4,11,3,4,bad-1\n",
            encoding="utf-8",
        )
        return "bad-1"

    def target_state(self, adapter: Adapter) -> object:
        assert isinstance(adapter, CsvAdapter)
        path = adapter.csv.scores_path
        return path.read_bytes() if path.exists() else None

    def delete_record(self, tmp_path: Path) -> str:
        """C001's second ORS row is deleted from a.csv (the export is made again without it)."""
        path = tmp_path / "inbox" / "a.csv"
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        gone = "C001,2024-03-08,ORS,6.0,6.2,5.5,6.1,,client,34\n"
        assert gone in lines
        path.write_text("".join(line for line in lines if line != gone), encoding="utf-8")
        return "nk:C001|2024-03-08|ORS|client"

    def target_keys(self, adapter: Adapter) -> set[str]:
        assert isinstance(adapter, CsvAdapter)
        path = adapter.csv.scores_path
        if not path.exists():
            return set()
        with path.open(encoding="utf-8-sig", newline="") as f:
            return {row["source_key"] for row in csv.DictReader(f)}
