"""``fit google remap SOURCE``: put a changed form or mapping in force, after showing the effect.

A sync stops when a mapped question changed on the form (its scale low/high or its type) or when
the config maps a form differently from the mapping in force (see :mod:`.history`). Remapping
is the deliberate step that starts a new *epoch*: the config's mapping, on the form as it is
now, for the answers last submitted after a moment (by default the newest answer already read,
so every answer read so far keeps the mapping and scale it was given under and no past total
changes). ``--since`` moves that moment; ``--from-start`` applies the new mapping to every
response (for a mapping that was wrong from the beginning). Nothing is written without
``--yes`` or a confirmation; ``--dry-run`` only shows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from fit_core.errors import ConfigError

from .formdef import FormInfo
from .history import Epoch, FormHistory, Review, describe_changes, review
from .options import FormMap


@dataclass
class Plan:
    """What remapping one form would do: the lines to show and the history to save (if any)."""

    form_id: str
    lines: list[str]
    history: FormHistory | None = None  # None: nothing to apply
    blocked: bool = False  # the config cannot be put in force as it is


def plan_remap(
    mapping: FormMap,
    form: FormInfo,
    history: FormHistory | None,
    source: str,
    *,
    since: dt.datetime | None,
    from_start: bool,
    now: dt.datetime,
) -> Plan:
    """Compare the form and the config with the mapping in force and say what a remap does."""
    fid = mapping.form_id
    if history is None:
        resolved = review(mapping, form, None, source)  # raises if the config does not resolve
        assert resolved.current is not None
        return Plan(
            fid,
            [
                f"form {fid}: no mapping in force yet: the next `fit sync` puts the config's "
                "mapping in force as it is. Nothing to do."
            ],
        )
    r = review(mapping, form, history, source)
    lines = [f"form {fid} ({form.title or 'untitled'}):"]
    latest = history.latest
    in_force = f"in force since {latest.accepted_at[:10] or 'the first sync'}"
    if r.gone:
        lines.append(f"  no longer on the form: {describe_changes(r.gone)}")
    if r.changed:
        lines.append(f"  the form changed: {describe_changes(r.changed)}")
    if r.current is None:
        lines.append(
            "  the config still maps a question as it was: edit it first (`fit google inspect "
            f"{source} --form {fid}` lists the questions), then run remap again"
        )
        return Plan(fid, lines, blocked=True)
    if r.remapped:
        lines.append(f"  the mapping changes ({in_force}): {describe_changes(r.remapped, 12)}")
    if not (r.gone or r.changed or r.remapped or from_start):
        lines.append(f"  the form and the config match the mapping {in_force}: nothing to change")
        return Plan(fid, lines)
    after = None if from_start else since if since is not None else history.newest_read
    if since is not None and not from_start and latest.after and since <= latest.after:
        raise ConfigError(
            f"--since {_text(since)} is not after the start of the mapping in force for form "
            f"{fid} ({_text(latest.after)})",
            hint="give a later time, or --from-start to read every response with the new mapping",
        )
    epoch = Epoch(after, r.current, dict(r.specs), now.isoformat())
    new = history.with_epoch(epoch)
    if after is None:
        lines.append("  the new mapping will read every response of the form, from the start")
        lines.extend(_rescaled_warning(history, r))
    else:
        lines.append(
            f"  the new mapping will read answers last submitted after {_text(after)}"
            + (" (the newest answer already read)" if since is None else "")
            + "; answers up to then keep the mapping they were read with, so their totals "
            "do not change"
        )
    if history.rereads_for(after):
        lines.append(
            "  the next `fit sync` reads this form's responses again (a few Forms calls) and "
            "rewrites only the rows whose scores change"
        )
    else:
        lines.append("  the next `fit sync` reads the new answers with it")
    return Plan(fid, lines, new)


def fresh_start(mapping: FormMap, form: FormInfo, source: str, now: dt.datetime) -> Plan:
    """``--from-start`` over a history that cannot be read: the config's mapping, for every
    response, read again."""
    found = review(mapping, form, None, source)
    history = found.first_epoch(now.isoformat())
    history.reread = int(now.timestamp())  # unlike any earlier value: everything is read again
    return Plan(
        mapping.form_id,
        [
            f"form {mapping.form_id}: the stored mapping history cannot be read; the config's "
            "mapping will read every response of the form, from the start",
            "  the next `fit sync` reads this form's responses again and rewrites only the rows "
            "whose scores change",
        ],
        history,
    )


def _rescaled_warning(history: FormHistory, r: Review) -> list[str]:
    """With --from-start: the items whose past answers would be read on another scale."""
    assert r.current is not None
    now = {label: scale for label, _q, scale in r.current.questions()}
    out = []
    for epoch in history.epochs:
        for label, _qid, scale in epoch.mapping.questions():
            if scale is not None and label in now and now[label] != scale:
                out.append(
                    f"  warning: answers read with {label} on {scale} (from "
                    f"{epoch.since_text()}) will be read as {now[label]}: their totals change"
                )
    return out


def parse_since(text: str | None) -> dt.datetime | None:
    """``--since``: an ISO 8601 date-time (UTC unless it says otherwise)."""
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--since {text!r} is not an ISO 8601 date-time",
            hint="for example --since 2026-01-05T14:30:00Z",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def selected(forms: Sequence[FormMap], wanted: Sequence[str], source: str) -> list[FormMap]:
    """The source's forms, or those named by ``--form`` (each must be one of them)."""
    if not wanted:
        return list(forms)
    known = {f.form_id: f for f in forms}
    missing = [w for w in wanted if w not in known]
    if missing:
        raise ConfigError(
            f"form {missing[0]} is not one of source {source!r}'s forms",
            hint="remap maps what the config says: add the form to the config first",
        )
    return [known[w] for w in wanted]


def _text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
