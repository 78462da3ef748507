"""The words and numbers around a client's charts: summary cards and the scores table.

Pure functions over a :class:`~fit_core.reports.client_data.ClientPage`, no templating: the
HTML layer only lays them out, and tests read them directly.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..exact import show
from .client_data import ClientPage, Line, Point
from .style import STATUS_CSS, STATUS_WORD

__all__ = [
    "RULE_TITLES",
    "Card",
    "ScoresTable",
    "client_cards",
    "client_table",
    "session_ranges",
    "shortdate",
]

RC_WORDS: dict[str, str] = {
    "intake": "intake only",
    "recovered": "recovered",
    "improved": "reliably improved",
    "no_reliable_change": "no reliable change",
    "deteriorated": "reliably deteriorated",
}
#: a text symbol per point marker, matching the chart (circle, triangle, cross, diamond,
#: squares past the model's last session)
STATUS_GLYPH: dict[str, str] = {
    "green": "●",
    "orange": "▼",
    "red": "✖",
    "grey": "◆",
    "intake": "◆",
    "rc_improved": "■",
    "rc_none": "□",
    "rc_deteriorated": "■",
}
#: the printed scores table keeps the intake and this many latest sessions (one A4/Letter page)
PRINT_ROWS = 12
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class Card:
    """One summary tile: a label, a big value, a note; ``css`` carries the status colour."""

    label: str
    value: str
    note: str = ""
    css: str = ""
    glyph: str = ""
    words: bool = False  # the value is words, not a number (smaller type)


@dataclass(frozen=True, slots=True)
class ScoresTable:
    """The scores table: column headers and one row of cells per session.

    ``print_hidden`` marks the rows left out on paper (a long episode prints the intake and the
    last :data:`PRINT_ROWS` sessions, so it fits one page); ``print_note`` says so."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    print_hidden: tuple[bool, ...] = ()
    print_note: str = ""


#: short names of the built-in rules for the flag list (plugin rules show their description)
RULE_TITLES: dict[str, str] = {
    "ors.reliable_deterioration": "Reliable deterioration",
    "ors.not_on_track": "Not on track",
    "ors.off_track_severe": "Well off track",
    "ors.checkpoint": "Checkpoint: no reliable change yet",
    "ors.last_chance": "Last chance: still no reliable change",
    "ors.high_intake": "Intake at or above the cutoff",
    "ors.missing": "Attended session without an ORS",
    "srs.below_cutoff": "Alliance below the cutoff",
    "srs.drop": "Alliance dropped",
    "srs.low_item": "Low alliance item",
    "srs.missing": "No SRS for the session",
    "attendance.dropout_risk": "Dropout risk",
}


def shortdate(d: dt.date) -> str:
    """``14 Oct``."""
    return f"{d.day} {_MONTHS[d.month]}"


def longdate(d: dt.date) -> str:
    """``14 Oct 2025``."""
    return f"{d.day} {_MONTHS[d.month]} {d.year}"


def session_ranges(sessions: Iterable[int]) -> str:
    """``2–3, 5–9`` for sessions 2, 3, 5, 6, 7, 8, 9."""
    out: list[str] = []
    run: list[int] = []
    for k in sorted(set(sessions)):
        if run and k == run[-1] + 1:
            run.append(k)
            continue
        if run:
            out.append(_run(run))
        run = [k]
    if run:
        out.append(_run(run))
    return ", ".join(out)


def _run(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}–{run[-1]}"


def fmt_total(v: float | None) -> str:
    """A score for the page: :func:`fit_core.exact.show`, as in the messages and on the charts
    (one decimal, two when it has them: 14.35 is never shown as 14.3 next to a 14.35)."""
    return "—" if v is None else show(v)


def fmt_signed(v: float | None) -> str:
    if v is None:
        return "—"
    return ("+" if v >= 0 else "−") + show(abs(v))


