"""The secret search: no token appears on any output channel, in the store, its WAL or the outbox.

Three REDCap sources sit behind a server that echoes each request body (token included) into
its error answer, upper-cased, lower-cased or as sent, with HTTP 400, 401 and 500; a fourth
source syncs normally against the fake REDCap, and a CSV source writes its scores file. Every
`fit` command a cron job or an operator would run is run as a separate process at every
verbosity, and every byte of its stdout and stderr, the store, its write-ahead log (held open
so it is not folded away), the scores file and the state folder are searched for each token
in any letter case and URL-encoded.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fakes import redcap_fake as rf
from fakes.redcap_fake import TOKEN, RedcapFake, clinic_project, source_options

from fit_core.store import Store

redcap_fake = rf.redcap_fake  # the fixture
FIT = [sys.executable, "-m", "fit_cli"]
ECHO_TOKENS = {
    "echo_bad_request": "A1B2C3D4E5F60718293A4B5C6D7E8F90",
    "echo_refused": "0F1E2D3C4B5A69788796A5B4C3D2E1F0",
    "echo_server_error": "ABCDEF0123456789ABCDEF0123456789",
}
ROUTES = {  # path -> (status, how the body is echoed)
    "/bad/api/": (400, str.lower),
    "/refused/api/": (401, str.upper),
    "/broken/api/": (500, lambda s: s),
}


class Echo(http.server.BaseHTTPRequestHandler):
    """Answers every POST with an error that repeats the request body."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        status, how = ROUTES.get(self.path, (400, str))
        text = json.dumps({"error": f"Invalid request. You sent: {how(body)} (TOKEN={how(body)})"})
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def write_config(folder: Path, echo: str, fake: RedcapFake) -> Path:
    instruments = source_options(fake)["instruments"]
    lines = [f'[store]\npath = "{folder / "fit.sqlite3"}"', '[sync]\ntimezone = "UTC"']

    def redcap(name: str, url: str, extra: str = "") -> None:
        lines.extend([f"[sources.{name}]", 'adapter = "redcap"', f'url = "{url}"', extra])
        for form, spec in instruments.items():
            lines.append(f"[sources.{name}.instruments.{form}]")
            lines.extend(f"{k} = {json.dumps(v)}" for k, v in spec.items())

    redcap("echo_bad_request", f"{echo}/bad/api/")
    redcap("echo_refused", f"{echo}/refused/api/")
    redcap("echo_server_error", f"{echo}/broken/api/")
    redcap("good", fake.url, 'throttle = 200\nserver_timezone = "America/Chicago"')
    (folder / "in").mkdir()
    (folder / "in" / "a.csv").write_text(
        "client_id,administered_at,measure,total\nC1,2025-03-03,ORS,20\n", encoding="utf-8"
    )
    lines += [
        "[sources.files]",
        'adapter = "csv"',
        f'path = "{folder / "in"}"',
        f'scores_path = "{folder / "scores.csv"}"',
    ]
    path = folder / "fit.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def forms(token: str) -> set[str]:
    """Every spelling of a token a leak could take."""
    out = set()
    for t in (token, token.lower(), token.upper()):
        out |= {t, quote(t, safe=""), json.dumps(t)[1:-1]}
    return out


def test_no_token_on_any_channel_in_the_store_its_wal_or_the_outbox(
    tmp_path: Path, echo_server: str, redcap_fake: Callable[..., RedcapFake]
) -> None:
    fake = redcap_fake(clinic_project(6, seed=3))
    cfg = write_config(tmp_path, echo_server, fake)
    tokens = {**ECHO_TOKENS, "good": TOKEN}
    env = {**os.environ, "FIT_CONFIG": str(cfg)}
    env |= {f"FIT_{name.upper()}_TOKEN": token for name, token in tokens.items()}
    # the WAL is folded into the store when its last connection closes: hold one open
    held = Store.open(tmp_path / "fit.sqlite3")
    channels: dict[str, str] = {}
    try:
        for args in (
            ["sync"],
            ["-v", "sync"],
            ["-vv", "sync"],
            ["sync", "--json"],
            ["-vv", "sync", "--json", "--dry-run"],
            ["check"],
            ["-vv", "check"],
            ["quarantine", "--json"],
            ["alerts", "--state", "all", "--json"],
            ["keys", "list"],
            ["-vv", "redcap", "inspect", "echo_bad_request"],
            ["redcap", "inspect", "echo_refused"],
        ):
            res = subprocess.run(
                [*FIT, *args], capture_output=True, text=True, env=env, timeout=120, check=False
            )
            assert res.returncode != 6, res.stderr
            channels[f"fit {' '.join(args)} (stdout)"] = res.stdout
            channels[f"fit {' '.join(args)} (stderr)"] = res.stderr
        wal = Path(f"{tmp_path / 'fit.sqlite3'}-wal")
        assert wal.exists() and wal.stat().st_size > 0
        files = {
            "store": (tmp_path / "fit.sqlite3").read_bytes(),
            "WAL": wal.read_bytes(),
            "scores file": (tmp_path / "scores.csv").read_bytes(),
        }
        outbox = held.conn.execute("SELECT payload, extra, line FROM outbox").fetchall()
        assert outbox  # the good sources wrote rows to push
        channels["outbox table"] = json.dumps(outbox)
        for path in tmp_path.rglob("*"):
            if path.is_file() and path.suffix not in (".toml",) and path.name != "a.csv":
                files.setdefault(str(path.relative_to(tmp_path)), path.read_bytes())
    finally:
        held.close()
    # the echoed errors did reach the user, redacted: the search looks where the leak was
    assert "You sent" in channels["fit sync (stderr)"]
    assert "token=***" in channels["fit check (stdout)"].lower()
    for name, token in tokens.items():
        for form in forms(token):
            for channel, text in channels.items():
                assert form not in text, f"{name}'s token in {channel}"
            raw = form.encode()
            for where, data in files.items():
                assert raw not in data, f"{name}'s token in {where}"
