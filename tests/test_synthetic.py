"""The seeded synthetic clinic: deterministic, streaming, valid FIT long CSV, realistic rates."""

from __future__ import annotations

import csv
import datetime as dt
import inspect
import io
import random
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path

import pytest

from fit_core.measures import BUILTIN_MEASURES
from fit_core.models import Administration, Record
from fit_core.synthetic import (
    BAD_ROW_KINDS,
    COLUMNS,
    bad_rows,
    generate_clinic,
    generate_rows,
    inject_bad_rows,
    write_csv,
)
from fit_core.validation import Validator

Row = dict[str, str]
ITEMS = ("q1", "q2", "q3", "q4")
ONE_DECIMAL = re.compile(r"^\d{1,2}\.\d$")
CLIENT_ID = re.compile(r"^C\d{6}$")
EPISODE_ID = re.compile(r"^C\d{6}-E\d$")
CLINICIAN_ID = re.compile(r"^T\d{2}$")
ORS_FAMILY = {"ORS", "CORS"}
SRS_FAMILY = {"SRS", "CSRS"}


@pytest.fixture(scope="module")
def clinic() -> list[Row]:
    """About 30,000 rows: 2,000 clients, enough for the rates to be stable."""
    return list(generate_clinic(2000, seed=11))


def total_of(row: Row) -> float:
    if row["total"]:
        return float(row["total"])
    return round(sum(float(row[q]) for q in ITEMS), 1)


def series(rows: Iterable[Row], measures: set[str]) -> dict[tuple[str, str], list[Row]]:
    """Rows of the given measures grouped by (episode, rater), in file order."""
    out: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        if row["measure"] in measures:
            out[(row["episode_id"], row["rater"])].append(row)
    return out


# --- determinism and streaming -------------------------------------------------------------


def test_same_seed_same_rows_different_seed_different_rows() -> None:
    a = list(generate_clinic(60, seed=5))
    assert a == list(generate_clinic(60, seed=5))
    assert a != list(generate_clinic(60, seed=6))
    assert list(generate_rows(500, seed=5)) == list(generate_rows(500, seed=5))


def test_is_a_lazy_generator() -> None:
    assert inspect.isgenerator(generate_clinic(10))
    assert inspect.isgenerator(generate_rows(10))
    # a billion clients: only the first one is ever made
    first = next(generate_clinic(10**9, seed=2))
    assert first["client_id"] == "C000001"
    assert next(generate_rows(10**9))["source_key"]


@pytest.mark.parametrize("n", [0, 1, 2, 7, 15, 1000, 4321])
def test_generate_rows_gives_exactly_n_unique_rows(n: int) -> None:
    rows = list(generate_rows(n, seed=3))
    assert len(rows) == n
    assert len({r["source_key"] for r in rows}) == n


def test_rejects_negative_sizes() -> None:
    with pytest.raises(ValueError):
        list(generate_clinic(-1))
    with pytest.raises(ValueError):
        list(generate_rows(-1))


# --- the rows are valid FIT long CSV --------------------------------------------------------


def test_columns_and_neutral_ids(clinic: list[Row]) -> None:
    clinicians = set()
    for row in clinic:
        assert tuple(row) == COLUMNS
        assert all(isinstance(v, str) for v in row.values())
        assert CLIENT_ID.match(row["client_id"])
        assert EPISODE_ID.match(row["episode_id"])
        assert row["episode_id"].startswith(row["client_id"] + "-")
        assert CLINICIAN_ID.match(row["clinician_id"])
        assert row["rater"] in {"client", "parent"}
        assert row["source_key"].startswith(row["episode_id"] + "-S")
        clinicians.add(row["clinician_id"])
    assert 8 <= len(clinicians) <= 12
    assert len({r["source_key"] for r in clinic}) == len(clinic)


def test_items_one_decimal_in_range_and_sum_to_the_total(clinic: list[Row]) -> None:
    total_only = 0
    for row in clinic:
        if row["total"]:
            total_only += 1
            assert all(row[q] == "" for q in ITEMS)
            assert re.fullmatch(r"\d{1,2}\.\d", row["total"])
            assert 0.0 <= float(row["total"]) <= 40.0
        else:
            values = [row[q] for q in ITEMS]
            assert all(ONE_DECIMAL.match(v) for v in values), row
            items = [float(v) for v in values]
            assert all(0.0 <= x <= 10.0 for x in items), row
            assert 0.0 <= sum(items) <= 40.05
    assert 0.005 < total_only / len(clinic) < 0.08  # a few paper totals typed in


