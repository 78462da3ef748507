"""Encryption at rest for the store: SQLCipher, with the key from the secret chain.

Optional: ``pip install 'fit-sync[encryption]'`` brings ``sqlcipher3-binary`` (SQLCipher 4,
AES-256 in CBC mode with an HMAC per page). An encrypted store is told apart from a plain one
by its first 16 bytes: a plain SQLite file starts with ``SQLite format 3``; an encrypted one
starts with random bytes (its salt). :meth:`fit_core.store.Store.open` opens either kind; an
encrypted store needs the secret ``key`` of the name ``store`` (:data:`KEY_SOURCE`,
:data:`KEY_NAME`), looked up like every secret: ``FIT_STORE_KEY``, the systemd credential
``store.key``, a plugin, or the keyring (``fit keys set store key``).

A key of 64 hex digits (``openssl rand -hex 32``) is used as the raw 256-bit key; any other
text as a passphrase (SQLCipher derives the key with PBKDF2-HMAC-SHA512, 256,000 rounds,
which makes every open take a moment). The WAL is encrypted too. A missing or wrong key is a
ConfigError (exit 3), never a silent new store.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from .errors import ConfigError

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
KEY_SOURCE = "store"
KEY_NAME = "key"
_RAW_KEY = re.compile(r"^[0-9A-Fa-f]{64}$")
_EXTRA = "pip install 'fit-sync[encryption]'"


def is_encrypted(path: Path | str) -> bool:
    """True when ``path`` is a non-empty file that does not start with the SQLite header."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return False
    return bool(head) and head != SQLITE_HEADER


def sqlcipher() -> Any:
    """The ``sqlcipher3`` DB-API module, or a ConfigError naming the extra to install."""
    try:
        import sqlcipher3.dbapi2 as module  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise ConfigError(
            "this fit-sync cannot open encrypted stores: SQLCipher is not installed",
            hint=f"{_EXTRA} (in the same environment as fit)",
        ) from None
    return module


def available() -> bool:
    """Whether SQLCipher is installed."""
    try:
        sqlcipher()
    except ConfigError:
        return False
    return True


def find_key(secret: Any = None) -> tuple[str | None, str | None]:
    """(the store key, where it was found) from the secret chain; (None, None) if unset."""
    if secret is not None:
        try:
            return secret(KEY_SOURCE, KEY_NAME), "secret lookup"
        except ConfigError:
            return None, None
    from .secrets import SecretStore

    return SecretStore(_plugin_resolver()).find(KEY_SOURCE, KEY_NAME)


def _plugin_resolver() -> Any:
    """The plugins' secret resolver (a vault), or None when the plugins cannot be loaded."""
    try:
        from .plugins import load_plugins

        return load_plugins().resolve_secret
    except Exception:  # a broken plugin must not hide the env/credential/keyring key
        log.debug("plugins not loaded for the store key lookup", exc_info=True)
        return None


def missing_key_error(path: Path | str) -> ConfigError:
    """No store key is set for a file that is not plain SQLite: encrypted, or damaged."""
    return ConfigError(
        f"the store {path} is encrypted and its key is not set (or it is damaged or is not a "
        "fit-sync store: it is no plain SQLite file)",
        hint="set FIT_STORE_KEY, the systemd credential store.key, or run `fit keys set store "
        "key` with the key it was encrypted with; a damaged store: restore it from a backup",
    )


def key_pragma(key: str) -> str:
    """The ``PRAGMA key`` value: a raw key for 64 hex digits, else a quoted passphrase."""
    if _RAW_KEY.match(key):
        return f"\"x'{key.lower()}'\""
    return "'" + key.replace("'", "''") + "'"


def connect(path: str, key: str) -> sqlite3.Connection:
    """Open an encrypted store (created if missing) and prove the key on its first page."""
    module = sqlcipher()
    conn = module.connect(path, isolation_level=None, check_same_thread=False)
    with contextlib.suppress(Exception):
        conn.execute("PRAGMA cipher_log_level = NONE")  # no page errors on stderr
    conn.execute(f"PRAGMA key = {key_pragma(key)}")
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except module.DatabaseError:
        conn.close()
        raise ConfigError(
            f"the store {path} cannot be opened with the store key: the key is wrong (or the "
            "store is damaged or is not a fit-sync store)",
            hint="set the key the store was encrypted with (FIT_STORE_KEY, the credential "
            "store.key or `fit keys set store key`); `fit keys get store key` shows where it "
            "is read from",
        ) from None
    return conn


def _checkpointed(path: str, key: str | None) -> None:
    """Fold the WAL into the main file, so the file alone holds everything."""
    conn = connect(path, key) if key else sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def convert(path: Path, old_key: str | None, new_key: str | None) -> None:
    """Write the store at ``path`` anew, encrypted with ``new_key`` (None: plain), from its
    current form (``old_key`` None: plain). The copy is made beside it (0600) and renamed over
    it; the old WAL and shared-memory files go. Hold the sync lock while this runs."""
    module = sqlcipher()
    _checkpointed(str(path), old_key)
    tmp = path.with_name(f".{path.name}.convert")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    os.close(fd)
    tmp.unlink()  # sqlcipher_export wants to create it; the 0600 umask below covers it
    old_umask = os.umask(0o077)
    try:
        conn = module.connect(str(path), isolation_level=None)
        with contextlib.suppress(Exception):
            conn.execute("PRAGMA cipher_log_level = NONE")
        if old_key:
            conn.execute(f"PRAGMA key = {key_pragma(old_key)}")
        target = key_pragma(new_key) if new_key else "''"
        conn.execute(f"ATTACH DATABASE ? AS converted KEY {target}", (str(tmp),))
        conn.execute("SELECT sqlcipher_export('converted')")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute(f"PRAGMA converted.user_version = {int(version)}")
        conn.execute("DETACH DATABASE converted")
        conn.close()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.umask(old_umask)
    os.chmod(tmp, 0o600)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, path)
    check = connect(str(path), new_key) if new_key else sqlite3.connect(str(path))
    try:
        check.execute("PRAGMA journal_mode=WAL")
    finally:
        check.close()
