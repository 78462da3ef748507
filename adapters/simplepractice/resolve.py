"""Which ORS/SRS client a SimplePractice row belongs to: explicit links only, never a guess.

A row refers to its client by up to three things (:class:`ClientRef`): the ORS/SRS client id
itself (the ``link_column``, when the export has one), SimplePractice's own client id, and the
keyed hash of the client's name. :class:`Resolver` looks them up in that order in the link
book. A name shared by two SimplePractice clients (two client ids, or two dates of birth, in
the client lists) is *ambiguous*: name links are not used for it; such clients must be linked by
their SimplePractice id, or the export must carry a client id column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .links import Link, LinkBook
from .names import SHORT


@dataclass(frozen=True, slots=True)
class ClientRef:
    """How one row names its client (no name: only its keyed hash)."""

    name_hash: str | None = None
    number: str | None = None  # SimplePractice's client id
    direct: str | None = None  # the ORS/SRS client id from the link_column

    @property
    def ident(self) -> str:
        """A stable identity for source keys and for joining reports (prefers the name hash,
        which every report has)."""
        if self.name_hash:
            return f"n:{self.name_hash}"
        if self.number:
            return f"id:{self.number}"
        return f"x:{self.direct}"

    @property
    def shown(self) -> str:
        """What users see: ``n:<12 hex>``, ``id:<number>`` or ``client id <x>``."""
        if self.name_hash:
            return f"n:{self.name_hash[:SHORT]}"
        if self.number:
            return f"id:{self.number}"
        return f"client id {self.direct}"


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome for one row: a client id, ignored, or a problem (``unlinked``/``ambiguous``)."""

    client_id: str | None = None
    ignored: bool = False
    problem: str | None = None
    shared: int = 0  # for "ambiguous": how many SimplePractice clients share the name

    def reason(self, source: str) -> str:
        """The RecordError reason (no name, ever)."""
        see = f"see `fit clients list --unlinked --source {source}`"
        if self.problem == "ambiguous":
            return (
                f"client not linked: {self.shared} SimplePractice clients share this name, "
                f"link each by SimplePractice id ({see})"
            )
        return f"client not linked ({see})"


@dataclass
class Census:
    """What the client lists say about names: which name hashes several clients share, and
    the SimplePractice id of each unambiguous name."""

    identities: dict[str, set[str]] = field(default_factory=dict)
    number_of: dict[str, str] = field(default_factory=dict)

    def add(self, name_hash: str | None, number: str | None, birth: str | None) -> None:
        if not name_hash:
            return
        ident = f"id:{number}" if number else (f"dob:{birth}" if birth else None)
        if ident is None:
            return
        self.identities.setdefault(name_hash, set()).add(ident)
        if number:
            self.number_of.setdefault(name_hash, number)

    def shared(self, name_hash: str) -> int:
        """How many clients share the name (0 or 1: not ambiguous)."""
        ids = self.identities.get(name_hash)
        if not ids:
            return 0
        numbers = {i for i in ids if i.startswith("id:")}
        # ids and dates of birth of the same people may both appear: count the larger set
        count = max(len(numbers), len(ids - numbers))
        return count if count > 1 else 0

    def number(self, name_hash: str) -> str | None:
        return None if self.shared(name_hash) else self.number_of.get(name_hash)


class Resolver:
    """Resolve :class:`ClientRef` values through the link book and the census."""

    def __init__(self, book: LinkBook, census: Census) -> None:
        self.book = book
        self.census = census
        self._cache: dict[ClientRef, Resolution] = {}

    def resolve(self, ref: ClientRef) -> Resolution:
        """The link of ``ref`` (cached: the book and the census do not change in a pull)."""
        found = self._cache.get(ref)
        if found is None:
            if len(self._cache) >= 20_000:
                self._cache.clear()
            found = self._cache[ref] = self._resolve(ref)
        return found

    def _resolve(self, ref: ClientRef) -> Resolution:
        if ref.direct:
            return Resolution(client_id=ref.direct)
        if ref.number:
            found = _outcome(self.book.get("number", ref.number))
            if found is not None:
                return found
        if ref.name_hash:
            shared = self.census.shared(ref.name_hash)
            if shared:
                return Resolution(problem="ambiguous", shared=shared)
            found = _outcome(self.book.get("name", ref.name_hash))
            if found is not None:
                return found
            number = self.census.number(ref.name_hash)
            if number and number != ref.number:
                found = _outcome(self.book.get("number", number))
                if found is not None:
                    return found
        return Resolution(problem="unlinked")


def _outcome(link: Link | None) -> Resolution | None:
    if link is None:
        return None
    if link.client_id is None:
        return Resolution(ignored=True)
    return Resolution(client_id=link.client_id)
