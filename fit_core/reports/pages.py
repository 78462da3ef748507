"""A client's report page as HTML for adapters that hand files to people (a practice outbox).

The same page as ``fit report client`` (same scoring, stored flags, trajectory model, copyright
lines), self-contained, for one client episode. Offered to adapters through
:attr:`fit_core.adapter.SourceContext.client_page`; it is None when the ``reports`` extra is
not installed, so an adapter simply leaves the page out then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..measures import Measure
from ..scoring import TrajectoryModel
from ..settings import Settings
from ..store import Store

__all__ = ["PageRenderer"]


class PageRenderer:
    """Renders client pages from one store (create it with :meth:`create`)."""

    def __init__(
        self,
        store: Store,
        measures: Mapping[str, Measure],
        settings: Settings,
        model: TrajectoryModel | None,
        rule_titles: Mapping[str, str],
        generated: dt.date,
    ) -> None:
        from .charts import FigureCache

        self.store = store
        self.measures = measures
        self.settings = settings
        self.model = model
        self.rule_titles = rule_titles
        self.generated = generated
        self._cache = FigureCache()

    @classmethod
    def create(cls, *args: Any, **kwargs: Any) -> PageRenderer | None:
        """A renderer, or None when matplotlib or jinja2 is missing."""
        from .deps import require_reports

        try:
            require_reports()
        except ConfigError:
            return None
        return cls(*args, **kwargs)

    def __call__(self, namespace: str, client_id: str, episode_id: str | None = None) -> str | None:
        """The HTML page of the client's episode ``episode_id`` (default: the latest), or None
        when the store holds no ORS/SRS for the client."""
        from .html import render_client
        from .source import ClientNotFound, ClientReportSource

        source = ClientReportSource(
            store=self.store,
            measures=self.measures,
            settings=self.settings,
            model=self.model,
            namespaces=[namespace],
            rule_titles=self.rule_titles,
        )
        try:
            pages = source.pages(client_id)
        except ClientNotFound:
            return None
        chosen = [p for p in pages if p.episode_id == episode_id] or pages[-1:]
        if not chosen:
            return None
        return render_client(
            chosen[0], generated=self.generated, rule_titles=self.rule_titles, cache=self._cache
        )
