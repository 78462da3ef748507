"""The text of a score, memoised: ``texts[x]`` is ``render(x)`` for a finite, non-zero float.

A sync writes the same few hundred score values (totals and changes in hundredths) over and over
into the outbox JSON and the scores file; each one is a ``repr`` (the shortest round-trip
digits, computed afresh every time). :class:`FloatText` keeps the text of every value it has
rendered, so most values cost one dictionary lookup, with no Python call.

A dict cannot tell ``0.0`` from ``-0.0`` (they are equal keys, but print differently) nor find
a NaN again, so zeros and NaNs are rendered every time and never kept. Callers look up floats
only (``type(v) is float``): an int key would find the text of the equal float. The memo is
bounded (:data:`LIMIT` values, then it starts again).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["LIMIT", "FloatText"]

LIMIT = 50_000


class FloatText(dict[float, str]):
    """``self[x]`` is ``render(x)`` (see the module); ``x`` must be a float."""

    __slots__ = ("_render",)

    def __init__(self, render: Callable[[float], str]) -> None:
        super().__init__()
        self._render = render

    def __missing__(self, x: float) -> str:
        text = self._render(x)
        if x != 0.0 and x == x:  # not a zero (signed) nor a NaN
            if len(self) >= LIMIT:
                self.clear()
            self[x] = text
        return text
