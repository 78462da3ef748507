"""What runs after a sync: notifications along the configured routes, then the caseload pages.

``fit sync`` calls :func:`after_sync` once the sync itself is done (not for ``--dry-run``).
Nothing here changes the sync's outcome or exit code: a channel that fails, a caseload folder
that cannot be written, even a bug, becomes a line in the returned notes (``fit sync`` prints
them as warnings) and the failure is kept for the next run (``fit notify status``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any

from .config import Config
from .errors import FitError

log = logging.getLogger(__name__)

__all__ = ["after_sync", "delivery_notes", "unrouted_words"]


def delivery_notes(report: Any) -> list[str]:
    """Warnings for a :class:`fit_core.notify.deliver.DeliveryReport` (no patient data)."""
    notes: list[str] = []
    for r in report.routes:
        for err in r.errors:
            notes.append(f"notify route {r.route}: {err}; retried at the next run")
        if r.unrouted:
            who = unrouted_words(r.unrouted)
            n = sum(r.unrouted.values())
            notes.append(
                f"notify route {r.route}: {n} open alert(s) not sent: no address for {who} "
                "(add it to [notify.clinicians] or give the route a fallback)"
            )
    return notes


def unrouted_words(unrouted: dict[str, Any]) -> str:
    """``clinician T02, clinician T09 and alerts without a clinician``."""
    names = [f"clinician {c}" for c in sorted(c for c in unrouted if c)]
    if "" in unrouted:
        names.append("alerts without a clinician")
    return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]


def after_sync(
    config: Config,
    registry: Any,
    store: Any,
    *,
    rescored: Iterable[tuple[str, str]] = (),
    secrets: Any = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> list[str]:
    """Deliver what is due and regenerate the caseload pages; returns warnings, never raises.

    ``rescored``: the clients the sync rescored (their client pages are redrawn; the others
    only when missing or drawn on an earlier day)."""
    notes: list[str] = []
    if config.notify.routes:
        try:
            from .notify.deliver import Dispatcher

            report = Dispatcher(config, registry, store, secrets=secrets, clock=clock).deliver()
            notes += delivery_notes(report)
        except FitError as exc:
            notes.append(f"notifications not sent: {exc.message}")
        except Exception as exc:
            log.exception("notifications failed")
            notes.append(f"notifications not sent: internal error ({type(exc).__name__})")
    if config.reports.caseload_dir is not None:
        try:
            from .reports.caseload_write import regenerate

            regenerate(config, registry, store, rescored=set(rescored), clock=clock)
        except FitError as exc:
            notes.append(f"caseload pages not updated: {exc.message}")
        except Exception as exc:
            log.exception("caseload pages failed")
            notes.append(f"caseload pages not updated: internal error ({type(exc).__name__})")
    return notes
