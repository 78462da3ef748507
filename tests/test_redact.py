"""Redaction of secrets from text, JSON output and log records."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from fit_core.redact import (
    MASK,
    RedactingFilter,
    clear_secrets,
    install_log_redaction,
    redact,
    redact_obj,
    register_secret,
)

SECRET = "s3cr3t-Value/with+chars"


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    clear_secrets()
    yield
    clear_secrets()


def test_registered_values_are_masked_everywhere_in_the_text() -> None:
    register_secret(SECRET)
    assert redact(f"a {SECRET} b {SECRET}") == f"a {MASK} b {MASK}"


def test_url_encoded_form_is_masked_too() -> None:
    register_secret(SECRET)
    assert redact("token=s3cr3t-Value%2Fwith%2Bchars&x=1") == f"token={MASK}&x=1"


def test_short_and_empty_values_are_ignored() -> None:
    register_secret("abc")
    register_secret("")
    register_secret(None)
    assert redact("abc abcd") == "abc abcd"


def test_longest_value_wins_when_one_contains_another() -> None:
    register_secret("abcd")
    register_secret("abcdefgh")
    assert redact("xabcdefghx") == f"x{MASK}x"


def test_unregistered_redcap_token_in_a_form_body_is_masked() -> None:
    token = "0123456789ABCDEF0123456789ABCDEF"
    body = f"content=record&token={token}&format=json"
    assert redact(body) == f"content=record&token={MASK}&format=json"
    assert redact(f"token={token * 2}") == f"token={MASK}"
    # any value of a parameter named like a secret is masked; other parameters are not
    assert redact(f"token={token}A") == f"token={MASK}"
    assert redact(f"id={token}") == f"id={token}"


def test_redact_obj_walks_nested_json() -> None:
    register_secret(SECRET)
    data = {
        "sources": [{"name": "a", "url": f"https://x/?k={SECRET}", "n": 3, "ok": True}],
        SECRET: None,
        "t": ("x", SECRET),
    }
    out = redact_obj(data)
    assert SECRET not in json.dumps(out)
    assert out["sources"][0] == {"name": "a", "url": f"https://x/?k={MASK}", "n": 3, "ok": True}
    assert out[MASK] is None
    assert out["t"] == ("x", MASK)
    assert data["sources"][0]["url"].endswith(SECRET)  # the input is not modified


def test_json_secret_members_are_registered_on_their_own() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n"
    account = json.dumps({"type": "service_account", "private_key": pem, "client_id": "123"})
    register_secret(account)
    assert "MIIEvQIBADANBg" not in redact(f"bad key: {pem}")
    assert "MIIEvQIBADANBg" not in redact(f"body: {json.dumps(pem)}")
    assert redact("service_account") == "service_account"


def _logger(name: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_log_lines_and_exception_text_are_redacted() -> None:
    register_secret(SECRET)
    logger, stream = _logger("fit.test.redact")
    install_log_redaction(logger)
    logger.info("calling with %s", SECRET)
    logger.info(f"inline {SECRET}")
    try:
        raise RuntimeError(f"server said no to {SECRET}")
    except RuntimeError:
        logger.exception("push failed")
    out = stream.getvalue()
    assert SECRET not in out
    assert f"calling with {MASK}" in out
    assert f"inline {MASK}" in out
    assert f"RuntimeError: server said no to {MASK}" in out


def test_child_logger_records_are_redacted_by_the_handler_filter() -> None:
    register_secret(SECRET)
    parent, stream = _logger("fit.test.parent")
    install_log_redaction(parent)
    logging.getLogger("fit.test.parent.child").warning("token %s", SECRET)
    assert stream.getvalue() == f"WARNING token {MASK}\n"


def test_install_is_idempotent() -> None:
    logger, _ = _logger("fit.test.idem")
    install_log_redaction(logger)
    install_log_redaction(logger)
    filters = [f for f in logger.handlers[0].filters if isinstance(f, RedactingFilter)]
    assert len(filters) == 1


def test_filter_works_with_caplog(caplog: pytest.LogCaptureFixture) -> None:
    register_secret(SECRET)
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO):
        logging.getLogger("fit.test.caplog").info("value=%s", SECRET)
    assert SECRET not in caplog.text
    assert f"value={MASK}" in caplog.text


def test_a_broken_format_string_is_left_to_logging() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d", ("nope",), None)
    assert RedactingFilter().filter(record) is True
    assert record.args == ("nope",)
