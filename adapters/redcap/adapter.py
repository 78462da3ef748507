"""The REDCap adapter: ORS/SRS-family instruments in, scores and flags into a scoring instrument."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from fit_core.adapter import Adapter, SourceContext
from fit_core.errors import ConfigError, FitError, SourceError, SourceUnavailable
from fit_core.models import Deleted, OutboxItem, Record, RecordError
from fit_core.redact import register_secret

from .bookmark import (
    EVIDENCE_KEY,
    LAYOUT,
    WRITE_MARGIN,
    Bookmark,
    Evidence,
    clocks_agree,
    next_since,
    settle_delay,
)
from .client import BadRequest, RedcapClient, ServerOutOfMemory, safe_url
from .deletions import CHECKED, LOG_REFUSED, clearing_rows, deleted_records, due, log_begin
from .deletions import record_of as key_record
from .discovery import Discovery, Placement, check_mapping
from .exports import Exporter, IdHints, TooBigForServer, metadata_in_parts
from .options import BAN_RATE, RedcapOptions, RedcapOptionsSchema
from .push import ImportBuilder, TargetRows
from .rows import RowMapper, text
from .zonecheck import ZoneChecker

#: records of our last imports kept as evidence for the server_timezone check
EVIDENCE_RECORDS = 5

log = logging.getLogger(__name__)

#: the project info kept between runs (see RedcapAdapter.discover_project): the key in the
#: source's state, and how long it is trusted before it is asked for again
PROJECT_INFO_KEY = "redcap.project_info"
PROJECT_INFO_TTL = dt.timedelta(hours=24)


class RedcapAdapter(Adapter):
    """Pull ORS/SRS-family administrations from a REDCap project; push scores and flags back.

    Options (``[sources.<name>]``; unknown keys are errors that name them):

    ``url`` (required)
        The API endpoint, e.g. ``https://redcap.example.org/api/`` (a web page or 404 there
        means the url is wrong; a redirect is reported, never followed). Plain ``http://`` is
        refused unless the host is this machine (loopback) or ``allow_http`` is true.
    ``allow_http`` (default ``false``)
        Allow ``http://`` to another host: the token then travels unencrypted (logged as a
        warning on every run).
    ``project_id`` (optional)
        When set, the token must belong to this project (guards against a pasted wrong token).
    ``token_pattern`` (default ``^[0-9A-F]{32}([0-9A-F]{32})?$``)
        A regular expression the token must match fully; a token that fails is a config error
        before any request. The token itself is a secret: ``fit keys set <name> token`` or
        ``FIT_<NAME>_TOKEN``; never in the config, never logged (surrounding blanks are dropped).
    ``verify`` (default ``true``)
        TLS verification: ``true``, or the path of a CA bundle (``.pem``) for institutional
        CAs. ``false`` works but logs a warning on every run.
    ``server_timezone`` (default: the clinic timezone, ``[sync] timezone``)
        The REDCap server's IANA timezone: ``dateRangeBegin`` and survey timestamps are in
        server-local time.
    ``throttle`` (default ``2``)
        Requests per second to this server, counted from the end of one response to the start of
        the next, one request at a time, shared by every source on the same url in the process.
        Above 10 (REDCap's default ban threshold is 600 hits a minute, site-wide) a warning is
        logged: only for test servers.
    ``timeout`` (default ``300``)
        Seconds to wait for an answer (big exports are slow).
    ``batch_size`` (default ``500``)
        Records per export batch. A "ran out of server memory" answer halves it for the rest of
        the run; the query of changed record ids is split by record id range, time and event
        (see :mod:`.exports`).
    ``push_batch_size`` (default ``500``)
        Rows per import request (halved the same way).
    ``overlap`` (default ``300``)
        Seconds re-read before the previous run's start (clock skew, saves in flight).
    ``complete_statuses`` (default ``[2]``)
        Accepted values of ``<instrument>_complete``: 0 incomplete, 1 unverified, 2 complete.
        Rows with another status are skipped.
    ``fields`` (optional table)
        Record-level context, fit name → REDCap field: ``client_id`` (default: the record id,
        i.e. the first field of the data dictionary), ``clinician_id``, ``episode_id``,
        ``rater``, ``age``. Taken from the administration's own row, else from the first row of
        the record that has a value (e.g. a demographics form on the first event).
    ``instruments`` (table of tables; required to sync)
        One ``[sources.<name>.instruments.<instrument>]`` per ORS/SRS-family instrument:
        ``measure`` (ORS, CORS, SRS, CSRS, GSRS, or a plugin's), ``items`` (four fields in the
        measure's item order), ``total`` (optional field; items, total, or both), ``scale``
        (``percent`` for 0-100 sliders, the default; ``points`` for 0-10 text fields such as
        ``number_1dp``; or ``range:LOW:HIGH``), ``date`` (optional date/datetime field; default
        the survey timestamp), ``rater`` (optional fixed rater, e.g. ``"parent"``, instead of the
        ``fields.rater`` field), ``score_fields`` (optional overrides, see below).
    ``scores_instrument`` (default ``"fit_scores"``)
        The separate instrument scores are written to, one row per session (the survey's own
        data and status are never touched; see :mod:`.push`). It must sit on the same events
        as the instruments it scores and repeat where they repeat. ``fit redcap template
        <name>`` prints its data dictionary rows. Its fields: the session date ``fit_date``
        (shared), then per mapped instrument ``fit_<measure>_total``, ``_session``,
        ``_status`` (ORS family only), ``_flags`` and ``_message`` (``fit_<instrument>_...``
        when two instruments map the same measure); ``score_fields`` renames them (keys
        ``date, total, session, status, flags, message, change, rc_class``; ``""`` switches
        one off; ``change`` and ``rc_class`` are off by default). ``date``, ``session``,
        ``flags`` and ``message`` may name one field for several instruments.
    ``scores_complete`` (default ``2``)
        The ``<scores_instrument>_complete`` status written with the scores: 0 Incomplete,
        1 Unverified, 2 Complete.
    ``site`` (optional)
        A fixed site (clinic or team) for every administration of this source, e.g. one source
        per Data Access Group token.
    ``site_from_dag`` (default ``false``)
        The site is the record's Data Access Group (``redcap_data_access_group``); needs a
        token whose user is in no group. ``fields.site`` maps a field instead.
    ``only_records`` (optional list; used by ``fit serve``)
        Sync only these record ids, leaving the bookmark as it is.
    ``deletion_check_hours`` (default ``24``)
        When the token's user may not read the project's logging: how often every record id
        is listed to find deleted records (0: every sync). See :mod:`.deletions`.

    Pull: ``content=record`` (``format=json``, ``type=flat``, ``rawOrLabel=raw``,
    ``exportSurveyFields=true``), arrays sent as ``fields[0]=…``; first the ids changed since
    the bookmark (``fields[0]=<record id field>``, ``dateRangeBegin``), then those records in
    batches of ``batch_size`` with only the mapped fields; every requested id must come back
    (one retry, then the run stops with nothing lost). Source keys:
    ``<record>|<event>|<instrument>|<instance>``. See :mod:`.bookmark` for the bookmark rule
    and :mod:`.zonecheck` for the check of ``server_timezone`` after a sync that wrote.

    Push: the records' scoring rows are read back (one export), then ``content=record``
    import, ``overwriteBehavior=overwrite`` (only our score fields), ``returnContent=ids``; a
    row counts as confirmed when its record id comes back (or REDCap already held it).

    Deletions (see :mod:`.deletions`): after a pull, records deleted in REDCap (from the
    project's logging, else a periodic list of every record id) and administrations a re-read
    record no longer holds are yielded as ``Deleted``; ``remove(keys)`` blanks their scores in
    the scoring instrument.
    """

    name: ClassVar[str] = "redcap"
    description: ClassVar[str] = "REDCap projects: ORS/SRS instruments in, a scoring instrument out"
    options_schema: ClassVar[type[RedcapOptionsSchema]] = RedcapOptionsSchema
    push_mode: ClassVar[Literal["batch", "snapshot"]] = "batch"
    push_batch_size: ClassVar[int] = 500
    secret_keys: ClassVar[tuple[str, ...]] = ("token",)

    def __init__(self, context: SourceContext) -> None:
        super().__init__(context)
        self.opts = RedcapOptions.load(context.options, context.name)
        # administrations per push() call: an ORS and an SRS of one session share a row, and
        # each call reads its records back once, so a call takes rows for two imports
        self.push_batch_size = 2 * self.opts.push_batch_size  # type: ignore[misc]
        self.server_tz: dt.tzinfo = (
            ZoneInfo(self.opts.server_timezone) if self.opts.server_timezone else context.timezone
        )
        #: sleeps of this adapter outside the HTTP layer (the settle wait); replaceable in tests
        self.sleep: Callable[[float], None] = time.sleep
        self._t0 = time.monotonic()
        if self.opts.throttle > BAN_RATE:
            log.warning(
                "%s: throttle %g requests/s is above REDCap's default ban threshold (600 a "
                "minute): use it only against a test server",
                context.name,
                self.opts.throttle,
            )
        if self.opts.allow_http and self.opts.url.lower().startswith("http://"):
            log.warning(
                "%s: allow_http: the API token travels unencrypted to %s",
                context.name,
                safe_url(self.opts.url),
            )
        self._client: RedcapClient | None = None
        self._exporter: Exporter | None = None
        self._disc: Discovery | None = None
        self._placement: Placement | None = None
        self._import_size = self.opts.push_batch_size
        self._pulled = False
        self._migrate = False
        self._begin: dt.datetime | None = None
        self._prev_writes: dt.datetime | None = None
        self._query_at: dt.datetime | None = None
        self._writes_until: dt.datetime | None = None
        self._writes_from: dt.datetime | None = None
        self._written: deque[str] = deque(maxlen=EVIDENCE_RECORDS)
        self._hints = IdHints()
        self._state_after: dict[str, str] = {}  # source state to set once the run succeeded

    @property
    def zone_label(self) -> str:
        """The server timezone's name (``server_timezone``, else the clinic's)."""
        return self.opts.server_timezone or str(self.context.timezone)

    # --- connection and discovery ------------------------------------------------------------

    def client(self) -> RedcapClient:
        """The API client; the token is checked against ``token_pattern`` before any request."""
        if self._client is None:
            token = self.context.secret("token").strip()
            register_secret(token)
            if not re.fullmatch(self.opts.token_pattern, token):
                hint = f"set it again with `fit keys set {self.context.name} token`"
                if re.fullmatch(self.opts.token_pattern, token.upper()):
                    hint = "it has lowercase letters: REDCap shows tokens in uppercase; " + hint
                raise ConfigError(
                    f"the token of source {self.context.name} does not look like a REDCap API "
                    f"token ({len(token)} characters; expected 32 uppercase hex digits, or 64 "
                    "for a super token)",
                    hint=hint + "; if your server issues other tokens, set token_pattern",
                )
            self._client = self.make_client(token)
        return self._client

    def make_client(self, token: str) -> RedcapClient:
        """Build the HTTP client (override in tests to inject clocks)."""
        return RedcapClient(
            self.opts.url,
            token,
            source=self.context.name,
            verify=self.opts.verify,
            rate=self.opts.throttle,
            timeout=self.opts.timeout,
        )

    def discover_project(self, *, fresh: bool = False) -> Discovery:
        """Project info and data dictionary (two requests; more when the dictionary is too big
        for the server's memory), without checking the mapping.

        The project info (id, title, longitudinal, repeating) is kept in the source's state for
        :data:`PROJECT_INFO_TTL` per token and address, so an idle sync costs one request less;
        ``fresh`` (``fit redcap inspect``) always asks. The data dictionary is read every run."""
        client = self.client()
        project = None if fresh else self._known_project(client)
        if project is None:
            project = client.project()
            self._keep_project(client, project)
        disc = Discovery.from_api(project, metadata_in_parts(client, self.context.name))
        wanted = self.opts.project_id
        if wanted is not None and disc.project.project_id != wanted:
            raise ConfigError(
                f"the token of source {self.context.name} belongs to REDCap project "
                f"{disc.project.project_id}, not project_id {wanted}",
                hint=f"set the right token with `fit keys set {self.context.name} token`",
            )
        return disc

    def _project_key(self, client: RedcapClient) -> str:
        token = self.context.secret("token").strip()
        blob = f"{self.opts.url}\n{token}".encode()
        return hashlib.blake2b(blob, digest_size=16, person=b"fit-redcap-proj").hexdigest()

    def _known_project(self, client: RedcapClient) -> dict[str, Any] | None:
        state = self.context.state
        raw = state.get(PROJECT_INFO_KEY) if state is not None else None
        if not raw:
            return None
        try:
            kept = json.loads(raw)
            at = dt.datetime.fromisoformat(kept["at"])
            fresh_enough = dt.timedelta(0) <= self.context.run_started - at <= PROJECT_INFO_TTL
            if kept["key"] == self._project_key(client) and fresh_enough:
                project = kept["project"]
                return project if isinstance(project, dict) else None
        except (ValueError, KeyError, TypeError):
            pass
        return None

    def _keep_project(self, client: RedcapClient, project: dict[str, Any]) -> None:
        state = self.context.state
        if state is None:
            return
        kept = {
            "key": self._project_key(client),
            "at": self.context.run_started.isoformat(),
            "project": project,
        }
        state.set(PROJECT_INFO_KEY, json.dumps(kept, sort_keys=True, separators=(",", ":")))

    def discover(self) -> Discovery:
        """:meth:`discover_project` once per run, with the mapping checked against it."""
        if self._disc is None:
            if not self.opts.instruments:  # before any request
                raise ConfigError(
                    f"[sources.{self.context.name}] maps no instruments",
                    hint=f"run `fit redcap inspect {self.context.name}` and add the "
                    f"[sources.{self.context.name}.instruments.*] tables it proposes",
                )
            disc = self.discover_project()
            check_mapping(self.opts, disc, self.context.name)
            self._disc = disc
        return self._disc

    def placement(self, disc: Discovery | None = None) -> Placement:
        """Events and repeats (one or two requests, once per run; only needed to push or to
        split a query by event).

        ``disc`` avoids checking the mapping first (``fit redcap inspect``)."""
        if self._placement is None:
            project = (disc or self.discover()).project
            client = self.client()
            mapping = client.form_event_mapping() if project.longitudinal else []
            repeats = client.repeating_forms_events() if project.repeating else []
            self._placement = Placement.from_api(project.longitudinal, mapping, repeats)
        return self._placement

    def exporter(self) -> Exporter:
        """Record exports of this run, split when the server runs out of memory."""
        if self._exporter is None:
            disc = self.discover()
            self._exporter = Exporter(
                self.client(),
                source=self.context.name,
                id_field=disc.id_field,
                batch_size=self.opts.batch_size,
                events=lambda: list(self.placement().form_events),
                now=self._server_now,
                created=disc.project.created,
                hints=self._hints,
            )
        return self._exporter

    def check(self) -> None:
        """Token format, then project info and data dictionary against the mapping; then
        ``server_timezone`` against our last imports, when they were not checked against this
        zone yet (two small requests, once; see :mod:`.zonecheck`)."""
        self.discover()
        state = self.context.state
        ev = Evidence.parse(state.get(EVIDENCE_KEY)) if state is not None else None
        if ev is None or ev.checked == self.zone_label or self.opts.only_records is not None:
            return
        self.zone_checker().check(ev)
        if state is not None:
            state.set(EVIDENCE_KEY, dataclasses.replace(ev, checked=self.zone_label).dump())

    def zone_checker(self) -> ZoneChecker:
        """The ``server_timezone`` check (see :mod:`.zonecheck`)."""
        return ZoneChecker(
            self.client(),
            id_field=self.discover().id_field,
            server_tz=self.server_tz,
            zone_label=self.zone_label,
            source=self.context.name,
        )

    # --- pull --------------------------------------------------------------------------------

    def pull(self, bookmark: str | None) -> Iterator[Record | RecordError | Deleted]:
        """Records of the records changed since ``bookmark`` (all when None), batch by batch;
        then a Deleted for each stored administration REDCap no longer holds."""
        self._pulled = False
        mark = Bookmark.parse(bookmark)
        only = self.opts.only_records
        zone_changed = mark.zone is not None and mark.zone != self.zone_label
        if zone_changed and only is None:
            log.info(
                "%s: server_timezone changed (%s, was %s): reading every record again",
                self.context.name,
                self.zone_label,
                mark.zone,
            )
        self._begin = None if zone_changed else mark.since
        self._prev_writes = mark.writes_until
        self._migrate = only is None and (mark.since is None or mark.layout < LAYOUT)
        if isinstance(mark.ids, tuple):
            self._hints.see(str(n) for n in mark.ids)
        elif mark.ids == "text":
            self._hints.numeric = False
        disc = self.discover()
        mapper = RowMapper(
            id_field=disc.id_field,
            instruments=self.opts.instruments,
            statuses=self.opts.complete_statuses,
            server_tz=self.server_tz,
            context_fields=self.opts.context_fields,
            site=self.opts.site,
            site_from_dag=self.opts.site_from_dag,
            source=self.context.name,
        )
        ids = list(dict.fromkeys(only)) if only is not None else self._changed_ids()
        log.info("%s: %d record(s) to read", self.context.name, len(ids))
        present: set[str] = set()
        for item in self._read(ids, mapper, strict=only is None):
            present.add(item.source_key)
            yield item
        if only is None:
            yield from self._deletions(set(ids), present)
        if mapper.skipped:
            log.info(
                "%s: %d instrument row(s) skipped: <instrument>_complete not in complete_statuses",
                self.context.name,
                mapper.skipped["status"],
            )
        log.info("%s: pull done (%d requests)", self.context.name, self.client().requests_sent)
        self._pulled = True

    def _deletions(self, read: set[str], present: set[str]) -> Iterator[Deleted]:
        """Deleted for stored administrations REDCap no longer holds (see :mod:`.deletions`):
        of records deleted in REDCap, and of records read again that no longer hold them."""
        stored = self.context.stored_keys
        if stored is None:
            return
        self._state_after = {}
        if self._begin is None:  # every record was listed and read
            self._state_after[CHECKED] = self.context.run_started.isoformat()

            def unread(record: str) -> bool:
                return record not in read

            gone: Callable[[str], bool] | None = unread
        else:
            gone = self._deleted_check()
        n = 0
        for key in stored():
            if key in present:
                continue
            record = key_record(key)
            if record in read or (gone is not None and gone(record)):
                n += 1
                yield Deleted(key, f"record {record}")
        if n:
            log.info("%s: %d stored administration(s) no longer in REDCap", self.context.name, n)

    def _deleted_check(self) -> Callable[[str], bool] | None:
        """Which records are gone since the bookmark: the deletions in the logging when the
        token may read it, and, when that check is due, every stored record not in a list of
        every record id (a record renamed in REDCap is logged as an update of its new name,
        never as a deletion: only the list finds the old name gone); None: unknown."""
        state = self.context.state
        now = self.context.run_started
        every = self.opts.deletion_check
        refused = state.get(LOG_REFUSED) if state is not None else None
        logged: set[str] | None = None
        if refused is None or due(refused, now, every):
            assert self._begin is not None
            begin = log_begin(self._begin - self.opts.overlap, self.server_tz)
            try:
                rows = self.client().export_log("record_delete", begin=begin)
            except SourceUnavailable:
                raise
            except (FitError, BadRequest) as exc:
                log.info(
                    "%s: the project's logging cannot be read (%s); deleted records are found by "
                    "listing every record id every %s",
                    self.context.name,
                    getattr(exc, "message", exc),
                    every,
                )
                self._state_after[LOG_REFUSED] = now.isoformat()
            else:
                if refused is not None:
                    self._state_after[LOG_REFUSED] = ""
                logged = deleted_records(rows)
        last = state.get(CHECKED) if state is not None else None
        if not due(last, now, every):
            return None if logged is None else logged.__contains__
        existing = set(self.exporter().changed_ids(None))
        self._state_after[CHECKED] = now.isoformat()
        deleted = logged or set()
        return lambda record: record in deleted or record not in existing

    def wants_full_push(self) -> bool:
        """True when the scoring instrument is migrated to session rows: every administration
        is written again (the first sync, or the first after an upgrade; see :mod:`.push`)."""
        return self._migrate

    def _changed_ids(self) -> list[str]:
        client = self.client()
        delay = settle_delay(
            now=self._frame_now(),
            begin=self._begin,
            run_started=self.context.run_started,
            overlap=self.opts.overlap,
            prev_writes=self._prev_writes,
            clocks_ok=clocks_agree(client.clock_offsets),
        )
        if delay > 0:
            log.debug(
                "%s: waiting %.1fs so our last imports can be skipped", self.context.name, delay
            )
            self.sleep(delay)
        self._query_at = self._frame_now()
        since = None
        if self._begin is not None:
            since = self._begin.astimezone(self.server_tz).replace(tzinfo=None, microsecond=0)
        return self.exporter().changed_ids(since)

    def _read(
        self, ids: Sequence[str], mapper: RowMapper, *, strict: bool
    ) -> Iterator[Record | RecordError]:
        fields = mapper.export_fields()
        id_field = mapper.id_field
        exporter = self.exporter()
        groups = self.opts.site_from_dag
        for batch, rows in exporter.batches(ids, fields, groups=groups):
            wanted = set(batch)
            got = {text(r.get(id_field)) for r in rows}
            missing = [x for x in batch if x not in got]
            if missing:
                log.warning(
                    "%s: %d requested record(s) did not come back (%s); asking once more",
                    self.context.name,
                    len(missing),
                    ", ".join(missing[:10]),
                )
                for _, more in exporter.batches(missing, fields, groups=groups):
                    rows = [*rows, *more]
                got = {text(r.get(id_field)) for r in rows}
                missing = [x for x in batch if x not in got]
                if missing and strict:
                    raise SourceError(
                        f"REDCap did not return {len(missing)} of the records it listed as "
                        f"changed (e.g. {', '.join(missing[:5])}); stopped this source so "
                        "nothing is skipped (the bookmark stays where it was)",
                        hint="a record deleted during the sync clears up on the next run; if "
                        "it persists, lower batch_size (the server may cut long answers)",
                    )
                for x in missing:
                    log.info("%s: record %s not found (deleted?)", self.context.name, x)
            extras = got - wanted
            if extras:
                log.warning(
                    "%s: REDCap returned %d record(s) not asked for; ignored",
                    self.context.name,
                    len(extras),
                )
                rows = [r for r in rows if text(r.get(id_field)) in wanted]
            yield from mapper.records(rows)

    def next_bookmark(self) -> str | None:
        """The bookmark after a complete pull (see :mod:`.bookmark`)."""
        if not self._pulled or self.opts.only_records is not None:
            return None
        offsets = self._client.clock_offsets if self._client else []
        since = next_since(
            begin=self._begin,
            run_started=self.context.run_started,
            overlap=self.opts.overlap,
            query_at=self._query_at,
            prev_writes=self._prev_writes,
            clocks_ok=clocks_agree(offsets),
        )
        writes = self._writes_until
        if writes is None and self._prev_writes is not None and since <= self._prev_writes:
            writes = self._prev_writes  # not skipped yet: a later run may still skip them
        state = self.context.state
        if state is not None:
            for key, value in self._state_after.items():
                state.set(key, value)
            self._state_after = {}
        hints = self._hints
        ids: tuple[int, int] | str | None = None
        if hints.numeric is False:
            ids = "text"
        elif hints.numeric and hints.low is not None and hints.high is not None:
            ids = (hints.low, hints.high)
        return Bookmark(since, writes, LAYOUT, self.zone_label, ids).dump()

    # --- push --------------------------------------------------------------------------------

    def push(self, items: Sequence[OutboxItem]) -> Iterable[str]:
        """Write the scores of ``items`` into their session rows; return the source keys whose
        rows REDCap confirmed (or already held)."""
        disc = self.discover()
        builder = ImportBuilder(
            id_field=disc.id_field,
            scores_instrument=self.opts.scores_instrument,
            instruments=self.opts.instruments,
            placement=self.placement(),
            timezone=self.context.timezone,
            complete=self.opts.scores_complete,
        )
        records = builder.records_of(items)
        rows: list[dict[str, Any]] = []
        for _, part in self.exporter().batches(records, builder.read_fields, survey_fields=False):
            rows += part
        target = TargetRows.from_export(
            rows, disc.id_field, self.opts.scores_instrument, builder.read_fields[1:]
        )
        built = builder.build(items, target, migrate=self._migrate)
        if built.missing:
            log.warning(
                "%s: %d record(s) no longer exist in REDCap or are outside this token's Data "
                "Access Group (%s): their scores are not written",
                self.context.name,
                len(built.missing),
                ", ".join(built.missing[:10]),
            )
        confirmed: list[str] = []
        pending: list[tuple[dict[str, Any], list[str]]] = []
        for row, row_keys, same in zip(built.rows, built.keys, built.unchanged, strict=True):
            if same:
                confirmed.extend(row_keys)  # REDCap already holds exactly this
            else:
                pending.append((row, row_keys))
        confirmed += self._import(pending, disc.id_field)
        self._keep_evidence()
        return confirmed

    def remove(self, keys: Sequence[str]) -> Iterable[str]:
        """Blank the scores of ``keys`` in the scoring instrument (see :mod:`.deletions`);
        the keys settled (written, or nothing left to blank)."""
        disc = self.discover()
        builder = ImportBuilder(
            id_field=disc.id_field,
            scores_instrument=self.opts.scores_instrument,
            instruments=self.opts.instruments,
            placement=self.placement(),
            timezone=self.context.timezone,
            complete=self.opts.scores_complete,
        )
        mapper = RowMapper(
            id_field=disc.id_field,
            instruments=self.opts.instruments,
            statuses=self.opts.complete_statuses,
            server_tz=self.server_tz,
            context_fields=self.opts.context_fields,
            source=self.context.name,
        )
        records = list(dict.fromkeys(key_record(k) for k in keys))
        fields = list(dict.fromkeys([*mapper.export_fields(), *builder.read_fields[1:]]))
        rows: list[dict[str, Any]] = []
        for _, part in self.exporter().batches(records, fields):
            rows += part
        target = TargetRows.from_export(
            rows, disc.id_field, self.opts.scores_instrument, builder.read_fields[1:]
        )
        live = [r for r in mapper.records(rows) if isinstance(r, Record)]
        pending, settled, left = clearing_rows(builder, target, keys, live, self.context.timezone)
        if left:
            log.warning(
                "%s: %d removed administration(s) of repeating instruments keep their scores: "
                "their session rows are keyed by session number, which no longer tells them "
                "apart (map score_fields.date)",
                self.context.name,
                left,
            )
        return [*settled, *self._import(pending, disc.id_field)]

    def _keep_evidence(self) -> None:
        """Save when our imports ran and some records they changed (for :mod:`.zonecheck`)."""
        state = self.context.state
        if state is None or not self._written or self._writes_from is None:
            return
        assert self._writes_until is not None
        ev = Evidence(self._writes_from, self._writes_until, tuple(self._written))
        state.set(EVIDENCE_KEY, ev.dump())

    def _import(self, pending: list[tuple[dict[str, Any], list[str]]], id_field: str) -> list[str]:
        client = self.client()
        confirmed: list[str] = []
        i = 0
        while i < len(pending):
            chunk = pending[i : i + self._import_size]
            started = self._frame_now()
            try:
                returned = set(client.import_records([r for r, _ in chunk], overwrite=True))
            except ServerOutOfMemory:
                if len(chunk) == 1:
                    raise TooBigForServer(
                        f"REDCap runs out of server memory importing the scores of record "
                        f"{chunk[0][0][id_field]} alone",
                        hint="ask the REDCap administrator to raise PHP's memory_limit",
                    ) from None
                self._import_size = max(1, len(chunk) // 2)
                log.warning(
                    "%s: REDCap ran out of memory importing %d rows; trying %d a batch",
                    self.context.name,
                    len(chunk),
                    self._import_size,
                )
                continue
            except BadRequest as exc:
                refused = refused_records(str(getattr(exc, "message", exc)), chunk, id_field)
                if not refused:
                    raise
                log.error(
                    "%s: REDCap refused the scores of record(s) %s (%s); the others are "
                    "written, these stay pending",
                    self.context.name,
                    ", ".join(sorted(refused)[:10]),
                    getattr(exc, "message", exc),
                )
                pending = pending[:i] + [
                    p for p in pending[i:] if str(p[0][id_field]) not in refused
                ]
                continue
            self._writes_from = self._writes_from or started
            self._writes_until = self._frame_now() + WRITE_MARGIN
            sent = {str(r[id_field]) for r, _ in chunk}
            written = [
                r for r in dict.fromkeys(str(r[id_field]) for r, _ in chunk) if r in returned
            ]
            step = max(1, len(written) // EVIDENCE_RECORDS)
            for record in written[::step][:EVIDENCE_RECORDS]:  # spread over the import
                if record in self._written:
                    self._written.remove(record)
                self._written.append(record)
            for row, row_keys in chunk:
                if str(row[id_field]) in returned:
                    confirmed.extend(row_keys)
            if sent - returned:
                log.error(
                    "%s: REDCap did not confirm the import of record(s) %s",
                    self.context.name,
                    ", ".join(sorted(sent - returned)[:10]),
                )
            i += len(chunk)
        return confirmed

    def describe_target(self) -> str:
        """The scoring instrument, project and server (no secrets)."""
        pid = self._disc.project.project_id if self._disc else "?"
        return f"{self.opts.scores_instrument} in REDCap project {pid} at {safe_url(self.opts.url)}"

    def close(self) -> None:
        """Close the API client's HTTP session."""
        if self._client is not None:
            self._client.close()

    def _frame_now(self) -> dt.datetime:
        """Now, on the engine's clock: run start plus the time this adapter has existed."""
        return self.context.run_started + dt.timedelta(seconds=time.monotonic() - self._t0)

    def _server_now(self) -> dt.datetime:
        """Now in the server's local time (naive), as fit-sync believes it to be."""
        return self._frame_now().astimezone(self.server_tz).replace(tzinfo=None)


def refused_records(
    message: str, chunk: Sequence[tuple[dict[str, Any], list[str]]], id_field: str
) -> set[str]:
    """The records of ``chunk`` that a 400 names (``record X, field ...`` lines), when they are
    some but not all of them: the others can be imported without them."""
    named = set(re.findall(r"record ([^,;\s]+), field", message))
    ids = {str(r[id_field]) for r, _ in chunk}
    refused = named & ids
    return refused if refused and refused != ids else set()
