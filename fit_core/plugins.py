"""Plugin manager factory and the registry of adapters, rules, measures and notifiers.

Nothing happens at import time: call :func:`load_plugins`. Entry points in the ``fit`` group are
loaded one at a time; a plugin that fails to import is reported by name and skipped
(``FIT_STRICT_PLUGINS=1`` makes that fatal, for plugin authors). Built-in plugins come through the
same entry-point group a third-party package uses; :data:`DEFAULT_PLUGINS` is the fallback when
the distribution's metadata is not installed (running from a source tree).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from . import hookspecs
from .adapter import Adapter
from .errors import PluginError
from .measures import Measure
from .scoring import Rule

if TYPE_CHECKING:
    from .notify.channel import Notifier

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "fit"
DEFAULT_PLUGINS: tuple[str, ...] = (
    "fit_core.rules.builtin",
    "fit_adapters.csv",
    "fit_adapters.redcap",
    "fit_adapters.google_forms",
    "fit_adapters.simplepractice",
    "fit_core.notify.builtin",
)


@dataclass(frozen=True)
class LazyAdapter:
    """An adapter class registered by name and place, imported when a source first uses it.

    ``register(LazyAdapter("my_api", "my_package.adapter:MyAdapter"))`` in
    ``fit_register_adapters`` lists the adapter (``fit plugins``, config checks) without
    importing its module: a sync imports only the adapters its sources use, so an adapter with
    heavy dependencies costs nothing to configs that do not use it. The class must be an
    :class:`~fit_core.adapter.Adapter` whose ``name`` is ``name``.
    """

    name: str
    target: str  # "package.module:ClassName"

    def load(self) -> type[Adapter]:
        return _load_class(self.target, self.name, Adapter, "an Adapter")


@dataclass(frozen=True)
class LazyNotifier:
    """A notifier class registered by name and place, imported when a channel first uses it.

    ``register(LazyNotifier("pager", "my_package.pager:PagerNotifier"))`` in
    ``fit_register_notifiers`` lists the channel type (``fit plugins``) without importing its
    module: a sync with no ``[notify]`` channel of that type never imports it (the built-in
    e-mail channel would otherwise bring ``smtplib`` and ``ssl`` into every sync). The class must
    be a :class:`~fit_core.notify.channel.Notifier` whose ``name`` is ``name``.
    """

    name: str
    target: str  # "package.module:ClassName"

    def load(self) -> type[Notifier]:
        from .notify.channel import Notifier

        return _load_class(self.target, self.name, Notifier, "a Notifier")


_T = TypeVar("_T")


def _load_class(target: str, name: str, base: type[_T], kind: str) -> type[_T]:
    """The class ``target`` ("package.module:ClassName"): a subclass of ``base`` named ``name``."""
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"{target} is not {kind} subclass")
    if getattr(cls, "name", None) != name:
        raise TypeError(f"{target} is named {getattr(cls, 'name', None)!r}, registered as {name!r}")
    return cls


@dataclass(frozen=True)
class PluginInfo:
    name: str
    package: str
    version: str | None
    hooks: tuple[str, ...]


@dataclass
class Registry:
    """Everything the plugins registered, with the package that registered each name."""

    pm: pluggy.PluginManager
    plugins: list[PluginInfo] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    #: adapter name -> its class, or a :class:`LazyAdapter` not imported yet (use
    #: :meth:`adapter` to get the class)
    adapters: dict[str, type[Adapter] | LazyAdapter] = field(default_factory=dict)
    rules: dict[str, Rule] = field(default_factory=dict)
    measures: dict[str, Measure] = field(default_factory=dict)
    #: channel type -> its notifier class, or a :class:`LazyNotifier` not imported yet (use
    #: :meth:`notifier` to get the class)
    notifiers: dict[str, type[Notifier] | LazyNotifier] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)

    def adapter(self, name: str) -> type[Adapter]:
        """The adapter class registered as ``name`` (a lazy one is imported now)."""
        try:
            found = self.adapters[name]
        except KeyError:
            known = ", ".join(sorted(self.adapters)) or "none"
            raise PluginError(
                f"no adapter named {name!r} (installed: {known})",
                hint="install the plugin that provides it, then check `fit plugins`",
            ) from None
        if isinstance(found, LazyAdapter):
            owner = self.owners.get(("adapter", name), "?")
            try:
                cls = found.load()
            except Exception as exc:
                raise PluginError(
                    f"adapter {name!r} ({owner}) failed to load: {type(exc).__name__}: {exc}",
                    hint=f"reinstall {owner}, or run with -vv for the traceback",
                ) from exc
            self.adapters[name] = found = cls
        return found

    def notifier(self, name: str) -> type[Notifier]:
        """The notifier class registered as ``name`` (a lazy one is imported now)."""
        try:
            found = self.notifiers[name]
        except KeyError:
            known = ", ".join(sorted(self.notifiers)) or "none"
            raise PluginError(
                f"no notification channel type named {name!r} (installed: {known})",
                hint="install the plugin that provides it, then check `fit plugins`",
            ) from None
        if isinstance(found, LazyNotifier):
            owner = self.owners.get(("notifier", name), "?")
            try:
                cls = found.load()
            except Exception as exc:
                raise PluginError(
                    f"notification channel type {name!r} ({owner}) failed to load: "
                    f"{type(exc).__name__}: {exc}",
                    hint=f"reinstall {owner}, or run with -vv for the traceback",
                ) from exc
            self.notifiers[name] = found = cls
        return found

    def has_listeners(self, hook: str) -> bool:
        """Whether any plugin implements the notification hook ``hook``."""
        return bool(getattr(self.pm.hook, hook).get_hookimpls())

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call a notification hook one implementation at a time; a failure is logged by name."""
        caller = getattr(self.pm.hook, hook)
        for impl in caller.get_hookimpls():
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception:
                log.exception("plugin %s failed in %s; the sync goes on", impl.plugin_name, hook)

    def resolve_secret(self, source: str, key: str) -> str | None:
        return self.pm.hook.fit_resolve_secret(source=source, key=key)


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


