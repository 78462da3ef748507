"""Client names -> keyed hashes. A name is PHI: it is normalised and hashed at once, never kept.

The hash is HMAC-SHA256 with the source's secret ``name_key`` (``fit keys set SOURCE
name_key``), so a stored hash cannot be reversed by hashing a list of common names without the
key. The same key also derives appointment source keys, for the same reason.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

from fit_core.errors import ConfigError

MIN_KEY_LENGTH = 16
SHORT = 12  # hex digits shown to users (``n:1a2b3c4d5e6f``)
_CACHE = 20_000  # names kept hashed in memory during one pull (cleared when full)


def normalise_name(name: str) -> str:
    """Accents stripped, case-folded, ``Last, First`` turned around, ``.``/``,`` dropped,
    whitespace collapsed.

    ``" José  EXAMPLE"``, ``"Example, Jose"`` -> ``"jose example"``; ``"Alex Example, Jr."``
    -> ``"alex example jr"`` (a suffix after the comma is not a first name).
    """
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    if bare.count(",") == 1:
        left, right = (part.strip() for part in bare.split(","))
        if right and left and right.strip(". ") not in _SUFFIXES:
            bare = f"{right} {left}"
    return " ".join(bare.replace(",", " ").replace(".", " ").split())


_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "v", "phd", "md", "esq"})


class NameHasher:
    """Keyed hashes of normalised names and of appointment identities."""

    def __init__(self, key: str, source: str) -> None:
        if len(key) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"the name_key of source {source!r} is shorter than {MIN_KEY_LENGTH} characters",
                hint=f"generate one: `openssl rand -hex 32 | fit keys set {source} name_key`",
            )
        self._key = key.encode("utf-8")
        self._names: dict[str, str | None] = {}  # raw cell -> hash (a client repeats per row)

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def name(self, full_name: str) -> str | None:
        """The hash of a client's normalised name (None for an empty name)."""
        found = self._names.get(full_name, "")
        if found != "":
            return found
        normal = normalise_name(full_name)
        value = self._mac(f"name|{normal}") if normal else None
        if len(self._names) >= _CACHE:
            self._names.clear()
        self._names[full_name] = value
        return value

    def derive(self, *parts: str) -> str:
        """A keyed hash of ``parts`` (appointment and client source keys), 32 hex digits."""
        return self._mac("|".join(("key", *parts)))[:32]

    def check_value(self) -> str:
        """A short value that tells whether two hashers use the same key (never the key)."""
        return self._mac("key-check")[:SHORT]
