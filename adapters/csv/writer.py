"""Write the scores CSV atomically: fresh temp file, fsync, ``os.replace``, fsync the folder.

Columns are :data:`fit_core.scoring.PUSH_FIELDS` in that order. Cells are rendered
deterministically (same items, same bytes) and guarded against formula injection; the rows are
those of :mod:`fit_core.scores_csv` (where :func:`cell` and :func:`guard` live), so the lines a
sync stores beside the outbox payloads are written as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from fit_core.models import OutboxItem
from fit_core.safefile import atomic_text
from fit_core.scores_csv import HEADER, cell, guard, line_of_payload

__all__ = ["cell", "guard", "write_score_lines", "write_scores"]


def write_scores(target: Path, items: Iterable[OutboxItem], encoding: str) -> int:
    """Replace ``target`` with the scores of ``items`` (streamed); returns the row count.

    The file is mode 0600, written through a fresh temporary file that no planted link can
    redirect (:func:`fit_core.safefile.atomic_text`). A failure leaves the previous ``target``
    in place and removes the temp.

    Every row is :func:`fit_core.scores_csv.line_of_payload` of the item's payload: the
    header, then :func:`cell` of each value in ``PUSH_FIELDS`` order, as ``csv.writer``
    writes them (``\\r\\n`` line ends).
    """
    return write_score_lines(target, (line_of_payload(it.payload) for it in items), encoding)


def write_score_lines(target: Path, lines: Iterable[str], encoding: str) -> int:
    """:func:`write_scores` for rows already rendered (see :mod:`fit_core.scores_csv`)."""
    rows = 0
    with atomic_text(target, encoding=encoding, errors="replace", newline="") as f:
        f.write(HEADER)
        write = f.write
        for line in lines:
            write(line)
            rows += 1
    return rows
