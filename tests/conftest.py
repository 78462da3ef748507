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
def private_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default config, store and state paths point into a temporary home, never the real one."""
    home = tmp_path_factory.mktemp("home")
    for var, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CACHE_HOME", ".cache"),
    ):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)


@pytest.fixture(autouse=True)
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    """Install a fresh :class:`MemoryKeyring`; drop ``CREDENTIALS_DIRECTORY`` and ``FIT_*``."""
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    for name in list(os.environ):
        if name.startswith("FIT_"):
            monkeypatch.delenv(name)
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(MemoryKeyring())


@pytest.fixture
def forking(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Let fit_core.forkmap fork whatever the machine (one CPU, other threads of the test run),
    and count the forks: the pids of the children, in order."""
    from fit_core import forkmap

    if not hasattr(os, "fork"):
        pytest.skip("a second process needs os.fork (POSIX)")
    forks: list[int] = []
    real_fork = os.fork

    def counting_fork() -> int:
        pid = real_fork()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr(forkmap, "can_fork", lambda: True)
    monkeypatch.setattr(os, "fork", counting_fork)
    return forks
