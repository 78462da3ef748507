"""Alert rules. Built-in rules live in :mod:`fit_core.rules.builtin` and register through the
same ``fit_register_rules`` hook a plugin uses."""

from __future__ import annotations

from ..exact import show
from ..scoring import History, Rule

__all__ = ["History", "Rule", "fmt"]


def fmt(value: float | None) -> str:
    """A score for a message: one decimal, two when the value has them (``15.25`` stays
    ``15.25``: a score is never rounded, see :func:`fit_core.exact.show`)."""
    return show(value)
