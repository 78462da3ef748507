"""Run the bad-input corpus (tests/bad_input_corpus.py) through the real CLI and receiver.

Rows and files: `fit sync` exits 1 (0 for accepted forms), the warning names the line, `fit
quarantine` names the line and the field, and every good row of the same file is stored.
Configs: exit 3 naming the key, and no store is created. Stores: exit 3 (5 for a held lock)
naming the file. HTTP bodies: the status, whether a record was queued, and that the next valid
notice is still served.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from abuse_clients import raw_request
from bad_input_corpus import (
    CONFIG_CASES,
    FILE_CASES,
    GOOD,
    GOOD_CONFIG,
    HEADER_LINE,
    HTTP_CASES,
    NOTICE,
    ROW_CASES,
    STORE_CASES,
    ConfigCase,
    FileCase,
    HttpCase,
    RowCase,
    StoreCase,
    base,
    count,
    key,
    line,
    post,
    table,
)
from click.testing import CliRunner

from fit_adapters.redcap.det import DetServer, DetSource
from fit_cli.main import cli
from fit_core.lock import SyncLock
from fit_core.store import SCHEMA_VERSION, Store

ROOT = Path(__file__).resolve().parent.parent


def config_text(folder: Path, source: Path, template: bytes = GOOD_CONFIG) -> bytes:
    """``template`` with the store, the input folder and the scores file of ``folder``."""
    text = template.replace(b"{store}", str(folder / "fit.sqlite3").encode())
    text = text.replace(b"{input}", str(source).encode())
    return text.replace(b"{scores}", str(folder / "out" / "scores.csv").encode())


def setup(folder: Path, files: dict[str, bytes]) -> Path:
    (folder / "in").mkdir(parents=True)
    (folder / "out").mkdir()
    for name, content in files.items():
        (folder / "in" / name).write_bytes(content)
    cfg = folder / "fit.toml"
    cfg.write_bytes(config_text(folder, folder / "in"))
    return cfg


def fit(cfg: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(cfg), *args])


def stored(folder: Path) -> set[str]:
    store = Store.open(folder / "fit.sqlite3")
    try:
        return {a.source_key for a in store.iter_administrations()}
    finally:
        store.close()


def quarantine(cfg: Path) -> list[dict[str, Any]]:
    res = fit(cfg, "quarantine", "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


# --- rows -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ROW_CASES, ids=[c.id for c in ROW_CASES])
def test_row(case: RowCase, tmp_path: Path) -> None:
    cfg = setup(tmp_path, {"admins.csv": case.file()})
    res = fit(cfg, "sync")
    assert res.exit_code == case.exit, res.output
    keys = stored(tmp_path)
    assert {key(c) for c in GOOD} <= keys  # every good row of the file
    if case.field is None:
        assert case.key in keys and "quarantined" not in res.stderr
        return
    where = "admins.csv line 7"
    assert f"({where}) quarantined;" in res.stderr  # the warning names the line, not fields
    (entry,) = quarantine(cfg)
    assert entry["location"] == where and case.field in entry["reasons"]
    if case.keyed:
        assert entry["source_key"] == case.key
    else:
        assert entry["source_key"] == "admins.csv:line:7"
    assert case.key not in keys
    assert entry["ref"] in res.stderr and case.key not in res.stderr  # a reference, not the key
    for value in case.cells.values():  # messages never repeat the value
        if len(value.strip()) >= 4:
            assert value.strip() not in json.dumps(entry["reasons"], ensure_ascii=False)


# --- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", FILE_CASES, ids=[c.id for c in FILE_CASES])
def test_file(case: FileCase, tmp_path: Path) -> None:
    cfg = setup(tmp_path, case.build())
    res = fit(cfg, "sync")
    assert res.exit_code == case.exit, res.output
    keys = stored(tmp_path)
    assert len(keys) == case.stored
    assert not set(case.absent) & keys
    entries = quarantine(cfg)
    got: dict[str, set[str]] = {}
    for e in entries:
        got.setdefault(e["location"], set()).update(e["reasons"])
    assert set(got) == set(case.errors)
    for where, fld in case.errors.items():
        assert fld in got[where], (where, got[where])
        assert where in res.stderr  # the warning names the line
    if case.id == "file-duplicate-key":  # one key, so one entry; it names the other line
        (entry,) = entries
        assert "also on a.csv line 10" in entry["reasons"]["source_key"]
    if case.id == "file-stray-quote":  # the audit's file: A is the only row lost, and named
        (entry,) = entries
        assert entry["source_key"] == key("A") and entry["location"] == "a.csv line 2"


def test_a_stray_quote_costs_only_its_row_on_every_later_sync_too(tmp_path: Path) -> None:
    """The audit's file, synced twice: the second run neither loses nor re-reports rows."""
    (case,) = [c for c in FILE_CASES if c.id == "file-stray-quote"]
    cfg = setup(tmp_path, case.build())
    assert fit(cfg, "sync").exit_code == 1
    again = fit(cfg, "sync", "--json")
    assert again.exit_code == 0  # nothing new: the file is bookmarked, A stays quarantined
    assert len(stored(tmp_path)) == 20 and len(quarantine(cfg)) == 1


