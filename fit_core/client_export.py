"""``fit client export ID``: everything fit-sync holds about one client, for a person's right
of access or a move to another system.

The export is a folder (mode 0700; every file 0600) or a zip archive (0600) holding:

- ``client.json``: the client's scores as fit-sync computes them now (every administration
  with its session, change, class, status and flags), alerts with their full history,
  attendance and details from practice systems, what was pushed to each target, quarantine
  entries, the audit entries that concern the client, and under ``"store"`` every row the
  store holds for the client, table by table, as stored;
- ``scores.csv``, ``alerts.csv``, ``alert_events.csv``, ``appointments.csv``, ``audit.csv``:
  the same as tables for a spreadsheet;
- ``report-<episode>.html``: the client's report page per episode (with the ``reports``
  extra installed);
- ``outbox/<source>/...``: files an adapter wrote for the client (a progress-note snippet);
- ``README.txt``: what each file is.

Nothing of other clients is in it. Writing it is recorded in the audit log (``export``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .privacy_store import CLIENT_TABLES
from .scores_csv import values_of_line

README = """fit-sync export of client {client_id} (namespace {namespace}), made {at}.

client.json        everything fit-sync holds about the client: scores, alerts with their
                   history, attendance, details, what was pushed to each target, quarantine
                   entries, audit entries, and under "store" every stored row, table by table
scores.csv         one row per ORS/SRS administration with its scores and open flags
alerts.csv         the client's alerts (open, acknowledged, superseded, closed)
alert_events.csv   every change of those alerts, in time order
appointments.csv   attendance from practice systems
audit.csv          the audit entries that concern the client (pushes are counted per run)
report-*.html      the client's report page per episode (if the reports extra is installed)
outbox/            files written for the client by an adapter (progress-note snippets)

{copyright}
"""


def client_rows(store: Any, namespace: str, client_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row the store holds for one client, table by table (as stored)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for table in (*CLIENT_TABLES, "flags", "outbox"):
        rows[table] = store.client_table_rows(table, namespace, client_id)
    rows["flag_events"] = [e for f in rows["flags"] for e in _raw_events(store, int(f["id"]))]
    keys = {(r["source"], r["source_key"]) for r in rows["administrations"] + rows["outbox"]}
    rows["push_ledger"] = _ledger(store, keys)
    quarantine = store.quarantine_of_client(
        client_id, [(r["source"], r["source_key"]) for r in rows["administrations"]]
    )
    rows["quarantine"] = quarantine
    return rows


def _raw_events(store: Any, flag_id: int) -> list[dict[str, Any]]:
    cur = store.conn.execute("SELECT * FROM flag_events WHERE flag_id = ? ORDER BY id", (flag_id,))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur]


def _ledger(store: Any, keys: set[tuple[str, str]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for source, key in sorted(keys):
        cur = store.conn.execute(
            "SELECT * FROM push_ledger WHERE source = ? AND source_key = ?", (source, key)
        )
        cols = [d[0] for d in cur.description]
        out.extend(dict(zip(cols, r, strict=True)) for r in cur)
    return out


def build_export(
    store: Any,
    namespace: str,
    client_id: str,
    *,
    scored: Sequence[Any],
    audit: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The ``client.json`` document."""
    rows = client_rows(store, namespace, client_id)
    alerts = []
    for f in store.list_flags("all", None, client_id, namespace=namespace):
        full = store.alert(f["id"]) or f
        alerts.append(full)
    return {
        "client": {"namespace": namespace, "client_id": client_id},
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scores": [s.as_dict() for s in scored],
        "alerts": alerts,
        "attendance": rows["appointments"],
        "details": rows["client_info"],
        "pushed": [
            {
                "source": r["source"],
                "source_key": r["source_key"],
                # a scores-file source keeps its line only: its values as the file shows them
                "payload": (
                    json.loads(r["payload"]) if r["payload"] else values_of_line(r["line"])
                ),
            }
            for r in rows["outbox"]
        ],
        "quarantine": [
            {**q, "reasons": json.loads(q["reasons"]), "raw": _json(q.get("raw"))}
            for q in rows["quarantine"]
        ],
        "audit": list(audit),
        "store": rows,
    }


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _flat(value: Any) -> Any:
    """A CSV cell: lists joined with ';', dicts as JSON, text guarded against formulas."""
    if isinstance(value, list | tuple):
        value = ";".join(str(v.get("rule_id", v)) if isinstance(v, dict) else str(v) for v in value)
    elif isinstance(value, dict):
        value = json.dumps(value, sort_keys=True)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def write_export(
    target: Path,
    doc: Mapping[str, Any],
    *,
    pages: Mapping[str, str],
    files: Mapping[str, Path],
    archive: bool,
    copyright_lines: Sequence[str],
) -> Path:
    """Write the export to ``target`` (a new folder, or a ``.zip`` when ``archive``)."""
    if target.exists():
        raise ConfigError(f"{target} already exists", hint="give a new folder or file name")
    if not target.parent.is_dir():  # a folder and an archive alike
        raise ConfigError(f"the folder {target.parent} does not exist")
    client = doc["client"]
    parts: dict[str, bytes] = {
        "client.json": json.dumps(doc, indent=2, ensure_ascii=False, default=str).encode(),
        "scores.csv": _table(doc["scores"]),
        "alerts.csv": _table(
            [{k: v for k, v in a.items() if k != "history"} for a in doc["alerts"]]
        ),
        "alert_events.csv": _table([e for a in doc["alerts"] for e in a.get("history", [])]),
        "appointments.csv": _table(doc["attendance"]),
        "audit.csv": _table(doc["audit"]),
        "README.txt": README.format(
            client_id=client["client_id"],
            namespace=client["namespace"],
            at=doc["exported_at"],
            copyright="\n".join(copyright_lines),
        ).encode(),
    }
    for name, html in pages.items():
        parts[name] = html.encode()
    for name, path in files.items():
        parts[name] = path.read_bytes()
    if archive:
        return _write_zip(target, parts)
    return _write_folder(target, parts)


def _table(rows: Sequence[Mapping[str, Any]]) -> bytes:
    flat = [{k: _flat(v) for k, v in r.items()} for r in rows]
    buf = io.StringIO()
    keys: list[str] = []
    for r in flat:
        keys.extend(k for k in r if k not in keys)
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\r\n")
    w.writeheader()
    w.writerows(flat)
    return buf.getvalue().encode("utf-8-sig")


def _write_folder(target: Path, parts: Mapping[str, bytes]) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=".fit-export-", dir=target.parent))  # mode 0700
    try:
        for name, blob in parts.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(path.parent, 0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
        os.chmod(tmp, 0o700)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _write_zip(target: Path, parts: Mapping[str, bytes]) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=".fit-export-", suffix=".zip", dir=target.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as z:
            for name, blob in parts.items():
                info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
                info.external_attr = 0o600 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, blob)
        os.rename(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def report_pages(
    page: Callable[[str, str, str | None], str | None] | None,
    namespace: str,
    client_id: str,
    episodes: Sequence[str],
) -> dict[str, str]:
    """The client's report page per episode (none without a renderer)."""
    out: dict[str, str] = {}
    if page is None:
        return out
    from .reports.output import safe_name

    for episode in episodes:
        html = page(namespace, client_id, episode)
        if html is not None:
            out[f"report-{safe_name(episode)}.html"] = html
    return out