def client_cards(page: ClientPage) -> list[Card]:
    """The summary tiles: intake, latest, change, status, alliance and flags."""
    cards: list[Card] = []
    intake, latest = page.intake, page.latest
    ors = page.ors
    measure = ors.title_measure if ors else "ORS"
    if intake is not None and latest is not None:
        where = {True: "clinical range", False: "at/above cutoff", None: ""}[intake.clinical]
        cards.append(Card(f"Intake {measure}", fmt_total(intake.total), where))
        cards.append(
            Card(
                f"Latest {measure}",
                fmt_total(latest.total),
                f"session {latest.session}, {shortdate(latest.date)}",
            )
        )
        cls = latest.rc_class or "intake"
        change_css = {
            "recovered": "st-green",
            "improved": "st-green",
            "deteriorated": "st-red",
        }.get(cls, "")
        cards.append(
            Card(
                "Change from intake",
                fmt_signed(latest.change_from_intake) if latest is not intake else "—",
                RC_WORDS.get(cls, cls),
                change_css,
            )
        )
        marker = latest.marker
        if marker in ("green", "orange", "red"):
            cards.append(
                Card(
                    "Status",
                    STATUS_WORD[marker],
                    "vs. expected range",
                    STATUS_CSS[marker],
                    STATUS_GLYPH[marker],
                    words=True,
                )
            )
        elif marker is not None and marker.startswith("rc_"):
            after = page.model_last_session
            cards.append(
                Card(
                    "Status",
                    STATUS_WORD[marker],
                    f"past the model (session {after}): by reliable change"
                    if after
                    else "no expectation: by reliable change",
                    STATUS_CSS[marker],
                    STATUS_GLYPH[marker],
                    words=True,
                )
            )
    if page.srs is not None and page.srs.primary is not None:
        srs_latest = page.srs.primary.points[-1]
        srs_cut = page.srs.cutoffs[-1].value if page.srs.cutoffs else 36.0
        low = srs_latest.total < srs_cut
        when = f"session {srs_latest.session}, {shortdate(srs_latest.date)}"
        cards.append(
            Card(
                f"Latest {page.srs.title_measure}",
                fmt_total(srs_latest.total),
                f"{when} · " + (f"below {srs_cut:g}: discuss" if low else f"at/above {srs_cut:g}"),
                "st-orange" if low else "",
            )
        )
    n_alert = sum(1 for r in page.runs if r.severity == "alert")
    cards.append(
        Card(
            "Flags",
            str(len(page.runs)),
            flag_counts([r.severity for r in page.runs]) if page.runs else "none open",
            "st-red" if n_alert else ("st-orange" if page.runs else ""),
        )
    )
    return cards


def flag_counts(severities: Sequence[str]) -> str:
    """The flags of a page by severity, the most severe first: ``"1 alert · 2 warnings"``.
    (A count of the alert level alone read as a contradiction beside the number of flags:
    "2 flags, no alerts".)"""
    counted = Counter(severities)
    order = ["alert", "warning", "info", *sorted(set(counted) - {"alert", "warning", "info"})]
    return " · ".join(
        f"{counted[s]} {s}{'' if counted[s] == 1 or s == 'info' else 's'}"
        for s in order
        if counted[s]
    )


def _by_session(line: Line) -> dict[int, Point]:
    out: dict[int, Point] = {}
    for p in line.points:
        out.setdefault(p.session, p)
    return out


def _total_cell(p: Point | None, with_status: bool) -> str:
    if p is None:
        return ""
    text = fmt_total(p.total)
    if with_status and p.marker:
        text = f"{STATUS_GLYPH[p.marker]} {text}"
    return text


def _totals_column(line: Line, with_status: bool) -> Callable[[int], str]:
    """A column's cell by session: the line's total at that session."""
    pts = _by_session(line)
    return lambda k: _total_cell(pts.get(k), with_status)


def client_table(page: ClientPage) -> ScoresTable:
    """The scores by session, one row per session: date, each rater's totals, change from
    intake and expected range (primary rater), alliance totals, the flags' numbers."""
    columns = ["Session", "Date"]
    getters: list[Callable[[int], str]] = []
    if page.ors is not None:
        for line in page.ors.lines:
            columns.append(line.label)
            getters.append(_totals_column(line, line.primary and line.has_status))
        primary = page.ors.primary
        if primary is not None:
            change = {p.session: p.change_from_intake for p in primary.points}
            columns.append("Change")
            getters.append(lambda k: fmt_signed(change[k]) if k in change else "")
        band = {b.session: b for b in page.ors.band if not b.projected}
        if band:
            columns.append("Expected range")
            getters.append(
                lambda k: f"{fmt_total(band[k].low)}–{fmt_total(band[k].high)}" if k in band else ""
            )
    if page.srs is not None:
        for line in page.srs.lines:
            columns.append(line.label)
            getters.append(_totals_column(line, False))
    keys: dict[int, set[int]] = {}
    for g in page.flags:
        for n in g.notes:
            keys.setdefault(n.session, set()).add(g.number)
    if keys:
        columns.append("Flags")
        # a zero-width space after each comma lets a long list wrap on paper
        getters.append(lambda k: ",\u200b".join(str(n) for n in sorted(keys.get(k, ()))))
    rows = tuple(
        (str(k), shortdate(page.dates[k]), *(get(k) for get in getters)) for k in page.sessions
    )
    hidden, note = print_rows(page.sessions)
    return ScoresTable(tuple(columns), rows, hidden, note)


def print_rows(sessions: tuple[int, ...]) -> tuple[tuple[bool, ...], str]:
    """Which sessions' rows the printed table leaves out, and the note that says so: with more
    than ``PRINT_ROWS + 1`` sessions, paper keeps the intake and the last :data:`PRINT_ROWS`."""
    if len(sessions) <= PRINT_ROWS + 1:
        return tuple(False for _ in sessions), ""
    keep = {sessions[0], *sessions[-PRINT_ROWS:]}
    hidden = tuple(k not in keep for k in sessions)
    left_out = [k for k, h in zip(sessions, hidden, strict=True) if h]
    note = (
        f"Printed: the intake and the last {PRINT_ROWS} sessions; session"
        f"{'' if len(left_out) == 1 else 's'} {session_ranges(left_out)} are on the chart "
        "above and in the on-screen report."
    )
    return hidden, note
