"""The audit log: who pushed, exported, erased, purged, acknowledged or reported what, and when.

Every entry goes into the store's append-only ``audit_log`` table (see
:mod:`fit_core.privacy_store`) and, when ``[privacy] audit_log`` names a file, one JSON line is
appended to that file too (created 0600) for the clinic's log collector.

An entry holds the time (UTC), the OS user, the action, the target (a source name and where it
writes), counts, and *subject hashes*: keyed hashes (HMAC-SHA256 with the privacy key, see
:mod:`fit_core.privacy`) of the clients or records concerned, never an id, a value or a name.
Someone holding the key can check whether an entry concerns a given client (``fit audit
--client ID``); the log alone tells nothing about who it concerns.

Actions: ``push`` (per source and run: rows written, rows removed), ``export``, ``erase``,
``purge``, ``acknowledge``, ``reopen``, ``report``, ``readmit``, ``store`` (encrypt, rekey).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError

log = logging.getLogger(__name__)

ACTIONS = (
    "push",
    "export",
    "erase",
    "purge",
    "acknowledge",
    "reopen",
    "report",
    "readmit",
    "store",
)


def os_user() -> str:
    """The login name of the OS user running fit (its uid where no name is known)."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers) and no LOGNAME/USER
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Auditor:
    """Writes audit entries to a store (and the JSON-lines file, if configured).

    ``secret(source, key)`` is the secret lookup; subjects are hashed with the privacy key
    when it is set. Without it, entries are still written, with their subjects left out (and
    a warning once), so an acknowledgement never fails for want of a key.
    """

    def __init__(
        self,
        store: Any,
        log_file: Path | None = None,
        secret: Callable[[str, str], str] | None = None,
    ) -> None:
        self.store = store
        self.log_file = log_file
        self.secret = secret
        self._key: str | Literal[False] | None = None  # False: looked up, not set
        self._warned = False

    def key(self) -> str | None:
        """The privacy key, or None when it is not set."""
        if self._key is None:
            from .privacy import privacy_key

            try:
                self._key = privacy_key(self.secret) if self.secret is not None else False
            except ConfigError:
                self._key = False
        return self._key or None

    def client_subjects(self, clients: Sequence[tuple[str, str]]) -> list[str] | None:
        """Hashes of ``clients`` ((namespace, client_id) pairs), or None without a key."""
        from .privacy import client_hash

        key = self.key()
        if key is None:
            return None
        return sorted({client_hash(key, ns, cid) for ns, cid in clients})

    def record_subjects(self, records: Sequence[tuple[str, str]]) -> list[str] | None:
        """Hashes of records ((source, source_key) pairs), or None without a key."""
        from .privacy import record_hash

        key = self.key()
        if key is None:
            return None
        return sorted({record_hash(key, s, k) for s, k in records})

    def record(
        self,
        action: str,
        *,
        target: str | None = None,
        counts: dict[str, int] | None = None,
        subjects: Sequence[str] | None = None,
        detail: str | None = None,
        wanted_subjects: bool = False,
    ) -> dict[str, Any]:
        """Append one entry; returns it. ``wanted_subjects``: the entry should have named its
        subjects (they are None because the privacy key is not set): say so once."""
        assert action in ACTIONS, action
        if wanted_subjects and subjects is None and not self._warned:
            self._warned = True
            log.warning(
                "audit: the privacy key is not set, so entries cannot name the clients they "
                "concern (hashed); set it with `fit keys set privacy hash_key`"
            )
        entry = {
            "at": now_text(),
            "os_user": os_user(),
            "action": action,
            "target": target,
            "counts": {k: v for k, v in (counts or {}).items() if v},
            "subjects": list(subjects) if subjects is not None else [],
            "detail": detail,
        }
        entry["id"] = self.store.append_audit(
            entry["at"],
            entry["os_user"],
            action,
            target,
            entry["counts"],
            subjects,
            detail,
        )
        if self.log_file is not None:
            append_json_line(self.log_file, entry)
        return entry


def append_json_line(path: Path, entry: dict[str, Any]) -> None:
    """Append ``entry`` as one JSON line to ``path`` (created 0600; its folder 0700)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n")
    except OSError as exc:
        # the store's table holds the entry; the collector's file is a copy
        log.error("audit: cannot append to %s (%s)", path, exc.strerror or type(exc).__name__)


def auditor_for(store: Any, config: Any, secret: Callable[[str, str], str] | None) -> Auditor:
    """An :class:`Auditor` for a config (its ``[privacy] audit_log``)."""
    privacy = getattr(config, "privacy", None)
    return Auditor(store, getattr(privacy, "audit_log", None), secret)
