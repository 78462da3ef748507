"""Hand-made synthetic cases that show what the reports must stay clear for (docs and tests).

:func:`deteriorating_client` is a long, hard episode: an adult seen weekly for 20 sessions
whose ORS falls from 19.5 to 9.2 (a reliable deterioration from session 6, past a trajectory
model's last session from session 11), whose alliance slips below 36, with a score given to two
decimals (14.35) as a slider gives them. Rows are in the FIT long CSV format
(:data:`fit_core.synthetic.COLUMNS`), ids are neutral, nobody is real.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

__all__ = ["DETERIORATING_ORS", "DETERIORATING_SRS", "deteriorating_client"]

#: ORS totals, sessions 1..20 (session 6 has two decimals: a slider's 14.35)
DETERIORATING_ORS: tuple[str, ...] = (
    "19.5", "18.2", "17.6", "16.1", "15.3", "14.35", "13.8", "14.9", "13.2", "12.6",
    "12.1", "11.4", "12.3", "11.0", "10.6", "10.9", "9.8", "10.4", "9.6", "9.2",
)  # fmt: skip
#: SRS totals, sessions 1..20
DETERIORATING_SRS: tuple[str, ...] = (
    "37.6", "37.2", "36.8", "37.0", "36.1", "35.4", "36.2", "35.0", "34.6", "35.3",
    "34.1", "34.8", "33.9", "34.5", "33.2", "33.8", "32.9", "33.5", "32.4", "31.8",
)  # fmt: skip
# how the SRS total splits into its four items (relationship holds best, approach slips most)
_SRS_SHARES = (Decimal("0.3"), Decimal("0.2"), Decimal("-0.5"), Decimal("0"))


def _srs_items(total: str) -> list[str]:
    t = Decimal(total)
    base = [t / 4 + s for s in _SRS_SHARES[:3]]
    items = [b.quantize(Decimal("0.1")) for b in base]
    items.append(t - sum(items))  # the four items sum exactly to the total
    return [str(i) for i in items]


def deteriorating_client(
    first: dt.date, *, client_id: str = "C900001", clinician_id: str = "T03"
) -> list[dict[str, str]]:
    """The 20 weekly sessions (ORS at the start, SRS with items at the end) from ``first``."""
    rows: list[dict[str, str]] = []
    episode = f"{client_id}-E1"
    for k, (ors, srs) in enumerate(zip(DETERIORATING_ORS, DETERIORATING_SRS, strict=True)):
        day = first + dt.timedelta(weeks=k)
        base = {
            "client_id": client_id,
            "clinician_id": clinician_id,
            "episode_id": episode,
            "rater": "client",
            "age": "34",
        }
        rows.append(
            {
                **base,
                "administered_at": f"{day.isoformat()}T10:00:00+00:00",
                "measure": "ORS",
                "total": ors,
                "source_key": f"{episode}-S{k + 1:02d}-ORS",
            }
        )
        q = _srs_items(srs)
        rows.append(
            {
                **base,
                "administered_at": f"{day.isoformat()}T10:50:00+00:00",
                "measure": "SRS",
                "q1": q[0],
                "q2": q[1],
                "q3": q[2],
                "q4": q[3],
                "source_key": f"{episode}-S{k + 1:02d}-SRS",
            }
        )
    return rows
