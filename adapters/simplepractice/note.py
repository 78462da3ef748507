"""Render a client summary (:func:`fit_core.episodes.client_summary`) as the outbox files.

- :func:`render_note`: a plain-text progress-note snippet of at most :data:`MAX_NOTE`
  characters (latest ORS and SRS, change from intake, status colour, the open alerts with what
  to discuss, next appointment, the ORS/SRS copyright lines), to paste into a SimplePractice
  note. Only alerts that hold now are listed (the summary carries no others), each as its whole
  sentence: when they do not all fit, the older ones are left out and counted, and no sentence
  is ever cut.
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

from fit_core import exact
from fit_core.measures import COPYRIGHT_LINES

MAX_NOTE = 600
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
    """``20.0`` -> ``20``, ``24.5`` -> ``24.5``, ``15.25`` -> ``15.25``: a score as given."""
    if isinstance(value, bool) or value is None:
        return "?"
    text = f"{exact.dec(float(value)):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


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
    """Open alerts, one per rule (the latest), newest first (most severe first on one date)."""
    latest: dict[str, Mapping[str, Any]] = {}
    for f in flags:
        rid = str(f.get("rule_id"))
        if rid not in latest or str(f.get("date")) >= str(latest[rid].get("date")):
            latest[rid] = f
    by_severity = sorted(
        latest.values(),
        key=lambda f: (_SEVERITY.get(str(f.get("severity")), 9), str(f.get("rule_id"))),
    )
    return sorted(by_severity, key=lambda f: str(f.get("date") or ""), reverse=True)


def _sentence(flag: Mapping[str, Any]) -> str:
    text = " ".join(str(flag.get("message") or flag.get("rule_id")).split())
    return text if text.endswith((".", "?", "!")) else text + "."


def _more(n: int) -> str:
    return f"({n} more open alert{'s' if n != 1 else ''}, older or less urgent, not shown.)"


def render_note(summary: Mapping[str, Any]) -> str:
    """The progress-note snippet (at most :data:`MAX_NOTE` characters, ending in a newline).

    The open alerts are whole sentences, most severe first; when they do not all fit, the
    newest (and on one date the most severe) are kept and the rest counted in a last line.
    """
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
    while lines:
        note = _fit(lines, flags, tail)
        if note is not None:
            return note
        lines.pop()  # a header that leaves no room: its last optional line goes first
    return "\n".join(tail) + "\n"


def _fit(lines: list[str], flags: list[Mapping[str, Any]], tail: list[str]) -> str | None:
    """The note with as many of the newest alerts as fit whole; None if the head does not."""

    def note(body: list[str]) -> str:
        return "\n".join(lines + body + tail) + "\n"

    if not flags:
        text = note(["No open alerts."])
        return text if len(text) <= MAX_NOTE else None
    kept: list[Mapping[str, Any]] = []
    for i, flag in enumerate(flags):
        left = len(flags) - i - 1
        trial = [*kept, flag]
        body = ["To discuss:", *(f"- {_sentence(f)}" for f in _display(trial))]
        if len(note(body + ([_more(left)] if left else []))) > MAX_NOTE:
            break
        kept = trial
    dropped = len(flags) - len(kept)
    body = ["To discuss:", *(f"- {_sentence(f)}" for f in _display(kept))] if kept else []
    body += [_more(dropped)] if dropped else []
    text = note(body)
    return text if len(text) <= MAX_NOTE else None


def _display(flags: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Shown most severe first."""
    return sorted(flags, key=lambda f: _SEVERITY.get(str(f.get("severity")), 9))


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
