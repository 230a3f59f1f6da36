"""Logging for both commands: text for people, or one JSON object per line for log pipelines; secrets redacted."""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from typing import IO, Any

from bot_runtime.redaction import protect_logs

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """time (UTC), level, logger, message (and exception): the traceback as the redacting filter left it."""

    converter = staticmethod(time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def add_log_format(parser: argparse.ArgumentParser) -> None:
    """`--log-format` of both commands."""
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=os.environ.get("BOTOPS_LOG_FORMAT", "text"),
        help="text, or json: one object per line for log pipelines (env BOTOPS_LOG_FORMAT)",
    )


def configure_logging(level: str, log_format: str = "text", stream: IO[str] | None = None) -> None:
    if log_format not in LOG_FORMATS:
        raise SystemExit(f"log format {log_format!r}: one of {', '.join(LOG_FORMATS)} (env BOTOPS_LOG_FORMAT)")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    protect_logs()
