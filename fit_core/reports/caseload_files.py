"""Where the caseload pages live inside their folder (pure; no rendering imports).

::

    <caseload_dir>/index.html                  every clinician's page, with counts
    <caseload_dir>/caseload-<clinician>.html   one page per clinician
    <caseload_dir>/caseload-unassigned.html    clients whose records name no clinician
    <caseload_dir>/clients/<P-XXXXX-XXXXX>.html    each active client's report (latest episode)
    <caseload_dir>/.fit-caseload.json          what fit-sync wrote, by client (see below)

Client pages are named by the client's keyed pseudonym, never the client id, so a folder
listing, a link in an e-mail or a web server's log does not show who the client is. The
manifest records every file fit-sync wrote and which client it belongs to; pages of clients
that are no longer active are removed at the next run, and :func:`client_files` finds every
file of one client (for erasing a client).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .output import safe_name

__all__ = [
    "CLIENT_DIR",
    "INDEX",
    "MANIFEST",
    "UNASSIGNED",
    "client_file",
    "client_files",
    "clinician_file",
    "join",
    "manifest_key",
]

CLIENT_DIR = "clients"
INDEX = "index.html"
MANIFEST = ".fit-caseload.json"
UNASSIGNED = "unassigned"


def clinician_file(clinician_id: str | None) -> str:
    """``caseload-T03.html``; an id that is not a safe file name (or is ``unassigned``) gets a
    short hash, so two clinicians never share a page."""
    if not clinician_id:
        return f"caseload-{UNASSIGNED}.html"
    name = safe_name(clinician_id, max_len=60)
    if name != clinician_id or name == UNASSIGNED:
        digest = hashlib.blake2b(clinician_id.encode(), digest_size=4).hexdigest()
        name = f"{name}-{digest}"
    return f"caseload-{name}.html"


def client_file(pseudonym: str) -> str:
    """``clients/P-XXXXX-XXXXX.html``: a client's page, by pseudonym."""
    return f"{CLIENT_DIR}/{safe_name(pseudonym)}.html"


def join(base: str, relative: str) -> str:
    """``relative`` under ``base``: a URL (``https://…/``) or a folder path."""
    if "://" in base:
        return base.rstrip("/") + "/" + relative
    return str(Path(base) / relative)


def client_files(directory: Path, namespace: str, client_id: str) -> list[Path]:
    """Every file of the caseload folder that belongs to one client (from the manifest)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    files = manifest.get("clients", {}).get(manifest_key(namespace, client_id), [])
    return [directory / f for f in files]


def manifest_key(namespace: str, client_id: str) -> str:
    """A client's key in the manifest: ``<namespace>/<client id>``."""
    return f"{namespace}/{client_id}"
