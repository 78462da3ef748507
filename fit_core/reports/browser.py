"""Headless Chromium: HTML reports to PNG (screenshot) or PDF (print), and DOM dumps for tests.

Chromium is found as ``--chromium PATH``, else ``$FIT_CHROMIUM``, else ``chromium``,
``chromium-browser``, ``google-chrome`` or ``google-chrome-stable`` on ``PATH``; without one the
error names how to install it (exit 3). Each run gets a fresh throw-away profile, and host
resolution is mapped to nothing, so a report cannot reach the network even by mistake (they are
self-contained anyway). Files are produced in a private temporary folder; the caller copies them
to their destination with mode 0600.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError

__all__ = ["CANDIDATES", "ENV_VAR", "dump_dom", "find_chromium", "print_pdf", "screenshot"]

log = logging.getLogger(__name__)

ENV_VAR = "FIT_CHROMIUM"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT = 90.0
FULL_PAGE_HEIGHT = 4000  # first try; doubled while the page reaches the bottom edge
#: the reports end with at least this much blank space (CSS px: main's bottom padding); less
#: blank than this at the bottom of a screenshot means the page goes on below it
BOTTOM_BLANK = 20


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium executable to use, or :class:`ConfigError` saying how to get one."""
    wanted = explicit or os.environ.get(ENV_VAR)
    if wanted:
        found = shutil.which(wanted)
        if found is None:
            source = "--chromium" if explicit else f"${ENV_VAR}"
            raise ConfigError(f"{source} names {wanted!r}, which is not an executable")
        return found
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError(
        "PNG and PDF reports need headless Chromium, and none was found "
        f"(looked for {', '.join(CANDIDATES)} on PATH)",
        hint=f"install it (Debian/Ubuntu: apt-get install chromium), or set {ENV_VAR} to the "
        "browser's path; HTML and SVG reports need no browser",
    )


def _args(exe: str, profile: Path) -> list[str]:
    return [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--hide-scrollbars",
        "--mute-audio",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
    ]


def _run(exe: str | None, extra: Sequence[str], url_path: Path) -> subprocess.CompletedProcess[str]:
    browser = exe or find_chromium()
    with tempfile.TemporaryDirectory(prefix="fit-chromium-") as profile:
        cmd = [*_args(browser, Path(profile)), *extra, url_path.resolve().as_uri()]
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                cwd=profile,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise ConfigError(f"Chromium did not finish within {TIMEOUT:.0f} s") from None
        except OSError as exc:
            raise ConfigError(f"cannot start Chromium ({browser}): {exc.strerror}") from None
    if proc.returncode != 0:
        log.debug("chromium stderr: %s", proc.stderr[-2000:])
    return proc


def _check(path: Path, proc: subprocess.CompletedProcess[str], what: str) -> None:
    if not path.exists() or path.stat().st_size == 0:
        log.debug("chromium stderr: %s", proc.stderr[-2000:])
        raise ConfigError(
            f"Chromium did not write the {what} (exit {proc.returncode})",
            hint="run with -vv to see Chromium's messages",
        )


def screenshot(
    html: Path,
    out: Path,
    *,
    width: int,
    height: int | None = None,
    scale: float = 1.0,
    exe: str | None = None,
) -> Path:
    """A PNG of ``html`` at a ``width`` × ``height`` CSS-pixel viewport.

    ``height=None`` captures the whole page: a tall viewport, then the blank space below the
    content trimmed off (retried taller while the content reaches the bottom edge).
    """
    out = out.resolve()  # Chromium runs in its profile folder
    tall = height is None
    h = FULL_PAGE_HEIGHT if height is None else height
    while True:
        args = [
            f"--window-size={width},{h}",
            f"--force-device-scale-factor={scale:g}",
            f"--screenshot={out}",
            "--default-background-color=ffffffff",
        ]
        out.unlink(missing_ok=True)
        proc = _run(exe, args, html)
        _check(out, proc, "screenshot")
        if not tall:
            return out
        blank = int(BOTTOM_BLANK * scale)
        if trim_bottom(out, margin=int(24 * scale), min_blank=blank) or h >= 4 * FULL_PAGE_HEIGHT:
            return out
        h *= 2


def trim_bottom(png: Path, *, margin: int = 24, min_blank: int = 2) -> bool:
    """Cut the white rows below the content, keeping ``margin`` of them.

    False (nothing cut) when fewer than ``min_blank`` white rows end the image: the content
    probably goes on below the edge.
    """
    from PIL import Image, ImageChops

    with Image.open(png) as im:
        rgb = im.convert("RGB")
    bg = Image.new("RGB", rgb.size, (255, 255, 255))
    box = ImageChops.difference(rgb, bg).getbbox()
    if box is None:
        return True
    bottom = box[3]
    if rgb.height - bottom < min_blank:
        return False
    rgb.crop((0, 0, rgb.width, min(rgb.height, bottom + margin))).save(png, optimize=True)
    return True


def print_pdf(html: Path, out: Path, *, exe: str | None = None) -> Path:
    """A PDF of ``html`` as printed (the page's print styles and ``@page`` rules apply)."""
    out = out.resolve()  # Chromium runs in its profile folder
    out.unlink(missing_ok=True)
    args = [f"--print-to-pdf={out}", "--no-pdf-header-footer", "--print-to-pdf-no-header"]
    proc = _run(exe, args, html)
    _check(out, proc, "PDF")
    return out


def dump_dom(html: Path, *, width: int = 1280, exe: str | None = None) -> str:
    """The DOM of ``html`` after Chromium has parsed and laid it out, as HTML text."""
    proc = _run(exe, [f"--window-size={width},900", "--dump-dom"], html)
    if not proc.stdout.strip():
        raise ConfigError(f"Chromium dumped no DOM (exit {proc.returncode})")
    return proc.stdout
