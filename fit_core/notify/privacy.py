"""What notifications and caseload pages hold about a client, for ``fit client erase``.

Two places (see :mod:`fit_core.erasure`), registered by the built-in notification plugin:

- ``notification ledger`` (before the store's rows go): the ledger rows that say which of the
  client's alerts were told on which route, and messages not yet confirmed that mention the
  client (they are dropped, never sent; the other clients' alerts in them are planned again).
  Messages already sent are not kept in the store, so there is nothing more to remove here;
  what reached people's mailboxes is beyond fit-sync's reach.
- ``caseload pages`` (after the store's rows went): the client's report in ``[reports]
  caseload_dir`` is removed and the caseload pages are written again without the client. Pages
  written elsewhere with ``fit report caseload --out`` are found through the store's record of
  files written for the client (the ``report files`` place removes them).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import FitError

log = logging.getLogger(__name__)

__all__ = ["CaseloadPlace", "NotificationPlace", "places"]


class NotificationPlace:
    name = "notification ledger"
    order = 50

    def survey(self, job: Any) -> list[str]:
        conn = job.store.conn
        told = conn.execute(
            "SELECT COUNT(*) FROM notify_ledger WHERE namespace = ? AND client_id = ?",
            job.client,
        ).fetchone()[0]
        pending = conn.execute(
            "SELECT COUNT(DISTINCT l.message) FROM notify_ledger l JOIN notify_messages m "
            "ON m.id = l.message WHERE l.namespace = ? AND l.client_id = ? "
            "AND m.content IS NOT NULL",
            job.client,
        ).fetchone()[0]
        out = []
        if told:
            out.append(f"{told} record(s) of alerts told on a route")
        if pending:
            out.append(f"{pending} unconfirmed message(s) that mention the client")
        return out

    def erase(self, job: Any) -> list[str]:
        from .ledger import forget_client

        survey = self.survey(job)
        if job.dry_run or not survey:
            return survey
        forget_client(job.store, *job.client)
        return [f"removed {line}" for line in survey]


class CaseloadPlace:
    name = "caseload pages"
    order = 85  # after the store: the pages are written again without the client

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _listed(self, job: Any) -> list[Path]:
        """The client's files in the folder's manifest (whether or not they still exist: the
        ``report files`` place may have removed them already)."""
        from ..reports.caseload_files import client_files

        return client_files(self.directory, *job.client)

    def survey(self, job: Any) -> list[str]:
        listed = self._listed(job)
        if not listed:
            return []
        return [str(p) for p in listed if p.exists()] + [
            f"the caseload pages in {self.directory} list the client"
        ]

    def erase(self, job: Any) -> list[str]:
        from ..reports.caseload_write import regenerate

        listed = self._listed(job)
        if not listed or job.dry_run:
            return self.survey(job)
        out = []
        for path in listed:
            if path.exists():
                path.unlink()
                out.append(f"removed {path}")
        try:
            regenerate(job.config, job.registry, job.store)
            out.append(f"wrote the caseload pages in {self.directory} again without the client")
        except FitError as exc:
            out.append(
                f"NOT DONE: the caseload pages in {self.directory} still list the client "
                f"({exc.message}): run `fit report caseload` or the next sync rewrites them"
            )
        return out


def places(job: Any) -> list[Any]:
    """The places of one erasure job."""
    out: list[Any] = [NotificationPlace()]
    directory = getattr(getattr(job.config, "reports", None), "caseload_dir", None)
    if directory is not None:
        out.append(CaseloadPlace(Path(directory)))
    return out
