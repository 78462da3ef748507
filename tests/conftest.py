"""Shared fixtures. Every test runs against an in-memory keyring and a clean FIT_* environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend


class MemoryKeyring(KeyringBackend):
    """A keyring backend that keeps passwords in a dict: no test touches a real keychain."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.passwords[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError("not found") from None


@pytest.fixture(autouse=True)
def memory_keyring(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MemoryKeyring]:
    """Install a fresh :class:`MemoryKeyring`; drop ``CREDENTIALS_DIRECTORY`` and ``FIT_*``.

    The default config and store folders point into a temporary folder, so a test that leaves
    ``[store] path`` out never meets the user's real store."""
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    home = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    for name in list(os.environ):
        if name.startswith("FIT_"):
            monkeypatch.delenv(name)
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(MemoryKeyring())
