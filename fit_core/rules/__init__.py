"""Alert rules. Built-in rules live in :mod:`fit_core.rules.builtin` and register through the
same ``fit_register_rules`` hook a plugin uses."""

from __future__ import annotations

from ..scoring import History, Rule

__all__ = ["History", "Rule", "fmt"]


def fmt(value: float | None) -> str:
    """A score for a message: one decimal, no trailing .0 noise beyond that."""
    return "-" if value is None else f"{value:.1f}"
