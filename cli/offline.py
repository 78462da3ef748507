"""`fit score`: read a FIT long CSV, validate, score and run the rules, without a store."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from fit_core.adapter import SourceContext
from fit_core.config import SourceConfig, adapter_options, local_timezone
from fit_core.models import Administration, Record, RecordError, Scored
from fit_core.plugins import load_plugins
from fit_core.settings import Settings, check_rule_ids
from fit_core.sync import rescore_only
from fit_core.validation import Validator


@dataclass
class OfflineResult:
    scored: list[Scored] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def score_file(
    path: Path,
    *,
    settings: Settings | None = None,
    tz: dt.tzinfo | None = None,
    delimiter: str = "auto",
    as_of: dt.date | None = None,
    model: object | None = None,
) -> OfflineResult:
    """Score every valid row of ``path``; invalid rows become messages naming line and field."""
    registry = load_plugins()
    if settings is not None:
        check_rule_ids(settings, registry.rules)
    adapter_cls = registry.adapter("csv")
    tzinfo = tz or local_timezone()
    src = SourceConfig(
        "score",
        "csv",
        "score",
        True,
        {
            "path": str(path),
            "scores_path": str(path.parent / ".fit-score-unused.csv"),
            "delimiter": delimiter,
        },
    )
    ctx = SourceContext(
        name="score",
        namespace="score",
        options=adapter_options(src, adapter_cls),
        timezone=tzinfo,
        run_started=dt.datetime.now(dt.UTC),
        secret=lambda key: "",
        state_dir=path.parent,
        dry_run=True,
    )
    adapter = adapter_cls(ctx)
    validator = Validator(registry.measures, tzinfo, source="score")
    admins: dict[str, Administration] = {}
    errors: dict[str, str] = {}
    try:
        for item in adapter.pull(None):
            if isinstance(item, RecordError):
                admins.pop(item.source_key, None)
                errors[f"{item.source_key}@{item.location}"] = _message(item.location, item.reasons)
                continue
            if not isinstance(item, Record):
                continue  # without a store nothing is deleted and no practice data is kept
            checked = validator.validate(item)
            if isinstance(checked, Administration):
                admins[item.source_key] = checked
            else:
                errors[f"{item.source_key}@{item.location}"] = _message(item.location, checked)
    finally:
        adapter.close()
    settings = settings or Settings()
    today = as_of or settings.as_of or dt.datetime.now(tzinfo).date()
    scored = rescore_only(
        admins.values(),
        registry.measures,
        settings.with_(as_of=today),
        list(registry.rules.values()),
        model,
    )
    scored.sort(
        key=lambda s: (
            s.admin.client_id,
            s.score.episode_id,
            s.admin.rater,
            s.admin.administered_at,
            s.admin.measure,
            s.admin.source_key,
        )
    )
    return OfflineResult(scored, list(errors.values()))


def _message(location: str, reasons: object) -> str:
    items = reasons.items() if isinstance(reasons, dict) else dict(reasons).items()  # type: ignore[call-overload]
    return f"{location or 'record'}: " + "; ".join(f"{k}: {v}" for k, v in items)
