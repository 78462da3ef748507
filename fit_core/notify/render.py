"""A planned message as words: subject, plain text, HTML and the documented JSON payload.

Pure functions of the message content (:func:`fit_core.notify.digest.plan_route`) and its id,
so a message sent again after a killed run is the same message. The HTML part is one
self-contained block with inline styles (mail clients drop ``<style>`` and never load
anything); every value in it is escaped. The subject line names counts and the recipient, never
a client. The copyright lines of the measures close every message that lists alerts (their
messages quote scores).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .. import __version__
from ..measures import COPYRIGHT_LINES
from .channel import Message

__all__ = ["PAYLOAD_TYPE", "PAYLOAD_VERSION", "message_of", "payload", "subject", "test_content"]

PAYLOAD_TYPE = "fit.alerts"
PAYLOAD_VERSION = 1
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SEV_COLOUR = {"alert": "#A33D00", "warning": "#7A5600", "info": "#444444"}
_REASONS = {
    "superseded": "a later session no longer raises it",
    "episode_ended": "the episode ended",
    "rule_off": "its rule was switched off",
    "no_data": "its records were deleted",
}


def _date(text: str | None) -> str:
    if not text:
        return ""
    try:
        d = dt.date.fromisoformat(text[:10])
    except ValueError:
        return text
    return f"{d.day} {_MONTHS[d.month]} {d.year}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _sessions(item: Mapping[str, Any]) -> str:
    s, first = item.get("session"), item.get("first_session")
    if s is None:
        return ""
    if first is not None and first != s:
        return f"sessions {first}–{s}"
    return f"session {s}"


def subject(content: Mapping[str, Any]) -> str:
    """``3 new alerts, 1 ended · clinician T03`` (never a client)."""
    if content["kind"] == "test":
        return f"test message · route {content['route']}"
    new, ended = len(content["new"]), len(content["ended"])
    parts = []
    if new:
        parts.append(_plural(new, "new alert"))
    if ended:
        parts.append(f"{ended} ended")
    what = ", ".join(parts) or "no changes"
    head = "digest: " if content["kind"] == "digest" else ""
    return f"{head}{what} · {content['recipient']['words']}"


def _where(item: Mapping[str, Any]) -> list[str]:
    out = []
    if item.get("report"):
        out.append(str(item["report"]))
    rec = item.get("record")
    if rec:
        out.append(f"record {rec['source_key']} in {rec['source']}")
    out.append(f"`fit alerts show {item['alert_id']}`")
    return out


def _score_words(scores: Mapping[str, Any] | None) -> str:
    if not scores:
        return ""
    parts = []
    ors = scores.get("ors")
    if ors:
        change = ors.get("change_from_intake")
        delta = "" if change is None else f" ({change:+.1f} since intake)".replace("-", "−")
        parts.append(f"latest {ors['measure']} {ors['total']:g}{delta}")
    srs = scores.get("srs")
    if srs:
        parts.append(f"latest {srs['measure']} {srs['total']:g}")
    return "; ".join(parts)


def _heading(content: Mapping[str, Any]) -> str:
    who = content["recipient"]["words"]
    when = f"{content['local_time']} ({content['timezone']})"
    if content["kind"] == "digest":
        return f"FIT alert digest for {who}, {when}"
    return f"New FIT alerts for {who}, {when}"


def text(content: Mapping[str, Any]) -> str:
    """The plain-text part (paragraphs separated by blank lines)."""
    if content["kind"] == "test":
        return _test_text(content)
    lines = [_heading(content), ""]
    since = content.get("since")
    new, ended = content["new"], content["ended"]
    if new:
        lines.append(f"New since the last message ({_date(since)}):" if since else "Open alerts:")
        lines.append("")
        for item in new:
            where = _sessions(item)
            head = (
                f"[{item['severity'].upper()}] {item['title']} — client {item['client']}, "
                f"{where} on {_date(item.get('date'))} (alert #{item['alert_id']})"
            )
            lines.append(head)
            lines.append(f"  {item['message']}")
            scores = _score_words(item.get("scores"))
            if scores:
                lines.append(f"  Scores: {scores}")
            lines.append(f"  Where to look: {' · '.join(_where(item))}")
            lines.append("")
    if ended:
        lines.append("No longer open:")
        lines.append("")
        for item in ended:
            lines.append(
                f"{item['state'].capitalize()}: {item['title']} — client {item['client']} "
                f"(alert #{item['alert_id']}): {_ended_why(item)}"
            )
        lines.append("")
    n_open = content.get("open", 0)
    tail = f"Open alerts for {content['recipient']['words']} on this route now: {n_open}."
    if content.get("caseload"):
        tail += f" Caseload: {content['caseload']}"
    lines += [tail, "", "--"]
    lines += list(content.get("copyright") or COPYRIGHT_LINES)
    lines.append(
        f"Sent by fit-sync {__version__} (route {content['route']}). Confidential clinical "
        "information: no names or item values are sent; keep it as you keep clinical records."
    )
    return "\n".join(lines).rstrip() + "\n"


def _ended_why(item: Mapping[str, Any]) -> str:
    reason = _REASONS.get(item.get("reason") or "", item.get("reason") or item["state"])
    where = ""
    if item.get("session") is not None:
        where = f" (session {item['session']} on {_date(item.get('date'))})"
    return reason + where


def _test_text(content: Mapping[str, Any]) -> str:
    return (
        f"fit-sync test message for route {content['route']}\n\n"
        f"This is a test of the route {content['route']} ({content['timing']}). If it reached "
        "you, the channel works. It carries no patient information.\n\n"
        f"Sent {content['local_time']} ({content['timezone']}) by fit-sync {__version__}.\n"
    )


def _h(value: Any) -> str:
    return escape(str(value), quote=True)


def _link(url: str) -> str:
    if url.startswith(("http://", "https://", "file://")):
        return f'<a href="{_h(url)}">{_h(url)}</a>'
    return _h(url)


def html(content: Mapping[str, Any]) -> str:
    """The HTML part: inline styles, escaped values, no images, no scripts."""
    font = "font-family:Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#1a1a1a;"
    if content["kind"] == "test":
        body = "".join(f"<p>{_h(p)}</p>" for p in _test_text(content).strip().split("\n\n"))
        return f'<!doctype html><html><body style="{font}">{body}</body></html>\n'
    out = [f'<!doctype html><html><body style="{font}max-width:760px">']
    out.append(f'<h2 style="font-size:18px;margin:0 0 8px">{_h(_heading(content))}</h2>')
    since = content.get("since")
    if content["new"]:
        what = f"New since the last message ({_date(since)})" if since else "Open alerts"
        out.append(f'<h3 style="font-size:15px;margin:14px 0 6px">{_h(what)}</h3>')
        out.append('<table style="border-collapse:collapse;width:100%">')
        for item in content["new"]:
            colour = _SEV_COLOUR.get(item["severity"], "#444444")
            where = " · ".join(_link(w) for w in _where(item))
            scores = _score_words(item.get("scores"))
            out.append(
                '<tr><td style="padding:6px 0;border-bottom:1px solid #d4d4d4">'
                f'<span style="color:{colour};font-weight:bold;text-transform:uppercase;'
                f'font-size:12px">{_h(item["severity"])}</span> '
                f"<b>{_h(item['title'])}</b> — client <b>{_h(item['client'])}</b>, "
                f"{_h(_sessions(item))} on {_h(_date(item.get('date')))} "
                f'<span style="color:#505050">(alert #{_h(item["alert_id"])})</span><br>'
                f"{_h(item['message'])}<br>"
                + (f"Scores: {_h(scores)}<br>" if scores else "")
                + f'<span style="font-size:13px;color:#505050">Where to look: {where}</span>'
                "</td></tr>"
            )
        out.append("</table>")
    if content["ended"]:
        out.append('<h3 style="font-size:15px;margin:14px 0 6px">No longer open</h3><ul>')
        for item in content["ended"]:
            out.append(
                f"<li>{_h(item['state'].capitalize())}: <b>{_h(item['title'])}</b> — client "
                f"{_h(item['client'])} (alert #{_h(item['alert_id'])}): {_h(_ended_why(item))}"
                "</li>"
            )
        out.append("</ul>")
    tail = f"Open alerts for {content['recipient']['words']} on this route now: {content['open']}."
    out.append(f"<p>{_h(tail)}")
    if content.get("caseload"):
        out.append(f" Caseload: {_link(str(content['caseload']))}")
    out.append("</p>")
    out.append('<p style="font-size:12px;color:#505050;border-top:1px solid #d4d4d4;'
               'padding-top:6px">')  # fmt: skip
    for line in content.get("copyright") or COPYRIGHT_LINES:
        out.append(f'<b style="color:#1a1a1a">{_h(line)}</b><br>')
    out.append(
        f"Sent by fit-sync {_h(__version__)} (route {_h(content['route'])}). Confidential "
        "clinical information: no names or item values are sent; keep it as you keep clinical "
        "records.</p></body></html>\n"
    )
    return "".join(out)


def payload(content: Mapping[str, Any], message_id: str) -> dict[str, Any]:
    """The documented JSON payload (``format = "json"``), see docs/notify.md."""
    if content["kind"] == "test":
        return {
            "type": PAYLOAD_TYPE,
            "version": PAYLOAD_VERSION,
            "id": message_id,
            "kind": "test",
            "route": content["route"],
            "created_at": content["created_at"],
            "text": _test_text(content),
        }
    return {
        "type": PAYLOAD_TYPE,
        "version": PAYLOAD_VERSION,
        "id": message_id,
        "kind": content["kind"],
        "route": content["route"],
        "recipient": {
            "key": content["recipient"]["key"],
            "clinician_id": content["recipient"]["clinician_id"],
        },
        "created_at": content["created_at"],
        "since": content.get("since"),
        "new": [_json_item(i) for i in content["new"]],
        "ended": [dict(i) for i in content["ended"]],
        "open": content["open"],
        "caseload": content.get("caseload"),
        "client_label": content["client_label"],
        "text": text(content),
        "copyright": list(content.get("copyright") or COPYRIGHT_LINES),
    }


def _json_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "raised_at"}


def message_of(
    content: Mapping[str, Any], message_id: str, addresses: Sequence[str] | None = None
) -> Message:
    """The :class:`~fit_core.notify.channel.Message` to hand to a channel."""
    created = dt.datetime.fromisoformat(content["created_at"])
    return Message(
        message_id=message_id,
        route=content["route"],
        kind=content["kind"],
        recipient=content.get("recipient", {}).get("words", content["route"]),
        addresses=tuple(addresses if addresses is not None else content.get("addresses", ())),
        subject=subject(content),
        text=text(content),
        html=html(content),
        payload=payload(content, message_id),
        created_at=created,
    )


def test_content(
    route: str, timing: str, addresses: Sequence[str], now: dt.datetime, local: dt.datetime
) -> dict[str, Any]:
    """The content of a test message (no alerts, no patient information)."""
    return {
        "route": route,
        "kind": "test",
        "timing": timing,
        "recipient": {"key": "test", "words": "a test", "clinician_id": None},
        "addresses": list(addresses),
        "created_at": now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "local_time": local.strftime("%Y-%m-%d %H:%M"),
        "timezone": str(local.tzinfo),
        "new": [],
        "ended": [],
    }
