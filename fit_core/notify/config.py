"""The ``[notify]`` section of the config: channels, routes and clinicians' addresses.

Validated strictly when the config is loaded (an unknown key is an error naming it and the
known ones); a channel's own options are validated by its notifier's ``options_schema`` when
the plugins are loaded (:func:`check_notify`). Secrets never live here.

.. code-block:: toml

    [notify]
    report_base = "https://fit.clinic.example/caseload/"   # where recipients open the pages

    [notify.clinicians]
    T03 = "anna.berg@clinic.example"
    T07 = ["ben.ng@clinic.example", "ben.ng@home.example"]

    [notify.channels.clinic_mail]
    type = "email"
    host = "smtp.clinic.example"
    username = "fit-alerts@clinic.example"
    from = "FIT alerts <fit-alerts@clinic.example>"

    [notify.routes.clinicians]
    channel = "clinic_mail"
    to = "clinician"
    when = "digest"
    at = ["07:30"]
    quiet_days = ["sat", "sun"]

    [notify.routes.supervisor]
    channel = "clinic_mail"
    to = ["supervision@clinic.example"]
    severities = ["alert"]
    when = "immediate"
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigError

__all__ = [
    "CHANNEL_NAME",
    "DETAILS",
    "LABELS",
    "SEVERITIES",
    "WEEKDAYS",
    "ChannelConfig",
    "NotifyConfig",
    "RouteConfig",
    "check_notify",
    "notify_from_mapping",
]

CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
SEVERITIES: tuple[str, ...] = ("alert", "warning", "info")
DETAILS: tuple[str, ...] = ("minimal", "scores")
LABELS: tuple[str, ...] = ("pseudonym", "id")
WEEKDAYS: dict[str, int] = {
    **{d: i for i, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))},
    **{
        d: i
        for i, d in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
}
_SECRET_NAME = re.compile(r"(^|_)(token|password|secret|api_key|apikey|private_key)$", re.I)
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")

_TOP_KEYS = {"report_base", "clinicians", "channels", "routes"}
_ROUTE_KEYS = {
    "channel",
    "to",
    "fallback",
    "severities",
    "rules",
    "clinicians",
    "when",
    "at",
    "quiet_days",
    "ended",
    "detail",
    "client_label",
    "enabled",
}


@dataclass(frozen=True)
class ChannelConfig:
    """``[notify.channels.<name>]``: the notifier type and its own options (unvalidated)."""

    name: str
    type: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RouteConfig:
    """``[notify.routes.<name>]``: which alerts go to whom, through which channel, and when.

    ``to`` is ``"clinician"`` (each alert to its clinician's addresses in
    ``[notify.clinicians]``), a tuple of addresses (one message for all of them), or ``()``
    (channels without addresses: one message to the channel). ``severities``, ``rules`` and
    ``clinicians`` filter the alerts (None: all).
    """

    name: str
    channel: str
    to: Literal["clinician"] | tuple[str, ...] = ()
    fallback: tuple[str, ...] = ()
    severities: frozenset[str] | None = None
    rules: frozenset[str] | None = None
    clinicians: frozenset[str] | None = None
    when: Literal["immediate", "digest"] = "digest"
    at: tuple[dt.time, ...] = ()
    quiet_weekdays: frozenset[int] = frozenset()
    quiet_dates: frozenset[dt.date] = frozenset()
    ended: bool = True
    detail: str = "minimal"
    client_label: str = "pseudonym"
    enabled: bool = True

    @property
    def per_clinician(self) -> bool:
        return self.to == "clinician"

    def timing(self) -> str:
        """``immediate`` or ``digest at 07:30, 13:00``, with the quiet days."""
        text = (
            "immediate (after each sync)"
            if self.when == "immediate"
            else "digest at " + ", ".join(t.strftime("%H:%M") for t in self.at)
        )
        quiet = [d for d, i in WEEKDAYS.items() if len(d) == 3 and i in self.quiet_weekdays]
        quiet += [d.isoformat() for d in sorted(self.quiet_dates)]
        return text + (f"; quiet on {', '.join(quiet)}" if quiet else "")


@dataclass(frozen=True)
class NotifyConfig:
    """The whole ``[notify]`` section (empty when the config has none)."""

    channels: Mapping[str, ChannelConfig] = field(default_factory=dict)
    routes: Mapping[str, RouteConfig] = field(default_factory=dict)
    clinicians: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    report_base: str | None = None

    def __bool__(self) -> bool:
        return bool(self.routes)

    def addresses_of(self, clinician_id: str | None) -> tuple[str, ...]:
        """The addresses of a clinician (matched as written, then ignoring letter case)."""
        if not clinician_id:
            return ()
        found = self.clinicians.get(clinician_id)
        if found is None:
            folded = clinician_id.strip().casefold()
            found = next(
                (v for k, v in self.clinicians.items() if k.strip().casefold() == folded), ()
            )
        return found

    def route(self, name: str) -> RouteConfig:
        try:
            return self.routes[name]
        except KeyError:
            known = ", ".join(self.routes) or "none configured"
            raise ConfigError(
                f"no route named {name!r} in [notify.routes] (routes: {known})",
                hint="see `fit notify status` and the README section on notifications",
            ) from None


def _unknown(where: str, keys: set[str], known: set[str]) -> None:
    extra = sorted(keys - known)
    if extra:
        raise ConfigError(
            f"unknown key {extra[0]!r} in {where}", hint=f"known keys: {', '.join(sorted(known))}"
        )


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table")
    return value


def _strings(value: Any, where: str, *, allow_one: bool = True) -> tuple[str, ...]:
    if isinstance(value, str) and allow_one:
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where} must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _address(value: str, where: str) -> str:
    if not _EMAIL.match(value):
        raise ConfigError(
            f"{where}: {value!r} is not an e-mail address",
            hint='write it as "name@clinic.example" (no display name, no brackets)',
        )
    return value


def _bool(table: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where} {key} must be true or false")
    return value


def _choice(
    table: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...], default: str
) -> str:
    value = table.get(key, default)
    if value not in choices:
        raise ConfigError(f"{where} {key} must be one of {', '.join(map(repr, choices))}")
    return str(value)


def _times(value: Any, where: str) -> tuple[dt.time, ...]:
    items = value if isinstance(value, list) else [value]
    out: list[dt.time] = []
    for item in items:
        if isinstance(item, dt.time):
            out.append(item.replace(second=0, microsecond=0, tzinfo=None))
            continue
        m = _TIME.match(item) if isinstance(item, str) else None
        if m is None:
            raise ConfigError(
                f"{where} at: {item!r} is not a time of day",
                hint='write clinic-local times as "HH:MM", e.g. at = ["07:30", "13:00"]',
            )
        out.append(dt.time(int(m.group(1)), int(m.group(2))))
    if not out:
        raise ConfigError(f"{where} at must name at least one time of day")
    return tuple(sorted(set(out)))


def _quiet(value: Any, where: str) -> tuple[frozenset[int], frozenset[dt.date]]:
    if not isinstance(value, list):
        raise ConfigError(f"{where} quiet_days must be a list")
    days: set[int] = set()
    dates: set[dt.date] = set()
    for item in value:
        if isinstance(item, dt.date) and not isinstance(item, dt.datetime):
            dates.add(item)
            continue
        if isinstance(item, str) and item.strip().lower() in WEEKDAYS:
            days.add(WEEKDAYS[item.strip().lower()])
            continue
        try:
            dates.add(dt.date.fromisoformat(str(item)))
        except ValueError:
            raise ConfigError(
                f"{where} quiet_days: {item!r} is neither a weekday nor a date",
                hint='use "sat", "sun" (mon..sun) or dates like "2025-12-25"',
            ) from None
    return frozenset(days), frozenset(dates)


def _route(
    name: str, table: Mapping[str, Any], channels: Mapping[str, ChannelConfig]
) -> RouteConfig:
    where = f"[notify.routes.{name}]"
    if not CHANNEL_NAME.match(name):
        raise ConfigError(
            f"route name {name!r} is not allowed", hint="use lowercase letters, digits and _"
        )
    table = _table(table, where)
    _unknown(where, set(table), _ROUTE_KEYS)
    channel = table.get("channel")
    if not isinstance(channel, str):
        raise ConfigError(
            f"{where} has no channel", hint='add channel = "<a [notify.channels] name>"'
        )
    if channel not in channels:
        known = ", ".join(channels) or "none"
        raise ConfigError(
            f"{where} channel {channel!r} is not defined (channels: {known})",
            hint=f"add a [notify.channels.{channel}] table",
        )
    to_raw = table.get("to", ())
    to: Literal["clinician"] | tuple[str, ...]
    if to_raw == "clinician":
        to = "clinician"
    elif to_raw == ():
        to = ()
    else:
        to = _strings(to_raw, f"{where} to")
    fallback = _strings(table["fallback"], f"{where} fallback") if "fallback" in table else ()
    if fallback and to != "clinician":
        raise ConfigError(
            f'{where} fallback only applies to to = "clinician"',
            hint="fallback receives the alerts whose clinician has no address",
        )
    severities = None
    if "severities" in table:
        severities = frozenset(
            s.lower() for s in _strings(table["severities"], f"{where} severities")
        )
        bad = sorted(severities - set(SEVERITIES))
        if bad:
            raise ConfigError(
                f"{where} severities: {bad[0]!r} is not a severity",
                hint=f"severities are {', '.join(SEVERITIES)}",
            )
    rules = frozenset(_strings(table["rules"], f"{where} rules")) if "rules" in table else None
    clinicians = (
        frozenset(_strings(table["clinicians"], f"{where} clinicians"))
        if "clinicians" in table
        else None
    )
    when = _choice(table, "when", where, ("immediate", "digest"), "digest")
    at: tuple[dt.time, ...] = ()
    if when == "digest":
        if "at" not in table:
            raise ConfigError(
                f"{where} is a digest without times",
                hint='add at = ["07:30"] (clinic-local), or when = "immediate"',
            )
        at = _times(table["at"], where)
    elif "at" in table:
        raise ConfigError(f'{where} at only applies to when = "digest"')
    quiet_days, quiet_dates = _quiet(table.get("quiet_days", []), where)
    if len(quiet_days) == 7:
        raise ConfigError(f"{where} quiet_days names every weekday: nothing would ever be sent")
    return RouteConfig(
        name=name,
        channel=channel,
        to=to,
        fallback=fallback,
        severities=severities,
        rules=rules,
        clinicians=clinicians,
        when=when,  # type: ignore[arg-type]
        at=at,
        quiet_weekdays=quiet_days,
        quiet_dates=quiet_dates,
        ended=_bool(table, "ended", where, when == "digest"),
        detail=_choice(table, "detail", where, DETAILS, "minimal"),
        client_label=_choice(table, "client_label", where, LABELS, "pseudonym"),
        enabled=_bool(table, "enabled", where, True),
    )


def notify_from_mapping(raw: Any) -> NotifyConfig:
    """Validate the ``[notify]`` table (``{}`` or None: no notifications)."""
    if raw is None:
        return NotifyConfig()
    raw = _table(raw, "[notify]")
    _unknown("[notify]", set(raw), _TOP_KEYS)
    report_base = raw.get("report_base")
    if report_base is not None and (not isinstance(report_base, str) or not report_base.strip()):
        raise ConfigError("[notify] report_base must be a URL or a folder path")
    clinicians: dict[str, tuple[str, ...]] = {}
    for cid, value in _table(raw.get("clinicians", {}), "[notify.clinicians]").items():
        where = f"[notify.clinicians] {cid}"
        clinicians[str(cid)] = tuple(_address(a, where) for a in _strings(value, where))
    channels: dict[str, ChannelConfig] = {}
    for name, table in _table(raw.get("channels", {}), "[notify.channels]").items():
        where = f"[notify.channels.{name}]"
        if not CHANNEL_NAME.match(name):
            raise ConfigError(
                f"channel name {name!r} is not allowed",
                hint="use lowercase letters, digits and _ (it becomes part of secret names)",
            )
        table = _table(table, where)
        kind = table.get("type")
        if not isinstance(kind, str) or not kind:
            raise ConfigError(f"{where} has no type", hint='add type = "email" or type = "webhook"')
        options = {k: v for k, v in table.items() if k != "type"}
        for key in options:
            if _SECRET_NAME.search(key):
                src = f"notify_{name}"
                raise ConfigError(
                    f"{where} {key}: secrets never live in the config file",
                    hint=f"remove it and run `fit keys set {src} {key}`, or set "
                    f"FIT_{src.upper()}_{key.upper()} or a systemd credential {src}.{key}",
                )
        channels[name] = ChannelConfig(name, kind, options)
    routes = {
        name: _route(name, table, channels)
        for name, table in _table(raw.get("routes", {}), "[notify.routes]").items()
    }
    return NotifyConfig(channels, routes, clinicians, report_base.strip() if report_base else None)


def check_notify(notify: NotifyConfig, registry: Any) -> dict[str, Mapping[str, Any]]:
    """Validate every channel's options with its notifier, and every route against its channel
    (addresses where the channel needs them). Returns the loaded options per channel."""
    from ..config import _flat

    out: dict[str, Mapping[str, Any]] = {}
    for name, ch in notify.channels.items():
        cls = registry.notifier(ch.type)
        schema_cls = getattr(cls, "options_schema", None)
        if schema_cls is None:
            out[name] = dict(ch.options)
            continue
        from marshmallow import ValidationError

        try:
            out[name] = schema_cls().load(dict(ch.options))
        except ValidationError as exc:
            key, msg = next(iter(_flat(exc.messages).items()))
            raise ConfigError(
                f"[notify.channels.{name}] {key}: {msg}",
                hint=f"see the README section on the {ch.type} channel",
            ) from None
    for route in notify.routes.values():
        cls = registry.notifier(notify.channels[route.channel].type)
        where = f"[notify.routes.{route.name}]"
        if cls.addresses == "required":
            if route.to == ():
                raise ConfigError(
                    f"{where} has no recipients",
                    hint='add to = "clinician" (addresses in [notify.clinicians]) or '
                    'to = ["name@clinic.example"]',
                )
            fixed = route.fallback if route.per_clinician else route.to
            if route.per_clinician and not notify.clinicians and not route.fallback:
                raise ConfigError(
                    f"{where} sends to each clinician, but [notify.clinicians] is empty",
                    hint='add [notify.clinicians] with lines like T03 = "name@clinic.example"',
                )
            for address in fixed:
                _address(address, f"{where} {'fallback' if route.per_clinician else 'to'}")
        elif route.to not in ((), "clinician"):
            raise ConfigError(
                f"{where} to: the {cls.name} channel has no addresses",
                hint='leave to out (one message to the channel), or to = "clinician" for one '
                "message per clinician",
            )
    return out
