"""Reading what a client report needs from the store: one client's administrations and flags.

The store is read, never written (the pseudonym key file beside it is the one exception, created
on first use). Scoring is the same as ``fit stats`` and ``fit trajectories``: a
:class:`fit_core.scoring.Scorer` with the store's active trajectory model, no rules, and the
client's practice data (an age from the date of birth gives the adolescent cutoff, as in the
alerts); the flags shown are the stored current alerts (what ``fit alerts`` lists), so
acknowledgements show too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..as_of import context_until, until
from ..errors import ConfigError
from ..identity import normalise_client_id
from ..measures import Measure
from ..models import Administration
from ..scoring import Rule, Scorer, TrajectoryModel
from ..settings import Settings
from ..store import Store
from .client_data import ClientPage, FlagRecord, client_pages, flags_from_scored
from .pseudonym import load_or_create_key, pseudonym

__all__ = ["ClientNotFound", "ClientReportSource", "find_client", "stored_flags"]


class ClientNotFound(ConfigError):
    """No administrations for that client id in the namespaces searched."""


def find_client(
    store: Store, client_id: str, namespaces: Sequence[str]
) -> tuple[str, list[Administration]]:
    """(namespace, administrations) of the client; an error when absent or ambiguous.

    The id is looked up as typed, then as the sync stores codes (trimmed, case-folded: see
    :mod:`fit_core.identity`), so ``g0001`` finds ``G0001``."""
    found: dict[str, list[Administration]] = {}
    for candidate in dict.fromkeys(
        [client_id, normalise_client_id(client_id, keep_case=True), normalise_client_id(client_id)]
    ):
        found = {
            ns: admins
            for (ns, _cid), admins in store.client_administrations(
                [(ns, candidate) for ns in namespaces]
            ).items()
            if admins
        }
        if found:
            break
    if not found:
        where = ", ".join(namespaces) or "none configured"
        raise ClientNotFound(
            f"no administrations for client {client_id!r} in the store (namespaces: {where})",
            hint="check the id, or give --namespace when the source declares another one",
        )
    if len(found) > 1:
        raise ConfigError(
            f"client id {client_id!r} exists in several namespaces ({', '.join(sorted(found))}): "
            "they are different clients",
            hint="say which one with --namespace",
        )
    ns, admins = next(iter(found.items()))
    return ns, admins


def stored_flags(store: Store, namespace: str, client_id: str) -> list[FlagRecord]:
    """The client's current alerts (open and acknowledged: what ``fit alerts`` lists), each
    with the session where it began."""
    return [
        FlagRecord(
            f["source"],
            f["source_key"],
            f["rule_id"],
            f["severity"],
            f["message"],
            f["state"],
            f["first_session"],
        )
        for f in store.list_flags("current", client=client_id, namespace=namespace)
    ]


@dataclass
class ClientReportSource:
    """Scores clients of one store for reports: measures, settings, model and rule titles."""

    store: Store
    measures: Mapping[str, Measure]
    settings: Settings
    model: TrajectoryModel | None
    namespaces: Sequence[str]
    rule_titles: Mapping[str, str]
    store_path: str = ":memory:"
    #: a past day to report as of (``--as-of``): later data are left out and the flags are
    #: those the ``rules`` raised on the data up to that day (not the stored alerts of now)
    as_of: dt.date | None = None
    rules: Sequence[Rule] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        rules = self.rules if self.as_of is not None else ()
        self._scorer = Scorer(self.measures, self.settings, rules, self.model)
        self._key: bytes | None = None

    def label(self, namespace: str, client_id: str, pseudonymous: bool) -> str:
        """The id shown for the client: its own, or its keyed pseudonym."""
        if not pseudonymous:
            return client_id
        if self._key is None:
            self._key = load_or_create_key(self.store_path)
        return pseudonym(self._key, namespace, client_id)

    def pages(
        self,
        client_id: str,
        *,
        include_srs: bool = True,
        pseudonymous: bool = False,
        episode: str | None = None,
        srs_items: bool = False,
    ) -> list[ClientPage]:
        """The report pages of one client (one per episode, or only ``episode``)."""
        namespace, admins = find_client(self.store, client_id, self.namespaces)
        client_id = admins[0].client_id  # as stored (the lookup may have normalised it)
        # the practice data (date of birth → age band and cutoff, clinician) as scoring uses it
        context = self.store.client_contexts([(namespace, client_id)]).get((namespace, client_id))
        if self.as_of is not None:
            admins = until(admins, self.as_of)
            context = context_until(context, self.as_of)
            if not admins:
                raise ClientNotFound(
                    f"client {client_id!r} has no administrations on or before "
                    f"{self.as_of.isoformat()}",
                    hint="choose a later --as-of date",
                )
        scored = self._scorer.score(admins, context).scored
        flags = (
            flags_from_scored(scored, self.measures)
            if self.as_of is not None
            else stored_flags(self.store, namespace, client_id)
        )
        pages = client_pages(
            scored,
            self.measures,
            self.settings,
            flags=flags,
            model=self.model,
            include_srs=include_srs,
            client_label=self.label(namespace, client_id, pseudonymous),
            pseudonymous=pseudonymous,
            episode=episode,
            srs_items=srs_items,
        )
        if episode is not None and not pages:
            known = _episode_ids(scored)
            raise ConfigError(
                f"client {client_id!r} has no episode {episode!r}",
                hint=f"episodes: {', '.join(known)}" if known else None,
            )
        return pages


def _episode_ids(scored: Iterable[Any]) -> list[str]:
    return sorted({s.score.episode_id for s in scored})
