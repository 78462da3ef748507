"""The Scores tab: one row per administration, keyed on the response id in column A.

Remove: the rows of the keys are deleted (``deleteDimension``), bottom-up, never blindly
repeated (see :meth:`ScoresSheet.remove`).

Push, per batch: read the key column once per run (``values.get``), rewrite rows whose key is
there with one ``values:batchUpdate`` (contiguous rows merged into one range), and add the others
with ``values:append``; always ``valueInputOption=RAW``, so text such as ``=HYPERLINK(...)`` is
stored as text and never run as a formula. The tab is created with a header row when missing.

No duplicate rows, even when a quota 429 (or a lost connection) hits in the middle: an append is
sent once; when its outcome is unknown the adapter waits (backoff with jitter, ``Retry-After``
honoured), reads the key column again and appends only the rows that are still missing. A
batchUpdate writes fixed cells, so it is simply retried. Only keys the sheet confirmed are
returned. Do not sort or insert rows in the tab while a sync runs (between syncs is fine: the
key column is read afresh each run).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fit_core.errors import ConfigError, SourceError
from fit_core.http import RetryPolicy
from fit_core.models import OutboxItem

from .client import GoogleApi, Timing

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

#: the Scores tab's columns (header row); column A holds the key
COLUMNS: tuple[str, ...] = (
    "response_id",
    "form_id",
    "measure",
    "client_id",
    "administered_at",
    "episode_id",
    "rater",
    "session",
    "total",
    "clinical",
    "change_from_intake",
    "rc_class",
    "status",
    "flags",
    "flag_message",
)
_UPDATED = re.compile(r"!\$?([A-Z]+)\$?(\d+)(?::\$?([A-Z]+)\$?(\d+))?$")


def column_letter(n: int) -> str:
    """1 → A, 26 → Z, 27 → AA."""
    out = ""
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


LAST = column_letter(len(COLUMNS))


def quote_tab(title: str) -> str:
    """A tab name as A1 notation wants it: quoted unless it is plain letters, digits and _."""
    if re.fullmatch(r"[A-Za-z0-9_]+", title):
        return title
    return "'" + title.replace("'", "''") + "'"


def cell(value: Any) -> Any:
    """A JSON value for a RAW write: numbers and booleans as they are, lists joined, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def score_row(item: OutboxItem) -> list[Any]:
    """The row of one outbox item (column A is its source key)."""
    p, extra = item.payload, item.extra
    values = {**p, "response_id": item.source_key, "form_id": extra.get("form_id", "")}
    return [cell(values.get(name)) for name in COLUMNS]


