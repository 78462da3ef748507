"""Hostile HTTP clients for `fit serve`: slow-header floods, lying Content-Length, huge bodies.

Used by tests/test_serve_abuse.py (behaviour) and benchmarks/bench_serve.py (figures). Every
client talks raw HTTP/1.1 over loopback sockets, so nothing in between repairs the request.
"""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode


def rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def peak_rss_kib(pid: int) -> int:
    """The highest resident memory the process has had (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


@contextlib.contextmanager
def slow_connections(
    host: str, port: int, n: int, path: str = "/"
) -> Iterator[list[socket.socket]]:
    """Open ``n`` connections that each send half a request line and headers, then stall.

    Yields the sockets (some may have been dropped by the server already); closes them all.
    """
    socks: list[socket.socket] = []
    try:
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(5)
            try:
                s.connect((host, port))
                s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Slow-{i}: ".encode())
            except OSError:
                s.close()  # the server dropped it at once: fine, it is a flood
                continue
            socks.append(s)
        yield socks
    finally:
        for s in socks:
            s.close()


def trickle(socks: list[socket.socket], byte: bytes = b"a") -> int:
    """Send one more header byte on every still-open slow connection; returns how many took it."""
    alive = 0
    for s in socks:
        try:
            s.send(byte)
            alive += 1
        except OSError:
            pass
    return alive


def raw_request(host: str, port: int, head: bytes, body: bytes = b"", timeout: float = 10.0) -> int:
    """Send ``head`` (+ ``body``, as far as the server reads it) and return the status code."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(head)
        with contextlib.suppress(OSError):  # the server may answer and close before the body
            view = memoryview(body)
            for i in range(0, len(view), 65536):
                s.sendall(view[i : i + 65536])
        data = b""
        with contextlib.suppress(OSError):
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    if not data.startswith(b"HTTP/1."):
        return 0  # closed without an answer
    return int(data.split(b" ", 2)[1])


def negative_length(host: str, port: int, path: str, body_mb: int = 8) -> int:
    """A POST announcing ``Content-Length: -1`` and then sending ``body_mb`` MB."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: -1\r\n\r\n"
    ).encode()
    return raw_request(host, port, head, b"x" * (body_mb << 20))


def huge_length(host: str, port: int, path: str, announced: int = 400 << 20) -> int:
    """A POST announcing a 400 MB body, then sending 1 MB of it."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {announced}\r\n\r\n"
    ).encode()
    return raw_request(host, port, head, b"x" * (1 << 20))


def post_notice(url: str, notice: dict[str, str], timeout: float) -> tuple[int, float]:
    """POST a DET notice; (status, seconds until the answer). 0 when nothing answered."""
    body = urlencode(notice).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), time.monotonic() - start
    except HTTPError as exc:
        return exc.code, time.monotonic() - start
    except (URLError, OSError):
        return 0, time.monotonic() - start
