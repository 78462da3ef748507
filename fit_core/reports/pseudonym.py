"""Keyed pseudonyms for client ids: ``P-XXXXX-XXXXX``, stable within one store.

``pseudonym = base32(HMAC-SHA256(key, namespace + US + client_id))[:10]``, grouped as
``P-ABCDE-FGHIJ`` (50 bits: collisions are negligible for a clinic's caseload). The key is a
random 32-byte secret kept beside the store (``<store>.pseudonym-key``, mode 0600), created the
first time it is needed. Without the key a pseudonym cannot be linked back to a client id, not
even by hashing a list of likely ids; with the store (and so the key) anyone allowed to read the
store can recompute it. Two stores have different keys, so their pseudonyms do not link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from ..errors import ConfigError

__all__ = ["KEY_SUFFIX", "key_path", "load_or_create_key", "pseudonym"]

KEY_SUFFIX = ".pseudonym-key"
_KEY_BYTES = 32


def key_path(store_path: Path | str) -> Path | None:
    """Where the store's pseudonym key lives (None for an in-memory store)."""
    text = str(store_path)
    if text == ":memory:" or not text:
        return None
    return Path(text + KEY_SUFFIX)


def load_or_create_key(store_path: Path | str) -> bytes:
    """The store's pseudonym key; created (mode 0600) when missing. In-memory: a fresh key."""
    path = key_path(store_path)
    if path is None:
        return secrets.token_bytes(_KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    except OSError as exc:
        raise ConfigError(f"cannot create the pseudonym key {path}: {exc.strerror}") from None
    key = secrets.token_bytes(_KEY_BYTES)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.hex() + "\n")
    return key


def _read_key(path: Path) -> bytes:
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        raise ConfigError(
            f"the pseudonym key {path} cannot be read",
            hint="restore it from a backup; deleting it changes every pseudonym",
        ) from None
    if len(key) < 16:
        raise ConfigError(f"the pseudonym key {path} is too short (need 16 bytes or more)")
    return key


def pseudonym(key: bytes, namespace: str, client_id: str) -> str:
    """The client's pseudonym under ``key``: ``P-`` and ten base32 characters."""
    mac = hmac.new(key, f"{namespace}\x1f{client_id}".encode(), hashlib.sha256).digest()
    code = base64.b32encode(mac).decode("ascii")[:10]
    return f"P-{code[:5]}-{code[5:]}"
