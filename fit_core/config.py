"""The TOML config file: loaded with ``tomllib``, validated strictly with clear messages.

Our own keys are strict (an unknown key is an error naming it); each source's adapter-specific
keys are validated by that adapter's ``options_schema``. Secrets never live here.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError, fields

from .errors import ConfigError
from .identity import CASE_MODES, DEFAULT_CASE
from .notify.config import NotifyConfig, notify_from_mapping
from .reports_config import ReportsConfig, reports_from_mapping
from .settings import Settings, settings_from_config
from .storefile import warn_world_writable

SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_SECRET_NAME = re.compile(r"(^|_)(token|password|secret|api_key|apikey|private_key)$", re.I)
CONFIG_ENV = "FIT_CONFIG"


def default_config_path() -> Path:
    """``$FIT_CONFIG``, else ``<user config dir>/fit/config.toml``."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("fit", appauthor=False)) / "config.toml"


def default_store_path() -> Path:
    """``$STATE_DIRECTORY/fit.sqlite3`` under systemd, else ``<user data dir>/fit/fit.sqlite3``."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0]) / "fit.sqlite3"
    from platformdirs import user_data_dir

    return Path(user_data_dir("fit", appauthor=False)) / "fit.sqlite3"


@dataclass(frozen=True)
class SourceConfig:
    name: str
    adapter: str
    namespace: str
    enabled: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)
    #: "fold": client codes differing only in letter case are one client (see fit_core.identity)
    client_id_case: str = DEFAULT_CASE
    #: the folder of the config file: relative paths in the options are taken from it
    base_dir: Path | None = None


# --- paths in the config ----------------------------------------------------------------------
#
# Every relative path in the config is taken from the config file's folder, never from the
# current directory: cron and systemd start `fit sync` in $HOME or /, not where the config is.

_BASE_DIR: ContextVar[Path | None] = ContextVar("fit_config_base_dir", default=None)


@contextmanager
def config_base(base: Path | None) -> Iterator[None]:
    """Relative paths resolved by :func:`config_path` inside this block start at ``base``."""
    token = _BASE_DIR.set(base)
    try:
        yield
    finally:
        _BASE_DIR.reset(token)


def config_path(value: str | Path, base: Path | None = None) -> Path:
    """A path written in the config: ``~`` expanded; a relative path taken from ``base`` (default:
    the config file's folder while an adapter's options load, see :func:`adapter_options`)."""
    path = Path(value).expanduser()
    base = base if base is not None else _BASE_DIR.get()
    if not path.is_absolute() and base is not None:
        path = base / path
    return path


class PathOption(fields.String):
    """A path option of an adapter: loads as the absolute path, relative to the config file.

    Declare path keys with it in an adapter's ``options_schema`` (``path = PathOption()``), so
    ``path = "exports/admins.csv"`` means the same file whatever directory `fit` runs in.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text.strip():
            raise ValidationError("must not be empty")
        return str(config_path(text))


@dataclass(frozen=True)
class SyncConfig:
    timezone: str | None = None  # None: the machine's
    push_batch_size: int | None = None  # None: the adapter's default
    record_batch_size: int = 2000
    #: processes that score a big batch of clients: 2 forks a second one where it can pay
    #: (:mod:`fit_core.forkmap`), 1 keeps the sync in one process
    processes: int = 2

    def tzinfo(self) -> dt.tzinfo:
        if self.timezone:
            return ZoneInfo(self.timezone)
        return local_timezone()


@dataclass(frozen=True)
class PrivacyConfig:
    """``[privacy]``: retention and the audit log's JSON-lines copy (see docs/privacy.md)."""

    #: a fit_core.retention.Retention, or None: ended episodes are kept
    retain_after_end: Any = None
    #: a JSON-lines file every audit entry is appended to, or None
    audit_log: Path | None = None


@dataclass(frozen=True)
class Config:
    path: Path | None
    store_path: Path
    sync: SyncConfig
    sources: Mapping[str, SourceConfig]
    settings: Settings
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    #: ``[notify]``: channels, routes, clinicians' addresses (see :mod:`fit_core.notify.config`)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    #: ``[reports]``: the caseload pages kept after each sync
    reports: ReportsConfig = field(default_factory=ReportsConfig)

    def source(self, name: str) -> SourceConfig:
        try:
            return self.sources[name]
        except KeyError:
            known = ", ".join(self.sources) or "none configured"
            raise ConfigError(
                f"no source named {name!r} in the config (sources: {known})",
                hint="add a [sources.NAME] table, see `fit init` and the README",
            ) from None


