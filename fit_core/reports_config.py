"""The ``[reports]`` section of the config: the caseload pages kept current after each sync.

.. code-block:: toml

    [reports]
    caseload_dir = "/srv/fit/caseload"   # regenerated after every `fit sync`
    caseload_pseudonym = false           # true: P-XXXXX-XXXXX instead of client ids on the pages
    caseload_stale_days = 21             # no session for this many days: "no data lately"
    caseload_group_read = false          # true: files 0640, folders 0750 (a web server's group)

Plain data, no rendering imports: the config loads without the reports extra (and the config
layer never imports the reports package).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["DEFAULT_STALE_DAYS", "ReportsConfig", "reports_from_mapping"]

DEFAULT_STALE_DAYS = 21
_KEYS = {"caseload_dir", "caseload_pseudonym", "caseload_stale_days", "caseload_group_read"}


@dataclass(frozen=True)
class ReportsConfig:
    """``caseload_dir`` None: no caseload pages after a sync (``fit report caseload`` still
    writes them on request)."""

    caseload_dir: Path | None = None
    caseload_pseudonym: bool = False
    caseload_stale_days: int = DEFAULT_STALE_DAYS
    #: files readable by the folder's group too (0640, folders 0750), for a web server
    caseload_group_read: bool = False


def reports_from_mapping(raw: Any, config_path: Path | None = None) -> ReportsConfig:
    """Validate ``[reports]``; a relative ``caseload_dir`` is relative to the config file."""
    if raw is None:
        return ReportsConfig()
    if not isinstance(raw, Mapping):
        raise ConfigError("[reports] must be a table")
    extra = sorted(set(raw) - _KEYS)
    if extra:
        raise ConfigError(
            f"unknown key {extra[0]!r} in [reports]", hint=f"known keys: {', '.join(sorted(_KEYS))}"
        )
    directory = None
    if "caseload_dir" in raw:
        value = raw["caseload_dir"]
        if not isinstance(value, str) or not value.strip():
            raise ConfigError("[reports] caseload_dir must be a folder path")
        directory = Path(value).expanduser()
        if config_path is not None and not directory.is_absolute():
            directory = config_path.parent / directory
    pseudo = raw.get("caseload_pseudonym", False)
    if not isinstance(pseudo, bool):
        raise ConfigError("[reports] caseload_pseudonym must be true or false")
    stale = raw.get("caseload_stale_days", DEFAULT_STALE_DAYS)
    if not isinstance(stale, int) or isinstance(stale, bool) or stale < 1:
        raise ConfigError("[reports] caseload_stale_days must be a whole number >= 1")
    group = raw.get("caseload_group_read", False)
    if not isinstance(group, bool):
        raise ConfigError("[reports] caseload_group_read must be true or false")
    return ReportsConfig(directory, pseudo, stale, group)
