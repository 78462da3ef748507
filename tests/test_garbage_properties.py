"""Property tests: arbitrary text in every column never costs a good row and never exits 6.

Two levels: the whole CLI over a CSV file (bytes the reader must survive, including text that
is not UTF-8), and the core engine over records an adapter could yield (any text, numbers,
None) in every field. Either way the sync exits 0 or 1, and every good row is stored.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import sys
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fit_cli.main import cli
from fit_core.config import config_from_mapping
from fit_core.errors import ExitCode
from fit_core.plugins import load_plugins
from fit_core.store import Store
from fit_core.sync import SyncEngine

sys.path.insert(0, str(Path(__file__).parent))
import memory_adapter

HEADER = (
    "client_id",
    "administered_at",
    "measure",
    "q1",
    "q2",
    "q3",
    "q4",
    "total",
    "clinician_id",
    "episode_id",
    "rater",
    "age",
    "session",
    "site",
    "date_of_birth",
    "source_key",
)
GOOD = [
    {
        "client_id": f"G{i:02d}",
        "administered_at": "2025-03-03",
        "measure": "ORS",
        "q1": "5",
        "q2": "6",
        "q3": "7",
        "q4": "8",
    }
    for i in range(6)
]
GOOD_KEYS = {f"nk:G{i:02d}|2025-03-03|ORS|client" for i in range(6)}

# any text, now and then a value that looks nearly right
ANY_CHAR = st.characters(exclude_categories=())  # surrogates too: bytes that are not UTF-8
cell = st.one_of(
    st.text(ANY_CHAR, max_size=40),
    st.sampled_from(
        [
            "",
            "5",
            "7,5",
            "1e1",
            "1,000",
            "nan",
            "-1",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:00:00-05:00",
            "1e20",
            "ORS",
            "SRS",
            '"',
            "\x00",
            "\x1b[31m",
            "2025-03-03",
        ]
    ),
)
garbage_row = st.fixed_dictionaries({h: cell for h in HEADER})


def natural_key(row: dict[str, str]) -> str:
    if row["source_key"].strip():
        return row["source_key"].strip()
    rater = row["rater"].strip().lower() or "client"
    parts = (row["client_id"].strip(), row["administered_at"].strip(), row["measure"].strip())
    return f"nk:{parts[0]}|{parts[1]}|{parts[2].upper()}|{rater}"


def csv_bytes(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for r in rows:
        writer.writerow([r.get(h, "") for h in HEADER])
    # text with lone surrogates becomes bytes that are not UTF-8: the reader must survive them
    return out.getvalue().encode("utf-8", "surrogatepass")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.lists(garbage_row, min_size=1, max_size=5), at=st.integers(0, 6))
def test_garbage_csv_rows_cost_no_good_row_and_never_exit_6(tmp_path_factory, garbage, at):
    # a garbage row that happens to carry a good row's key is a real conflict, not a loss
    assume(not any(natural_key(g).casefold() in {k.casefold() for k in GOOD_KEYS} for g in garbage))
    assume(not any(g["source_key"].strip() for g in garbage if "G0" in g["source_key"]))
    tmp = tmp_path_factory.mktemp("garbage")
    (tmp / "in").mkdir()
    (tmp / "in" / "a.csv").write_bytes(csv_bytes([*GOOD[:at], *garbage, *GOOD[at:]]))
    cfg = tmp / "fit.toml"
    cfg.write_text(
        f'[store]\npath = "{tmp / "fit.sqlite3"}"\n[sync]\ntimezone = "UTC"\n'
        f'[sources.clinic]\nadapter = "csv"\npath = "{tmp / "in"}"\n'
        f'scores_path = "{tmp / "scores.csv"}"\n',
        encoding="utf-8",
    )
    res = CliRunner().invoke(cli, ["--config", str(cfg), "sync"])
    assert res.exit_code in (0, 1), res.output
    assert "internal error" not in res.output
    store = Store.open(tmp / "fit.sqlite3")
    try:
        keys = {a.source_key for a in store.iter_administrations()}
    finally:
        store.close()
    assert keys >= GOOD_KEYS


value = st.one_of(
    st.none(),
    st.text(ANY_CHAR, max_size=30),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00", "1e20"]),
)
FIELDS = (*HEADER[:-1], "extra_field")


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    garbage=st.lists(
        st.tuples(
            st.text(ANY_CHAR, max_size=30), st.fixed_dictionaries({f: value for f in FIELDS})
        ),
        min_size=1,
        max_size=6,
    )
)
def test_garbage_records_from_any_adapter_never_fail_the_source(tmp_path_factory, garbage):
    assume(not any(k in GOOD_KEYS or k.startswith("good-") for k, _ in garbage))
    tmp = tmp_path_factory.mktemp("records")
    remote = memory_adapter.MemorySource()
    memory_adapter.SOURCES["garbage"] = remote
    when = dt.datetime(2025, 3, 4, tzinfo=dt.UTC)
    for i, good in enumerate(GOOD):
        remote.put(f"good-{i}", dict(good), when)
    for k, data in garbage:
        remote.put(k, dict(data), when)
    config = config_from_mapping(
        {
            "store": {"path": str(tmp / "fit.sqlite3")},
            "sync": {"timezone": "UTC"},
            "sources": {"mem": {"adapter": "memory", "remote": "garbage"}},
        }
    )
    store = Store.open(config.store_path)
    try:
        engine = SyncEngine(
            config,
            load_plugins(extra=[memory_adapter]),
            store,
            clock=lambda: dt.datetime(2025, 3, 5, tzinfo=dt.UTC),
        )
        summary = engine.run()
        assert summary.exit_code in (ExitCode.OK, ExitCode.PARTIAL), summary.as_dict()
        keys = {a.source_key for a in store.iter_administrations()}
        assert {f"good-{i}" for i in range(len(GOOD))} <= keys
        assert engine.run().exit_code in (ExitCode.OK, ExitCode.PARTIAL)  # and again
    finally:
        store.close()
