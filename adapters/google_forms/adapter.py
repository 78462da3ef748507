"""The google_forms adapter: Google Forms responses in, scores and flags to a Google Sheets tab."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import ClassVar, Literal

import requests

from fit_core.adapter import Adapter, SourceContext
from fit_core.models import OutboxItem, Record, RecordError

from .auth import Identity, authorized_session, load_identity
from .bookmark import FormMark, FormTracker, dump_bookmark, load_bookmark
from .client import GoogleApi, Timing
from .formdef import FormInfo, parse_form
from .mapping import ResolvedForm, resolve
from .options import FormMap, GoogleFormsSchema, GoogleOptions
from .records import response_records
from .sheet import ScoresSheet
from .timestamps import format_filter_time

log = logging.getLogger(__name__)


class GoogleFormsAdapter(Adapter):
    """Read ORS/SRS responses from Google Forms; write scores and flags to a Scores tab.

    See docs/google_forms.md for the options, the setup and the details. In short:

    - ``check()`` reads each form (``forms.get``: access, and every mapped question exists) and
      the Scores tab's key column (access to the spreadsheet).
    - ``pull(bookmark)`` lists each form's responses with ``filter=timestamp >= <since>``, page
      by page, and yields one record per mapped measure of each response not already read
      (see :mod:`.bookmark`). Source keys are response ids (``<responseId>:<MEASURE>`` when a
      form holds several measures), so an edited response replaces its administration.
    - ``push(items)`` upserts rows in the Scores tab keyed on the response id (see :mod:`.sheet`).

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
        """The form's mapping in questionIds (read once per run)."""
        found = self._forms.get(mapping.form_id)
        if found is None:
            found = resolve(mapping, self.form_info(mapping.form_id), self.context.name)
            self._forms[mapping.form_id] = found
        return found

    # --- the adapter interface -----------------------------------------------------------------

    def check(self) -> None:
        """Every form readable and its mapping resolvable; the spreadsheet readable."""
        for mapping in self.google.forms:
            self.resolved(mapping)
        self.sheet.load()

    def pull(self, bookmark: str | None) -> Iterator[Record | RecordError]:
        """Responses new or edited since ``bookmark`` (all of them for None), form by form."""
        self._bookmark = None
        previous = load_bookmark(bookmark)
        marks: dict[str, FormMark] = {}
        for mapping in self.google.forms:
            form = self.resolved(mapping)
            mark = previous.get(form.form_id)
            if mark is not None and mark.mapping != form.fingerprint:
                log.info(
                    "form %s: the mapping changed; reading all its responses again", form.form_id
                )
                mark = None
            tracker = FormTracker(
                mark, form.fingerprint, self.context.run_started, self.google.overlap
            )
            yield from self._pull_form(form, tracker)
            new_mark = tracker.mark()
            if new_mark is not None:
                marks[form.form_id] = new_mark
            log.info(
                "form %s: %d responses listed, %d already read",
                form.form_id,
                tracker.listed,
                tracker.skipped,
            )
        self._bookmark = dump_bookmark(marks)

    def _pull_form(
        self, form: ResolvedForm, tracker: FormTracker
    ) -> Iterator[Record | RecordError]:
        since = tracker.previous.since if tracker.previous is not None else None
        filter_text = f"timestamp >= {format_filter_time(since)}" if since else None
        for page in self.api.list_responses(form.form_id, filter_text, self.google.page_size):
            for response in page:
                rid = str(response.get("responseId") or "")
                submitted = response.get("lastSubmittedTime")
                submitted = submitted if isinstance(submitted, str) else None
                if rid:
                    tracker.saw(rid, submitted)
                if rid and tracker.already_read(rid, submitted):
                    tracker.skipped += 1
                    continue
                yield from response_records(response, form)

    def next_bookmark(self) -> str | None:
        """Per form: the time bookmark and the responses read at its edge (None before a pull)."""
        return self._bookmark

    def push(self, items: Sequence[OutboxItem]) -> Iterable[str]:
        """Upsert ``items`` as rows of the Scores tab; the keys the sheet confirmed."""
        return self.sheet.push(items)

    def describe_target(self) -> str:
        return f"spreadsheet {self.google.spreadsheet_id}, tab {self.google.scores_tab!r}"

    def close(self) -> None:
        if self._api is not None:
            log.debug("source %s: Google calls %s", self.context.name, dict(self._api.stats.counts))
        if self._session is not None:
            self._session.close()
