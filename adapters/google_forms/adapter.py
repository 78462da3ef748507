"""The google_forms adapter: Google Forms responses in, scores and flags to a Google Sheets tab."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import ClassVar, Literal

import requests

from fit_core.adapter import Adapter, SourceContext
from fit_core.errors import ConfigError
from fit_core.models import Deleted, OutboxItem, Record, RecordError
from fit_core.state import MemoryState

from .auth import Identity, authorized_session, load_identity
from .bookmark import FormMark, FormTracker, dump_bookmark, load_bookmark
from .client import GoogleApi, Timing
from .formdef import FormInfo, parse_form
from .history import FormHistory, Histories, Review, describe_changes, review
from .mapping import ResolvedForm, resolve
from .options import FormMap, GoogleFormsSchema, GoogleOptions
from .records import response_records, source_key
from .sheet import ScoresSheet
from .timestamps import format_filter_time, parse_rfc3339

log = logging.getLogger(__name__)

#: the source state key holding when every response was last listed (the deletion check)
CHECKED = "deletions_checked"


def _with_cleared(
    items: Iterator[Record | RecordError], rid: str, form: ResolvedForm
) -> Iterator[Record | RecordError | Deleted]:
    """A response's records, then Deleted for each measure of a several-measure form that it
    left wholly empty (an edit may clear one)."""
    seen: set[str] = set()
    for item in items:
        seen.add(item.source_key)
        yield item
    if rid and form.several_measures:
        for m in form.measures:
            key = source_key(rid, m.measure, form)
            if key not in seen:
                yield Deleted(key, f"form {form.form_id} response {rid}")


class GoogleFormsAdapter(Adapter):
    """Read ORS/SRS responses from Google Forms; write scores and flags to a Scores tab.

    See docs/google_forms.md for the options, the setup and the details. In short:

    - ``check()`` reads each form (``forms.get``) and compares every mapped question (id,
      type, scale low/high) and the config's mapping with the mapping in force (see
      :mod:`.history`): a changed scale or a changed config stops the source (ConfigError, exit
      3, nothing written; ``fit google remap`` applies a change), a deleted question stops its
      form only (:meth:`problems`, exit 1). Then it reads the Scores tab's key column.
    - ``pull(bookmark)`` lists each form's responses with ``filter=timestamp >= <since>``, page
      by page, and yields one record per mapped measure of each response not already read
      (see :mod:`.bookmark`), read with the mapping in force when it was last submitted.
      Source keys are response ids (``<responseId>:<MEASURE>`` when a form holds several
      measures), so an edited response replaces its administration (its answers, never its
      date: ``administered_at`` is ``createTime`` by default).
    - Deletions: a response deleted at Google is simply no longer listed, so every
      ``deletion_check_hours`` (24 by default; 0: every sync) the pull lists *all* responses of
      every form (the incremental part is read from the same listing) and yields
      :class:`~fit_core.models.Deleted` for each stored key whose response was not listed. Not
      while a form is stopped (its responses could not be listed). A response edited so that a
      measure of a several-measure form is left wholly empty yields ``Deleted`` for that
      measure's key.
    - ``push(items)`` upserts rows in the Scores tab keyed on the response id (see :mod:`.sheet`);
      ``remove(keys)`` deletes the rows of those keys.

    Logs name form, spreadsheet, response and question ids, never answers or names.
    """

    name: ClassVar[str] = "google_forms"
    description: ClassVar[str] = "Google Forms responses in; scores and flags to a Google Sheet"
    options_schema: ClassVar[type[GoogleFormsSchema]] = GoogleFormsSchema
    push_mode: ClassVar[Literal["batch", "snapshot"]] = "batch"
    push_batch_size: ClassVar[int] = 1000
    secret_keys: ClassVar[tuple[str, ...]] = ("service_account", "oauth")
    #: default clock/sleep/random for retries and throttles (tests set a fake one)
    timing: ClassVar[Timing | None] = None

    def __init__(
        self,
        context: SourceContext,
        *,
        session: requests.Session | None = None,
        identity: Identity | None = None,
        timing: Timing | None = None,
    ) -> None:
        super().__init__(context)
        self.google = GoogleOptions.load(context.options, context.name)
        self._session = session
        self._identity = identity
        self._timing = timing or type(self).timing or Timing()
        self._api: GoogleApi | None = None
        self._forms: dict[str, ResolvedForm] = {}
        self._sheet: ScoresSheet | None = None
        self._bookmark: str | None = None
        self.histories = Histories(context.state or MemoryState(), context.name)
        self._plans: dict[str, FormHistory] | None = None  # forms to read this run
        self._problems: list[str] = []
        self._listed_all = False  # this pull listed every response (deletions were checked)

    # --- connections ---------------------------------------------------------------------------

    @property
    def api(self) -> GoogleApi:
        """The API client, built on first use (credentials are read only then)."""
        if self._api is None:
            conn = self.google.connection
            identity = self._identity or load_identity(
                self.context.secret, self.context.name, conn.auth, conn.token_uri
            )
            session = self._session or authorized_session(identity)
            self._session = session
            self._api = GoogleApi(
                session,
                conn,
                source=self.context.name,
                account=identity.account,
                timing=self._timing,
                kind=identity.kind,
            )
        return self._api

    @property
    def sheet(self) -> ScoresSheet:
        if self._sheet is None:
            self._sheet = ScoresSheet(
                self.api, self.google.spreadsheet_id, self.google.scores_tab, self._timing
            )
        return self._sheet

    def form_info(self, form_id: str) -> FormInfo:
        """A form's questions (one ``forms.get``)."""
        return parse_form(form_id, self.api.get_form(form_id))

    def resolved(self, mapping: FormMap) -> ResolvedForm:
        """The config's mapping of a form in questionIds, on the form as it is now."""
        found = self._forms.get(mapping.form_id)
        if found is None:
            found = resolve(mapping, self.form_info(mapping.form_id), self.context.name)
            self._forms[mapping.form_id] = found
        return found

    def _prepare(self) -> dict[str, FormHistory]:
        """Review every form against the mapping in force (once per run; see :mod:`.history`).

        Returns the histories of the forms to read. A form met for the first time gets the
        config's mapping as its first epoch. A changed form or config raises ConfigError (the
        whole source stops before anything is written); a deleted question stops its form only.
        """
        if self._plans is not None:
            return self._plans
        plans: dict[str, FormHistory] = {}
        differing: list[Review] = []
        problems: list[str] = []
        for mapping in self.google.forms:
            info = self.form_info(mapping.form_id)
            history = self.histories.load(mapping.form_id)
            found = review(mapping, info, history, self.context.name)
            if found.differs:
                differing.append(found)
            elif found.stopped:
                problems.append(self._stopped_text(found))
            elif history is None:
                history = found.first_epoch(self.context.run_started.isoformat())
                self.histories.save(history)
                log.info("form %s: mapping put in force", mapping.form_id)
                plans[mapping.form_id] = history
            else:
                plans[mapping.form_id] = history
            if found.current is not None:
                self._forms[mapping.form_id] = found.current
        if differing:
            raise self._differs_error(differing)
        self._problems = problems
        self._plans = plans
        return plans

    def _differs_error(self, reviews: list[Review]) -> ConfigError:
        source = self.context.name
        parts = []
        for r in reviews:
            assert r.history is not None
            since = r.history.latest.accepted_at[:10] or "an earlier sync"
            if r.changed:
                parts.append(
                    f"form {r.form_id} changed since its mapping was put in force ({since}): "
                    f"{describe_changes(r.changed + r.gone)}"
                )
            if r.remapped and not r.changed:
                parts.append(
                    f"the config maps form {r.form_id} differently from the mapping in force "
                    f"since {since}: {describe_changes(r.remapped)}"
                )
        return ConfigError(
            "; ".join(parts) + f". Nothing was read or written for source {source!r}",
            hint=f"`fit google remap {source}` shows what would change and applies it (answers "
            "already read keep the scale they were given on); or undo the change",
        )

    def _stopped_text(self, r: Review) -> str:
        source = self.context.name
        gone = describe_changes(r.gone)
        return (
            f"form {r.form_id} was not synced: {gone} no longer on the form. Restore it, or map "
            f"another question in the config and run `fit google remap {source} --form "
            f"{r.form_id}`; the source's other forms were synced"
        )

    # --- the adapter interface -----------------------------------------------------------------

    def check(self) -> None:
        """Every form readable and as mapped (see :meth:`_prepare`); the spreadsheet readable."""
        self._prepare()
        self.sheet.load()

    def problems(self) -> list[str]:
        """Forms this run did not read (a mapped question was deleted), with what to do."""
        return list(self._problems)

    def pull(self, bookmark: str | None) -> Iterator[Record | RecordError | Deleted]:
        """Responses new or edited since ``bookmark`` (all of them for None), form by form;
        then, when the deletion check is due, Deleted for stored responses no longer listed."""
        self._bookmark = None
        self._listed_all = False
        plans = self._prepare()
        previous = load_bookmark(bookmark)
        present: set[str] | None = set() if self._deletion_check_due(plans) else None
        marks: dict[str, FormMark] = {}
        for mapping in self.google.forms:
            history = plans.get(mapping.form_id)
            mark = previous.get(mapping.form_id)
            if history is None:  # stopped: keep where it was
                if mark is not None:
                    marks[mapping.form_id] = mark
                continue
            stamp = history.fingerprint
            if mark is not None and mark.mapping != stamp:
                log.info(
                    "form %s: the mapping changed; reading all its responses again",
                    mapping.form_id,
                )
                mark = None
            tracker = FormTracker(mark, stamp, self.context.run_started, self.google.overlap)
            yield from self._pull_form(history, tracker, present)
            new_mark = tracker.mark()
            if new_mark is not None:
                marks[mapping.form_id] = new_mark
            if tracker.newest is not None and (
                history.newest_read is None or tracker.newest > history.newest_read
            ):
                history.newest_read = tracker.newest
                self.histories.save(history)
            log.info(
                "form %s: %d responses listed, %d already read",
                mapping.form_id,
                tracker.listed,
                tracker.skipped,
            )
        self._bookmark = dump_bookmark(marks)
        if present is not None:
            yield from self._deletions(present)

    def _deletion_check_due(self, plans: dict[str, FormHistory]) -> bool:
        """List every response this run? Due every ``deletion_check_hours``, and only when
        every form can be read (a stopped form's responses would look deleted)."""
        if self.context.stored_keys is None or len(plans) < len(self.google.forms):
            return False
        state = self.context.state
        last = state.get(CHECKED) if state is not None else None
        if not last:
            return True
        try:
            moment = dt.datetime.fromisoformat(last)
        except ValueError:
            return True
        return self.context.run_started - moment >= self.google.deletion_check

    def _deletions(self, present: set[str]) -> Iterator[Deleted]:
        """Deleted for every stored key whose response none of the forms listed."""
        assert self.context.stored_keys is not None
        gone = 0
        for key in self.context.stored_keys():
            rid = key.split(":", 1)[0]
            if rid not in present:
                gone += 1
                yield Deleted(key, f"response {rid}")
        self._listed_all = True
        log.info(
            "%s: every response listed (%d); %d stored no longer listed",
            self.context.name,
            len(present),
            gone,
        )

    def _pull_form(
        self, history: FormHistory, tracker: FormTracker, present: set[str] | None = None
    ) -> Iterator[Record | RecordError | Deleted]:
        """One form's responses since the tracker's mark; with ``present`` every response is
        listed (their ids noted there) and only those the mark has not covered are read."""
        since = tracker.previous.since if tracker.previous is not None else None
        filter_text = f"timestamp >= {format_filter_time(since)}" if since else None
        if present is not None:
            filter_text = None
        form_id = history.form_id
        for page in self.api.list_responses(form_id, filter_text, self.google.page_size):
            for response in page:
                rid = str(response.get("responseId") or "")
                submitted = response.get("lastSubmittedTime")
                submitted = submitted if isinstance(submitted, str) else None
                moment = parse_rfc3339(submitted)
                if present is not None:
                    if rid:
                        present.add(rid)
                    if since is not None and (moment is None or moment < since):
                        continue  # outside what the incremental listing would hold
                if rid:
                    tracker.saw(rid, submitted)
                if rid and tracker.already_read(rid, submitted):
                    tracker.skipped += 1
                    continue
                # each answer with the mapping (and scale) in force when it was given
                epoch = history.epoch_for(moment)
                yield from _with_cleared(
                    response_records(response, epoch.mapping), rid, epoch.mapping
                )

    def next_bookmark(self) -> str | None:
        """Per form: the time bookmark and the responses read at its edge (None before a pull).

        After a pull that listed every response, the time of this deletion check is kept (in
        the source's state) for the next one."""
        state = self.context.state
        if self._listed_all and state is not None:
            state.set(CHECKED, self.context.run_started.isoformat())
            self._listed_all = False
        return self._bookmark

    def push(self, items: Sequence[OutboxItem]) -> Iterable[str]:
        """Upsert ``items`` as rows of the Scores tab; the keys the sheet confirmed."""
        return self.sheet.push(items)

    def remove(self, keys: Sequence[str]) -> Iterable[str]:
        """Delete the Scores tab's rows of ``keys``; the keys no longer there."""
        return self.sheet.remove(keys)

    def describe_target(self) -> str:
        return f"spreadsheet {self.google.spreadsheet_id}, tab {self.google.scores_tab!r}"

    def close(self) -> None:
        if self._api is not None:
            log.debug("source %s: Google calls %s", self.context.name, dict(self._api.stats.counts))
        if self._session is not None:
            self._session.close()
