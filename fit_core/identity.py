"""Client codes: one documented normalisation, shared by every adapter.

Clients type their own codes (on a phone, in a form) and staff type them into other systems, so
one code arrives as ``G0001``, ``g0001`` and `` G0001 ``. Every client id the core stores goes
through :func:`normalise_client_id` first (the validator does it for adapters' records, the sync
engine for practice systems' appointments and client details), so those spellings are one client:

1. Unicode NFKC: compatibility forms become their plain letters and digits (full-width ``Ｇ０１``
   becomes ``G01``, a non-breaking space a space);
2. whitespace is trimmed at both ends and every inner run of it becomes one space;
3. letter case is folded (Unicode case folding, then capitals: ``g0001`` and ``G0001`` are both
   ``G0001``), unless the source says ``client_id_case = "keep"`` (codes where ``ab1`` and
   ``AB1`` are different people).

A code the normalisation changed is still the same client: the sync reports, per source, the
codes that several spellings were merged into (:class:`SpellingTracker`), so a merge that was
wrong can be noticed and the source switched to ``keep``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping

#: values of a source's ``client_id_case`` key
CASE_MODES: tuple[str, ...] = ("fold", "keep")
DEFAULT_CASE = "fold"


def normalise_client_id(value: str, *, keep_case: bool = False) -> str:
    """The canonical form of a client code (see the module docstring); ``""`` stays ``""``."""
    text = " ".join(unicodedata.normalize("NFKC", value).split())
    return text if keep_case else text.casefold().upper()


def spelling(value: object) -> str:
    """A code as it was typed, trimmed only: what merges are reported with."""
    return str(value).strip() if value is not None else ""


Client = tuple[str, str]


class SpellingTracker:
    """Notices client codes that a new spelling was merged into.

    ``note`` takes (namespace, client_id, spelling) triples; ``lookup`` records them and
    answers, per client, every spelling known (this run's and earlier runs') and the ones it
    just added. A client is reported once, in the run that first sees a second spelling of it:
    ``g0001`` arriving for a client stored months ago as ``G0001`` is a merge, the hundredth
    ``G0001`` is not. Each triple is looked up once per run.
    """

    def __init__(
        self,
        lookup: Callable[
            [Iterable[tuple[str, str, str]]], Mapping[Client, tuple[set[str], set[str]]]
        ],
    ) -> None:
        self._lookup = lookup
        self._seen: set[tuple[str, str, str]] = set()
        self.merged: dict[Client, set[str]] = {}

    def note(self, triples: Iterable[tuple[str, str, str]]) -> list[Client]:
        """Record spellings; returns the clients that became merges with this call."""
        fresh = {t for t in triples if t not in self._seen}
        if not fresh:
            return []
        self._seen |= fresh
        out = []
        for client, (spellings, added) in self._lookup(fresh).items():
            if len(spellings) > 1 and (added or client in self.merged):
                if client not in self.merged:
                    out.append(client)
                self.merged[client] = set(spellings)
        return out