def _strict() -> bool:
    return os.environ.get("FIT_STRICT_PLUGINS", "") not in ("", "0")


def _dist_of(
    ep: metadata.EntryPoint, seen: dict[int, tuple[str, str | None]] | None = None
) -> tuple[str, str | None]:
    """(package name, version) of an entry point's distribution; ``seen`` keeps the answer per
    distribution (reading a distribution's metadata parses its whole METADATA file)."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ep.value.split(":")[0].split(".")[0], None
    if seen is None:
        seen = {}
    key = id(dist)
    if key not in seen:
        meta = dist.metadata
        seen[key] = (meta["Name"], meta["Version"])
    return seen[key]


def load_plugins(extra: Iterable[object] = (), *, entry_points: bool = True) -> Registry:
    """Load entry-point plugins (and ``extra`` plugin objects, for tests) into a new registry."""
    pm = make_plugin_manager()
    reg = Registry(pm)
    loaded: list[tuple[str, object, str, str | None]] = []
    eps = list(metadata.entry_points(group=ENTRY_POINT_GROUP)) if entry_points else []
    if entry_points and not eps:
        for mod in DEFAULT_PLUGINS:
            try:
                loaded.append((mod, importlib.import_module(mod), "fit-sync", None))
            except Exception as exc:  # pragma: no cover - a broken install
                _fail(reg, mod, exc)
    dists: dict[int, tuple[str, str | None]] = {}
    for ep in eps:
        package, version = _dist_of(ep, dists)
        try:
            obj = ep.load()
        except Exception as exc:
            _fail(reg, f"{ep.name} ({package})", exc)
            continue
        loaded.append((ep.name, obj, package, version))
    for i, obj in enumerate(extra):
        loaded.append((getattr(obj, "__name__", f"extra{i}"), obj, "(test)", None))

    for name, obj, package, version in loaded:
        if pm.is_registered(obj) or pm.has_plugin(name):
            continue
        try:
            pm.register(obj, name=name)
        except Exception as exc:
            _fail(reg, f"{name} ({package})", exc)
            continue
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(obj) or ()))
        reg.plugins.append(PluginInfo(name, package, version, hooks))

    packages = {p.name: p.package for p in reg.plugins}
    _collect(
        reg, "fit_register_measures", reg.measures, lambda m: m.key.upper(), "measure", packages
    )
    _collect(reg, "fit_register_rules", reg.rules, lambda r: r.id, "rule", packages)
    _collect(reg, "fit_register_adapters", reg.adapters, lambda a: a.name, "adapter", packages)
    _collect(reg, "fit_register_notifiers", reg.notifiers, lambda n: n.name, "notifier", packages)
    return reg


def _fail(reg: Registry, name: str, exc: BaseException) -> None:
    reason = f"{type(exc).__name__}: {exc}"
    if _strict():
        raise PluginError(f"plugin {name} failed to load: {reason}") from exc
    reg.failures[name] = reason
    log.error(
        "plugin %s failed to load and was skipped: %s (FIT_STRICT_PLUGINS=1 makes this fatal)",
        name,
        reason,
    )


def _collect(
    reg: Registry,
    hook: str,
    target: dict[str, Any],
    key_of: Callable[[Any], str],
    kind: str,
    packages: dict[str, str],
) -> None:
    caller = getattr(reg.pm.hook, hook)
    for impl in caller.get_hookimpls():
        owner = packages.get(impl.plugin_name, impl.plugin_name)

        def register(obj: Any, _owner: str = owner) -> None:
            key = key_of(obj)
            if not key:
                raise PluginError(f"{kind} registered by {_owner} has no name")
            if key in target:
                first = reg.owners[(kind, key)]
                raise PluginError(
                    f"duplicate {kind} name {key!r}: registered by {first} and by {_owner}",
                    hint=f"uninstall one of {first} and {_owner}",
                )
            target[key] = obj
            reg.owners[(kind, key)] = _owner

        try:
            impl.function(register=register)
        except PluginError:
            raise
        except Exception as exc:
            _fail(reg, f"{impl.plugin_name} ({owner}) in {hook}", exc)
