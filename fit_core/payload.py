"""Outbox rows without the detour through a dict and the JSON encoder.

A sync writes one outbox row per administration: the canonical JSON of its push payload and a
hash of it. :func:`payload_json` writes that JSON straight from the :class:`Scored` item, text
for text, byte for byte what ``encode_payload(push_payload(s))`` of :mod:`fit_core.scoring`
gives (those two stay the definition; tests/test_payload.py holds this to them for arbitrary
values: quotes, control characters, non-ASCII text, negative zero, integers where floats are
expected, flags). A value of an unexpected type is handed to the JSON encoder itself, so the
fast path never guesses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from json.encoder import encode_basestring
from typing import Any

from .floattext import FloatText
from .models import Scored
from .scores_csv import cell, line_of_payload, line_of_values
from .scoring import encode_payload

__all__ = ["LINE_ONLY", "outbox_row", "outbox_row_with_line", "payload_json", "payload_line"]


_STR = encode_basestring  # the encoder's own string escaping (ensure_ascii=False)
_FLOAT = FloatText(float.__repr__)  # what the encoder writes for a finite float (memoised)
_INT = int.__repr__
_ANY = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _s(v: Any) -> str:
    """A text value (or anything else, through the encoder)."""
    return _STR(v) if type(v) is str else _ANY(v)


def _n(v: Any) -> str:
    """A number value: null, a finite float, or anything else through the encoder."""
    if v is None:
        return "null"
    if type(v) is float and v - v == 0.0:  # finite (inf - inf and nan are nan)
        return _FLOAT[v]
    return _ANY(v)


def payload_json(s: Scored) -> str:
    """``encode_payload(push_payload(s))``, written directly."""
    a, sc = s.admin, s.score
    if s.flags:
        ids, message = _open_flags(s)
        flag_ids = (
            "[" + ",".join(map(_STR, ids)) + "]" if all(type(i) is str for i in ids) else _ANY(ids)
        )
    else:
        flag_ids, message = "[]", ""
    v: Any = sc.session
    session = _INT(v) if type(v) is int else _ANY(v)
    v = sc.total
    total = _FLOAT[v] if type(v) is float and v - v == 0.0 else _ANY(v)
    v = sc.clinical
    clinical = "true" if v is True else "false" if v is False else _ANY(v)
    v = sc.rc_class
    rc_class = "null" if v is None else _s(v)
    v = sc.status
    status = "null" if v is None else _s(v)
    expected = sc.expected
    if expected is None and sc.expected_low is None and sc.expected_high is None:
        no_model = sc.expected_severe is None and sc.percent_of_expected is None
    else:
        no_model = False
    model = (
        _NO_MODEL
        if no_model
        else f'"expected":{_n(expected)},"expected_low":{_n(sc.expected_low)},'
        f'"expected_high":{_n(sc.expected_high)},"expected_severe":{_n(sc.expected_severe)},'
        f'"percent_of_expected":{_n(sc.percent_of_expected)}'
    )
    v = sc.change_from_previous
    previous = "null" if v is None else _FLOAT[v] if type(v) is float and v - v == 0.0 else _ANY(v)
    v = sc.intake
    intake = "null" if v is None else _FLOAT[v] if type(v) is float and v - v == 0.0 else _ANY(v)
    v = sc.change_from_intake
    change = "null" if v is None else _FLOAT[v] if type(v) is float and v - v == 0.0 else _ANY(v)
    when = _when(a)[1]
    # the texts that are text almost always: inline, the encoder's escaping; else the encoder
    key, client, measure, episode, rater = (
        a.source_key,
        a.client_id,
        a.measure,
        sc.episode_id,
        a.rater,
    )
    return (
        f'{{"source_key":{_STR(key) if type(key) is str else _ANY(key)},'
        f'"client_id":{_STR(client) if type(client) is str else _ANY(client)},'
        f'"measure":{_STR(measure) if type(measure) is str else _ANY(measure)},'
        f'"administered_at":{when},'
        f'"episode_id":{_STR(episode) if type(episode) is str else _ANY(episode)},'
        f'"rater":{_STR(rater) if type(rater) is str else _ANY(rater)},"session":{session},'
        f'"total":{total},"clinical":{clinical},'
        f'"change_from_previous":{previous},"intake":{intake},'
        f'"change_from_intake":{change},"rc_class":{rc_class},{model},'
        f'"status":{status},"flags":{flag_ids},"flag_message":{_s(message)}}}'
    )


_NO_MODEL = (
    '"expected":null,"expected_low":null,"expected_high":null,"expected_severe":null,'
    '"percent_of_expected":null'
)
#: ``a.administered_at_text()`` and its JSON text, memoised by what they depend on (dates
#: repeat)
_AT: dict[Any, tuple[str, str]] = {}


def _when(a: Any) -> tuple[str, str]:
    """``a.administered_at_text()`` and its JSON text (see :data:`_AT`)."""
    key = (a.administered_at, a.administered_at.tzinfo, a.date_only, a.local_date)
    both = _AT.get(key)
    if both is None:
        if len(_AT) >= 50_000:
            _AT.clear()
        text = a.administered_at_text()
        both = _AT[key] = (text, _s(text))
    return both


def _open_flags(s: Scored) -> tuple[list[Any], str]:
    """The rule ids of the open flags of ``s`` and their joined messages (the payload's
    ``flags`` and ``flag_message``)."""
    open_flags = [f for f in s.flags if f.state == "open"]
    return [f.rule_id for f in open_flags], " | ".join(f.message for f in open_flags)


def outbox_row(s: Scored, namespace: str, client_id: str, at: str) -> tuple[Any, ...]:
    """The outbox row of a scored administration (see :meth:`fit_core.store.Store.write_outbox`):
    (source, source_key, namespace, client_id, payload JSON, extra JSON, hash, updated_at)."""
    encoded = payload_json(s)
    return _row(s, namespace, client_id, at, encoded, encoded)


def outbox_row_with_line(s: Scored, namespace: str, client_id: str, at: str) -> tuple[Any, ...]:
    """The outbox row of a source whose target is a scores file: its scores-file line
    (:func:`payload_line`) instead of the payload JSON, which is left empty (:data:`LINE_ONLY`;
    the line holds every value of the payload), and the hash of that line. The row has the
    columns of :func:`outbox_row` and the line."""
    line = payload_line(s)
    return (*_row(s, namespace, client_id, at, LINE_ONLY, line), line)


def _row(
    s: Scored, namespace: str, client_id: str, at: str, payload: str, hashed: str
) -> tuple[Any, ...]:
    """An outbox row with ``payload`` in its payload column and the hash of ``hashed``."""
    a = s.admin
    extra = a.extra
    return (
        a.source,
        a.source_key,
        namespace,
        client_id,
        payload,
        json.dumps(dict(extra), sort_keys=True) if extra else None,
        hashlib.blake2b(hashed.encode(), digest_size=16).hexdigest(),
        at,
    )


#: the payload column of an outbox row that keeps only its scores-file line
LINE_ONLY = ""


class _RoundTrip(Exception):
    """A value the JSON round trip of the stored payload would change."""


def _plain(v: Any) -> str:
    """:func:`cell` of a value the inline cases do not cover that a JSON round trip gives back
    as it is (a float that is not finite, a list of text); else :class:`_RoundTrip`."""
    if type(v) is float or (type(v) is list and all(type(i) is str for i in v)):
        return cell(v)
    raise _RoundTrip


def payload_line(s: Scored) -> str:
    """``line_of_payload(json.loads(payload_json(s)))``: the scores-file line of the stored
    payload (see :mod:`fit_core.scores_csv`), from the scored item, without the payload.

    The values are those :func:`~fit_core.scoring.push_payload` gives, each rendered as
    :func:`~fit_core.scores_csv.line_of_values` renders it; a value of a type that the JSON
    round trip would change (a text or number subclass, a tuple) takes the long way."""
    a, sc = s.admin, s.score
    ids, message = _open_flags(s) if s.flags else ([], "")
    when = _when(a)[0]
    # the payload's values in PUSH_FIELDS order (Any: line_of_values renders each by its type)
    values: tuple[Any, ...] = (
        a.source_key,
        a.client_id,
        a.measure,
        when,
        sc.episode_id,
        a.rater,
        sc.session,
        sc.total,
        sc.clinical,
        sc.change_from_previous,
        sc.intake,
        sc.change_from_intake,
        sc.rc_class,
        sc.expected,
        sc.expected_low,
        sc.expected_high,
        sc.expected_severe,
        sc.percent_of_expected,
        sc.status,
        ids,
        message,
    )
    try:
        return line_of_values(values, _plain)
    except _RoundTrip:
        return line_of_payload(json.loads(payload_json(s)))


def reference_json(s: Scored) -> str:
    """The definition :func:`payload_json` follows (slow; for tests)."""
    from .scoring import push_payload

    return encode_payload(push_payload(s))


def item_row(item: Any, namespace: str, client_id: str, at: str) -> tuple[Any, ...]:
    """The outbox row of an :class:`~fit_core.models.OutboxItem`."""
    extra: Mapping[str, Any] = item.extra
    return (
        item.source,
        item.source_key,
        namespace,
        client_id,
        item.encoded or json.dumps(item.payload, sort_keys=True, separators=(",", ":")),
        json.dumps(dict(extra), sort_keys=True) if extra else None,
        item.hash,
        at,
    )
