"""No notification or exchange credential reaches a log line, in any logger, encoded or decoded."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot_runtime.exchange import Credentials
from bot_runtime.logs import JsonFormatter, configure_logging
from bot_runtime.notifications import secrets_of
from bot_runtime.redaction import REDACTOR, protect_logs

# a webhook token with characters that are percent-encoded in URLs, a short password, a short query token
URL = "json://bot:pw9@hooks.example:8443/api/webhooks/123456/tok%2Fen-SECRET%3D?key=k7z"
DECODED_TOKEN = "tok/en-SECRET="


@pytest.fixture(params=["text", "json"])
def output(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """Both log formats: the JSON formatter must not bring back a traceback the filter redacted."""
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    if request.param == "json":
        handler.setFormatter(JsonFormatter())
    saved = root.handlers[:], root.level, logging.getLogger("urllib3").level
    root.handlers, root.level = [handler], logging.DEBUG
    logging.getLogger("urllib3").setLevel(logging.NOTSET)
    protect_logs()
    try:
        yield stream
    finally:
        root.handlers, root.level = saved[0], saved[1]
        logging.getLogger("urllib3").setLevel(saved[2])


def test_every_form_of_every_secret_is_masked_in_every_logger(output: io.StringIO) -> None:
    REDACTOR.add(secrets_of([URL]))
    Credentials.from_env({"BOTOPS_EXCHANGE_API_KEY": "AK-short", "BOTOPS_EXCHANGE_SECRET": "s3cr/et+=="})
    log = logging.getLogger("bot_runtime.somewhere")
    log.warning("sending to %s", URL)
    log.warning("decoded path /api/webhooks/123456/%s", DECODED_TOKEN)
    log.warning("%s with password %s and key %s", "user bot", "pw9", "k7z")
    log.warning("signed with AK-short and s3cr%2Fet%2B%3D%3D")
    try:
        raise RuntimeError(f"POST {URL} failed")
    except RuntimeError:
        log.exception("the call failed")
    text = output.getvalue()
    for secret in ("tok%2Fen-SECRET%3D", DECODED_TOKEN, "pw9", "k7z", "AK-short", "s3cr/et+==", "s3cr%2Fet%2B%3D%3D"):
        assert secret not in text, (secret, text)
    assert text.count("***") >= 8
    assert "user bot with password ***" in text, "a short user name is a word, not a secret"


def test_http_libraries_print_no_request_lines(output: io.StringIO) -> None:
    logging.getLogger("urllib3.connectionpool").debug('https://x:443 "POST /api/webhooks/1/%s HTTP/1.1" 204', "t0k3n")
    logging.getLogger("bot_runtime.x").debug("our own debug lines still print")
    text = output.getvalue()
    assert "t0k3n" not in text and "POST" not in text
    assert "our own debug lines still print" in text


def test_json_logs_are_one_object_per_line_for_log_pipelines() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    root.handlers = []
    try:
        configure_logging("INFO", "json", stream)
        log = logging.getLogger("bot_operator")
        log.info("bot %s created", "alpha")
        try:
            raise ValueError("bad input")
        except ValueError:
            log.exception("it failed")
        first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.handlers, root.level = saved
    assert first["level"] == "INFO" and first["logger"] == "bot_operator" and first["message"] == "bot alpha created"
    assert first["time"].endswith("Z") and "ValueError: bad input" in second["exception"]
    with pytest.raises(SystemExit, match="one of text, json"):
        configure_logging("INFO", "yaml")
