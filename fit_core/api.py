"""The public API for plugins and scripts, in one place.

Import what a plugin needs from here; everything listed in ``__all__`` is documented in
``docs/plugins.md`` (a test keeps the two in step) and keeps its name and meaning across minor
releases. Other modules of ``fit_core`` are internal and may change.

The adapter contract suite needs pytest and lives in :mod:`fit_core.testing`
(``from fit_core.testing import AdapterContract``).
"""

from __future__ import annotations

from .adapter import Adapter, SourceContext, time_bookmark
from .clitools import App, exit_for, fit_errors
from .config import PathOption, config_path
from .erasure import Place, PrivacyJob, register_place
from .errors import (
    ConfigError,
    ExitCode,
    FitError,
    PluginError,
    SourceError,
    SourceUnavailable,
)
from .hookspecs import hookimpl
from .http import RetryPolicy, Throttle, make_session, send
from .identity import normalise_client_id
from .measures import BUILTIN_MEASURES, COPYRIGHT_LINES, AgeBand, Measure
from .models import (
    Administration,
    Appointment,
    ClientInfo,
    Deleted,
    Flag,
    OutboxItem,
    Record,
    RecordError,
    Score,
    Scored,
)
from .notify.channel import ChannelContext, DeliveryError, Message, Notifier
from .plugins import LazyAdapter, LazyNotifier
from .redact import redact, register_secret
from .scoring import History, Rule, Scorer, score_client
from .settings import Settings
from .state import SourceState
from .validation import Validator

__all__ = [
    "BUILTIN_MEASURES",
    "COPYRIGHT_LINES",
    "Adapter",
    "Administration",
    "AgeBand",
    "App",
    "Appointment",
    "ChannelContext",
    "ClientInfo",
    "ConfigError",
    "Deleted",
    "DeliveryError",
    "ExitCode",
    "FitError",
    "Flag",
    "History",
    "LazyAdapter",
    "LazyNotifier",
    "Measure",
    "Message",
    "Notifier",
    "OutboxItem",
    "PathOption",
    "Place",
    "PluginError",
    "PrivacyJob",
    "Record",
    "RecordError",
    "RetryPolicy",
    "Rule",
    "Score",
    "Scored",
    "Scorer",
    "Settings",
    "SourceContext",
    "SourceError",
    "SourceState",
    "SourceUnavailable",
    "Throttle",
    "Validator",
    "config_path",
    "exit_for",
    "fit_errors",
    "hookimpl",
    "make_session",
    "normalise_client_id",
    "redact",
    "register_place",
    "register_secret",
    "score_client",
    "send",
    "time_bookmark",
]