# --- configs --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c.id for c in CONFIG_CASES])
def test_config(case: ConfigCase, tmp_path: Path) -> None:
    files = {"admins.csv": HEADER_LINE + b"".join(line(base(c)) for c in GOOD)}
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    for name, content in files.items():
        (tmp_path / "in" / name).write_bytes(content)
    cfg = tmp_path / "fit.toml"
    cfg.write_bytes(config_text(tmp_path, tmp_path / "in", case.text))
    args = ["sync", "--source", "nope"] if case.id == "cfg-unknown-source" else ["sync"]
    res = fit(cfg, *args)
    assert res.exit_code == case.exit, res.output
    if case.exit == 0:
        assert len(stored(tmp_path)) == len(GOOD)
        return
    assert case.names in res.stderr and "error: " in res.stderr
    assert "Traceback" not in res.output and "internal error" not in res.output
    if not case.store_ok:
        assert not (tmp_path / "fit.sqlite3").exists()


# --- stores ---------------------------------------------------------------------------------


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder another user can reach (pytest's own tmp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="fit-corpus-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)


def _as_other_user(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` as a user other than root, so file permissions bind (nobody when root).

    setpriv changes the user inside the exec, so the interpreter's path (which may lie in
    root's home) is still resolved; Python's own ``user=`` switches before the exec.
    """
    extra: dict[str, Any] = {}
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        else:
            extra = {"user": 65534, "group": 65534, "extra_groups": []}
    return subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=120, check=False, cwd="/", **extra
    )


@pytest.mark.parametrize("case", STORE_CASES, ids=[c.id for c in STORE_CASES])
def test_store(case: StoreCase, open_folder: Path) -> None:
    folder = open_folder
    cfg = setup(folder, {"admins.csv": HEADER_LINE + b"".join(line(base(c)) for c in GOOD)})
    store = folder / "fit.sqlite3"
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    if case.as_other_user:
        _prepare_permissions(case.id, folder, cfg)
        env = {**os.environ, "FIT_CONFIG": str(cfg), "HOME": str(folder)}
        res = _as_other_user([sys.executable, "-m", "fit_cli", "sync"], env)
        code, err = res.returncode, res.stderr
    else:
        cfg = _prepare(case.id, folder, cfg, store)
        if case.id == "store-via-symlink":
            with SyncLock(store):  # a sync runs on the real path
                out = fit(cfg, "sync")
        else:
            out = fit(cfg, "sync")
        code, err = out.exit_code, out.stderr
    assert code == case.exit, err
    assert "Traceback" not in err and "internal error" not in err
    if case.exit == 0:
        assert len(stored(folder)) == len(GOOD)
        return
    assert case.names in err, err
    if case.exit == 3:
        assert "hint:" in err


def _prepare(case_id: str, folder: Path, cfg: Path, store: Path) -> Path:
    if case_id == "store-random-bytes":
        store.write_bytes(os.urandom(8192))
    elif case_id == "store-truncated":
        Store.open(store).close()
        assert fit(cfg, "sync").exit_code == 0
        for extra in (".lock", "-wal", "-shm"):
            Path(f"{store}{extra}").unlink(missing_ok=True)
        size = store.stat().st_size
        os.truncate(store, size // 2)
    elif case_id == "store-text-file":
        store.write_text("these are my notes, not a database\n" * 200)
    elif case_id == "store-folder":
        store.mkdir()
    elif case_id == "store-zero-bytes":
        store.write_bytes(b"")
    elif case_id == "store-newer-schema":
        conn = sqlite3.connect(store)
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION + 1),))
        conn.commit()
        conn.close()
    elif case_id == "store-lock-symlink":
        victim = folder / "victim.txt"
        victim.write_text("keep me")
        Path(f"{store}.lock").symlink_to(victim)
    elif case_id == "store-lock-hardlink":
        victim = folder / "victim.txt"
        victim.write_text("keep me")
        os.link(victim, f"{store}.lock")
    elif case_id == "store-via-symlink":
        (folder / "elsewhere").symlink_to(folder)
        text = cfg.read_text().replace(str(store), str(folder / "elsewhere" / "fit.sqlite3"))
        cfg.write_text(text)
    victim = folder / "victim.txt"
    if victim.exists():
        assert victim.read_text() == "keep me"
    return cfg


def _prepare_permissions(case_id: str, folder: Path, cfg: Path) -> None:
    if case_id == "store-read-only":
        holder = folder / "ro"
        holder.mkdir(mode=0o777)
        _point_store(cfg, holder / "fit.sqlite3")
        Store.open(holder / "fit.sqlite3").close()
        (holder / "fit.sqlite3").chmod(0o444)
        holder.chmod(0o777)
    elif case_id == "store-folder-unwritable":
        holder = folder / "locked"
        holder.mkdir()
        holder.chmod(0o555)
        _point_store(cfg, holder / "fit.sqlite3")
    elif case_id == "store-folder-no-search":
        holder = folder / "closed" / "inner"
        holder.mkdir(parents=True)
        holder.chmod(0o777)
        (folder / "closed").chmod(0o766)  # readable and writable, but cannot be entered
        _point_store(cfg, holder / "fit.sqlite3")


def _point_store(cfg: Path, store: Path) -> None:
    text = cfg.read_text()
    old = text.split('path = "', 1)[1].split('"', 1)[0]
    cfg.write_text(text.replace(old, str(store), 1))


# --- HTTP bodies ----------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def submit(self, source: str, record: str) -> None:
        self.calls.append((source, record))


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[DetServer, Recorder]]:
    served = [DetSource.of("clinic", 4242, "https://redcap.example.org/api/", ["ors", "srs"])]
    queue = Recorder()
    server = DetServer(served, queue, port=0, path="/det", request_timeout=1.0)  # type: ignore[arg-type]
    server.start()
    yield server, queue
    server.stop()


@pytest.mark.parametrize("case", HTTP_CASES, ids=[c.id for c in HTTP_CASES])
def test_http(case: HttpCase, receiver: tuple[DetServer, Recorder]) -> None:
    server, queue = receiver
    host, port = server.address
    queue.calls.clear()
    assert raw_request(host, port, case.request) == case.status
    assert queue.calls == ([("clinic", "1003")] if case.queued else [])
    queue.calls.clear()
    assert raw_request(host, port, post(NOTICE)) == 200  # the next notice is served
    assert queue.calls == [("clinic", "1003")]


# --- the corpus itself ------------------------------------------------------------------------


def test_the_corpus_has_over_100_kinds_and_the_docs_table_matches_it() -> None:
    assert count() >= 100
    ids = [
        c.id
        for group in (ROW_CASES, FILE_CASES, CONFIG_CASES, STORE_CASES, HTTP_CASES)
        for c in group
    ]
    assert len(ids) == len(set(ids))
    docs = (ROOT / "docs" / "hardening.md").read_text(encoding="utf-8")
    start, end = "<!-- corpus:start -->\n", "\n<!-- corpus:end -->"
    assert start in docs and end in docs
    held = docs.split(start, 1)[1].split(end, 1)[0]
    assert held == table(), "regenerate it: python tests/bad_input_corpus.py"
