"""Caseload pages from the store to files: ``fit report caseload``, and after each sync.

Reads every client of the store once (scored as the reports score: no rules, the active
trajectory model, the practice data), keeps the active ones (latest episode not ended), and
writes, with the privacy rules of every report (self-contained HTML, mode 0600 in a 0700
folder unless ``caseload_group_read``):

- ``clients/<pseudonym>.html``: each active client's report (latest episode), the page of
  ``fit report client``;
- ``caseload-<clinician>.html``: each clinician's page (:mod:`.caseload_data`);
- ``index.html``: every clinician with counts (full runs only);
- ``.fit-caseload.json``: the manifest of what was written, by client. Files of clients that
  are no longer active (or were erased) are removed at the next full run.

After a sync (:func:`regenerate`) only the reports of clients the sync rescored and reports
that are missing are drawn (a report changes only when its client is rescored: new data,
acknowledgements, date rules coming due, changed settings or a new trajectory model all rescore
the client), and all of them when the label (ids or pseudonyms) changed; the caseload pages
themselves are cheap and always rewritten.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config
from ..episodes import episodes_of, is_ended, latest_views
from ..errors import ConfigError
from ..scoring import Scorer
from ..settings import Settings
from .caseload_data import CaseloadClient, CaseloadPage, caseload_pages, client_row
from .caseload_files import INDEX, MANIFEST, client_file, clinician_file, manifest_key
from .client_data import ClientPage, FlagRecord, client_pages
from .output import ensure_dir, write_private
from .pseudonym import load_or_create_key, pseudonym

log = logging.getLogger(__name__)

__all__ = ["ActiveClient", "CaseloadResult", "active_clients", "regenerate", "write_caseload"]


@dataclass(frozen=True)
class ActiveClient:
    """An active client: its latest episode's page and caseload row."""

    namespace: str
    client_id: str
    pseudonym: str
    page: ClientPage
    row: CaseloadClient


@dataclass
class CaseloadResult:
    pages: list[Path] = field(default_factory=list)  # index and clinician pages
    client_pages: list[Path] = field(default_factory=list)  # client pages (re)drawn
    kept: int = 0  # client pages left as they were (after a sync)
    removed: list[Path] = field(default_factory=list)
    clients: int = 0  # active clients on the pages
    client_keys: list[tuple[str, str]] = field(default_factory=list)  # (namespace, client_id)


def _records(flags: Iterable[Mapping[str, Any]]) -> list[FlagRecord]:
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
        for f in flags
    ]


def active_clients(
    store: Any,
    measures: Mapping[str, Any],
    settings: Settings,
    model: Any,
    titles: Mapping[str, str],
    *,
    as_of: dt.date,
    stale_days: int,
    pseudonymous: bool,
    clinicians: Iterable[str] | None = None,
) -> Iterator[ActiveClient]:
    """Every active client of the store, client by client (streamed)."""
    scorer = Scorer(measures, settings, (), model)
    key = load_or_create_key(store.path)
    wanted = {c.casefold() for c in clinicians} if clinicians else None
    current: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for f in store.list_flags("current"):
        current[(f["namespace"], f["client_id"])].append(f)
    for client, group in itertools.groupby(store.iter_administrations(), lambda a: a.client):
        admins = list(group)
        context = store.client_contexts([client]).get(client)
        scored = scorer.score(admins, context).scored
        latest = [v for v, is_latest in latest_views(episodes_of(scored)) if is_latest]
        if not latest or all(is_ended(v, as_of, settings, context, latest=True) for v in latest):
            continue
        ns, cid = client
        pseudo = pseudonym(key, ns, cid)
        pages = client_pages(
            scored,
            measures,
            settings,
            flags=_records(current.get(client, ())),
            model=model,
            client_label=pseudo if pseudonymous else cid,
            pseudonymous=pseudonymous,
            episode=latest[0].episode_id,
        )
        if not pages:
            continue
        page = pages[0]
        clinician = (
            context.info.clinician_id
            if context is not None and context.info is not None and context.info.clinician_id
            else page.clinician_id
        )
        if wanted is not None and (clinician or "").casefold() not in wanted:
            continue
        episode_alerts = [
            f for f in current.get(client, ()) if f.get("episode_id") in (None, page.episode_id)
        ]
        row = client_row(
            page,
            episode_alerts,
            namespace=ns,
            client_id=cid,
            clinician_id=clinician,
            as_of=as_of,
            stale_days=stale_days,
            titles=titles,
            href=client_file(pseudo),
        )
        yield ActiveClient(ns, cid, pseudo, page, row)


def _titles(registry: Any) -> dict[str, str]:
    from .client_view import RULE_TITLES

    return {**{rid: r.description for rid, r in registry.rules.items()}, **RULE_TITLES}


class _Writer:
    """Writes files with the folder's mode (0600 files / 0700 folders, or 0640 / 0750)."""

    def __init__(self, out: Path, group_read: bool) -> None:
        self.out = out
        self.group = group_read
        ensure_dir(out)
        ensure_dir(out / "clients")
        if group_read:
            for d in (out, out / "clients"):
                os.chmod(d, 0o750)

    def write(self, relative: str, data: str) -> Path:
        path = write_private(self.out / relative, data)
        if self.group:
            os.chmod(path, 0o640)
        return path


