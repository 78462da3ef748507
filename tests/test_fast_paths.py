"""The sync's fast paths write exactly what their definitions write, for any value.

- the outbox JSON written directly (fit_core.payload) is ``encode_payload(push_payload(s))``;
- the store row and content hash built at once (``admin_row_hashed``) are ``admin_row`` and
  ``admin_hash``;
- the scores CSV rendered inline (adapters/csv/writer.py) is :func:`cell` of every value;
- the scores-file line kept beside an outbox payload (``payload_line``) is the line of the
  payload as stored, and a line is what the csv module writes;
- the outbox JSON the store reads back without ``json.loads``' overhead is what
  ``json.loads`` reads.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fit_adapters.csv.writer import cell, write_scores
from fit_core.models import Administration, Flag, OutboxItem, Score, Scored
from fit_core.payload import (
    LINE_ONLY,
    item_row,
    outbox_row,
    outbox_row_with_line,
    payload_json,
    payload_line,
)
from fit_core.scores_csv import csv_line, line_of_payload
from fit_core.scoring import PUSH_FIELDS, encode_payload, outbox_item, push_payload
from fit_core.store import Store, admin_hash, admin_row, admin_row_hashed

TEXT = st.one_of(
    st.sampled_from(["", "C1", 'a "quoted" \\ text', "=SUM(A1)", "-x", "+1", "@a", "\t1"]),
    st.sampled_from(["\r\n", "line\nbreak", "\x00\x1f\x7f", "é ü ß 漢字 🙂", "\u2028", "\ud800"]),
    st.text(max_size=12),
)
FLOAT = st.one_of(
    st.sampled_from([0.0, -0.0, 15.0, 7.5, -2.3, 1e-05, 1e16, 123456789.125]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-40, max_value=40).map(lambda f: round(f, 2)),
)
NUMBER = st.one_of(FLOAT, st.integers(-(10**20), 10**20), st.none())
WHEN = st.datetimes(
    dt.datetime(1990, 1, 1),
    dt.datetime(2030, 1, 1),
    timezones=st.sampled_from(
        [
            dt.UTC,
            dt.timezone(dt.timedelta(hours=5, minutes=30)),
            dt.timezone(-dt.timedelta(hours=8)),
        ]
    ),
)


@st.composite
def flags(draw: st.DrawFn) -> Flag:
    return Flag(
        draw(st.one_of(TEXT, st.sampled_from(["srs.drop", "ors.checkpoint"]))),
        draw(st.integers(1, 3)),
        draw(st.sampled_from(["info", "warning", "alert"])),
        draw(TEXT),
        {},
        draw(st.sampled_from(["open", "open", "acknowledged", "superseded", "closed"])),
    )


@st.composite
def administrations(draw: st.DrawFn) -> Administration:
    when = draw(WHEN)
    items = draw(st.one_of(st.none(), st.tuples(FLOAT, FLOAT, FLOAT, FLOAT)))
    return Administration(
        source=draw(TEXT),
        source_key=draw(TEXT),
        namespace=draw(TEXT),
        client_id=draw(TEXT),
        measure=draw(st.one_of(st.sampled_from(["ORS", "SRS"]), TEXT)),
        administered_at=when,
        local_date=when.date(),
        date_only=draw(st.booleans()),
        total=draw(st.one_of(FLOAT, st.integers(0, 40))),
        items=items,  # type: ignore[arg-type]
        clinician_id=draw(st.one_of(st.none(), TEXT)),
        episode_id=draw(st.one_of(st.none(), TEXT)),
        rater=draw(st.one_of(st.just("client"), TEXT)),
        age=draw(st.one_of(st.none(), st.integers(0, 120))),
        session_hint=draw(st.one_of(st.none(), st.integers(0, 9999))),
        extra=draw(
            st.one_of(
                st.just({}),
                st.dictionaries(TEXT, st.one_of(TEXT, st.integers(), st.none()), max_size=3),
            )
        ),
        site=draw(st.one_of(st.none(), TEXT)),
    )


@st.composite
def scored(draw: st.DrawFn) -> Scored:
    model = draw(st.booleans())
    score = Score(
        total=draw(st.one_of(FLOAT, st.integers(0, 40))),
        session=draw(st.one_of(st.integers(0, 9999), st.booleans())),
        episode_id=draw(TEXT),
        age_band=draw(TEXT),
        cutoff=draw(st.one_of(st.none(), FLOAT)),
        clinical=draw(st.one_of(st.none(), st.booleans())),
        change_from_previous=draw(NUMBER),
        intake=draw(NUMBER),
        change_from_intake=draw(NUMBER),
        rc_class=draw(st.one_of(st.none(), st.sampled_from(["intake", "improved"]), TEXT)),
        expected=draw(NUMBER) if model else None,
        expected_low=draw(NUMBER) if model else None,
        expected_high=draw(NUMBER) if model else None,
        expected_severe=draw(NUMBER) if model else None,
        status=draw(st.one_of(st.none(), st.sampled_from(["green", "red"]), TEXT)),
        percent_of_expected=draw(NUMBER) if model else None,
    )
    return Scored(draw(administrations()), score, tuple(draw(st.lists(flags(), max_size=3))))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=scored())
def test_outbox_json_and_row_are_those_of_the_payload(s: Scored) -> None:
    assert payload_json(s) == encode_payload(push_payload(s))
    # the row written to the outbox is the one an OutboxItem gave before (text that cannot be
    # encoded fails both ways: validation lets none in)
    assert outcome(lambda: outbox_row(s, "ns", "C1", "T")) == outcome(
        lambda: item_row(outbox_item(s), "ns", "C1", "T")
    )


def outcome(fn: Any) -> Any:
    """What ``fn()`` returns, or the type of what it raises."""
    try:
        return fn()
    except Exception as exc:
        return type(exc)


@settings(max_examples=200, deadline=None)
@given(a=administrations(), at=TEXT)
def test_store_row_and_hash_are_built_as_defined(a: Administration, at: str) -> None:
    row = admin_row(a, "", at)
    h = admin_hash(row)
    assert admin_row_hashed(a, at) == ((*row[:16], h, at, *row[18:]), h)
    # the same instant in another zone is another row (the date texts are memoised)
    other = a.administered_at.astimezone(dt.timezone(dt.timedelta(hours=3)))
    b = Administration(**{**_fields(a), "administered_at": other})
    row_b = admin_row(b, "", at)
    assert admin_row_hashed(b, at)[0][5] == row_b[5] == other.isoformat()


def _fields(a: Administration) -> dict[str, Any]:
    return {name: getattr(a, name) for name in Administration.__slots__}


CELL = st.one_of(
    TEXT,
    FLOAT,
    st.integers(-(10**20), 10**20),
    st.booleans(),
    st.none(),
    st.lists(st.one_of(TEXT, st.integers(), FLOAT), max_size=3),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads=st.lists(st.fixed_dictionaries({k: CELL for k in PUSH_FIELDS}), max_size=5))
def test_scores_file_cells_are_cell_of_each_value(tmp_path_factory, payloads) -> None:
    target = Path(tmp_path_factory.mktemp("scores")) / "scores.csv"
    items = [OutboxItem("s", str(i), p, "h") for i, p in enumerate(payloads)]
    assert write_scores(target, iter(items), "utf-8") == len(payloads)
    expected = io.StringIO(newline="")
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow(PUSH_FIELDS)
    for p in payloads:
        writer.writerow([cell(p[k]) for k in PUSH_FIELDS])
    want = expected.getvalue().encode("utf-8", "replace")
    assert target.read_bytes() == want


STORABLE = st.text(st.characters(codec="utf-8"), max_size=12)  # what SQLite can hold
JSON_TEXT = st.one_of(
    st.builds(
        lambda p: json.dumps(p, separators=(",", ":"), ensure_ascii=False),
        st.dictionaries(
            STORABLE, st.one_of(STORABLE, FLOAT, st.integers(), st.none(), st.booleans())
        ),
    ),
    st.sampled_from(['{"a":1} ', ' {"a":1}', '{"a":1}x', '{"a":1}{}', "", "[1]", "nul", "1e999"]),
    STORABLE,
)


@settings(max_examples=150, deadline=None)
@given(text=JSON_TEXT)
def test_stored_json_reads_back_as_json_loads_reads_it(text: str) -> None:
    assume(text != "")  # an empty payload is a row that keeps only its line (below)
    store = Store.open(":memory:")
    store.write_outbox_rows([("s", "k", "ns", "C1", text, text or None, "h", "T")])
    try:
        want: Any = json.loads(text)
    except ValueError as exc:
        want = type(exc)
    try:
        item = next(store.snapshot("s"))
        got: Any = (item.payload, item.extra)
    except ValueError as exc:
        got = type(exc)
    if isinstance(got, tuple):
        assert repr(got[0]) == repr(want)
        assert repr(got[1]) == repr(want if text else {})
    else:
        assert got == want


def test_a_row_that_keeps_only_its_line_reads_back_with_the_line_s_values() -> None:
    store = Store.open(":memory:")
    line = csv_line(["k1", "C1", "ORS", "2025-01-02T09:00:00Z"])
    store.write_outbox_rows([("s", "k1", "ns", "C1", LINE_ONLY, None, "h", "T", line)])
    item = next(store.snapshot("s"))
    assert item.payload == {
        "source_key": "k1",
        "client_id": "C1",
        "measure": "ORS",
        "administered_at": "2025-01-02T09:00:00Z",
    }
    assert list(store.snapshot_lines("s")) == [line]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=scored())
def test_scores_line_kept_in_the_outbox_is_the_line_of_the_stored_payload(s: Scored) -> None:
    # what a snapshot push writes from the stored line is what it writes from the payload
    assert outcome(lambda: payload_line(s)) == outcome(
        lambda: line_of_payload(json.loads(payload_json(s)))
    )
    # the row of a scores-file source keeps the line, not the payload; its hash is the line's
    row = outcome(lambda: outbox_row_with_line(s, "ns", "C1", "T"))
    line = outcome(lambda: payload_line(s))
    if not isinstance(line, str):
        assert row == line  # the same error
        return
    digest = outcome(lambda: hashlib.blake2b(line.encode(), digest_size=16).hexdigest())
    if not isinstance(digest, str):
        assert row == digest  # the same error (a text the store cannot encode)
        return
    assert isinstance(row, tuple) and row[4] == LINE_ONLY and row[6:] == (digest, "T", line)
    full = outcome(lambda: outbox_row(s, "ns", "C1", "T"))
    if isinstance(full, tuple):
        assert row[:4] == full[:4] and row[5] == full[5]


@settings(max_examples=200, deadline=None)
@given(
    cells=st.lists(TEXT, max_size=6), payload=st.fixed_dictionaries({k: CELL for k in PUSH_FIELDS})
)
def test_a_scores_line_is_what_the_csv_module_writes(cells: list[str], payload: Any) -> None:
    expected = io.StringIO(newline="")
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow(cells)
    assert csv_line(cells) == expected.getvalue()
    expected = io.StringIO(newline="")
    csv.writer(expected, lineterminator="\r\n").writerow([cell(payload[k]) for k in PUSH_FIELDS])
    assert line_of_payload(payload) == expected.getvalue()
