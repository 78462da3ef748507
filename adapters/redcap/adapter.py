"""The REDCap adapter: ORS/SRS-family instruments in, scores and flags into a scoring instrument."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo

from fit_core.adapter import Adapter, SourceContext
from fit_core.errors import ConfigError, SourceError
from fit_core.models import OutboxItem, Record, RecordError
from fit_core.redact import register_secret

from .bookmark import WRITE_MARGIN, Bookmark, clocks_agree, next_since, server_local, settle_delay
from .client import RedcapClient, ServerOutOfMemory, safe_url
from .discovery import Discovery, Placement, check_mapping
from .options import BAN_RATE, RedcapOptions, RedcapOptionsSchema
from .push import ImportBuilder
from .rows import RowMapper, text

log = logging.getLogger(__name__)


class RedcapAdapter(Adapter):
    """Pull ORS/SRS-family administrations from a REDCap project; push scores and flags back.

    Options (``[sources.<name>]``; unknown keys are errors that name them):

    ``url`` (required)
        The API endpoint, e.g. ``https://redcap.example.org/api/`` (a web page or 404 there
        means the url is wrong; a redirect is reported, never followed).
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
        the run.
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
        The separate instrument scores are written to (the survey's own data and status are
        never touched). It must sit on the same events as the instruments it scores and repeat
        where they repeat. ``fit redcap template <name>`` prints its data dictionary rows.
        Its fields per mapped instrument default to ``fit_<measure>_total``, ``_session``,
        ``_status`` (ORS family only), ``_flags`` and ``_message`` (``fit_<instrument>_...``
        when two instruments map the same measure); ``score_fields`` renames them
        (keys ``total, session, status, flags, message, change, rc_class``; ``""`` switches one
        off; ``change`` and ``rc_class`` are off by default).
    ``only_records`` (optional list; used by ``fit serve``)
        Sync only these record ids, leaving the bookmark as it is.

    Pull: ``content=record`` (``format=json``, ``type=flat``, ``rawOrLabel=raw``,
    ``exportSurveyFields=true``), arrays sent as ``fields[0]=…``; first the ids changed since
    the bookmark (``fields[0]=<record id field>``, ``dateRangeBegin``), then those records in
    batches of ``batch_size`` with only the mapped fields; every requested id must come back
    (one retry, then the run stops with nothing lost). Source keys:
    ``<record>|<event>|<instrument>|<instance>``. See :mod:`.bookmark` for the bookmark rule.

    Push: ``content=record`` import, ``overwriteBehavior=normal``, ``returnContent=ids``; a
    row counts as confirmed when its record id comes back.
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
        self.push_batch_size = self.opts.push_batch_size  # type: ignore[misc]
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
        self._client: RedcapClient | None = None
        self._disc: Discovery | None = None
        self._placement: Placement | None = None
        self._export_size = self.opts.batch_size
        self._import_size = self.opts.push_batch_size
        self._pulled = False
        self._begin: dt.datetime | None = None
        self._prev_writes: dt.datetime | None = None
        self._query_at: dt.datetime | None = None
        self._writes_until: dt.datetime | None = None

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

    def discover_project(self) -> Discovery:
        """Project info and data dictionary (two requests), without checking the mapping."""
        client = self.client()
        disc = Discovery.from_api(client.project(), client.metadata())
        wanted = self.opts.project_id
        if wanted is not None and disc.project.project_id != wanted:
            raise ConfigError(
                f"the token of source {self.context.name} belongs to REDCap project "
                f"{disc.project.project_id}, not project_id {wanted}",
                hint=f"set the right token with `fit keys set {self.context.name} token`",
            )
        return disc

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
        """Events and repeats (one or two requests, once per run; only needed to push).

        ``disc`` avoids checking the mapping first (``fit redcap inspect``)."""
        if self._placement is None:
            project = (disc or self.discover()).project
            client = self.client()
            mapping = client.form_event_mapping() if project.longitudinal else []
            repeats = client.repeating_forms_events() if project.repeating else []
            self._placement = Placement.from_api(project.longitudinal, mapping, repeats)
        return self._placement

    def check(self) -> None:
        """Token format, then project info and data dictionary against the mapping."""
        self.discover()

    # --- pull --------------------------------------------------------------------------------

    def pull(self, bookmark: str | None) -> Iterator[Record | RecordError]:
        """Records of the records changed since ``bookmark`` (all when None), batch by batch."""
        self._pulled = False
        mark = Bookmark.parse(bookmark)
        self._begin, self._prev_writes = mark.since, mark.writes_until
        disc = self.discover()
        client = self.client()
        mapper = RowMapper(
            id_field=disc.id_field,
            instruments=self.opts.instruments,
            statuses=self.opts.complete_statuses,
            server_tz=self.server_tz,
            context_fields=self.opts.context_fields,
        )
        only = self.opts.only_records
        if only is not None:
            ids = list(dict.fromkeys(only))
        else:
            ids = self._changed_ids(client, disc.id_field)
        log.info("%s: %d record(s) to read", self.context.name, len(ids))
        yield from self._read(client, ids, mapper, strict=only is None)
        if mapper.skipped:
            log.info(
                "%s: %d instrument row(s) skipped: <instrument>_complete not in complete_statuses",
                self.context.name,
                mapper.skipped["status"],
            )
        log.info("%s: pull done (%d requests)", self.context.name, client.requests_sent)
        self._pulled = True

    def _changed_ids(self, client: RedcapClient, id_field: str) -> list[str]:
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
        since = server_local(self._begin, self.server_tz) if self._begin else None
        rows = client.export_records(fields=[id_field], since=since, survey_fields=False)
        return list(dict.fromkeys(r for r in (text(row.get(id_field)) for row in rows) if r))

    def _read(
        self, client: RedcapClient, ids: Sequence[str], mapper: RowMapper, *, strict: bool
    ) -> Iterator[Record | RecordError]:
        fields = mapper.export_fields()
        id_field = mapper.id_field
        i = 0
        while i < len(ids):
            batch = list(ids[i : i + self._export_size])
            try:
                rows = client.export_records(fields=fields, records=batch)
            except ServerOutOfMemory:
                if len(batch) == 1:
                    raise
                self._export_size = max(1, len(batch) // 2)
                log.warning(
                    "%s: REDCap ran out of memory exporting %d records; trying %d a batch",
                    self.context.name,
                    len(batch),
                    self._export_size,
                )
                continue
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
                rows = [*rows, *client.export_records(fields=fields, records=missing)]
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
            i += len(batch)
            yield from mapper.records(rows)

    def next_bookmark(self) -> str | None:
        """JSON ``{"since", "writes_until"}`` after a complete pull (see :mod:`.bookmark`)."""
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
        return Bookmark(since, writes).dump()

    # --- push --------------------------------------------------------------------------------

    def push(self, items: Sequence[OutboxItem]) -> Iterable[str]:
        """Import the scores of ``items``; return the source keys whose record ids came back."""
        disc = self.discover()
        builder = ImportBuilder(
            id_field=disc.id_field,
            scores_instrument=self.opts.scores_instrument,
            instruments=self.opts.instruments,
            placement=self.placement(),
        )
        rows, keys = builder.build(items)
        client = self.client()
        confirmed: list[str] = []
        i = 0
        while i < len(rows):
            chunk = rows[i : i + self._import_size]
            try:
                returned = set(client.import_records(chunk))
            except ServerOutOfMemory:
                if len(chunk) == 1:
                    raise
                self._import_size = max(1, len(chunk) // 2)
                log.warning(
                    "%s: REDCap ran out of memory importing %d rows; trying %d a batch",
                    self.context.name,
                    len(chunk),
                    self._import_size,
                )
                continue
            self._writes_until = self._frame_now() + WRITE_MARGIN
            sent = {str(r[disc.id_field]) for r in chunk}
            for row, row_keys in zip(chunk, keys[i : i + len(chunk)], strict=True):
                if str(row[disc.id_field]) in returned:
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
