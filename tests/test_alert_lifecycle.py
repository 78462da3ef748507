"""The alert lifecycle through the real sync engine: alerts are about now, one per condition,
carried forward with their acknowledgement, superseded or closed with a reason, and a change
of settings re-applies to every stored client at the next sync."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fit_core.alert_store import AlertStateError
from fit_core.config import config_from_mapping
from fit_core.plugins import load_plugins
from fit_core.settings import Settings
from fit_core.store import Store
from fit_core.sync import SyncEngine

sys.path.insert(0, str(Path(__file__).parent))
import memory_adapter
from memory_adapter import MemorySource

DAY0 = dt.date(2026, 3, 2)  # a Monday


def day(week: int) -> dt.date:
    return DAY0 + dt.timedelta(weeks=week)


def ors(client: str, week: int, total: float) -> dict[str, str]:
    return {
        "client_id": client,
        "administered_at": day(week).isoformat(),
        "measure": "ORS",
        "total": str(total),
    }


def srs(client: str, week: int, total: float) -> dict[str, str]:
    return {**ors(client, week, total), "measure": "SRS"}


class Clinic:
    """A memory source, a store and an engine whose "now" and settings a test moves."""

    def __init__(self, tmp_path: Path, rules: dict[str, Any] | None = None) -> None:
        self.remote = MemorySource()
        memory_adapter.SOURCES["clinic"] = self.remote
        self.raw = {
            "store": {"path": str(tmp_path / "fit.sqlite3")},
            "sync": {"timezone": "UTC"},
            "sources": {"mem": {"adapter": "memory", "remote": "clinic"}},
            "rules": rules or {},
        }
        self.config = config_from_mapping(self.raw)
        self.store = Store.open(self.config.store_path)
        self.now = dt.datetime(2026, 3, 2, 18, tzinfo=dt.UTC)
        self.registry = load_plugins(extra=[memory_adapter])
        self.settings: Settings = self.config.settings
        self.changed = 0

    def put(self, key: str, row: dict[str, str]) -> None:
        self.changed += 1
        self.remote.put(
            key, row, dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(self.changed)
        )

    def run(self, on: dt.date | None = None) -> Any:
        if on is not None:
            self.now = dt.datetime.combine(on, dt.time(18), tzinfo=dt.UTC)
        engine = SyncEngine(
            self.config, self.registry, self.store, clock=lambda: self.now, settings=self.settings
        )
        return engine.run()

    def alerts(self, state: str = "open", client: str | None = None) -> list[dict[str, Any]]:
        return self.store.list_flags(state, client=client)

    def rules(self, state: str = "open", client: str | None = None) -> list[str]:
        return sorted(a["rule_id"] for a in self.alerts(state, client))


@pytest.fixture
def clinic(tmp_path: Path) -> Iterator[Clinic]:
    c = Clinic(tmp_path)
    yield c
    c.store.close()


def test_after_one_sync_a_recovered_client_has_no_open_checkpoint_alert(clinic: Clinic) -> None:
    # six weekly ORS, 16 → 28 (a reliable recovery at the latest session), no SRS at all
    from fit_adapters.simplepractice.note import render_note
    from fit_core.models import ClientInfo

    for week, total in enumerate((16, 17, 18, 19, 22, 28)):
        clinic.put(f"o{week}", ors("R1", week, total))
    clinic.remote.context.append(ClientInfo("mem", "mem", "R1", dt.date(1990, 1, 1), "T1"))
    clinic.run(on=day(5) + dt.timedelta(days=1))
    # one alert for the run of sessions without an SRS, none for checkpoints long passed
    assert clinic.rules(client="R1") == ["srs.missing"]
    (missing,) = clinic.alerts(client="R1")
    assert (missing["first_session"], missing["session"]) == (1, 6)
    assert "last 6 sessions" in missing["message"]
    target = clinic.remote.target
    assert target["o5"]["rc_class"] == "recovered" and target["o5"]["flags"] == ["srs.missing"]
    assert all(target[f"o{w}"]["flags"] == [] for w in range(5))  # no stale flags pushed
    # the practice system's progress note says "recovered" and nothing about checkpoints
    note = render_note(target["client:mem:R1"])
    assert "recovered" in note and "checkpoint" not in note and "No SRS" in note


def test_three_sessions_without_change_are_one_alert_carried_forward(clinic: Clinic) -> None:
    for week, total in enumerate((15, 15.5, 16, 16.5, 17)):
        clinic.put(f"o{week}", ors("N1", week, total))
        clinic.put(f"s{week}", srs("N1", week, 38))
    clinic.run(on=day(4) + dt.timedelta(days=1))
    (alert,) = clinic.alerts(client="N1")
    assert alert["rule_id"] == "ors.checkpoint"
    assert (alert["first_session"], alert["session"], alert["date"]) == (3, 5, "2026-03-30")
    assert "No reliable change by session 5" in alert["message"]


def test_an_alert_keeps_its_id_and_acknowledgement_while_it_holds(clinic: Clinic) -> None:
    totals = (15, 15.5, 16, 16.5, 21, 15, 16)
    for week in range(3):
        clinic.put(f"o{week}", ors("N1", week, totals[week]))
        clinic.put(f"s{week}", srs("N1", week, 38))
    clinic.run(on=day(2) + dt.timedelta(days=1))
    (first,) = clinic.alerts(client="N1")
    assert (first["rule_id"], first["session"]) == ("ors.checkpoint", 3)
    assert clinic.remote.target["o2"]["flags"] == ["ors.checkpoint"]
    assert clinic.store.set_flag_state(first["id"], "acknowledged")
    # session 4: still no change → the same alert, moved on, still acknowledged, not pushed
    clinic.put("o3", ors("N1", 3, totals[3]))
    clinic.put("s3", srs("N1", 3, 38))
    summary = clinic.run(on=day(3) + dt.timedelta(days=1))
    assert summary.flags_raised == 0
    (carried,) = clinic.alerts("current", client="N1")
    assert (carried["id"], carried["state"], carried["session"]) == (first["id"], "acknowledged", 4)
    assert carried["first_session"] == 3 and carried["acknowledged_at"]
    assert clinic.remote.target["o3"]["flags"] == [] and clinic.remote.target["o2"]["flags"] == []
    # session 5: +6, a reliable change → superseded by session 5, kept in history
    clinic.put("o4", ors("N1", 4, totals[4]))
    clinic.put("s4", srs("N1", 4, 38))
    summary = clinic.run(on=day(4) + dt.timedelta(days=1))
    assert summary.alerts_closed == 1 and clinic.alerts("current", client="N1") == []
    done = clinic.store.alert(first["id"])
    assert done is not None and done["state"] == "superseded"
    assert done["close_reason"] == "superseded" and done["acknowledged_at"]
    assert done["closed_by"]["session"] == 5 and done["closed_by"]["source_key"] == "o4"
    events = [e["event"] for e in done["history"]]
    assert events == ["raised", "acknowledged", "carried", "superseded"]
    with pytest.raises(AlertStateError, match="superseded"):
        clinic.store.set_flag_state(first["id"], "open")  # final: nothing to reopen
    assert [e["alert_id"] for e in clinic.store.alert_events(events=["superseded"])] == [
        first["id"]
    ]
    # sessions 6-7 fall back to no change: a new alert (the old one stopped holding)
    for week in (5, 6):
        clinic.put(f"o{week}", ors("N1", week, totals[week]))
        clinic.put(f"s{week}", srs("N1", week, 38))
    clinic.run(on=day(6) + dt.timedelta(days=1))
    (again,) = clinic.alerts(client="N1")
    assert again["rule_id"] == "ors.last_chance" and again["id"] != first["id"]
    assert (again["first_session"], again["session"], again["state"]) == (6, 7, "open")


def test_a_condition_that_stops_and_starts_between_two_syncs_is_a_new_alert(
    clinic: Clinic,
) -> None:
    for week, total in enumerate((20, 20, 20, 20)):  # checkpoint at sessions 3 and 4
        clinic.put(f"o{week}", ors("B1", week, total))
        clinic.put(f"s{week}", srs("B1", week, 38))
    clinic.run(on=day(3) + dt.timedelta(days=1))
    (old,) = clinic.alerts(client="B1")
    clinic.store.set_flag_state(old["id"], "acknowledged")
    # two sessions arrive at once: 26 at session 5 (reliable change), 21 at session 6 (none,
    # but session 6 is the last-chance window): the checkpoint stopped at session 5
    clinic.put("o4", ors("B1", 4, 26))
    clinic.put("o5", ors("B1", 5, 21))
    clinic.run(on=day(5) + dt.timedelta(days=1))
    done = clinic.store.alert(old["id"])
    assert done is not None and done["state"] == "superseded"
    assert done["closed_by"]["session"] == 5
    assert clinic.rules(client="B1") == ["ors.last_chance", "srs.missing"]


def test_an_ended_episode_closes_its_alerts_with_that_reason(clinic: Clinic) -> None:
    clinic.put("o0", ors("E1", 0, 20))
    clinic.put("o1", ors("E1", 1, 14))  # reliable deterioration
    clinic.run(on=day(1) + dt.timedelta(days=1))
    assert "ors.reliable_deterioration" in clinic.rules(client="E1")
    # no data for more than episode_gap_days (90): the episode has ended, nothing new arrived
    summary = clinic.run(on=day(1) + dt.timedelta(days=91))
    assert summary.sources[0].new == 0 and clinic.alerts(client="E1") == []
    closed = clinic.alerts("closed", client="E1")
    assert {a["close_reason"] for a in closed} == {"episode_ended"}
    assert "ors.reliable_deterioration" in {a["rule_id"] for a in closed}
    assert clinic.remote.target["o1"]["flags"] == []  # the ended episode carries no flags
    assert clinic.run().sources[0].pushed == 0


def test_deleted_data_closes_its_alerts_and_keeps_their_history(clinic: Clinic) -> None:
    from fit_core.models import RecordError

    clinic.put("o0", ors("D1", 0, 20))
    clinic.put("o1", ors("D1", 1, 14))
    clinic.run(on=day(1) + dt.timedelta(days=1))
    (det,) = [a for a in clinic.alerts(client="D1") if a["rule_id"].startswith("ors.")]
    # the later record is withdrawn at the source: the deterioration no longer holds
    clinic.remote.rows.pop("o1")
    clinic.remote.errors.append(RecordError("o1", {"record": "gone"}, "o1"))
    clinic.run()
    gone = clinic.store.alert(det["id"])
    assert gone is not None and gone["state"] == "superseded"
    assert gone["closed_by"]["source_key"] == "o0"  # what the rule now looks at
    # and every record withdrawn: what is left closes for want of data
    clinic.remote.rows.pop("o0")
    clinic.remote.errors.append(RecordError("o0", {"record": "gone"}, "o0"))
    clinic.run()
    assert clinic.alerts("current", client="D1") == []
    assert {a["close_reason"] for a in clinic.alerts("closed", client="D1")} <= {"no_data"}


# --- settings re-apply --------------------------------------------------------------------------


def test_a_disabled_rule_leaves_no_open_alert_after_the_next_sync_without_new_data(
    clinic: Clinic,
) -> None:
    for week, total in enumerate((20, 20, 20)):
        clinic.put(f"o{week}", ors("S1", week, total))
        clinic.put(f"s{week}", srs("S1", week, 35.5))
    first = clinic.run(on=day(2) + dt.timedelta(days=1))
    assert first.settings_changed == []  # a new store: nothing to re-apply
    assert clinic.rules(client="S1") == ["ors.checkpoint", "srs.below_cutoff"]
    # the clinic switches the checkpoint rule off and lowers the SRS cutoff to 35
    clinic.settings = Settings(disabled_rules=frozenset({"ors.checkpoint"}), srs_cutoff=35.0)
    again = clinic.run()
    assert again.sources[0].new == 0 and again.clients_rescored == 1
    assert again.settings_changed == ["settings", "rules"]
    # only the rows whose scores or flags changed are pushed: the latest ORS (checkpoint off)
    # and every SRS (35.5 is no longer clinical with the cutoff at 35)
    assert again.sources[0].pushed == 4
    assert clinic.rules(client="S1") == []
    reasons = {a["rule_id"]: a["close_reason"] for a in clinic.alerts("ended", client="S1")}
    assert reasons == {"ors.checkpoint": "rule_off", "srs.below_cutoff": "superseded"}
    assert clinic.remote.target["o2"]["flags"] == [] and clinic.remote.target["s2"]["flags"] == []
    # the same settings again: nothing to re-apply, nothing to push
    third = clinic.run()
    assert third.settings_changed == [] and third.clients_rescored == 0
    assert third.sources[0].pushed == 0


def test_a_new_trajectory_model_rescores_every_client(clinic: Clinic) -> None:
    from fit_core.trajectories import load_supplied_table

    clinic.put("o0", ors("M1", 0, 15))
    clinic.put("o1", ors("M1", 1, 16))
    clinic.run(on=day(1) + dt.timedelta(days=1))
    assert clinic.remote.target["o1"]["status"] is None
    table = clinic.store.path + ".table.csv"
    Path(table).write_text(
        "intake,session,expected,lower,upper,severe\n"
        + "".join(f"{i},2,{i + 4},{i + 2},{i + 6},{i}\n" for i in range(0, 41, 5)),
        encoding="utf-8",
    )
    clinic.store.save_model("table", load_supplied_table(Path(table)).to_dict())
    summary = clinic.run()
    assert summary.settings_changed == ["model"] and summary.clients_rescored == 1
    assert clinic.remote.target["o1"]["status"] == "orange"
    assert clinic.rules(client="M1")[0] == "ors.not_on_track"


def test_a_checkpoint_for_a_client_who_got_worse_says_so() -> None:
    from fit_core.measures import BUILTIN_MEASURES
    from fit_core.models import Administration
    from fit_core.rules.builtin import BUILTIN_RULES
    from fit_core.scoring import score_client

    def adm(week: int, total: float) -> Administration:
        when = dt.datetime.combine(day(week), dt.time(9), tzinfo=dt.UTC)
        return Administration("t", f"k{week}", "t", "W1", "ORS", when, day(week), False, total)

    measures = {m.key: m for m in BUILTIN_MEASURES}
    result = score_client(
        [adm(0, 22), adm(1, 20), adm(2, 16)], measures, Settings(as_of=day(3)), BUILTIN_RULES
    )
    latest = max(result.scored, key=lambda s: s.admin.local_date)
    (checkpoint,) = [f for f in latest.flags if f.rule_id == "ors.checkpoint"]
    assert "reliably deteriorated by session 3" in checkpoint.message
    assert "No reliable change" not in checkpoint.message
    assert checkpoint.inputs["rc_class"] == "deteriorated"
