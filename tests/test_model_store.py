"""The store keeps one trajectory model in force per measure and rater, and when each retired;
a store from before that keeps its models, and its history reads the same."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from fit_core.store import MIGRATIONS, SCHEMA_VERSION, TRAJECTORY_MODELS_SCHEMA, Store
from fit_core.sync import load_active_model

TABLE_ROWS = [
    {"intake": i, "session": k, "expected": i + k, "lower": i + k - 2, "upper": i + k + 2,
     "severe": None}
    for i in (0.0, 40.0)
    for k in (2, 3)
]  # fmt: skip


def table(measure: str, rater: str | None = "client", name: str = "t") -> dict:
    data = {"kind": "supplied_table", "format": 1, "name": name, "measures": [measure],
            "rows": TABLE_ROWS}  # fmt: skip
    if rater is not None:
        data["raters"] = [rater]
    return data


def old_store(path: Path) -> None:
    """A store as the version before per-measure models left it: one active model at a time."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for version in range(1, TRAJECTORY_MODELS_SCHEMA):
        for stmt in MIGRATIONS[version]:
            conn.execute(stmt)
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
        (str(TRAJECTORY_MODELS_SCHEMA - 1),),
    )
    for created, active, name in (
        ("2025-01-10T09:00:00+00:00", 0, "first"),
        ("2025-06-01T09:00:00+00:00", 1, "second"),
    ):
        conn.execute(
            "INSERT INTO trajectory_models (kind, created_at, data, active) VALUES (?, ?, ?, ?)",
            ("table", created, json.dumps(table("ORS", None, name)), active),
        )
    conn.close()


def names(rows: list) -> list[str]:
    return [r[2]["name"] for r in rows]


def test_an_old_stores_models_keep_their_history(tmp_path: Path) -> None:
    path = tmp_path / "fit.sqlite3"
    old_store(path)
    store = Store.open(path)
    try:
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
        assert names(store.active_models()) == ["second"]
        # the first model was in force until the second was saved
        assert names(store.models_as_of("2025-03-01T00:00:00+00:00")) == ["first"]
        assert names(store.models_as_of("2025-07-01T00:00:00+00:00")) == ["second"]
        assert store.models_as_of("2024-12-31T00:00:00+00:00") == []
        models = load_active_model(store)
        assert models is not None and models.select("ORS", "client") is not None
        assert models.select("ORS", "parent") is None  # stored without raters: the client's
    finally:
        store.close()


def test_one_model_per_measure_and_rater(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "fit.sqlite3")
    try:
        ors = store.save_model("table", table("ORS", name="ors"))
        store.save_model("table", table("CORS", name="cors"))
        store.save_model("table", table("ORS", "parent", name="ors-parent"))
        assert names(store.active_models()) == ["ors", "cors", "ors-parent"]
        store.save_model("table", table("ORS", name="ors-2"))  # replaces the client ORS only
        assert names(store.active_models()) == ["cors", "ors-parent", "ors-2"]
        retired = store.conn.execute(
            "SELECT retired_at FROM trajectory_models WHERE id = ?", (ors,)
        ).fetchone()[0]
        assert retired is not None
        assert store.clear_model("ORS", "parent") == 1
        assert names(store.active_models()) == ["cors", "ors-2"]
        assert store.clear_model() == 2 and store.active_models() == []
    finally:
        store.close()
