"""Encryption at rest: the demo clinic's store encrypted with SQLCipher (the encryption extra)
has no SQLite header and no readable client id, works as before with its key, and a missing or
wrong key is a clear error with exit 3."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fit_cli.demo import run_demo
from fit_cli.main import cli
from fit_core import encryption
from fit_core.errors import ConfigError
from fit_core.store import Store

KEY = "8d3f0c6a1b2e4f5a6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3"


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, set[str]]:
    run_demo(tmp_path)
    conn = sqlite3.connect(tmp_path / "fit.sqlite3")
    try:
        ids = {cid for (cid,) in conn.execute("SELECT DISTINCT client_id FROM administrations")}
    finally:
        conn.close()
    assert len(ids) == 40
    return tmp_path, ids


def fit(folder: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, ["--config", str(folder / "config.toml"), *args], env=env)


def readable(paths: list[Path], ids: set[str]) -> set[str]:
    found = set()
    for p in paths:
        if p.is_file():
            data = p.read_bytes()
            found |= {cid for cid in ids if cid.encode() in data}
    return found


def test_an_encrypted_store_hides_everything_and_needs_its_key(
    demo: tuple[Path, set[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, ids = demo
    path = folder / "fit.sqlite3"
    files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    assert path.read_bytes().startswith(encryption.SQLITE_HEADER)
    assert readable(files, ids) == ids  # the plain store shows every client id

    monkeypatch.setenv("FIT_STORE_KEY", KEY)
    res = fit(folder, "store", "encrypt")
    assert res.exit_code == 0, res.output
    head = path.read_bytes()[:16]
    assert head != encryption.SQLITE_HEADER and encryption.is_encrypted(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert readable(files, ids) == set()
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(path).execute("SELECT count(*) FROM administrations").fetchone()

    # with the key it works as before, and what a sync writes (WAL included) stays hidden
    res = fit(folder, "alerts", "--state", "all", "--json")
    assert res.exit_code == 0 and '"client_id"' in res.stdout
    (folder / "admins.csv").write_text(
        (folder / "admins.csv").read_text(encoding="utf-8") + "\n", encoding="utf-8"
    )
    res = fit(folder, "sync")
    assert res.exit_code in (0, 1), res.output
    assert readable(files, ids) == set()
    res = fit(folder, "store", "status")
    assert "encrypted (SQLCipher)" in res.stdout

    # a wrong key, and no key: exit 3 with what to do, never a new empty store
    size = path.stat().st_size
    monkeypatch.setenv("FIT_STORE_KEY", "0" * 64)
    res = fit(folder, "alerts")
    assert res.exit_code == 3 and "key is wrong" in res.output, res.output
    res = fit(folder, "sync")
    assert res.exit_code == 3
    monkeypatch.delenv("FIT_STORE_KEY")
    res = fit(folder, "alerts")
    assert res.exit_code == 3 and "encrypted and its key is not set" in res.output
    assert "fit keys set store key" in res.output
    assert path.stat().st_size == size


def test_rekey_with_the_key_in_the_keyring(
    demo: tuple[Path, set[str]], memory_keyring: Any
) -> None:
    folder, ids = demo
    path = folder / "fit.sqlite3"
    memory_keyring.set_password("fit", "store.key", "a passphrase, not hex")
    assert fit(folder, "store", "encrypt").exit_code == 0
    assert readable([path], ids) == set()
    new = folder / "new.key"
    new.write_text(KEY + "\n", encoding="utf-8")
    res = fit(folder, "store", "rekey", "--new-key-file", str(new))
    assert res.exit_code == 0, res.output
    assert memory_keyring.get_password("fit", "store.key") == KEY
    assert fit(folder, "alerts").exit_code == 0
    with pytest.raises(ConfigError, match="key is wrong"):
        Store.open(path, key="a passphrase, not hex")
    store = Store.open(path, key=KEY)
    try:
        assert store.encrypted and store.count("administrations") == 526
    finally:
        store.close()


def test_a_new_store_can_start_encrypted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "fit.toml"
    cfg.write_text(f'[store]\npath = "{tmp_path / "s" / "fit.sqlite3"}"\n', encoding="utf-8")
    monkeypatch.setenv("FIT_STORE_KEY", KEY)
    res = CliRunner().invoke(cli, ["--config", str(cfg), "store", "encrypt"])
    assert res.exit_code == 0, res.output
    path = tmp_path / "s" / "fit.sqlite3"
    assert encryption.is_encrypted(path)
    store = Store.open(path)
    try:
        assert store.encrypted and store.count("administrations") == 0
    finally:
        store.close()


def test_without_sqlcipher_an_encrypted_store_names_the_extra(
    demo: tuple[Path, set[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ids = demo
    monkeypatch.setenv("FIT_STORE_KEY", KEY)
    assert fit(folder, "store", "encrypt").exit_code == 0
    monkeypatch.setitem(__import__("sys").modules, "sqlcipher3", None)
    monkeypatch.setitem(__import__("sys").modules, "sqlcipher3.dbapi2", None)
    res = fit(folder, "alerts")
    assert res.exit_code == 3 and "fit-sync[encryption]" in res.output
