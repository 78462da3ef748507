"""The notification and caseload docs stay true: every config key is documented, the README's
and docs/notify.md's config examples load and validate, and the documented webhook payload has
exactly the fields a real message has."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from fit_core import reports_config
from fit_core.config import config_from_mapping
from fit_core.notify import config as notify_config
from fit_core.notify.config import check_notify
from fit_core.notify.email import EmailOptions
from fit_core.notify.webhook import WebhookOptions
from fit_core.plugins import load_plugins

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
NOTIFY_MD = (ROOT / "docs" / "notify.md").read_text(encoding="utf-8")


def keys() -> set[str]:
    out = set(notify_config._ROUTE_KEYS)
    for schema in (EmailOptions, WebhookOptions):
        out |= {f.data_key or name for name, f in schema().fields.items()}
    return out | {"type"}


@pytest.mark.parametrize("doc", ["README.md", "docs/notify.md"])
def test_every_notify_key_is_documented(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    missing = sorted(k for k in keys() if f"`{k}`" not in text)
    assert not missing, f"{doc} does not document {missing}"
    for key in notify_config._TOP_KEYS:  # tables and the one plain key of [notify]
        assert f"[notify.{key}" in text or f"`[notify] {key}`" in text, (doc, key)


def test_every_reports_key_is_documented() -> None:
    for key in reports_config._KEYS:
        assert f"`[reports] {key}`" in README
        assert key in (ROOT / "docs" / "reports.md").read_text(encoding="utf-8")


def _toml_blocks(text: str) -> list[str]:
    return [b for b in re.findall(r"```toml\n(.*?)```", text, re.S) if "[notify" in b]


@pytest.mark.parametrize("doc", [README, NOTIFY_MD], ids=["README", "notify.md"])
def test_the_config_examples_load_and_validate(doc: str) -> None:
    blocks = _toml_blocks(doc)
    assert blocks
    for block in blocks:
        raw = tomllib.loads(re.sub(r"(?m)^(\s*)\d\. .*$", "", block))
        config = config_from_mapping(raw)
        check_notify(config.notify, load_plugins())


def test_the_documented_payload_is_the_real_one() -> None:
    from fit_core.notify.render import message_of

    (example,) = [
        json.loads(b) for b in re.findall(r"```json\n(.*?)```", NOTIFY_MD, re.S)
        if '"fit.alerts"' in b
    ]  # fmt: skip
    new, ended = example["new"][0], example["ended"][0]
    content = {
        "route": "clinicians", "kind": "digest",
        "recipient": {"key": "clinician:T03", "words": "clinician T03", "clinician_id": "T03"},
        "addresses": [], "created_at": "2026-03-17T06:30:04+00:00",
        "local_time": "2026-03-17 07:30", "timezone": "Europe/Berlin",
        "since": "2026-03-16T06:30:11+00:00", "new": [{**new, "raised_at": "x"}],
        "ended": [ended], "open": 6, "caseload": example["caseload"], "detail": "minimal",
        "client_label": "pseudonym", "copyright": example["copyright"],
    }  # fmt: skip
    payload = message_of(content, example["id"]).payload
    assert list(payload) == list(example)
    assert payload["new"] == example["new"] and payload["ended"] == example["ended"]
