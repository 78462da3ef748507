"""The optional dependencies of ``fit report``: matplotlib and jinja2 (the ``reports`` extra)."""

from __future__ import annotations

import importlib

from ..errors import ConfigError

__all__ = ["EXTRA_HINT", "require_reports"]

EXTRA_HINT = "pip install 'fit-sync[reports]'"
REQUIRED = ("matplotlib", "jinja2")


def require_reports() -> None:
    """Import matplotlib (Agg backend) and jinja2, or raise :class:`ConfigError` (exit 3).

    The message names the missing packages and the extra that installs them.
    """
    missing = []
    for name in REQUIRED:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigError(
            f"`fit report` needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed",
            hint=f"{EXTRA_HINT} (installs matplotlib and jinja2)",
        )
    import matplotlib

    matplotlib.use("Agg")  # never a GUI backend, even if something imports pyplot
