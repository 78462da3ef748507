"""Killed mid-send, nothing is lost and nothing is sent twice where the protocol allows it.

`fit sync` runs as a real subprocess against a real SMTP server (aiosmtpd) or HTTP server on
loopback; the server holds its answer once the message has arrived (the client is waiting
for the confirmation) and the test kills the process with SIGKILL. The next run sends the
unconfirmed messages again as the same messages — the same Message-ID, the same
Idempotency-Key, the same content — so a receiver that drops repeats by that id sees each
message once; every alert is in exactly one message per route; a third run sends nothing.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fakes import smtp_fake as sf
from fakes import webhook_fake as wf
from fakes.smtp_fake import SmtpFake, free_port
from notify_clinic import write_csv_clinic

smtp_fake = sf.smtp_fake  # the fixtures
webhook_fake = wf.webhook_fake


def write_clinic(tmp: Path, channel: dict[str, Any]) -> Path:
    """Open alerts for two clinicians, one immediate route to each clinician."""
    route = {"channel": "out", "to": "clinician", "when": "immediate"}
    return write_csv_clinic(tmp, {"out": channel}, {"clinicians": route})


def fit(cfg: Path, *args: str, password: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIT_")}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    if password:
        env["FIT_NOTIFY_OUT_PASSWORD"] = password
    return subprocess.Popen(
        [sys.executable, "-m", "fit_cli", "--config", str(cfg), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _out, err = proc.communicate(timeout=120)
    return proc.returncode, err


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def open_alerts(cfg: Path) -> set[int]:
    from fit_core.config import load_config
    from fit_core.store import Store

    store = Store.open(load_config(cfg).store_path)
    try:
        return {a["id"] for a in store.list_flags("open")}
    finally:
        store.close()


def mail_alerts(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\(alert #(\d+)\)", text)}


def test_webhook_killed_while_waiting_for_the_answer(tmp_path: Path, webhook_fake: Any) -> None:
    hook = webhook_fake(hang=True)
    cfg = write_clinic(tmp_path, {"type": "webhook", "url": hook.url, "timeout": 60})
    proc = fit(cfg, "sync")
    hook.wait_hits(1)  # the first message arrived; the client waits for the answer
    kill(proc)
    hook.hang = False
    hook.release.set()
    first = hook.hits[0]

    code, err = finish(fit(cfg, "sync"))
    assert code == 0, err
    code, err = finish(fit(cfg, "sync"))  # nothing left to send
    assert code == 0, err
    keys = [h.key for h in hook.hits]
    assert len(keys) == 3 and len(set(keys)) == 2  # the killed message once more, the other once
    again = [h for h in hook.hits[1:] if h.key == first.key]
    assert len(again) == 1 and again[0].body == first.body  # the same message, byte for byte
    distinct = {h.key: h.json for h in hook.hits}
    told = [i["alert_id"] for payload in distinct.values() for i in payload["new"]]
    assert sorted(told) == sorted(open_alerts(cfg))  # every alert, each in one message
    assert {p["recipient"]["clinician_id"] for p in distinct.values()} == {"T01", "T02"}


def test_mail_killed_after_the_message_reached_the_server(tmp_path: Path, smtp_fake: Any) -> None:
    smtp = smtp_fake(hang=True)
    channel = {
        "type": "email",
        "host": "127.0.0.1",
        "port": smtp.port,
        "username": smtp.user,
        "from": "FIT alerts <fit-alerts@clinic.example>",
        "cafile": str(smtp.cafile),
        "timeout": 60,
    }
    cfg = write_clinic(tmp_path, channel)
    proc = fit(cfg, "sync", password=smtp.password)
    smtp.wait_arrived(1)
    kill(proc)
    smtp.hang = False
    killed = smtp.arrived[0]

    code, err = finish(fit(cfg, "sync", password=smtp.password))
    assert code == 0, err
    code, err = finish(fit(cfg, "notify", "send", password=smtp.password))
    assert code == 0, err
    ids = [m.message_id for m in smtp.accepted]
    assert len(ids) == 2 and killed.message_id in ids  # sent again under the same Message-ID
    resent = next(m for m in smtp.accepted if m.message_id == killed.message_id)
    assert resent.parts() == killed.parts() and resent.rcpt_tos == killed.rcpt_tos
    told = [a for m in smtp.accepted for a in mail_alerts(m.parts()["text/plain"])]
    assert sorted(told) == sorted(open_alerts(cfg))


def test_mail_killed_before_the_server_answered_at_all(tmp_path: Path, smtp_fake: Any) -> None:
    port = free_port()
    accepted = threading.Event()
    silent = socket.socket()
    # its accepted connection may linger in TIME_WAIT once closed: with SO_REUSEADDR on both
    # sides (asyncio sets it for the fake SMTP server below), the port can be listened on again
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    silent.bind(("127.0.0.1", port))
    silent.listen(5)
    held: list[socket.socket] = []

    def mute() -> None:  # accepts the connection and never greets: the client waits
        conn, _ = silent.accept()
        held.append(conn)
        accepted.set()

    threading.Thread(target=mute, daemon=True).start()
    channel = {
        "type": "email",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "fit@clinic.example",
        "timeout": 60,
    }
    cfg = write_clinic(tmp_path, channel)
    proc = fit(cfg, "sync")
    assert accepted.wait(60)
    time.sleep(0.2)
    kill(proc)
    for s in [*held, silent]:
        s.close()
    smtp: SmtpFake = smtp_fake(security="none", user=None, port=port)
    code, err = finish(fit(cfg, "sync"))
    assert code == 0, err
    code, err = finish(fit(cfg, "sync"))
    assert code == 0, err
    assert len(smtp.accepted) == 2 and len(smtp.arrived) == 2  # each message exactly once
    told = [a for m in smtp.accepted for a in mail_alerts(m.parts()["text/plain"])]
    assert sorted(told) == sorted(open_alerts(cfg))


@pytest.mark.parametrize("status", [None, 503])
def test_a_failing_channel_never_changes_the_sync_exit_code(
    tmp_path: Path, webhook_fake: Any, status: int | None
) -> None:
    hook = webhook_fake(status=status)
    cfg = write_clinic(tmp_path, {"type": "webhook", "url": hook.url, "timeout": 5})
    code, err = finish(fit(cfg, "sync"))
    assert code == 0, err
    if status is None:
        assert "warning" not in err and len(hook.accepted) == 2
        return
    assert "notify route clinicians: message to clinician T01 not delivered" in err
    assert "503" in err and "retried at the next run" in err
    proc = fit(cfg, "notify", "status")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "FAILED: message to clinician T01" in out
    proc = fit(cfg, "check")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "notify route clinicians: a message to clinician T01" in out
    hook.status = None
    code, err = finish(fit(cfg, "sync"))
    assert code == 0 and "warning" not in err, err
    assert len(hook.accepted) == 2
    proc = fit(cfg, "notify", "status")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "FAILED" not in out, out