def test_measures_ages_and_raters_fit_together(clinic: list[Row]) -> None:
    ages: dict[str, int] = {}
    for row in clinic:
        age = int(row["age"])
        assert ages.setdefault(row["client_id"], age) == age  # one age per client
        if row["measure"] in {"CORS", "CSRS"}:
            assert 6 <= age <= 12
        else:
            assert row["measure"] in {"ORS", "SRS"}
            assert row["rater"] == "parent" or 13 <= age <= 70
        if row["rater"] == "parent":
            assert age <= 17
            assert row["measure"] in {"ORS", "CORS", "SRS"}
    bands = list(ages.values())
    children = sum(a <= 12 for a in bands) / len(bands)
    adolescents = sum(13 <= a <= 17 for a in bands) / len(bands)
    assert 0.05 < children < 0.11
    assert 0.09 < adolescents < 0.15
    assert any(r["rater"] == "parent" for r in clinic)


def test_sessions_are_chronological_with_srs_after_ors(clinic: list[Row]) -> None:
    by_client: dict[str, list[Row]] = defaultdict(list)
    for row in clinic:
        by_client[row["client_id"]].append(row)
    for rows in by_client.values():
        times = [dt.datetime.fromisoformat(r["administered_at"]) for r in rows]
        assert times == sorted(times)
        for r, t in zip(rows, times, strict=True):
            assert t.tzinfo is None  # clinic-local time, no offset
            assert t.weekday() < 5  # weekdays only
            assert t.minute == (0 if r["measure"] in ORS_FAMILY else 50)
    # every session has its ORS; the SRS of a session is on the same date
    for (_, _), rows in series(clinic, ORS_FAMILY | SRS_FAMILY).items():
        days = [r["administered_at"][:10] for r in rows if r["measure"] in ORS_FAMILY]
        srs_days = [r["administered_at"][:10] for r in rows if r["measure"] in SRS_FAMILY]
        assert set(srs_days) <= set(days)
        assert len(days) <= 20


def test_rows_pass_the_core_validation() -> None:
    validator = Validator({m.key: m for m in BUILTIN_MEASURES}, "UTC", source="synthetic")
    for row in generate_rows(3000, seed=4):
        result = validator.validate(Record(row["source_key"], row))
        assert isinstance(result, Administration), (row, result)


# --- realistic rates (docs/clinical.md sanity ranges) ---------------------------------------


def test_outcome_rates_are_realistic(clinic: list[Row]) -> None:
    episodes = [
        rows for (_, rater), rows in series(clinic, ORS_FAMILY).items() if rater == "client"
    ]
    lengths = [len(rows) for rows in episodes]
    assert 4 <= statistics.median(lengths) <= 8
    assert max(lengths) <= 20
    changes = [total_of(r[-1]) - total_of(r[0]) for r in episodes if len(r) >= 2]
    assert len(changes) > 1500
    improved = sum(c >= 5 for c in changes) / len(changes)
    deteriorated = sum(c <= -5 for c in changes) / len(changes)
    assert 0.60 <= improved <= 0.78
    assert 0.02 <= deteriorated <= 0.11
    assert 0.15 <= 1 - improved - deteriorated <= 0.38


def test_intakes_are_realistic(clinic: list[Row]) -> None:
    cutoffs = {"adult": 25.0, "adolescent": 28.0, "child": 32.0}
    intakes: dict[str, list[float]] = defaultdict(list)
    for (_, rater), rows in series(clinic, ORS_FAMILY).items():
        if rater == "client":
            age = int(rows[0]["age"])
            band = "child" if age <= 12 else "adolescent" if age <= 17 else "adult"
            intakes[band].append(total_of(rows[0]))
    assert 16.0 <= statistics.mean(intakes["adult"]) <= 21.0
    flags = [x >= cutoffs[band] for band, values in intakes.items() for x in values]
    at_or_above = sum(flags) / len(flags)
    assert 0.12 <= at_or_above <= 0.28


