"""A clinic whose clients fall into every caseload group, for the caseload page tests.

As of :data:`AS_OF`: for clinician T01, R1 deteriorated (an *alert*: red), O1's alliance fell (a
*warning*: orange), S1 has had no session for 25 days and nothing raised (no data lately),
G1 and G2 are doing fine (green), E1's episode ended months ago (not active: not listed);
for T02, one client (red). Synthetic data only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from notify_clinic import NotifyClinic

AS_OF = dt.date(2026, 6, 10)
EXPECTED_T01 = ["R1", "O1", "S1", "G2", "G1"]  # green: longest since seen first


def _row(client: str, days_ago: int, measure: str, total: float, clinician: str) -> dict[str, str]:
    return {
        "client_id": client,
        "administered_at": (AS_OF - dt.timedelta(days=days_ago)).isoformat(),
        "measure": measure,
        "total": str(total),
        "clinician_id": clinician,
    }


CLIENTS: dict[str, tuple[str, list[tuple[int, float, float]]]] = {
    # client: (clinician, [(days ago, ORS, SRS)])
    "R1": ("T01", [(16, 21.0, 39.0), (9, 17.5, 39.0), (2, 14.0, 39.0)]),
    "O1": ("T01", [(10, 20.0, 39.0), (3, 21.0, 37.0)]),
    "S1": ("T01", [(32, 20.0, 39.0), (25, 22.0, 39.0)]),
    "G1": ("T01", [(8, 18.0, 38.0), (1, 26.0, 39.5)]),
    "G2": ("T01", [(9, 22.0, 39.0), (2, 23.0, 39.0)]),
    "E1": ("T01", [(140, 10.0, 30.0), (133, 8.0, 28.0)]),
    "X9": ("T02", [(14, 24.0, 39.0), (7, 15.0, 38.0)]),
}


def caseload_clinic(tmp_path: Path, **kwargs: Any) -> NotifyClinic:
    clinic = NotifyClinic(tmp_path, rules={}, timezone="UTC", **kwargs)
    for client, (clinician, sessions) in CLIENTS.items():
        for i, (ago, ors, srs) in enumerate(sessions):
            clinic.put(f"{client}-o{i}", _row(client, ago, "ORS", ors, clinician))
            clinic.put(f"{client}-s{i}", _row(client, ago, "SRS", srs, clinician))
    clinic.at(dt.datetime.combine(AS_OF, dt.time(6), tzinfo=dt.UTC))
    clinic.sync()
    return clinic