def local_timezone() -> dt.tzinfo:
    """The machine's timezone as a ZoneInfo where it can be named, else a fixed offset."""
    tz_env = os.environ.get("TZ")
    if tz_env:
        try:
            return ZoneInfo(tz_env.lstrip(":"))
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            return ZoneInfo(target.split("zoneinfo/", 1)[1])
    except (OSError, ZoneInfoNotFoundError, ValueError):
        pass
    return dt.datetime.now().astimezone().tzinfo or dt.UTC


_TOP_KEYS = {"store", "sync", "sources", "rules", "privacy", "notify", "reports"}
_PRIVACY_KEYS = {"retain_after_end", "audit_log"}
_STORE_KEYS = {"path"}
_SYNC_KEYS = {"timezone", "push_batch_size", "record_batch_size", "processes"}
_SOURCE_COMMON = {"adapter", "namespace", "enabled", "client_id_case"}


def _unknown(where: str, keys: set[str], known: set[str]) -> None:
    extra = sorted(keys - known)
    if extra:
        raise ConfigError(
            f"unknown key {extra[0]!r} in {where}",
            hint=f"known keys: {', '.join(sorted(known))}",
        )


def load_config(path: Path | str | None = None) -> Config:
    """Read and validate the config file (adapter options are checked by :func:`check_sources`)."""
    p = Path(path).expanduser() if path else default_config_path()
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {p} does not exist", hint=f"create one with `fit --config {p} init`"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"config path {p} is a folder", hint="give the config file") from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read the config file {p}: {exc.strerror}",
            hint="let the user running fit read it",
        ) from None
    try:
        # a byte-order mark (Notepad writes one) is not TOML: read past it
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"config file {p} is not UTF-8 text (line {line})",
            hint="save it as UTF-8 (in Notepad: Save as, Encoding UTF-8)",
        ) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    if not raw:
        raise ConfigError(
            f"config file {p} is empty",
            hint='add at least a [sources.NAME] table (adapter = "csv", path, scores_path); '
            f"`fit --config {p} init --force` writes a commented example",
        )
    warn_world_writable(p, "the config file")
    warn_world_writable(p.parent, "the config file's folder", sticky_ok=True)
    return config_from_mapping(raw, path=p)


def config_from_mapping(raw: Mapping[str, Any], path: Path | None = None) -> Config:
    _unknown("the config file", set(raw), _TOP_KEYS)
    store = _table(raw, "store")
    _unknown("[store]", set(store), _STORE_KEYS)
    if "path" in store and (not isinstance(store["path"], str) or not store["path"].strip()):
        raise ConfigError(
            "[store] path is empty or not a string",
            hint='give a file, for example path = "~/.local/share/fit/fit.sqlite3"',
        )
    base_dir = path.parent.absolute() if path is not None else None
    if "path" not in store:
        store_path = default_store_path()
    elif str(store["path"]) == ":memory:":
        store_path = Path(":memory:")
    else:
        store_path = config_path(str(store["path"]), base_dir)

    sync_raw = _table(raw, "sync")
    _unknown("[sync]", set(sync_raw), _SYNC_KEYS)
    tz = sync_raw.get("timezone")
    if tz is not None:
        try:
            ZoneInfo(str(tz))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"[sync] timezone {tz!r} is not a known IANA timezone",
                hint='use a name like "Europe/Berlin" or "America/Chicago"',
            ) from None
    sync = SyncConfig(
        timezone=str(tz) if tz is not None else None,
        push_batch_size=_positive_int(sync_raw, "push_batch_size", "[sync]"),
        record_batch_size=_positive_int(sync_raw, "record_batch_size", "[sync]") or 2000,
        processes=_processes(sync_raw),
    )

    sources: dict[str, SourceConfig] = {}
    for name, table in _table(raw, "sources").items():
        where = f"[sources.{name}]"
        if not SOURCE_NAME.match(name):
            raise ConfigError(
                f"source name {name!r} is not allowed",
                hint="use lowercase letters, digits and _ (it becomes part of env variable names)",
            )
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table")
        if "adapter" not in table:
            raise ConfigError(
                f"{where} has no adapter key", hint='add adapter = "csv" (see `fit plugins`)'
            )
        namespace = str(table.get("namespace", name))
        enabled = table.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{where} enabled must be true or false")
        case = table.get("client_id_case", DEFAULT_CASE)
        if case not in CASE_MODES:
            raise ConfigError(
                f"{where} client_id_case must be one of {', '.join(map(repr, CASE_MODES))}",
                hint='"fold" (the default) treats G0001 and g0001 as one client; "keep" when '
                "codes differing only in case are different clients",
            )
        options = {k: v for k, v in table.items() if k not in _SOURCE_COMMON}
        for key in options:
            if _SECRET_NAME.search(key):
                raise ConfigError(
                    f"{where} {key}: secrets never live in the config file",
                    hint=f"remove it and run `fit keys set {name} {key}`, or set "
                    f"FIT_{name.upper()}_{key.upper()} or a systemd credential {name}.{key}",
                )
        sources[name] = SourceConfig(
            name, str(table["adapter"]), namespace, enabled, options, str(case), base_dir
        )
    _same_case_per_namespace(sources)

    settings = settings_from_config(_table(raw, "rules"))
    privacy = _privacy(_table(raw, "privacy"), path)
    notify = notify_from_mapping(raw.get("notify"))
    reports = reports_from_mapping(raw.get("reports"), path)
    return Config(
        path, store_path, sync, sources, settings, raw, privacy, notify=notify, reports=reports
    )


