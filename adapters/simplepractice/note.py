"""Render a client summary (:func:`fit_core.episodes.client_summary`) as the outbox files.

- :func:`render_note`: a plain-text progress-note snippet of at most :data:`MAX_NOTE`
  characters (latest ORS and SRS, change from intake, status colour, open flags with what to
  discuss, next appointment, the ORS/SRS copyright lines), to paste into a SimplePractice note.
- :func:`render_summary_csv`: the client's scores of the latest episode as CSV, to upload to
  the client's Files tab.

Pure functions: the same summary always gives the same bytes (no clock, no run date), so
pushing it again leaves the files unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from fit_core.measures import COPYRIGHT_LINES

MAX_NOTE = 600
MAX_FLAG_LINE = 170
_SEVERITY = {"alert": 0, "warning": 1, "info": 2}
_RC_TEXT = {
    "intake": "intake",
    "recovered": "recovered",
    "improved": "improved",
    "no_reliable_change": "no reliable change",
    "deteriorated": "deteriorated",
}
SUMMARY_COLUMNS = (
    "client_id",
    "episode_id",
    "measure",
    "number",
    "total",
    "change_from_first",
    "date",
    "session",
    "rc_class",
    "status",
    "clinical",
)


def num(value: Any) -> str:
    """``20.0`` -> ``20``, ``24.5`` -> ``24.5``."""
    if isinstance(value, bool) or value is None:
        return "?"
    f = float(value)
    return str(int(f)) if f.is_integer() else f"{f:.1f}".rstrip("0").rstrip(".")


def signed(value: Any) -> str:
    text = num(value)
    return text if text.startswith("-") or text == "0" else f"+{text}"


def _ors_line(ors: Mapping[str, Any] | None) -> str:
    if not ors:
        return "ORS: none in this episode yet."
    line = f"{ors.get('measure') or 'ORS'} {num(ors.get('total'))} on {ors.get('date')}"
    rc = ors.get("rc_class")
    if rc and rc != "intake" and ors.get("intake") is not None:
        line += (
            f" (intake {num(ors['intake'])}, change {signed(ors.get('change_from_intake'))}: "
            f"{_RC_TEXT.get(rc, rc)})"
        )
    elif rc == "intake":
        line += " (intake)"
    if ors.get("cutoff") is not None:
        side = "clinical range" if ors.get("clinical") else "non-clinical"
        line += f", {side} (cutoff {num(ors['cutoff'])})"
    status = ors.get("status")
    line += f". Status: {status}." if status else ". Status: none (no trajectory model)."
    return line


def _srs_line(srs: Mapping[str, Any] | None) -> str:
    if not srs:
        return "SRS: none in this episode yet."
    line = f"{srs.get('measure') or 'SRS'} {num(srs.get('total'))} on {srs.get('date')}"
    if srs.get("change_from_previous") is not None:
        line += f" (change {signed(srs['change_from_previous'])})"
    if srs.get("clinical"):
        line += ", below the alliance cutoff"
    return line + "."


def _flags(flags: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Open flags, one per rule (the latest), most severe first."""
    latest: dict[str, Mapping[str, Any]] = {}
    for f in flags:
        rid = str(f.get("rule_id"))
        if rid not in latest or str(f.get("date")) >= str(latest[rid].get("date")):
            latest[rid] = f
    return sorted(
        latest.values(),
        key=lambda f: (_SEVERITY.get(str(f.get("severity")), 9), str(f.get("rule_id"))),
    )


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "…"


def render_note(summary: Mapping[str, Any]) -> str:
    """The progress-note snippet (at most :data:`MAX_NOTE` characters, ending in a newline)."""
    head = f"FIT summary, client {summary.get('client_id')}"
    if summary.get("sessions"):
        head += f": session {summary['sessions']}"
    if summary.get("first_date"):
        head += f" since {summary['first_date']}"
    lines = [head + ".", _ors_line(summary.get("ors")), _srs_line(summary.get("srs"))]
    if "next_appointment" in summary:
        nxt = summary.get("next_appointment")
        lines.append(f"Next appointment: {nxt}." if nxt else "No future appointment booked.")
    tail = list(COPYRIGHT_LINES)
    flags = _flags(summary.get("flags") or ())
    fixed = len("\n".join(lines + tail)) + 2  # the final newline and one separator
    budget = MAX_NOTE - fixed
    body: list[str] = []
    if not flags:
        body.append("No open alerts.")
    else:
        body.append("To discuss:")
        budget -= len(body[0]) + 1
        for i, flag in enumerate(flags):
            left = len(flags) - i - 1
            reserve = 24 if left else 0  # room for "- (+N more open alerts)"
            room = min(MAX_FLAG_LINE, budget - reserve - 1)
            if room < 40:
                body.append(f"- (+{len(flags) - i} more open alerts)")
                break
            line = "- " + _clip(str(flag.get("message") or flag.get("rule_id")), room - 2)
            body.append(line)
            budget -= len(line) + 1
    note = "\n".join(lines + body + tail) + "\n"
    if len(note) > MAX_NOTE:  # a very long header: keep the copyright lines whole
        keep = MAX_NOTE - len("\n".join(tail)) - 2
        note = _clip("\n".join(lines + body), keep) + "\n" + "\n".join(tail) + "\n"
    return note


def render_summary_csv(summary: Mapping[str, Any]) -> str:
    """The client's scores of the latest episode as CSV (CRLF, formula-safe text cells).

    One row per ORS-family and SRS-family administration of the client-rated trajectory, in
    order; date, session, class and status are known for the latest of each measure only (the
    summary carries totals for the rest).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(SUMMARY_COLUMNS)
    cid, episode = safe_cell(summary.get("client_id")), safe_cell(summary.get("episode_id"))
    for family in ("ors", "srs"):
        data = summary.get(family)
        if not data:
            continue
        history = list(data.get("history") or [data.get("total")])
        first = history[0]
        for i, total in enumerate(history, start=1):
            last = i == len(history)
            writer.writerow(
                (
                    cid,
                    episode,
                    safe_cell(data.get("measure")),
                    i,
                    num(total),
                    signed(round(float(total) - float(first), 2)) if i > 1 else "",
                    data.get("date") if last else "",
                    data.get("session") if last else "",
                    (data.get("rc_class") or "") if last else "",
                    (data.get("status") or "") if last else "",
                    _bool(data.get("clinical")) if last else "",
                )
            )
    return out.getvalue()


def _bool(value: Any) -> str:
    return "" if value is None else ("true" if value else "false")


def safe_cell(value: Any) -> str:
    """Text a spreadsheet would run as a formula gets a leading ``'``."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
