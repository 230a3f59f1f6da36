"""Prometheus metrics, /healthz and /readyz on one port (the pod's probes and scrape target)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

FEED_STATES = ("DELAYED", "LIVE", "CONNBROKEN", "DISCONNECTED")


class RuntimeMetrics:
    def __init__(self, bot: str, namespace: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"bot": bot, "namespace": namespace}
        self._labels = labels
        names = list(labels)

        def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, [*names, *extra], registry=self.registry)

        def counter(name: str, doc: str, extra: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, [*names, *extra], registry=self.registry)

        self.bars = counter("botops_bars", "Closed candles delivered to the strategy")
        self.feed_state = gauge("botops_feed_state", "1 for the feed's current state", ("state",))
        self.feed_errors = counter("botops_feed_errors", "Market data fetches that failed")
        self.orders = counter("botops_orders", "Orders by final status", ("status",))
        self.trades = counter("botops_trades", "Executed orders recorded")
        self.equity = gauge("botops_equity", "Cash plus position value (quote currency)")
        self.pnl = gauge("botops_pnl", "Profit and loss since the bot started (quote currency)")
        self.position = gauge("botops_position", "Open position (base currency units)")
        self.last_bar = gauge("botops_last_bar_timestamp_seconds", "Close time of the last bar")
        self.heartbeat = gauge("botops_heartbeat_timestamp_seconds", "Time of the last database heartbeat")
        self.lease = gauge("botops_lease_held", "1 while this runtime holds the bot's lease")
        self.halted = gauge("botops_trading_halted", "1 while trading is halted (daily loss, fleet halt)")
        self.trading_state = gauge(
            "botops_trading_state", "1 for the bot's trading state (active, reducing, halted)", ("state",)
        )
        self.spooled = gauge("botops_journal_spooled_records", "Records waiting in the local spool for the database")

    def labels(self, metric: Any, **extra: str) -> Any:
        return metric.labels(**self._labels, **extra)

    def set_trading_state(self, state: str) -> None:
        for candidate in ("active", "reducing", "halted"):
            self.labels(self.trading_state, state=candidate).set(1 if candidate == state else 0)

    def set_feed_state(self, state: str) -> None:
        for candidate in FEED_STATES:
            self.labels(self.feed_state, state=candidate).set(1 if candidate == state else 0)


class HealthServer:
    """Serves /metrics from a registry and the two probes; used by the runtime and the operator."""

    def __init__(
        self,
        port: int,
        registry: CollectorRegistry,
        alive: Callable[[], tuple[bool, str]],
        ready: Callable[[], tuple[bool, str]],
        host: str = "0.0.0.0",
    ) -> None:
        handler = self._handler(registry, alive, ready)
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="health-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _handler(
        registry: CollectorRegistry, alive: Callable[[], tuple[bool, str]], ready: Callable[[], tuple[bool, str]]
    ) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.startswith("/metrics"):
                    self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif self.path.startswith("/healthz"):
                    ok, why = alive()
                    self._send(200 if ok else 503, why.encode())
                elif self.path.startswith("/readyz"):
                    ok, why = ready()
                    self._send(200 if ok else 503, why.encode())
                else:
                    self._send(404, b"not found")

            def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
