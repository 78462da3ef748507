"""Keyed hashes and tombstones: how fit-sync remembers what it erased without keeping it.

The *privacy key* is a secret like any other (``fit keys set privacy hash_key``, or
``FIT_PRIVACY_HASH_KEY``, or the systemd credential ``privacy.hash_key``). With it:

- :func:`client_hash` and :func:`record_hash` are HMAC-SHA256 values of a client (namespace +
  client id) or a record (source + source key), cut to 128 bits. They stand for a client in
  the audit log and in tombstones; without the key they cannot be reversed or tested against
  a guessed id (client codes are short, so an unkeyed hash would be).
- A *tombstone* is such a hash kept after an erasure (``kind = "client"``) or a retention
  purge (``kind = "record"``). While it stands, the sync refuses what it matches, so data
  erased here does not come back from a source that still holds it (see :class:`Tombstones`).

The store remembers a check value of the key (meta ``privacy_key_check``), so a changed key
is an error (the tombstones written with the old one would no longer match) rather than a
silent re-import of erased clients.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

log = logging.getLogger(__name__)

KEY_SOURCE = "privacy"
KEY_NAME = "hash_key"
CHECK_META = "privacy_key_check"
_SEP = "\x1f"


def privacy_key(secret: Callable[[str, str], str]) -> str:
    """The privacy key from the secret chain (ConfigError naming how to set it)."""
    try:
        return secret(KEY_SOURCE, KEY_NAME)
    except ConfigError as exc:
        raise ConfigError(
            "the privacy key (secret hash_key of privacy) is not set: it keys the hashes that "
            "stand for erased clients and purged records",
            hint="make one and keep a backup: `openssl rand -hex 32 | fit keys set privacy "
            "hash_key` (or FIT_PRIVACY_HASH_KEY, or the systemd credential privacy.hash_key)"
            + (f"; {exc.hint}" if exc.hint and "keys set" not in exc.hint else ""),
        ) from None


def keyed_hash(key: str, *parts: str) -> str:
    """HMAC-SHA256 of the parts (joined with a unit separator), 32 hex digits."""
    message = _SEP.join(parts).encode("utf-8")
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()[:32]


def client_hash(key: str, namespace: str, client_id: str) -> str:
    return keyed_hash(key, "client", namespace, client_id)


def record_hash(key: str, source: str, source_key: str) -> str:
    return keyed_hash(key, "record", source, source_key)


def key_check(key: str) -> str:
    return keyed_hash(key, "fit-sync privacy key check")


def verify_key(store: Any, key: str) -> None:
    """Remember the key's check value; a different key than before is a ConfigError."""
    stored = store.meta(CHECK_META)
    now = key_check(key)
    if stored is None:
        store.set_meta(CHECK_META, now)
    elif not hmac.compare_digest(stored, now):
        raise ConfigError(
            "the privacy key (privacy hash_key) is not the one the tombstones and audit "
            "entries of this store were made with, so erased clients cannot be recognised",
            hint="set the key used before (from your backup); nothing was synced",
        )


@dataclass
class Tombstones:
    """The tombstones of a store, ready for the sync to test records against."""

    key: str
    clients: set[str] = field(default_factory=set)
    records: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, store: Any, secret: Callable[[str, str], str]) -> Tombstones | None:
        """The store's tombstones (None when it has none: nothing to test, no key needed)."""
        if not store.has_tombstones():
            return None
        key = privacy_key(secret)
        verify_key(store, key)
        return cls(key, store.tombstone_hashes("client"), store.tombstone_hashes("record"))

    def client_erased(self, namespace: str, client_id: str) -> bool:
        return bool(self.clients) and client_hash(self.key, namespace, client_id) in self.clients

    def record_purged(self, source: str, source_key: str) -> bool:
        return bool(self.records) and record_hash(self.key, source, source_key) in self.records
