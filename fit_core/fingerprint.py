"""The scoring fingerprint: everything that changes scores or alerts, hashed by part.

The store keeps the fingerprint its scores were computed with (``meta.scoring_fingerprint``).
When the fingerprint a sync computes differs, the sync rescores every client before it pushes,
so stored scores and alerts never mix two configurations and ``fit score`` on the same data
gives the same answer as the store. Parts:

- ``settings``: every ``[rules]`` value (cutoffs, reliable change, windows, days, comparison,
  switched-off and opt-in rules), "today" excepted;
- ``rules``: the active rules, with id, version, family, severity, class and the package (and
  its version) that registered them;
- ``measures``: every measure's full specification (items, ranges, age bands and cutoffs,
  reliable change, precision) and its package;
- ``model``: the trajectory models in force (each one's id, kind and a hash of its data);
- ``engine``: the fit-sync version and :data:`SCORING_REVISION`, raised whenever the clinical
  logic changes in a way stored scores must follow.

Pure: the caller passes what it has (no store, no clock).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from typing import Any

from .measures import Measure
from .settings import Settings

__all__ = ["PARTS", "SCORING_REVISION", "changed_parts", "fingerprint"]

#: raised when scoring, rules or the alert lifecycle change what a store must hold
SCORING_REVISION = 3
PARTS = ("settings", "rules", "measures", "model", "engine")


def _hash(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, default=_plain, separators=(",", ":"))
    return hashlib.blake2b(blob.encode(), digest_size=12).hexdigest()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, Mapping):
        return dict(value)
    return repr(value)


def _package_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def fingerprint(
    settings: Settings,
    rules: Iterable[Any],
    measures: Mapping[str, Measure],
    *,
    owners: Mapping[tuple[str, str], str] | None = None,
    versions: Mapping[str, str | None] | None = None,
    model: tuple[int, str, Mapping[str, Any]]
    | Sequence[tuple[int, str, Mapping[str, Any]]]
    | None = None,
) -> dict[str, str]:
    """The fingerprint by part (see the module docstring). ``owners`` maps ``("rule", id)`` and
    ``("measure", key)`` to the registering package, ``versions`` a package to its version
    (both from the plugin registry; fit-sync's own version is looked up in the installed
    distributions only when ``versions`` lacks it); ``model`` is the store's row of the model in
    force, or the rows of every model in force (one per measure and rater)."""
    from .scoring import rule_active

    owners = owners or {}
    versions = versions or {}

    def owner(kind: str, key: str) -> list[Any]:
        package = owners.get((kind, key))
        return [package, versions.get(package) if package else None]

    plain = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    plain.pop("as_of", None)
    active = sorted(
        (
            [
                r.id,
                r.version,
                r.family,
                getattr(r, "severity", None),
                f"{type(r).__module__}.{type(r).__qualname__}",
                *owner("rule", r.id),
            ]
            for r in rules
            if rule_active(r, settings)
        ),
        key=lambda row: str(row[0]),
    )
    measure_rows = sorted(
        ([key, dataclasses.asdict(m), *owner("measure", key)] for key, m in measures.items()),
        key=lambda row: str(row[0]),
    )
    rows = [] if model is None else [model] if isinstance(model, tuple) else list(model)
    model_row: Any = [[m[0], m[1], _hash(m[2])] for m in rows] or None
    if len(rows) == 1:
        model_row = model_row[0]  # one model hashes as it always has
    return {
        "settings": _hash(plain),
        "rules": _hash(active),
        "measures": _hash(measure_rows),
        "model": _hash(model_row),
        "engine": _hash(
            [versions.get("fit-sync") or _package_version("fit-sync"), SCORING_REVISION]
        ),
    }


def changed_parts(old: Mapping[str, str] | None, new: Mapping[str, str]) -> list[str]:
    """The parts that differ (every part when there is no old fingerprint)."""
    if not old:
        return list(PARTS)
    return [p for p in PARTS if old.get(p) != new.get(p)]
