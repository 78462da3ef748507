"""Pure parts of the REDCap adapter: options, rows → records, the bookmark rule, import rows."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fit_adapters.redcap.bookmark import (
    Bookmark,
    clocks_agree,
    next_since,
    server_local,
    settle_delay,
)
from fit_adapters.redcap.discovery import Discovery, Placement, mapping_problems
from fit_adapters.redcap.options import RedcapOptions, RedcapOptionsSchema
from fit_adapters.redcap.push import (
    Built,
    ImportBuilder,
    TargetRows,
    join_parts,
    local_date,
    parse_parts,
    score_values,
)
from fit_adapters.redcap.rows import RowMapper, repeat_instance, source_key
from fit_core.errors import ConfigError
from fit_core.models import OutboxItem, Record, RecordError

CHICAGO = ZoneInfo("America/Chicago")
BASE = {
    "url": "https://redcap.example.test/api/",
    "instruments": {"ors": {"measure": "ORS", "items": ["o1", "o2", "o3", "o4"]}},
}


def opts(**extra: object) -> RedcapOptions:
    return RedcapOptions.load({**BASE, **extra}, "clinic")


# --- options -----------------------------------------------------------------------------------


def test_options_defaults_and_reload_is_stable() -> None:
    loaded = RedcapOptionsSchema().load(dict(BASE))
    assert RedcapOptionsSchema().load(loaded) == loaded
    o = RedcapOptions.load(loaded, "clinic")
    assert o.throttle == 2 and o.batch_size == 500 and o.overlap == dt.timedelta(seconds=300)
    assert o.complete_statuses == {"2"} and o.verify is True and o.scores_instrument == "fit_scores"
    assert o.instruments[0].score_fields == {
        "date": "fit_date",
        "total": "fit_ors_total",
        "session": "fit_ors_session",
        "status": "fit_ors_status",
        "flags": "fit_ors_flags",
        "message": "fit_ors_message",
    }


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"tokn": "x"}, "tokn: unknown key"),
        ({"token_pattern": "(["}, "token_pattern"),
        ({"verify": "/no/such/ca.pem"}, "CA bundle"),
        ({"server_timezone": "Mars/Base"}, "server_timezone"),
        ({"instruments": {"ors": {"measure": "ORS", "items": ["a", "b"]}}}, "four item"),
        ({"instruments": {"ors": {"measure": "ORS", "itms": ["a"]}}}, "instruments.ors.itms"),
        ({"instruments": {"ors": {"measure": "ORS"}}}, "a total field"),
        ({"fields": {"clinician": "c"}}, "fields"),
        ({"complete_statuses": [3]}, "complete_statuses"),
        ({"scores_instrument": "ors"}, "scoring instrument must not be"),
    ],
)
def test_options_errors_name_the_key(extra: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        opts(**extra)
    assert words in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/api/",
        "http://localhost/redcap/api/",
        "http://[::1]:9000/api/",
        "https://redcap.example.org/api/",
    ],
)
def test_http_to_this_machine_or_https_is_accepted(url: str) -> None:
    assert opts(url=url).url == url


def test_plain_http_to_another_host_needs_allow_http() -> None:
    with pytest.raises(ConfigError) as info:
        opts(url="http://redcap.example.org/api/")
    assert "url" in str(info.value) and "unencrypted" in str(info.value)
    assert "allow_http = true" in str(info.value)
    assert info.value.exit_code == 3
    assert opts(url="http://redcap.example.org/api/", allow_http=True).allow_http


def test_shared_score_fields_only_where_a_session_shares_them() -> None:
    shared = {"session": "fit_session", "flags": "fit_flags", "message": "fit_message"}
    o = opts(
        instruments={
            "ors": {"measure": "ORS", "items": ["a", "b", "c", "d"], "score_fields": shared},
            "srs": {"measure": "SRS", "items": ["e", "f", "g", "h"], "score_fields": shared},
        }
    )
    assert [i.instrument for i in o.sharers("fit_flags")] == ["ors", "srs"]
    assert o.score_field_names[0] == "fit_date"
    bad = {
        "ors": {"measure": "ORS", "items": ["a", "b", "c", "d"]},
        "srs": {
            "measure": "SRS",
            "items": ["e", "f", "g", "h"],
            "score_fields": {"total": "fit_ors_total"},
        },
    }
    with pytest.raises(ConfigError, match="only date, session, flags, message may be shared"):
        opts(instruments=bad)
    twice = {
        "ors_a": {"measure": "ORS", "items": ["a", "b", "c", "d"], "score_fields": shared},
        "ors_b": {"measure": "ORS", "items": ["e", "f", "g", "h"], "score_fields": shared},
    }
    with pytest.raises(ConfigError, match="map the same measure"):
        opts(instruments=twice)


def test_site_options() -> None:
    assert opts(site="north").site == "north" and opts(site_from_dag=True).site_from_dag
    assert opts(fields={"site": "clinic_site"}).context_fields == {"site": "clinic_site"}
    with pytest.raises(ConfigError, match="site one way only"):
        opts(site="north", site_from_dag=True)
    assert opts().scores_complete == 2 and opts(scores_complete=0).scores_complete == 0
    with pytest.raises(ConfigError, match="scores_complete"):
        opts(scores_complete=3)


def test_two_instruments_of_one_measure_get_their_own_score_fields() -> None:
    o = opts(
        instruments={
            "ors_client": {"measure": "ORS", "items": ["a", "b", "c", "d"]},
            "ors_parent": {
                "measure": "ORS",
                "items": ["e", "f", "g", "h"],
                "rater": "parent",
                "score_fields": {"message": ""},
            },
            "srs": {"measure": "srs", "total": "srs_total", "scale": "points"},
        }
    )
    fields = {i.instrument: i.score_fields for i in o.instruments}
    assert fields["ors_client"]["total"] == "fit_ors_client_total"
    assert "message" not in fields["ors_parent"]
    assert fields["srs"] == {
        "date": "fit_date",
        "total": "fit_srs_total",
        "session": "fit_srs_session",
        "flags": "fit_srs_flags",
        "message": "fit_srs_message",
    }


# --- rows → records -----------------------------------------------------------------------------


def mapper(**kw: object) -> RowMapper:
    o = opts(**kw)
    return RowMapper(
        id_field="record_id",
        instruments=o.instruments,
        statuses=o.complete_statuses,
        server_tz=CHICAGO,
        context_fields=o.context_fields,
    )


def row(**values: object) -> dict[str, object]:
    base: dict[str, object] = {
        "record_id": "7",
        "redcap_event_name": "week_arm_1",
        "redcap_repeat_instrument": "ors",
        "redcap_repeat_instance": 2,
        "ors_timestamp": "2024-03-01 10:15:00",
        "ors_complete": "2",
        "o1": "55",
        "o2": "60",
        "o3": "45",
        "o4": "50",
    }
    base.update(values)
    return base


def test_repeat_instance_forms() -> None:
    assert repeat_instance(1) == 1 and repeat_instance("3") == 3
    assert repeat_instance("") is None and repeat_instance(None) is None
    for bad in ("x", 0, "-1", True):
        with pytest.raises(ValueError):
            repeat_instance(bad)


def test_source_key_is_stable_and_escaped() -> None:
    assert source_key("7", "week_arm_1", "ors", 2) == "7|week_arm_1|ors|2"
    assert source_key("a|b c", "", "ors", None) == "a%7Cb%20c||ors|"


def test_a_row_becomes_a_record_with_push_keys_and_server_time() -> None:
    (rec,) = list(mapper().records([row()]))
    assert isinstance(rec, Record)
    assert rec.source_key == "7|week_arm_1|ors|2" and rec.scale == "percent"
    assert rec.data["administered_at"] == "2024-03-01T10:15:00-06:00"
    assert rec.data["q1"] == "55" and rec.data["client_id"] == "7"
    assert rec.extra == {
        "record": "7",
        "redcap_event_name": "week_arm_1",
        "redcap_repeat_instrument": "ors",
        "redcap_repeat_instance": 2,
        "instrument": "ors",
    }


def test_other_repeating_instruments_untouched_forms_and_statuses_are_skipped() -> None:
    m = mapper()
    rows = [
        row(redcap_repeat_instrument="srs"),  # another instrument's row
        row(
            redcap_repeat_instance=3, ors_complete="0", o1="", o2="", o3="", o4="", ors_timestamp=""
        ),  # never started (REDCap exports 0)
        row(redcap_repeat_instance=4, ors_complete="1"),  # unverified: not accepted
    ]
    assert list(m.records(rows)) == []
    assert m.skipped["status"] == 1
    assert len(list(mapper(complete_statuses=[1, 2]).records(rows))) == 1


def test_not_completed_survey_without_a_date_is_an_error() -> None:
    (err,) = list(mapper().records([row(ors_timestamp="[not completed]")]))
    assert isinstance(err, RecordError)
    assert "[not completed]" in err.reasons["administered_at"]


def test_date_field_wins_and_context_comes_from_the_record() -> None:
    m = mapper(
        fields={"age": "age", "clinician_id": "clin", "client_id": "code"},
        instruments={
            "ors": {
                "measure": "ORS",
                "items": ["o1", "o2", "o3", "o4"],
                "date": "ors_date",
                "rater": "parent",
            }
        },
    )
    rows = [
        {
            "record_id": "7",
            "redcap_event_name": "intake_arm_1",
            "redcap_repeat_instrument": "",
            "redcap_repeat_instance": "",
            "age": "34",
            "clin": "c2",
            "code": "C-7",
            "ors_complete": "0",
            "o1": "",
            "o2": "",
            "o3": "",
            "o4": "",
            "ors_date": "",
        },
        row(ors_date="2024-02-29", ors_timestamp="[not completed]"),
    ]
    (rec,) = list(m.records(rows))
    assert isinstance(rec, Record)
    assert rec.data["administered_at"] == "2024-02-29"
    assert rec.data["age"] == "34" and rec.data["clinician_id"] == "c2"
    assert rec.data["client_id"] == "C-7" and rec.data["rater"] == "parent"
    assert m.export_fields()[:4] == ["record_id", "code", "age", "clin"]


def test_bad_instance_is_reported() -> None:
    (err,) = list(mapper().records([row(redcap_repeat_instance="two")]))
    assert isinstance(err, RecordError) and "redcap_repeat_instance" in err.reasons


# --- the bookmark -------------------------------------------------------------------------------

R = dt.datetime(2025, 1, 15, 12, 0, tzinfo=dt.UTC)
OVL = dt.timedelta(seconds=300)


def test_bookmark_round_trip_and_unreadable() -> None:
    b = Bookmark(R - OVL, R + dt.timedelta(seconds=7))
    assert Bookmark.parse(b.dump()) == b
    assert Bookmark.parse("2025-01-15T11:00:00+00:00").since == R - dt.timedelta(hours=1)
    assert Bookmark.parse("{nonsense") == Bookmark() and Bookmark.parse(None) == Bookmark()
    assert json.loads(b.dump() or "")["since"] == "2025-01-15T11:55:00+00:00"


def test_server_local_time() -> None:
    assert server_local(R, CHICAGO) == "2025-01-15 06:00:00"


def test_next_since_plain_rule_and_never_back() -> None:
    assert (
        next_since(
            begin=None, run_started=R, overlap=OVL, query_at=R, prev_writes=None, clocks_ok=True
        )
        == R - OVL
    )
    later = R + dt.timedelta(hours=1)
    assert (
        next_since(
            begin=later,
            run_started=R,
            overlap=OVL,
            query_at=R,
            prev_writes=None,
            clocks_ok=True,
        )
        == later
    )


def test_next_since_skips_our_own_writes_once_read_again() -> None:
    writes = R - dt.timedelta(seconds=10, microseconds=300)
    skip = next_since(
        begin=R - OVL,
        run_started=R,
        overlap=OVL,
        query_at=R,
        prev_writes=writes,
        clocks_ok=True,
    )
    assert skip == writes.replace(microsecond=0) + dt.timedelta(seconds=1)
    too_soon = next_since(
        begin=R - OVL,
        run_started=R,
        overlap=OVL,
        query_at=writes + dt.timedelta(seconds=1),
        prev_writes=writes,
        clocks_ok=True,
    )
    assert too_soon == R - OVL
    skewed = next_since(
        begin=R - OVL,
        run_started=R,
        overlap=OVL,
        query_at=R,
        prev_writes=writes,
        clocks_ok=False,
    )
    assert skewed == R - OVL


def test_settle_delay() -> None:
    writes = R - dt.timedelta(seconds=1)
    assert settle_delay(
        now=R, begin=R - OVL, run_started=R, overlap=OVL, prev_writes=writes, clocks_ok=True
    ) == pytest.approx(1.5)
    assert (
        settle_delay(
            now=R,
            begin=R - OVL,
            run_started=R,
            overlap=OVL,
            prev_writes=None,
            clocks_ok=True,
        )
        == 0
    )
    old = R - dt.timedelta(hours=1)
    assert (
        settle_delay(
            now=R,
            begin=R - OVL,
            run_started=R,
            overlap=OVL,
            prev_writes=old,
            clocks_ok=True,
        )
        == 0
    )


def test_clocks_agree() -> None:
    assert clocks_agree([]) and clocks_agree([-0.9, -0.1])
    assert not clocks_agree([-0.5, -3.2]) and not clocks_agree([4.0])


# --- import rows ---------------------------------------------------------------------------------


def item(key: str, extra: dict[str, object], **payload: object) -> OutboxItem:
    base: dict[str, object] = {
        "total": 21.0,
        "session": 2,
        "status": None,
        "flags": [],
        "flag_message": "",
        "administered_at": "2024-03-01T16:15:00Z",
    }
    base.update(payload)
    return OutboxItem("clinic", key, base, "h", extra)


def extra(
    event: str, ri: str, instance: object, instrument: str = "ors", record: str = "7"
) -> dict[str, object]:
    return {
        "record": record,
        "redcap_event_name": event,
        "redcap_repeat_instrument": ri,
        "redcap_repeat_instance": instance,
        "instrument": instrument,
    }


PLACEMENT = Placement(
    True,
    {
        "intake_arm_1": frozenset({"ors", "srs", "fit_scores"}),
        "week_arm_1": frozenset({"ors", "srs", "fit_scores"}),
        "follow_arm_1": frozenset({"ors", "fit_scores"}),
    },
    frozenset({("week_arm_1", "ors"), ("week_arm_1", "srs"), ("week_arm_1", "fit_scores")}),
    frozenset({"follow_arm_1"}),
)
TWO = {
    "ors": {"measure": "ORS", "items": ["a", "b", "c", "d"]},
    "srs": {"measure": "SRS", "items": ["e", "f", "g", "h"]},
}


def builder(
    placement: Placement = PLACEMENT, instruments: dict[str, object] | None = None
) -> ImportBuilder:
    o = opts(instruments=instruments or TWO)
    return ImportBuilder(
        id_field="record_id",
        scores_instrument="fit_scores",
        instruments=o.instruments,
        placement=placement,
        timezone=CHICAGO,
    )


def target(*rows: dict[str, object], records: tuple[str, ...] = ("7",)) -> TargetRows:
    """What REDCap holds: a read-back of ``rows`` (plus one row per record in ``records``)."""
    b = builder()
    base = [{"record_id": r, "redcap_event_name": "intake_arm_1"} for r in records]
    return TargetRows.from_export([*base, *rows], "record_id", "fit_scores", b.read_fields[1:])


def by_slot(built: Built) -> dict[tuple[str, object], tuple[dict[str, object], list[str]]]:
    return {
        (r.get("redcap_event_name", ""), r.get("redcap_repeat_instance")): (r, k)
        for r, k in zip(built.rows, built.keys, strict=True)
    }


def test_import_rows_carry_event_and_instance_and_one_session_per_row() -> None:
    built = builder().build(
        [
            item("k1", extra("intake_arm_1", "", "")),
            item(
                "k2",
                extra("week_arm_1", "ors", 3),
                flags=["ors.checkpoint"],
                flag_message="Discuss progress",
            ),
            item("k3", extra("week_arm_1", "srs", 3, "srs"), total=33.5),
            item("k4", extra("follow_arm_1", "", 2)),
        ],
        target(),
    )
    rows = by_slot(built)
    intake, keys = rows[("intake_arm_1", None)]
    assert keys == ["k1"]
    assert intake == {
        "record_id": "7",
        "redcap_event_name": "intake_arm_1",
        "fit_date": "2024-03-01",
        "fit_ors_total": "21.0",
        "fit_ors_session": "2",
        "fit_ors_status": "none",
        "fit_ors_flags": "none",
        "fit_ors_message": "none",
        "fit_scores_complete": "2",
    }
    week, keys = rows[("week_arm_1", 3)]  # ORS #3 and SRS #3 of one date: one row, its own #
    assert sorted(keys) == ["k2", "k3"] and week["redcap_repeat_instrument"] == "fit_scores"
    assert week["fit_ors_flags"] == "ors.checkpoint" and week["fit_srs_total"] == "33.5"
    follow, _ = rows[("follow_arm_1", 2)]
    assert follow["redcap_repeat_instrument"] == ""
    assert built.missing == [] and built.unchanged == [False, False, False]


def test_a_skipped_srs_never_shares_a_row_with_another_session() -> None:
    day = "2024-03-{:02d}T16:00:00Z".format
    items = [
        item(f"o{n}", extra("week_arm_1", "ors", n), administered_at=day(n)) for n in (1, 2, 3)
    ]
    # no SRS on day 2: SRS #2 is day 3's
    items += [
        item("s1", extra("week_arm_1", "srs", 1, "srs"), administered_at=day(1), total=30.0),
        item("s2", extra("week_arm_1", "srs", 2, "srs"), administered_at=day(3), total=31.0),
    ]
    rows = by_slot(builder().build(items, target()))
    dates = {inst: r["fit_date"] for (_, inst), (r, _) in rows.items()}
    assert dates == {1: "2024-03-01", 2: "2024-03-02", 3: "2024-03-03"}
    assert "fit_srs_total" not in rows[("week_arm_1", 2)][0]  # day 2 had no SRS
    assert rows[("week_arm_1", 3)][0]["fit_srs_total"] == "31.0"
    assert sorted(rows[("week_arm_1", 3)][1]) == ["o3", "s2"]


def test_session_rows_are_found_again_by_date() -> None:
    there = {
        "record_id": "7",
        "redcap_event_name": "week_arm_1",
        "redcap_repeat_instrument": "fit_scores",
        "redcap_repeat_instance": 5,
        "fit_date": "2024-03-04",
        "fit_ors_total": "20.0",
    }
    built = builder().build(
        [
            item("s", extra("week_arm_1", "srs", 2, "srs"), administered_at="2024-03-04T15:00:00Z"),
            item("o", extra("week_arm_1", "ors", 5), administered_at="2024-03-05T15:00:00Z"),
        ],
        target(there),
    )
    rows = by_slot(built)
    assert rows[("week_arm_1", 5)][1] == ["s"]  # the SRS joins the row of its date
    assert rows[("week_arm_1", 6)][0]["fit_date"] == "2024-03-05"  # own #5 is taken: next one


def test_legacy_rows_are_reused_or_blanked_when_migrating() -> None:
    legacy = [
        {
            "record_id": "7",
            "redcap_event_name": "week_arm_1",
            "redcap_repeat_instrument": "fit_scores",
            "redcap_repeat_instance": n,
            "fit_ors_total": "20.0",
            "fit_srs_total": "35.0",
        }
        for n in (1, 2)
    ]
    items = [item("o1", extra("week_arm_1", "ors", 1), administered_at="2024-03-01T15:00:00Z")]
    kept = by_slot(builder().build(items, target(*legacy)))
    assert list(kept) == [("week_arm_1", 3)]  # not migrating: legacy rows are left alone
    rows = by_slot(builder().build(items, target(*legacy), migrate=True))
    first, _ = rows[("week_arm_1", 1)]
    assert first["fit_srs_total"] == "" and first["fit_ors_total"] == "21.0"  # no mix left
    blank, keys = rows[("week_arm_1", 2)]
    assert keys == [] and blank["fit_ors_total"] == "" and blank["fit_date"] == ""


def test_shared_fields_keep_one_labelled_part_per_measure() -> None:
    shared = {
        "ors": {
            "measure": "ORS",
            "items": ["a", "b", "c", "d"],
            "score_fields": {"date": "", "session": "fit_session", "flags": "fit_flags"},
        },
        "srs": {
            "measure": "SRS",
            "items": ["e", "f", "g", "h"],
            "score_fields": {"date": "", "session": "fit_session", "flags": "fit_flags"},
        },
    }
    b = builder(instruments=shared)
    there = {
        "record_id": "7",
        "redcap_event_name": "week_arm_1",
        "redcap_repeat_instrument": "fit_scores",
        "redcap_repeat_instance": 2,
        "fit_session": "2",
        "fit_flags": "ORS: ors.not_on_track; SRS: srs.below_cutoff",
    }
    tgt = TargetRows.from_export([there], "record_id", "fit_scores", b.read_fields[1:])
    built = b.build([item("s", extra("week_arm_1", "srs", 2, "srs"), flags=["srs.drop"])], tgt)
    (row,) = built.rows
    assert row["fit_flags"] == "ORS: ors.not_on_track; SRS: srs.drop"
    built = b.build([item("s", extra("week_arm_1", "srs", 2, "srs"))], tgt)
    assert built.rows[0]["fit_flags"] == "ORS: ors.not_on_track"
    assert parse_parts("ORS: a, b; junk", ["ORS", "SRS"], "; ") == {"ORS": "a, b"}
    assert join_parts({}, ["ORS"], "; ") == "none"


def test_rows_the_target_already_holds_and_vanished_records_are_not_imported() -> None:
    b = builder()
    (first,) = b.build([item("k1", extra("intake_arm_1", "", ""))], target()).rows
    held = target({**first})
    built = b.build([item("k1", extra("intake_arm_1", "", ""))], held)
    assert built.unchanged == [True]
    gone = b.build([item("k9", extra("intake_arm_1", "", "", record="9"))], target())
    assert gone.rows == [] and gone.missing == ["9"]


def test_local_date_is_the_clinic_date() -> None:
    assert local_date("2024-03-02T03:00:00Z", CHICAGO) == "2024-03-01"
    assert local_date("2024-03-02", CHICAGO) == "2024-03-02"


def test_scoring_instrument_set_up_differently_is_a_config_error() -> None:
    plain = Placement(True, PLACEMENT.form_events, frozenset({("week_arm_1", "ors")}), frozenset())
    with pytest.raises(ConfigError, match="ors is a repeating instrument on event week_arm_1"):
        builder(plain).build([item("k2", extra("week_arm_1", "ors", 3))], target())
    missing = Placement(True, {"intake_arm_1": frozenset({"ors"})}, frozenset(), frozenset())
    with pytest.raises(ConfigError, match="not designated on event intake_arm_1"):
        builder(missing).build([item("k1", extra("intake_arm_1", "", ""))], target())
    keyless = {k: {**v, "score_fields": {"date": "", "session": ""}} for k, v in TWO.items()}
    with pytest.raises(ConfigError, match=r"map score_fields\.date"):
        builder(instruments=keyless).build([item("k2", extra("week_arm_1", "ors", 3))], target())


def test_score_values_truncate_long_messages() -> None:
    values = score_values(
        {"flag_message": "x" * 900, "change_from_intake": -5.0},
        {"message": "m", "change": "c", "rc_class": "r"},
    )
    assert len(values["m"]) == 500 and values["m"].endswith("...")
    assert values["c"] == "-5.0" and values["r"] == ""


# --- the mapping against a project ------------------------------------------------------------


def test_mapping_problems_name_fields_and_scales() -> None:
    meta = [
        {"field_name": "record_id", "form_name": "demo", "field_type": "text"},
        {
            "field_name": "o1",
            "form_name": "ors",
            "field_type": "text",
            "text_validation_type_or_show_slider_number": "number_1dp",
            "text_validation_min": "0",
            "text_validation_max": "10",
        },
        {"field_name": "o2", "form_name": "other", "field_type": "slider"},
    ]
    disc = Discovery.from_api({"project_id": "4"}, meta)
    problems = mapping_problems(opts(fields={"age": "age"}), disc)
    text = "\n".join(problems)
    assert 'set scale = "points"' in text
    assert "item field 'o2' belongs to instrument 'other'" in text
    assert "item field 'o3' is not in the data dictionary" in text
    assert "fields.age" in text and "no instrument 'fit_scores'" in text
    assert disc.id_field == "record_id" and disc.form_of("ors_complete") == "ors"


# --- session rows, property-tested --------------------------------------------------------


@given(
    days=st.lists(st.integers(1, 28), min_size=1, max_size=8, unique=True),
    srs_days=st.data(),
    split=st.integers(0, 16),
)
@settings(max_examples=60, deadline=None)
def test_session_rows_never_mix_dates_and_pushing_again_changes_nothing(
    days: list[int], srs_days: st.DataObject, split: int
) -> None:
    """Any ORS dates, an SRS on any subset of them (instances numbered on their own), pushed in
    two batches cut anywhere: every row holds one date, and pushing again writes nothing."""
    days = sorted(days)
    with_srs = srs_days.draw(st.lists(st.sampled_from(days), unique=True).map(sorted))
    at = "2024-03-{:02d}T15:00:00Z".format
    items = [
        item(f"o{n}", extra("week_arm_1", "ors", n), administered_at=at(d), total=float(d))
        for n, d in enumerate(days, start=1)
    ] + [
        item(f"s{n}", extra("week_arm_1", "srs", n, "srs"), administered_at=at(d), total=d + 0.5)
        for n, d in enumerate(with_srs, start=1)
    ]
    b = builder()
    held: list[dict[str, object]] = []

    def push(batch: list[OutboxItem]) -> Built:
        built = b.build(batch, target(*held))
        for row in built.rows:  # what REDCap holds afterwards (overwrite: fields replaced)
            slot = [
                r for r in held if r["redcap_repeat_instance"] == row.get("redcap_repeat_instance")
            ]
            if slot:
                slot[0].update(row)
            elif "redcap_repeat_instance" in row:
                held.append(dict(row))
        return built

    cut = min(split, len(items))
    push(items[:cut])
    push(items[cut:])
    for row in held:
        day = int(str(row["fit_date"])[-2:])
        if row.get("fit_ors_total"):
            assert float(str(row["fit_ors_total"])) == day
        if row.get("fit_srs_total"):
            assert float(str(row["fit_srs_total"])) == day + 0.5
    assert sorted(int(str(r["fit_date"])[-2:]) for r in held) == days
    again = push(items)
    assert all(again.unchanged)
