"""What a venue adapter implements: routing plus the venue's own answers to the shared behaviours."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from tests.support.exchange_double.core import Order, Refused

if TYPE_CHECKING:
    from tests.support.exchange_double.server import ExchangeDouble

Answer = tuple[int, Any, dict[str, str]]  # HTTP status, JSON body (or bytes / None), extra headers


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any = None  # a form or JSON object (dict), a JSON array (OKX batch endpoints), or None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names

    @property
    def params(self) -> dict[str, Any]:
        """Query plus body fields; a one-element JSON array contributes its element's fields."""
        body = self.body[0] if isinstance(self.body, list) and len(self.body) == 1 else self.body
        return {**self.query, **(body if isinstance(body, dict) else {})}

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def ok(body: Any, headers: dict[str, str] | None = None) -> Answer:
    return 200, body, headers or {}


class Venue:
    """One venue's REST dialect over the shared truth. Subclasses fill in the class constants and hooks."""

    name: ClassVar[str]
    checks: ClassVar[frozenset[str]]  # the filters this venue enforces (see Truth.check_filters)
    client_id_scope: ClassVar[str]  # "open" or "all" (see Truth.check_client_id)
    retry_after_documented: ClassVar[bool] = False

    def __init__(self, double: ExchangeDouble) -> None:
        self.d = double

    # routing --------------------------------------------------------------------------------------
    def route(self, req: Request) -> Answer:
        raise NotImplementedError

    def place_native(self, params: dict[str, Any], account: str) -> Order:
        """Book an order from the venue's own create-order fields, without HTTP (a test's `place`)."""
        raise NotImplementedError

    # authentication and clocks -------------------------------------------------------------------
    def is_private(self, req: Request) -> bool:
        raise NotImplementedError

    def api_key(self, req: Request) -> str | None:
        raise NotImplementedError

    def timestamp_error(self, req: Request, server_ms: int) -> Answer | None:
        raise NotImplementedError

    def is_create(self, req: Request) -> bool:
        raise NotImplementedError

    # the venue's answers ----------------------------------------------------------------------------
    def rate_limited(self, banned: bool, retry_after_s: int) -> Answer:
        raise NotImplementedError

    def maintenance(self) -> Answer:
        raise NotImplementedError

    def auth_failed(self, req: Request) -> Answer:
        raise NotImplementedError

    def refusal(self, refused: Refused, req: Request) -> Answer:
        raise NotImplementedError
