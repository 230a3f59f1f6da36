"""No credential reaches a log line: one filter on the root handlers, fed with each secret this process holds.

A filter on a library's logger misses records its children and other libraries log (urllib3 prints a
webhook's path, token included, at DEBUG), so the filter sits on the handlers, which every record passes.
Each secret is matched as written, percent-encoded and decoded, in the message and in a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import quote, unquote

MASK = "***"
MIN_LENGTH = 3  # shorter values would mask ordinary words and numbers in every line


class Redactor(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()

    def add(self, values: Iterable[str | None]) -> None:
        forms = set(self._secrets)
        for value in values:
            if value:
                forms |= {value, quote(value, safe=""), quote(value), unquote(value)}
        # longest first, so a URL is masked whole before its parts
        self._secrets = tuple(sorted((f for f in forms if len(f) >= MIN_LENGTH), key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


REDACTOR = Redactor()


def protect_logs() -> None:
    """Called once logging is configured: every root handler redacts, and HTTP libraries never log request
    lines (urllib3 prints method and path at DEBUG, and a webhook's path is its token)."""
    for handler in logging.getLogger().handlers:
        if REDACTOR not in handler.filters:
            handler.addFilter(REDACTOR)
    for name in ("urllib3", "requests"):
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))