class ScoresSheet:
    """The Scores tab of one spreadsheet, as seen by one run."""

    def __init__(self, api: GoogleApi, spreadsheet_id: str, tab: str, timing: Timing) -> None:
        self.api = api
        self.spreadsheet_id = spreadsheet_id
        self.tab = tab
        self.a1_tab = quote_tab(tab)
        self.timing = timing
        self.rows: dict[str, int] | None = None  # key → row number (1-based), None: not read
        self.last_row = 0
        self.exists = False
        self._header_ok = False

    # --- reading ------------------------------------------------------------------------------

    def load(self) -> None:
        """Read the key column: which keys are where, and whether the tab exists."""
        values = self.api.get_values(self.spreadsheet_id, f"{self.a1_tab}!A:A", self.tab)
        self.exists = values is not None
        rows: dict[str, int] = {}
        doubles = 0
        for n, row in enumerate(values or [], start=1):
            key = str(row[0]).strip() if row else ""
            if n == 1 or not key:
                continue
            if key in rows:
                doubles += 1
                continue
            rows[key] = n
        if values and values[0] and str(values[0][0]).strip() not in ("", COLUMNS[0]):
            raise ConfigError(
                f"spreadsheet {self.spreadsheet_id}: tab {self.tab!r} is not a fit-sync "
                f"scores tab (cell A1 is not {COLUMNS[0]!r})",
                hint="give scores_tab the name of a new tab (fit creates it) or clear this one",
            )
        if doubles:
            log.warning(
                "tab %s holds %d repeated response ids: the first row of each is kept up to date",
                self.tab,
                doubles,
            )
        self.rows = rows
        self.last_row = len(values or [])
        self._header_ok = bool(values and values[0] and str(values[0][0]).strip())

    def _ready(self) -> dict[str, int]:
        if self.rows is None:
            self.load()
        if not self.exists:
            if self.api.add_sheet(self.spreadsheet_id, self.tab):
                log.info("created tab %s in spreadsheet %s", self.tab, self.spreadsheet_id)
            self.exists = True
            self._header_ok = False
        if not self._header_ok:
            self.api.batch_update_values(
                self.spreadsheet_id,
                [
                    {
                        "range": f"{self.a1_tab}!A1:{LAST}1",
                        "majorDimension": "ROWS",
                        "values": [list(COLUMNS)],
                    }
                ],
            )
            self._header_ok = True
            self.last_row = max(self.last_row, 1)
        assert self.rows is not None
        return self.rows

    # --- pushing ------------------------------------------------------------------------------

    def push(self, items: Sequence[OutboxItem]) -> list[str]:
        """Upsert ``items``; the keys the sheet confirmed."""
        rows = self._ready()
        updates: list[tuple[int, list[Any]]] = []
        new: dict[str, list[Any]] = {}
        for item in items:
            row = score_row(item)
            at = rows.get(item.source_key)
            if at is None:
                new[item.source_key] = row
            else:
                updates.append((at, row))
        confirmed: list[str] = []
        if updates:
            self.api.batch_update_values(self.spreadsheet_id, self._ranges(updates))
            confirmed.extend(i.source_key for i in items if i.source_key not in new)
        if new:
            confirmed.extend(self._append(new))
        log.debug("tab %s: %d rows updated, %d appended", self.tab, len(updates), len(new))
        return confirmed

    def remove(self, keys: Sequence[str]) -> list[str]:
        """Delete every row of ``keys``; the keys no longer in the tab (absent ones too).

        One ``deleteDimension`` batch per attempt, bottom-up so the row numbers of the spans
        still to delete do not move. It is never simply repeated: after a failure whose
        effect is unknown the key column is read again and only the rows still there are
        deleted (same backoff as an append)."""
        wanted = set(keys)
        t = self.timing
        started = t.clock()
        attempt = 0
        while True:
            where = self._rows_of(wanted)
            if not where:
                return list(keys)
            sheet_id = self.api.sheet_id(self.spreadsheet_id, self.tab)
            if sheet_id is None:
                return list(keys)  # the tab is gone, and its rows with it
            done, failed = self.api.delete_rows_once(self.spreadsheet_id, sheet_id, _spans(where))
            self.rows = None  # row numbers moved: the next push reads the key column again
            if done:
                log.debug("tab %s: %d rows deleted", self.tab, len(where))
                return list(keys)
            status, delay = self._retry_or_give_up(
                attempt,
                failed,
                started,
                "deleting rows",
                "the next run deletes the rows still there",
            )
            log.warning(
                "tab %s: deleting %d rows failed (%s); reading the tab, then retrying in %.1f s",
                self.tab,
                len(where),
                status,
                delay,
            )
            t.sleep(delay)
            attempt += 1

    def _retry_or_give_up(
        self,
        attempt: int,
        failed: requests.Response | None,
        started: float,
        doing: str,
        hint: str,
    ) -> tuple[str, float]:
        """(what failed, the delay before the next try) after a failed write whose effect is
        unknown; raises when the retry policy's attempts or time are used up (Google's own
        error when it answered, else a SourceError saying what kept failing)."""
        policy: RetryPolicy = self.api.policy
        t = self.timing
        status = f"HTTP {failed.status_code}" if failed is not None else "connection lost"
        delay = policy.delay(attempt, failed, t.rng)
        if attempt + 1 >= policy.max_attempts or t.clock() + delay - started > (policy.max_elapsed):
            if failed is not None:
                raise self.api.error(failed, f"spreadsheet {self.spreadsheet_id}")
            raise SourceError(
                f"spreadsheet {self.spreadsheet_id}: {doing} kept failing ({status})", hint=hint
            )
        return status, delay

    def _rows_of(self, keys: set[str]) -> list[int]:
        """Every row number (1-based) whose key is in ``keys``, read afresh."""
        values = self.api.get_values(self.spreadsheet_id, f"{self.a1_tab}!A:A", self.tab)
        return [
            n
            for n, row in enumerate(values or [], start=1)
            if n > 1 and row and str(row[0]).strip() in keys
        ]

    def _ranges(self, updates: list[tuple[int, list[Any]]]) -> list[dict[str, Any]]:
        """One range per run of consecutive row numbers."""
        out: list[dict[str, Any]] = []
        updates.sort(key=lambda u: u[0])
        start, block = updates[0][0], [updates[0][1]]
        for at, row in updates[1:]:
            if at == start + len(block):
                block.append(row)
                continue
            out.append(self._range(start, block))
            start, block = at, [row]
        out.append(self._range(start, block))
        return out

    def _range(self, start: int, block: list[list[Any]]) -> dict[str, Any]:
        end = start + len(block) - 1
        return {
            "range": f"{self.a1_tab}!A{start}:{LAST}{end}",
            "majorDimension": "ROWS",
            "values": block,
        }

    def _append(self, new: Mapping[str, list[Any]]) -> list[str]:
        """Append ``new`` rows without ever writing a key twice (see the module docstring)."""
        pending = dict(new)
        confirmed: list[str] = []
        t = self.timing
        started = t.clock()
        attempt = 0
        while pending:
            result, failed = self.api.append_once(
                self.spreadsheet_id, f"{self.a1_tab}!A:{LAST}", list(pending.values())
            )
            if result is not None:
                self._note_appended(result, list(pending))
                confirmed.extend(pending)
                return confirmed
            status, delay = self._retry_or_give_up(
                attempt,
                failed,
                started,
                "appending rows",
                "the rows confirmed so far are kept; the next run pushes the rest",
            )
            log.warning(
                "tab %s: append of %d rows failed (%s); checking the tab, then retrying in %.1f s",
                self.tab,
                len(pending),
                status,
                delay,
            )
            t.sleep(delay)
            attempt += 1
            self.load()  # was the append applied after all? then those rows are there now
            assert self.rows is not None
            landed = [k for k in pending if k in self.rows]
            for key in landed:
                del pending[key]
            confirmed.extend(landed)
            if landed:
                log.info(
                    "tab %s: %d rows of the failed append had been written", self.tab, len(landed)
                )
        return confirmed

    def _note_appended(self, result: Mapping[str, Any], keys: Iterable[str]) -> None:
        """Record where appended rows landed; re-read the key column next time if unsure."""
        updated = (result.get("updates") or {}).get("updatedRange", "")
        m = _UPDATED.search(str(updated))
        keys = list(keys)
        if m is None or self.rows is None:
            self.rows = None
            return
        first = int(m.group(2))
        if first <= self.last_row:  # the table was not where we thought: read it again
            self.rows = None
            return
        for offset, key in enumerate(keys):
            self.rows[key] = first + offset
        self.last_row = first + len(keys) - 1


def _spans(rows: Sequence[int]) -> list[tuple[int, int]]:
    """1-based row numbers as 0-based (start, end) spans of consecutive rows, bottom-up."""
    spans: list[tuple[int, int]] = []
    for n in sorted(set(rows), reverse=True):
        if spans and spans[-1][0] == n:  # n is just above the span: grow it upwards
            spans[-1] = (n - 1, spans[-1][1])
        else:
            spans.append((n - 1, n))
    return spans
