"""A clinic's config for end-to-end tests of the SimplePractice bridge through `fit`: a csv
ORS/SRS source (namespace ``clinic``) and a simplepractice source over a synthetic practice of
40 invented clients (:func:`sp_synthetic.practice`). Test support only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sp_synthetic as syn
from click.testing import CliRunner, Result

from fit_cli.main import cli
from fit_core.store import Store

STATUS = "appointment_status.csv"
BILLING = "billing_appointments.csv"
CLIENTS = "clients.csv"
WORDS = {
    "Show": "attended",
    "No Show": "no_show",
    "Late Canceled": "late_cancel",
    "Canceled": "cancelled",
    "Clinician Canceled": "clinician_cancelled",
}


class Clinic:
    """A config with a csv ORS/SRS source and a simplepractice source over a practice."""

    def __init__(
        self,
        tmp: Path,
        monkeypatch: pytest.MonkeyPatch,
        *,
        day_first: bool = False,
        **sp: Any,
    ) -> None:
        """``day_first``: the exports write dates DD/MM/YYYY; ``sp``: more source options."""
        self.tmp = tmp
        self.p = syn.practice()
        self.exports = tmp / "exports"
        self.exports.mkdir(parents=True)
        syn.write_status_report(self.exports / STATUS, self.p, day_first=day_first)
        syn.write_billing_report(self.exports / BILLING, self.p, day_first=day_first)
        syn.write_practice_clients(self.exports / CLIENTS, self.p, day_first=day_first)
        scores = tmp / "scores"
        scores.mkdir(parents=True)
        (scores / "fit.csv").write_text(syn.practice_scores(self.p), encoding="utf-8")
        self.store_path = tmp / "fit.sqlite3"
        options = {
            "adapter": "simplepractice",
            **syn.sp_options(tmp, self.exports),
            "clinicians": {},
            "report_page": False,  # drawing 40 pages takes seconds: only where tested
            **sp,
        }
        lines = [
            f"[store]\npath = {json.dumps(str(self.store_path))}",
            f'[sync]\ntimezone = "{syn.TIMEZONE}"',
            "[sources.clinic_csv]",
            'adapter = "csv"\nnamespace = "clinic"',
            f"path = {json.dumps(str(scores))}",
            f"scores_path = {json.dumps(str(tmp / 'scores.out.csv'))}",
            "[sources.sp]",
            *(f"{k} = {_toml(v)}" for k, v in options.items()),
        ]
        self.config = tmp / "config.toml"
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        monkeypatch.setenv("FIT_SP_NAME_KEY", syn.NAME_KEY)

    def fit(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, ["--config", str(self.config), *args], input=input)

    def link(self, n: int | None = None) -> None:
        syn.link_practice(self.tmp / "links.csv", self.p.clients[:n])

    def attendance(self) -> dict[str, str]:
        """source key -> status of every stored appointment of the simplepractice source."""
        store = Store.open(self.store_path)
        try:
            contexts = store.client_contexts([("clinic", c.client_id) for c in self.p.clients])
        finally:
            store.close()
        return {a.source_key: a.status for ctx in contexts.values() for a in ctx.appointments}

    def quarantine(self) -> list[dict[str, Any]]:
        res = self.fit("quarantine", "--source", "sp", "--json")
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)

    def appointments(self) -> dict[str, tuple[Any, str, str | None]]:
        """source key -> (UTC start, status, billing code) of every stored appointment."""
        store = Store.open(self.store_path)
        try:
            contexts = store.client_contexts([("clinic", c.client_id) for c in self.p.clients])
        finally:
            store.close()
        return {
            a.source_key: (a.starts_at, a.status, a.service_code)
            for ctx in contexts.values()
            for a in ctx.appointments
        }

    def births(self) -> dict[str, Any]:
        """client id -> date of birth stored from the client list."""
        store = Store.open(self.store_path)
        try:
            contexts = store.client_contexts([("clinic", c.client_id) for c in self.p.clients])
        finally:
            store.close()
        return {cid: ctx.info.date_of_birth for (_, cid), ctx in contexts.items() if ctx.info}


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)
