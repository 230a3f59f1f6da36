"""The loopback HTTP server: one venue's REST dialect in front of the shared truth, plus fault injection."""

from __future__ import annotations

import importlib
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.support.exchange_double.base import Answer, Request, Venue
from tests.support.exchange_double.core import (
    DEFAULT_MARKETS,
    MARKET,
    Behaviour,
    Market,
    Order,
    Refused,
    Truth,
    default_price,
)


@dataclass
class Fault:
    method: str
    path: str  # a prefix of the request path
    status: int
    body: Any = None
    hang: float = 0.0  # seconds to sleep before answering
    remaining: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    book: bool = False  # route the request first (an order is booked), then answer the fault


VENUES = {"binance": "Binance", "okx": "Okx", "bybit": "Bybit"}


def _venue_class(venue: str) -> type[Venue]:
    if venue not in VENUES:
        raise ValueError(f"unknown venue {venue!r}; one of {sorted(VENUES)}")
    module = importlib.import_module(f"tests.support.exchange_double.{venue}")
    cls: type[Venue] = getattr(module, VENUES[venue])
    return cls


class ExchangeDouble(Truth):
    """A venue on 127.0.0.1: `ExchangeDouble("okx").start()`, point ccxt at `.url`, read the truth back."""

    def __init__(
        self,
        venue: str = "binance",
        *,
        speed: float = 1.0,
        price_fn: Callable[[int], float] = default_price,
        balances: dict[str, float] | None = None,
        markets: tuple[Market, ...] = DEFAULT_MARKETS,
        behaviour: Behaviour | None = None,
    ) -> None:
        super().__init__(speed=speed, price_fn=price_fn, balances=balances, markets=markets, behaviour=behaviour)
        self.venue = _venue_class(venue)(self)
        self.faults: list[Fault] = []
        self.requests: Counter[str] = Counter()
        self.request_log: list[tuple[str, str, dict[str, Any]]] = []
        self.request_headers: list[dict[str, str]] = []
        self.errors: list[str] = []  # requests the double could not handle (a bug or an unmodelled shape)
        self.answers: list[tuple[float, str, str, int]] = []  # (time.monotonic(), method, path, status) sent
        self._recent: deque[float] = deque()
        self._limited: deque[float] = deque()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # ----------------------------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> ExchangeDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------------------- test controls

    def inject(
        self,
        method: str,
        path: str,
        status: int,
        body: Any = None,
        times: int = 1,
        hang: float = 0.0,
        headers: dict[str, str] | None = None,
        book: bool | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status`/`body`. A POST with a hang is booked
        first and then answered late (the ambiguous create), as the old fake did; `book=True` forces that."""
        book = (hang > 0 and method == "POST") if book is None else book
        with self.lock:
            self.faults.append(Fault(method, path, status, body, hang, times, dict(headers or {}), book))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def place(
        self,
        params: dict[str, Any] | None = None,
        /,
        *,
        api_key: str | None = None,
        symbol: str = "BTC/USDT",
        side: str = "buy",
        type: str = MARKET,
        qty: float = 0.0,
        price: float | None = None,
        trigger_price: float | None = None,
        client_order_id: str = "",
    ) -> Order:
        """Put an order straight into the truth (e.g. made while the bot was away): either the venue's
        own create fields (`place({"symbol": "BTCUSDT", "side": "BUY", ...})`) or unified keywords.
        No filters, faults or not-found window apply."""
        with self.lock:
            account = self.account_key(api_key)
            if params is not None:
                return self.venue.place_native(params, account)
            return self.create(
                account,
                symbol,
                side,
                type,
                qty=qty,
                price=price,
                trigger_price=trigger_price,
                client_order_id=client_order_id,
            )

    # ---------------------------------------------------------------------------------- dispatching

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and path.startswith(fault.path) and fault.remaining > 0:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _rate_limit(self) -> Answer | None:
        b = self.behaviour
        if b.rate_limit is None:
            return None
        now = time.monotonic()
        with self.lock:
            for q in (self._recent, self._limited):
                while q and q[0] < now - b.rate_window_s:
                    q.popleft()
            self._recent.append(now)
            if len(self._recent) <= b.rate_limit:
                return None
            self._limited.append(now)
            status, body, headers = self.venue.rate_limited(len(self._limited) > b.ban_after, b.retry_after_s)
        send = self.venue.retry_after_documented if b.retry_after_header is None else b.retry_after_header
        return status, body, {**headers, **({"Retry-After": str(b.retry_after_s)} if send else {})}

    def _route(self, req: Request) -> Answer:
        with self.lock:
            try:
                self.advance()
                return self.venue.route(req)
            except Refused as refused:
                return self.venue.refusal(refused, req)
            except (KeyError, ValueError, TypeError) as exc:  # say so loudly instead of dropping the connection
                self.errors.append(f"{req.method} {req.path} {req.params}: {exc!r}")
                return 500, {"error": f"exchange double cannot handle this request: {exc!r}"}, {}

    def handle(self, req: Request) -> Answer:
        with self.lock:
            self.requests[f"{req.method} {req.path}"] += 1
            self.request_log.append((req.method, req.path, req.params))
            self.request_headers.append(dict(req.headers))
        limited = self._rate_limit()
        if limited is not None:
            return limited
        fault = self._take_fault(req.method, req.path)
        if fault is not None:
            if fault.book:
                self._route(req)
            time.sleep(fault.hang)
            return fault.status, fault.body, fault.headers
        b = self.behaviour
        if b.maintenance:
            return self.venue.maintenance()
        if self.venue.is_private(req):
            if self.venue.api_key(req) in b.rejected_keys:
                return self.venue.auth_failed(req)
            if b.check_timestamps:
                skewed = self.venue.timestamp_error(req, self.server_ms())
                if skewed is not None:
                    return skewed
        if self.venue.is_create(req) and b.ambiguous_creates > 0:
            with self.lock:
                b.ambiguous_creates -= 1
            self._route(req)  # booked; the answer is lost
            time.sleep(b.ambiguous_hang_s)
            return b.ambiguous_status, None, {}
        return self._route(req)


def _read(handler: BaseHTTPRequestHandler, method: str) -> Request:
    """Query, body (form or JSON) and headers of a request, as a `Request`."""
    parsed = urlparse(handler.path)
    query = {k: v[-1] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length).decode() if length else ""
    body: Any = None
    if raw.lstrip()[:1] in ("{", "["):
        body = json.loads(raw)
    elif raw:
        body = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
    return Request(method, parsed.path, query, body, {k.lower(): v for k, v in handler.headers.items()})


def _handler(double: ExchangeDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self, method: str) -> None:
            request = _read(self, method)
            status, payload, extra = double.handle(request)
            with double.lock:
                double.answers.append((time.monotonic(), method, request.path, status))
            data = b"" if payload is None else payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def do_PUT(self) -> None:
            self._serve("PUT")

    return Handler
