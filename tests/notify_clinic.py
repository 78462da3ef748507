"""A small clinic for the notification tests: a memory source, a store, the sync engine and the
dispatcher, with "now" moved by the test.

The data are synthetic. Item values are chosen to be unmistakable in text (two decimals that
appear nowhere else), and every record carries an ``extra`` with a made-up name, so a test can
prove that neither ever reaches a message.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from fit_core.config import config_from_mapping
from fit_core.hookspecs import hookimpl
from fit_core.models import Record, RecordError
from fit_core.plugins import load_plugins
from fit_core.secrets import SecretStore
from fit_core.store import Store
from fit_core.sync import SyncEngine

sys.path.insert(0, str(Path(__file__).parent))
import memory_adapter
from memory_adapter import MemoryAdapter, MemorySource

NAME = "Maria Musterfrau"  # a made-up name kept in every record's extra
DAY0 = dt.date(2026, 3, 2)  # a Monday
PASSWORD = "s3cret-mail-pass"

# items chosen to be findable: each value is a string that occurs in no other number
A1_ORS = [("5.13", "4.87", "5.21", "4.79"), ("3.67", "3.41", "3.59", "3.33")]  # 20.0 → 14.0
B2_SRS = ("8.37", "9.91", "9.88", "9.84")  # 38.0, one item below 9 (srs.low_item)
ITEM_VALUES = sorted({v for row in A1_ORS for v in row} | set(B2_SRS))


def day(week: int) -> dt.date:
    return DAY0 + dt.timedelta(weeks=week)


class NamedMemoryAdapter(MemoryAdapter):
    """The memory adapter, with a name in each record's extra (as a practice export might)."""

    name: ClassVar[str] = "named_memory"

    def pull(self, bookmark: str | None) -> Iterator[Record | RecordError | Any]:
        for item in super().pull(bookmark):
            if isinstance(item, Record):
                item = Record(
                    item.source_key,
                    item.data,
                    modified_at=item.modified_at,
                    location=item.location,
                    extra={"client_name": NAME},
                )
            yield item


class _Plugin:
    @staticmethod
    @hookimpl
    def fit_register_adapters(register: Any) -> None:
        register(NamedMemoryAdapter)


def row(client: str, week: int, measure: str, items: tuple[str, ...] | None = None, *,
        total: float | None = None, clinician: str | None = None) -> dict[str, str]:  # fmt: skip
    out = {
        "client_id": client,
        "administered_at": day(week).isoformat(),
        "measure": measure,
    }
    if items is not None:
        out.update({f"q{i + 1}": v for i, v in enumerate(items)})
    if total is not None:
        out["total"] = str(total)
    if clinician:
        out["clinician_id"] = clinician
    return out