def _manifest(out: Path) -> dict[str, Any]:
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_caseload(
    config: Config,
    registry: Any,
    store: Any,
    out: Path,
    *,
    as_of: dt.date,
    generated: dt.date | None = None,
    clinicians: Iterable[str] | None = None,
    pseudonymous: bool | None = None,
    stale_days: int | None = None,
    redraw: Callable[[tuple[str, str], Path], bool] | None = None,
) -> CaseloadResult:
    """Write the caseload pages of ``clinicians`` (None: everyone, with the index) into
    ``out``. ``redraw(client, path)`` says whether an existing client page is drawn again
    (default: always)."""
    from ..sync import load_active_model
    from .caseload_html import render_caseload, render_index
    from .charts import FigureCache
    from .deps import require_reports
    from .html import render_client

    require_reports()
    rc = config.reports
    pseudo = rc.caseload_pseudonym if pseudonymous is None else pseudonymous
    stale = stale_days or rc.caseload_stale_days
    generated = generated or as_of
    full = clinicians is None
    writer = _Writer(out, rc.caseload_group_read)
    titles = _titles(registry)
    settings = config.settings.with_(as_of=as_of)
    result = CaseloadResult()
    old = _manifest(out)
    files: dict[str, list[str]] = {} if full else dict(old.get("clients", {}))
    cache = FigureCache()
    rows: list[CaseloadClient] = []
    for c in active_clients(
        store,
        registry.measures,
        settings,
        load_active_model(store),
        titles,
        as_of=as_of,
        stale_days=stale,
        pseudonymous=pseudo,
        clinicians=clinicians,
    ):
        rel = client_file(c.pseudonym)
        target = out / rel
        if (
            target.exists()
            and redraw is not None
            and not redraw((c.namespace, c.client_id), target)
        ):
            result.kept += 1
        else:
            html = render_client(c.page, generated=generated, rule_titles=titles, cache=cache)
            result.client_pages.append(writer.write(rel, html))
        files[manifest_key(c.namespace, c.client_id)] = [rel]
        rows.append(c.row)
        result.client_keys.append((c.namespace, c.client_id))
    result.clients = len(rows)
    pages = caseload_pages(rows, as_of, stale)
    if clinicians is not None:  # a clinician without active clients still gets a page
        have = {(p.clinician_id or "").casefold() for p in pages}
        for cid in clinicians:
            if cid.casefold() not in have:
                pages.append(CaseloadPage(cid, (), as_of, stale))
    written_pages: list[tuple[CaseloadPage, str]] = []
    for page in pages:
        name = clinician_file(page.clinician_id)
        result.pages.append(writer.write(name, render_caseload(page, generated=generated)))
        written_pages.append((page, name))
    page_names = [name for _p, name in written_pages]
    if full:
        result.pages.insert(
            0, writer.write(INDEX, render_index(written_pages, as_of=as_of, generated=generated))
        )
        page_names.insert(0, INDEX)
        keep = {f for fs in files.values() for f in fs} | set(page_names)
        for rel in [
            *old.get("pages", []),
            *(f for fs in old.get("clients", {}).values() for f in fs),
        ]:
            if rel not in keep:
                _remove(out, rel, result)
    else:
        page_names = sorted(set(old.get("pages", [])) | set(page_names))
    _note_files(store, out, files, written_pages, rows, result.removed)
    manifest = {
        "generated": as_of.isoformat(),
        "pseudonymous": pseudo,
        "pages": page_names,
        "clients": files,
    }
    writer.write(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    return result


def _note_files(
    store: Any,
    out: Path,
    files: Mapping[str, list[str]],
    pages: list[tuple[CaseloadPage, str]],
    rows: list[CaseloadClient],
    removed: list[Path],
) -> None:
    """Record in the store which files name which client (its report, and the caseload page
    that lists it), so ``fit client erase`` finds them wherever they were written."""
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    page_of = {p.clinician_id: name for p, name in pages}
    records = []
    for r in rows:
        for rel in files.get(manifest_key(r.namespace, r.client_id), []):
            records.append((r.namespace, r.client_id, str((out / rel).resolve()), "caseload", at))
        if r.clinician_id in page_of:
            page = str((out / page_of[r.clinician_id]).resolve())
            records.append((r.namespace, r.client_id, page, "caseload list", at))
    with store.transaction():
        if removed:
            store.conn.executemany(
                "DELETE FROM client_files WHERE path = ?", [(str(p),) for p in removed]
            )
        store.note_client_files(records)


def _remove(out: Path, relative: str, result: CaseloadResult) -> None:
    path = (out / relative).resolve()
    if out.resolve() not in path.parents:  # never outside the folder, whatever the manifest says
        return
    try:
        path.unlink()
        result.removed.append(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove the old caseload file %s: %s", path, exc.strerror)


def regenerate(
    config: Config,
    registry: Any,
    store: Any,
    *,
    rescored: set[tuple[str, str]] | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> CaseloadResult:
    """The caseload pages in ``[reports] caseload_dir`` after a sync: the reports of the
    rescored clients and missing ones (all when the label changed); caseload pages always."""
    out = config.reports.caseload_dir
    if out is None:
        raise ConfigError("[reports] caseload_dir is not set")
    if clock is None:
        from .. import sync

        clock = sync.utc_now
    today = clock().astimezone(config.sync.tzinfo()).date()
    as_of = config.settings.as_of or today
    same_label = _manifest(out).get("pseudonymous") == config.reports.caseload_pseudonym
    changed = rescored or set()

    def redraw(client: tuple[str, str], _path: Path) -> bool:
        return not same_label or client in changed

    result = write_caseload(config, registry, store, out, as_of=as_of, redraw=redraw)
    log.info(
        "caseload pages: %d clients, %d client pages drawn, %d kept, %d removed",
        result.clients,
        len(result.client_pages),
        result.kept,
        len(result.removed),
    )
    return result
