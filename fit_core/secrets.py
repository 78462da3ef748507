"""Secret lookup: environment, systemd credentials, plugins, then the keyring.

For the secret ``key`` of source ``source`` (e.g. ``clinic_redcap`` / ``token``), in order:

1. the environment variable ``FIT_<SOURCE>_<KEY>`` (:func:`env_name`);
2. the file ``$CREDENTIALS_DIRECTORY/<source>.<key>`` (:func:`credential_name`), which systemd
   provides for ``LoadCredential=<source>.<key>:/path`` (one trailing newline is dropped);
3. the ``fit_resolve_secret`` plugin hook (a vault, a password manager ...);
4. the keyring: service ``fit``, username ``<source>.<key>``.

An empty environment variable or credential file counts as not set. Every value found is
registered with :mod:`fit_core.redact`. Values never appear in a log line or an exception.
Headless servers often have no keyring backend: lookups then use 1-3 only, and storing a
secret fails with a message naming the alternatives.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

from .errors import ConfigError
from .redact import redact, register_secret

log = logging.getLogger(__name__)

SERVICE = "fit"
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")

Resolver = Callable[[str, str], str | None]

#: ``where`` values returned by :meth:`SecretStore.find` start with one of these words.
WHERE_PLUGIN = "plugin"
WHERE_KEYRING = "keyring"
WHERE_CREDENTIAL = "systemd credential"


def check_name(name: str, what: str = "name") -> str:
    """``name`` if usable as a source or key name, else a ConfigError (it becomes a file name)."""
    if not _NAME.match(name):
        raise ConfigError(
            f"secret {what} {name!r} is not allowed",
            hint="use letters, digits, _ and - (at most 64 characters)",
        )
    return name


def env_name(source: str, key: str) -> str:
    """``FIT_<SOURCE>_<KEY>``, upper-cased, every other character than A-Z and 0-9 as ``_``."""
    return re.sub(r"[^A-Z0-9]", "_", f"FIT_{source}_{key}".upper())


def credential_name(source: str, key: str) -> str:
    """``<source>.<key>``: the systemd credential (file under ``$CREDENTIALS_DIRECTORY``)."""
    return f"{source}.{key}"


def keyring_username(source: str, key: str) -> str:
    """``<source>.<key>``: the keyring username under service :data:`SERVICE`."""
    return f"{source}.{key}"


def where_kind(where: str | None) -> str:
    """A stable one-word form of a ``where``: env, credential, plugin, keyring or missing."""
    if where is None:
        return "missing"
    if where.startswith("env "):
        return "env"
    if where == WHERE_CREDENTIAL:
        return "credential"
    return where


def _keyring() -> Any:
    """The keyring module, imported on first use (it costs 80 ms; most runs never need it)."""
    import keyring
    import keyring.errors

    return keyring


def usable_keyring() -> KeyringBackend | None:
    """The active keyring backend, or None when there is none that can store secrets.

    None for keyring's ``fail`` backend (nothing recommended installed), the ``null`` backend
    (keyring disabled) and a chainer with nothing to chain: the usual headless-server cases.
    """
    keyring = _keyring()
    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # a broken keyringrc or backend import
        log.warning("the keyring could not be initialised: %s", type(exc).__name__)
        return None
    from keyring.backends import chainer, fail, null

    if isinstance(backend, fail.Keyring | null.Keyring):
        return None
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return None
    return backend


def no_keyring_error(source: str, key: str) -> ConfigError:
    """The error for storing or deleting a secret where no keyring backend exists."""
    return ConfigError(
        "no keyring backend is available on this machine (common on servers without a "
        "desktop session), so fit cannot store secrets here",
        hint=f"set the environment variable {env_name(source, key)}, or use a systemd "
        f"credential: LoadCredential={credential_name(source, key)}:/path/to/file in the "
        "service unit; the keyrings.alt package adds a backend, but it stores secrets in a "
        "file",
    )


def missing_secret_error(source: str, key: str, *, keyring_ok: bool = True) -> ConfigError:
    """The error for a secret found nowhere: it names all three ways to provide it."""
    note = "" if keyring_ok else " (no keyring backend here: use the variable or the credential)"
    return ConfigError(
        f"secret {key!r} for source {source!r} is not set{note}",
        hint=f"run `fit keys set {source} {key}`, or set the environment variable "
        f"{env_name(source, key)}, or add the systemd credential "
        f"LoadCredential={credential_name(source, key)}:/path/to/file",
    )


def _keyring_failure(action: str, source: str, key: str, exc: Exception) -> ConfigError:
    detail = redact(str(exc)) or type(exc).__name__
    return ConfigError(
        f"the keyring failed to {action} {credential_name(source, key)}: {detail}",
        hint=f"unlock the keyring, or set the environment variable {env_name(source, key)}",
    )


class SecretStore:
    """Looks secrets up in order (env, systemd credential, plugins, keyring) and stores them.

    ``resolver`` is the plugin hook, normally ``registry.resolve_secret``; ``environ`` defaults
    to ``os.environ`` read at each lookup.
    """

    def __init__(
        self, resolver: Resolver | None = None, *, environ: Mapping[str, str] | None = None
    ) -> None:
        self._resolver = resolver
        self._environ = environ

    def get(self, source: str, key: str) -> str:
        """The secret's value, or a ConfigError naming every way to set it."""
        value, _where = self.find(source, key)
        if value is None:
            raise missing_secret_error(source, key, keyring_ok=usable_keyring() is not None)
        return value

    def find(self, source: str, key: str) -> tuple[str | None, str | None]:
        """``(value, where)``; ``where`` is ``"env FIT_X_Y"``, ``"systemd credential"``,
        ``"plugin"``, ``"keyring"``, or None when the secret is set nowhere."""
        check_name(source, "source")
        check_name(key, "key")
        for where, lookup in (
            (f"env {env_name(source, key)}", self._from_env),
            (WHERE_CREDENTIAL, self._from_credentials),
            (WHERE_PLUGIN, self._from_plugins),
            (WHERE_KEYRING, self._from_keyring),
        ):
            value = lookup(source, key)
            if value:
                register_secret(value)
                log.debug("secret %s found in %s", credential_name(source, key), where)
                return value, where
        return None, None

    def set(self, source: str, key: str, value: str) -> None:
        """Store the secret in the keyring (ConfigError if there is no usable backend)."""
        keyring = _keyring()
        check_name(source, "source")
        check_name(key, "key")
        if not value:
            raise ConfigError(f"refusing to store an empty {credential_name(source, key)}")
        register_secret(value)
        backend = usable_keyring()
        if backend is None:
            raise no_keyring_error(source, key)
        try:
            backend.set_password(SERVICE, keyring_username(source, key), value)
        except keyring.errors.NoKeyringError:
            raise no_keyring_error(source, key) from None
        except (keyring.errors.KeyringError, NotImplementedError) as exc:
            raise _keyring_failure("store", source, key, exc) from None

    def delete(self, source: str, key: str) -> None:
        """Remove the secret from the keyring (ConfigError if it was not there)."""
        keyring = _keyring()
        check_name(source, "source")
        check_name(key, "key")
        backend = usable_keyring()
        if backend is None:
            raise no_keyring_error(source, key)
        try:
            backend.delete_password(SERVICE, keyring_username(source, key))
        except keyring.errors.PasswordDeleteError:
            raise ConfigError(
                f"{credential_name(source, key)} is not in the keyring, nothing to delete",
                hint="`fit keys get SOURCE KEY` shows where a secret is set",
            ) from None
        except keyring.errors.NoKeyringError:
            raise no_keyring_error(source, key) from None
        except (keyring.errors.KeyringError, NotImplementedError) as exc:
            raise _keyring_failure("delete", source, key, exc) from None

    # -- the four places -------------------------------------------------------------------

    def _from_env(self, source: str, key: str) -> str | None:
        environ = os.environ if self._environ is None else self._environ
        return environ.get(env_name(source, key)) or None

    def _from_credentials(self, source: str, key: str) -> str | None:
        environ = os.environ if self._environ is None else self._environ
        directory = environ.get(CREDENTIALS_ENV)
        if not directory:
            return None
        path = Path(directory) / credential_name(source, key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"the systemd credential {path} cannot be read: {type(exc).__name__}",
                hint="check LoadCredential= in the service unit and the file's permissions",
            ) from None
        return text.removesuffix("\n").removesuffix("\r") or None

    def _from_plugins(self, source: str, key: str) -> str | None:
        if self._resolver is None:
            return None
        try:
            value = self._resolver(source, key)
        except Exception as exc:
            raise ConfigError(
                f"a plugin failed to resolve the secret {credential_name(source, key)}: "
                f"{type(exc).__name__}",
                hint="see `fit plugins`; run with -v for the traceback",
            ) from exc
        if value is not None and not isinstance(value, str):
            raise ConfigError(
                f"a plugin returned a {type(value).__name__} for the secret "
                f"{credential_name(source, key)}; fit_resolve_secret must return a str or None"
            )
        return value

    def _from_keyring(self, source: str, key: str) -> str | None:
        keyring = _keyring()
        backend = usable_keyring()
        if backend is None:
            return None
        try:
            return backend.get_password(SERVICE, keyring_username(source, key))
        except keyring.errors.NoKeyringError:
            return None
        except keyring.errors.KeyringError as exc:
            raise _keyring_failure("read", source, key, exc) from None