class NotifyClinic:
    """The clinic, its config (``notify`` and ``reports`` tables given by the test)."""

    def __init__(
        self,
        tmp_path: Path,
        notify: dict[str, Any] | None = None,
        *,
        reports: dict[str, Any] | None = None,
        rules: dict[str, Any] | None = None,
        timezone: str = "Europe/Berlin",
    ) -> None:
        self.tmp = tmp_path
        self.remote = MemorySource()
        memory_adapter.SOURCES["notify_clinic"] = self.remote
        self.raw: dict[str, Any] = {
            "store": {"path": str(tmp_path / "fit.sqlite3")},
            "sync": {"timezone": timezone},
            "sources": {"mem": {"adapter": "named_memory", "remote": "notify_clinic"}},
            "rules": rules if rules is not None else {"enabled": ["srs.low_item"]},
        }
        if notify is not None:
            self.raw["notify"] = notify
        if reports is not None:
            self.raw["reports"] = reports
        self.config = config_from_mapping(self.raw, path=tmp_path / "config.toml")
        self.store = Store.open(self.config.store_path)
        self.registry = load_plugins(extra=[memory_adapter, _Plugin])
        self.now = dt.datetime(2026, 3, 2, 17, tzinfo=dt.UTC)
        self.changed = 0
        self.secrets = SecretStore(environ={"FIT_NOTIFY_MAIL_PASSWORD": PASSWORD})

    def reconfigure(self, notify: dict[str, Any]) -> None:
        self.raw["notify"] = notify
        self.config = config_from_mapping(self.raw, path=self.tmp / "config.toml")

    def put(self, key: str, data: dict[str, str]) -> None:
        self.changed += 1
        modified = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=self.changed)
        self.remote.put(key, data, modified)

    def seed(self) -> None:
        """A1 (T01): ORS 20 → 14 (reliable deterioration, an alert) and SRS 38 → 33 (below the
        cutoff and a drop, warnings); B2 (T02): ORS 18, 19 and an SRS with a low item (info);
        C3 (no clinician): ORS 22 → 15 (an alert)."""
        for week, items in enumerate(A1_ORS):
            self.put(f"a1-o{week}", row("A1", week, "ORS", items, clinician="T01"))
        self.put("a1-s0", row("A1", 0, "SRS", total=38, clinician="T01"))
        self.put("a1-s1", row("A1", 1, "SRS", total=33, clinician="T01"))
        self.put("b2-o0", row("B2", 0, "ORS", total=18, clinician="T02"))
        self.put("b2-o1", row("B2", 1, "ORS", total=19, clinician="T02"))
        self.put("b2-s0", row("B2", 0, "SRS", total=39, clinician="T02"))
        self.put("b2-s1", row("B2", 1, "SRS", B2_SRS, clinician="T02"))
        self.put("c3-o0", row("C3", 0, "ORS", total=22))
        self.put("c3-o1", row("C3", 1, "ORS", total=15))
        self.put("c3-s1", row("C3", 1, "SRS", total=39))

    def at(self, when: dt.datetime) -> None:
        self.now = when.astimezone(dt.UTC)

    def sync(self) -> Any:
        engine = SyncEngine(self.config, self.registry, self.store, clock=lambda: self.now)
        return engine.run()

    def dispatcher(self) -> Any:
        from fit_core.notify.deliver import Dispatcher

        return Dispatcher(
            self.config, self.registry, self.store, secrets=self.secrets, clock=lambda: self.now
        )

    def deliver(self, **kwargs: Any) -> Any:
        return self.dispatcher().deliver(**kwargs)

    def alert_ids(self, client: str, state: str = "open") -> set[int]:
        return {a["id"] for a in self.store.list_flags(state, client=client)}

    def close(self) -> None:
        self.store.close()


def mail_channel(smtp: Any, **extra: Any) -> dict[str, Any]:
    return {
        "type": "email",
        "host": "127.0.0.1",
        "port": smtp.port,
        "security": smtp.security,
        "username": smtp.user,
        "from": "FIT alerts <fit-alerts@clinic.example>",
        "cafile": str(smtp.cafile),
        "timeout": 5,
        **extra,
    }


def hook_channel(hook: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "webhook", "url": hook.url, "timeout": 5, **extra}


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


def write_csv_clinic(
    tmp: Path,
    channels: dict[str, dict[str, Any]],
    routes: dict[str, dict[str, Any]],
    *,
    today: dt.date | None = None,
    extra: str = "",
) -> Path:
    """A FIT long CSV with open alerts for four clients of two clinicians (dated around
    ``today``), and a config file for it with the given channels and routes."""
    today = today or dt.date.today()
    rows = ["client_id,administered_at,measure,total,clinician_id"]
    for n, (clinician, totals) in enumerate(
        (("T01", (21, 14)), ("T01", (19, 13)), ("T02", (24, 16)), ("T02", (18, 12)))
    ):
        for week, total in enumerate(totals):
            when = today - dt.timedelta(days=14 - 7 * week)
            rows.append(f"K{n:04d},{when.isoformat()},ORS,{total},{clinician}")
            rows.append(f"K{n:04d},{when.isoformat()},SRS,{39 - 4 * week},{clinician}")
    (tmp / "admins.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    lines = [
        "[store]",
        f"path = {toml_value(tmp / 'fit.sqlite3')}",
        "[sync]",
        'timezone = "UTC"',
        "[sources.clinic]",
        'adapter = "csv"',
        f"path = {toml_value(tmp / 'admins.csv')}",
        f"scores_path = {toml_value(tmp / 'scores.csv')}",
        "[notify.clinicians]",
        'T01 = "t01@clinic.example"',
        'T02 = "t02@clinic.example"',
    ]
    for name, table in channels.items():
        lines.append(f"[notify.channels.{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    for name, table in routes.items():
        lines.append(f"[notify.routes.{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    cfg = tmp / "config.toml"
    cfg.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return cfg