def test_srs_mostly_high_with_some_low_sessions_and_drops(clinic: list[Row]) -> None:
    srs = [total_of(r) for r in clinic if r["measure"] in SRS_FAMILY]
    below = sum(x < 36 for x in srs) / len(srs)
    assert 0.05 <= below <= 0.20
    assert statistics.median(srs) >= 37
    drops = pairs = 0
    for rows in series(clinic, SRS_FAMILY).values():
        totals = [total_of(r) for r in rows]
        for a, b in pairwise(totals):
            pairs += 1
            drops += b - a <= -1
    assert 0.03 <= drops / pairs <= 0.25  # occasional alliance drops


def test_some_clients_drop_out_before_the_target(clinic: list[Row]) -> None:
    short_unimproved = 0
    episodes = [
        rows
        for (episode, rater), rows in series(clinic, ORS_FAMILY).items()
        if rater == "client" and episode.endswith("-E1")
    ]
    for rows in episodes:
        if len(rows) <= 5 and total_of(rows[-1]) - total_of(rows[0]) < 5:
            short_unimproved += 1
    assert 0.12 <= short_unimproved / len(episodes) <= 0.40


# --- writing and bad rows ---------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_write_csv_round_trips(tmp_path: Path, delimiter: str) -> None:
    rows = list(generate_rows(300, seed=9))
    path = tmp_path / "admins.csv"
    assert write_csv(path, iter(rows), delimiter=delimiter) == 300
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        assert list(reader) == rows


def test_write_csv_fills_missing_columns_and_ignores_others(tmp_path: Path) -> None:
    rows = list(generate_rows(3, seed=9))
    del rows[1]["q2"]
    rows[2]["site"] = "S1"
    path = tmp_path / "x.csv"
    assert write_csv(path, rows) == 3
    with path.open(newline="", encoding="utf-8") as fh:
        back = list(csv.DictReader(fh))
    assert back[1]["q2"] == ""
    assert "site" not in back[2]
    assert back[0] == rows[0]
    assert write_csv(path, []) == 0


def test_write_csv_writes_what_csv_writer_writes(tmp_path: Path) -> None:
    rows = [*generate_rows(5000, seed=2), *bad_rows()]
    rows[10] = dict(rows[10], episode_id='a,b "q"\nx')  # a value that needs quoting
    rows[4999] = dict(rows[4999], age=None)  # type: ignore[dict-item]
    for delimiter in (",", ";", "\t"):
        path = tmp_path / "x.csv"
        write_csv(path, rows, delimiter=delimiter)
        expected = io.StringIO(newline="")
        writer = csv.writer(expected, delimiter=delimiter, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows([row.get(k, "") for k in COLUMNS] for row in rows)
        assert path.read_text(encoding="utf-8") == expected.getvalue()
    with pytest.raises(ValueError, match="delimiter"):
        write_csv(tmp_path / "y.csv", rows, delimiter='"')


def test_bad_rows_one_of_each_kind_all_rejected() -> None:
    validator = Validator({m.key: m for m in BUILTIN_MEASURES}, "UTC", source="synthetic")
    rows = bad_rows()
    assert [r["source_key"] for r in rows] == [f"bad-{i:03d}" for i in range(1, 8)]
    assert len(rows) == len(BAD_ROW_KINDS)
    expected_field = ["q2", "q3", "q1", "total", "measure", "administered_at", "client_id"]
    for row, field in zip(rows, expected_field, strict=True):
        assert tuple(row) == COLUMNS
        result = validator.validate(Record(row["source_key"], row))
        assert isinstance(result, dict), row
        assert field in result, (row, result)


def test_inject_bad_rows_is_seeded_and_keeps_the_good_rows() -> None:
    good = list(generate_rows(20_000, seed=1))

    def mixed() -> list[Row]:
        return list(inject_bad_rows(iter(good), random.Random(7), rate=0.002))

    out = mixed()
    assert out == mixed()
    bad = [r for r in out if r["source_key"].startswith("bad-")]
    assert [r for r in out if not r["source_key"].startswith("bad-")] == good
    assert len(bad) >= len(BAD_ROW_KINDS)
    keys = [r["source_key"] for r in bad]
    assert keys == [f"bad-{i:03d}" for i in range(1, len(bad) + 1)]
    assert {r["measure"] for r in bad} & {"XYZ"}
    assert any(r["administered_at"] == "2025-13-45" for r in bad)
    assert any(r["client_id"] == "" for r in bad)
    limited = list(inject_bad_rows(iter(good), random.Random(7), rate=0.5, limit=3))
    assert sum(r["source_key"].startswith("bad-") for r in limited) == 3
