"""The link book: SimplePractice clients -> client ids of the ORS/SRS namespace.

A CSV file (mode 0600) in the state directory, managed with ``fit clients link|ignore|unlink``::

    # fit-sync simplepractice links; key-check=1a2b3c4d5e6f
    kind,key,client_id,linked_at
    name,<64 hex: HMAC of the normalised name>,C001,2026-03-01
    number,12345,C002,2026-03-01
    name,<64 hex>,,2026-03-02

``kind`` is ``name`` (the key is the keyed hash of the normalised name, never the name) or
``number`` (SimplePractice's own client id). An empty ``client_id`` means *ignored*: a
reviewed client who is not in FIT (their rows are skipped without an error). The key-check line
tells when the ``name_key`` secret changed since the links were made (then every name link
would silently stop matching).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fit_core.errors import ConfigError
from fit_core.safefile import atomic_text

Kind = Literal["name", "number"]
HEADER = ("kind", "key", "client_id", "linked_at")
_CHECK = re.compile(r"key-check=([0-9a-f]{6,64})")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class Link:
    """One reviewed SimplePractice client: linked to ``client_id``, or ignored (None)."""

    kind: Kind
    key: str
    client_id: str | None
    linked_at: str

    @property
    def ref(self) -> str:
        """How users see the SimplePractice side: ``n:<12 hex>`` or ``id:<number>``."""
        return f"n:{self.key[:12]}" if self.kind == "name" else f"id:{self.key}"


class LinkBook:
    """The links of one source, loaded from and saved to ``path``."""

    def __init__(self, path: Path, key_check: str | None = None) -> None:
        self.path = path
        self.key_check = key_check
        self._links: dict[tuple[str, str], Link] = {}

    # --- reading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> LinkBook:
        """The book at ``path`` (empty when the file does not exist); ConfigError if garbled."""
        book = cls(path)
        try:
            content = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return book
        except OSError as exc:
            raise ConfigError(
                f"cannot read the client links {path}: {type(exc).__name__}",
                hint="let the user running fit read it (it should be mode 0600)",
            ) from None
        book._parse(content)
        return book

    def _parse(self, content: str) -> None:
        lines = content.splitlines()
        body: list[str] = []
        for line in lines:
            if line.startswith("#"):
                m = _CHECK.search(line)
                if m:
                    self.key_check = m.group(1)
                continue
            body.append(line)
        reader = csv.reader(body)
        header = next(reader, None)
        if header is None:
            return
        if tuple(h.strip() for h in header) != HEADER:
            raise ConfigError(
                f"the client links {self.path} do not start with the header {','.join(HEADER)}",
                hint="restore it from a backup, or move it away and link the clients again",
            )
        for number, row in enumerate(reader, start=2):
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(HEADER) or row[0] not in ("name", "number") or not row[1]:
                raise ConfigError(
                    f"the client links {self.path} have a bad row {number}",
                    hint="fix or delete that row (kind must be name or number, key non-empty)",
                )
            if row[0] == "name" and not _HEX64.match(row[1]):
                raise ConfigError(
                    f"the client links {self.path}: row {number} is not a name hash",
                    hint="name rows hold a 64-digit hash, never a name: delete that row",
                )
            kind: Kind = "name" if row[0] == "name" else "number"
            self._links[(kind, row[1])] = Link(kind, row[1], row[2].strip() or None, row[3])

    def verify_key(self, check_value: str) -> None:
        """ConfigError when the links were made with another ``name_key``."""
        has_names = any(k == "name" for k, _ in self._links)
        if has_names and self.key_check and self.key_check != check_value:
            raise ConfigError(
                f"the client links {self.path} were made with another name_key, so no name "
                "would match",
                hint="restore the previous name_key (fit keys set SOURCE name_key), or move "
                "the links file away and link the clients again",
            )

    # --- queries ---------------------------------------------------------------------------

    def get(self, kind: Kind, key: str) -> Link | None:
        return self._links.get((kind, key))

    def __iter__(self) -> Iterator[Link]:
        return iter(sorted(self._links.values(), key=lambda x: (x.kind, x.key)))

    def __len__(self) -> int:
        return len(self._links)

    def name_keys(self) -> list[str]:
        return [k for kind, k in self._links if kind == "name"]

    # --- changes ---------------------------------------------------------------------------

    def set(self, kind: Kind, key: str, client_id: str | None, today: dt.date) -> Link | None:
        """Link (or ignore, with None) a client; returns the link it replaced."""
        old = self._links.get((kind, key))
        self._links[(kind, key)] = Link(kind, key, client_id, today.isoformat())
        return old

    def remove(self, kind: Kind, key: str) -> Link | None:
        return self._links.pop((kind, key), None)

    def render(self) -> str:
        out = io.StringIO()
        if self.key_check:
            out.write(f"# fit-sync simplepractice links; key-check={self.key_check}\n")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        for link in self:
            writer.writerow((link.kind, link.key, link.client_id or "", link.linked_at))
        return out.getvalue()

    def fingerprint(self) -> str:
        """A hash of the links (changes whenever a link is added, changed or removed)."""
        return hashlib.sha256(self.render().encode()).hexdigest()[:16]

    def save(self) -> None:
        """Write atomically (temp file, fsync, rename), mode 0600, folder created 0700."""
        write_private(self.path, self.render())


def write_private(path: Path, content: str) -> None:
    """Replace ``path`` with ``content`` atomically (a fresh temp file no link can redirect,
    fsync, rename); the file is mode 0600, its folder created 0700."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with atomic_text(path, encoding="utf-8", newline="") as f:
        f.write(content)