def _privacy(table: Mapping[str, Any], path: Path | None) -> PrivacyConfig:
    _unknown("[privacy]", set(table), _PRIVACY_KEYS)
    audit_log = None
    if "audit_log" in table:
        value = table["audit_log"]
        if not isinstance(value, str) or not value.strip():
            raise ConfigError("[privacy] audit_log must be a file path")
        audit_log = Path(value).expanduser()
        if path is not None and not audit_log.is_absolute():
            audit_log = path.parent / audit_log
    retention = None
    if table.get("retain_after_end") is not None:  # imported only where retention is set
        from .retention import parse_retention

        retention = parse_retention(table["retain_after_end"])
    return PrivacyConfig(retention, audit_log)


def _same_case_per_namespace(sources: Mapping[str, SourceConfig]) -> None:
    """Sources sharing a namespace share its clients, so they must normalise codes alike."""
    seen: dict[str, SourceConfig] = {}
    for src in sources.values():
        other = seen.setdefault(src.namespace, src)
        if other.client_id_case != src.client_id_case:
            raise ConfigError(
                f"[sources.{other.name}] and [sources.{src.name}] share the namespace "
                f"{src.namespace!r} but not client_id_case ({other.client_id_case!r} vs "
                f"{src.client_id_case!r})",
                hint="give both the same client_id_case: one client code must mean one client",
            )


def namespace_cases(config: Config) -> dict[str, str]:
    """Each namespace's ``client_id_case`` (its sources agree: see :func:`config_from_mapping`)."""
    return {s.namespace: s.client_id_case for s in config.sources.values()}


def check_sources(config: Config, registry: Any) -> dict[str, Mapping[str, Any]]:
    """Validate every source's adapter options; returns the loaded options per source."""
    out: dict[str, Mapping[str, Any]] = {}
    for name, src in config.sources.items():
        adapter = registry.adapter(src.adapter)
        out[name] = adapter_options(src, adapter)
    return out


def adapter_options(src: SourceConfig, adapter: Any) -> Mapping[str, Any]:
    schema_cls = getattr(adapter, "options_schema", None)
    if schema_cls is None:
        return dict(src.options)
    try:
        with config_base(src.base_dir):
            return schema_cls().load(dict(src.options))
    except ValidationError as exc:
        key, msg = next(iter(_flat(exc.messages).items()))
        raise ConfigError(
            f"[sources.{src.name}] {key}: {msg}",
            hint=f"see the README section on the {src.adapter} adapter",
        ) from None


def _flat(messages: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(messages, Mapping):
        for k, v in messages.items():
            out.update(_flat(v, f"{prefix}{k}." if prefix or k != "_schema" else ""))
    elif isinstance(messages, list):
        if all(isinstance(m, str) for m in messages):
            out[prefix.rstrip(".") or "config"] = "; ".join(
                "unknown key" if m == "Unknown field." else m for m in messages
            )
        else:
            for m in messages:
                out.update(_flat(m, prefix))
    else:
        out[prefix.rstrip(".") or "config"] = str(messages)
    return out


def _table(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{key}] must be a table")
    return value


def _processes(sync_raw: Mapping[str, Any]) -> int:
    value = _positive_int(sync_raw, "processes", "[sync]")
    if value is None:
        return 2
    if value > 2:
        raise ConfigError(
            f"[sync] processes must be 1 or 2, not {value}",
            hint="2 lets a second process score big batches where there is a second CPU; "
            "1 keeps the sync in one process",
        )
    return value


def _positive_int(table: Mapping[str, Any], key: str, where: str) -> int | None:
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{where} {key} must be a whole number >= 1")
    return value
