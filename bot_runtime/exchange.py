"""The one ccxt client of a runtime, and the classification of ccxt errors.

One instance per runtime: ccxt's rate limiter is per instance. Error classes follow the measured
table of docs/research/backtrader-ccxt.md §3.3: `OperationFailed` is transient, authentication and bad symbols are
fatal, order-level errors reject one order, and a bare `ExchangeError` is unknown.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import ccxt

from bot_runtime.redaction import REDACTOR
from bot_runtime.settings import secret_value

API_URL_ENV = "BOTOPS_EXCHANGE_API_URL"  # e.g. a local test double or a proxy; never in a resource
TIMEOUT_ENV = "BOTOPS_EXCHANGE_TIMEOUT_MS"


class ErrorKind(StrEnum):
    transient = "transient"  # retry with backoff; the feed reports CONNBROKEN
    fatal = "fatal"  # stop: the bot cannot work until a person fixes something
    order = "order"  # reject this order, keep running
    unknown = "unknown"  # reads: a few retries; orders: reconcile by client order id


FATAL = (ccxt.AuthenticationError, ccxt.BadSymbol, ccxt.NotSupported, ccxt.ArgumentsRequired)
ORDER_LEVEL = (ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.OperationRejected)
RATE_LIMITED = (ccxt.RateLimitExceeded, ccxt.DDoSProtection)  # 429, Binance 418 (and -2015 bans), Bybit 10006/403
# Answers to an order that mean "not placed": ccxt raises BadRequest for Binance's NOTIONAL filter failure.
REFUSED_ORDER = (*ORDER_LEVEL, ccxt.BadRequest)


def key_refused(exc: BaseException) -> bool:
    """Binance's -2015 ("Invalid API-key, IP, or permissions for action"), which ccxt raises as DDoSProtection
    once a key has worked (it reads it as a temporary ban): on an order it is what a revoked key answers, and
    backing off would retry it forever."""
    return isinstance(exc, ccxt.DDoSProtection) and re.search(r'"code":\s*-2015\b', str(exc)) is not None


def classify(exc: BaseException) -> ErrorKind:
    if isinstance(exc, ccxt.OperationFailed):
        return ErrorKind.transient
    if isinstance(exc, FATAL):
        return ErrorKind.fatal
    if isinstance(exc, ORDER_LEVEL):
        return ErrorKind.order
    return ErrorKind.unknown


@dataclass(frozen=True)
class Credentials:
    api_key: str
    secret: str
    password: str | None = None

    def __repr__(self) -> str:  # never print a credential, not even in a traceback
        return "Credentials(***)"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Credentials | None:
        key, secret = secret_value("BOTOPS_EXCHANGE_API_KEY", environ), secret_value("BOTOPS_EXCHANGE_SECRET", environ)
        if not key or not secret:
            return None
        password = secret_value("BOTOPS_EXCHANGE_PASSWORD", environ)
        REDACTOR.add([key, secret, password])
        return cls(key, secret, password)


def build_exchange(
    exchange_id: str,
    *,
    credentials: Credentials | None = None,
    sandbox: bool = False,
    api_url: str | None = None,
    timeout_ms: int | None = None,
) -> Any:
    if exchange_id not in ccxt.exchanges:
        raise ValueError(f"unknown ccxt exchange id {exchange_id!r}")
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "timeout": timeout_ms or int(os.environ.get(TIMEOUT_ENV, "10000")),
        # Orders are never retried by ccxt itself: an ambiguous failure is resolved by looking up.
        "options": {
            "maxRetriesOnFailure": 0,
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
        },
    }
    if credentials is not None:
        config.update(apiKey=credentials.api_key, secret=credentials.secret)
        if credentials.password:
            config["password"] = credentials.password
    exchange = getattr(ccxt, exchange_id)(config)
    if sandbox:  # must come before any URL rewrite: it restores the exchange's own test URLs
        exchange.set_sandbox_mode(True)
    api_url = api_url if api_url is not None else os.environ.get(API_URL_ENV)
    if api_url:
        point_at(exchange, api_url)
    return exchange


def point_at(exchange: Any, base_url: str) -> None:
    """Rewrite every API URL of the exchange to the same path on base_url."""
    from urllib.parse import urlparse

    base = base_url.rstrip("/")

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        if isinstance(value, str) and value.startswith("http"):
            return base + urlparse(value).path
        return value

    exchange.urls["api"] = rewrite(exchange.urls["api"])


class Pacer:
    """How long the venue asked us to wait. A 429 or 418 (with Retry-After, else an exponential back-off)
    holds every call of the runtime, the feed and the order poller included, until the venue's time is up."""

    def __init__(self, first: float = 1.0, cap: float = 300.0) -> None:
        self.first, self.cap = first, cap
        self._until = 0.0
        self._backoff = first
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(0.0, self._until - time.monotonic())

    def wait(self, stop: threading.Event) -> bool:
        """Sleep out the cool-down; False when stopped meanwhile."""
        left = self.remaining()
        return not stop.wait(left) if left else True

    def rate_limited(self, exchange: Any) -> float:
        """Note a rate-limit answer; returns the seconds to wait."""
        headers = getattr(exchange, "last_response_headers", None) or {}
        raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        with self._lock:
            try:
                delay = float(raw) if raw is not None else self._backoff
            except ValueError:
                delay = self._backoff
            self._backoff = min(self._backoff * 2, self.cap)
            self._until = max(self._until, time.monotonic() + delay)
        return delay

    def answered(self) -> None:
        self._backoff = self.first
