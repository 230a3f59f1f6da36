"""A venue's order-size rules, applied before an order is sent (and by the paper broker alike).

Amounts are rounded *down* to the lot step (never up: the bot cannot sell what it does not hold, nor
spend what it does not have), then checked against the minimum quantity and the minimum order value
(notional). Binance names these LOT_SIZE, PRICE_FILTER and NOTIONAL (docs/research/venues.md); ccxt
exposes them as `market['precision']` and `market['limits']`. An amount that cannot be placed is
skipped with its reason, never sent to collect the venue's error.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

TICK_SIZE = 4  # ccxt's precisionMode for "precision is the step itself" (every live venue uses it)


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def affordable(cash: float, price: float, commission_rate: float, slippage: float = 0.0) -> float:
    """What `cash` buys at `price` with the slippage and the commission paid from it: a hair under, so float
    rounding never takes the cost past the cash (an all-in stake fits instead of being refused)."""
    if price <= 0:
        return 0.0
    return cash / (price * (1.0 + slippage) * (1.0 + commission_rate)) * (1.0 - 1e-9)


@dataclass(frozen=True)
class Fitted:
    amount: Decimal  # what may be sent (0 when nothing may)
    reason: str | None = None  # why nothing may be sent

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class LotRules:
    step: Decimal | None = None
    min_qty: Decimal | None = None
    max_qty: Decimal | None = None
    min_notional: Decimal | None = None
    tick: Decimal | None = None

    @classmethod
    def of_market(cls, market: dict[str, Any], precision_mode: int = TICK_SIZE) -> LotRules:
        precision, limits = market.get("precision") or {}, market.get("limits") or {}

        def step(value: Any) -> Decimal | None:
            raw = _dec(value)
            if raw is None or precision_mode == TICK_SIZE:
                return raw
            return Decimal(1).scaleb(-int(raw))  # decimal places -> step

        return cls(
            step=step(precision.get("amount")),
            min_qty=_dec((limits.get("amount") or {}).get("min")),
            max_qty=_dec((limits.get("amount") or {}).get("max")),
            min_notional=_dec((limits.get("cost") or {}).get("min")),
            tick=step(precision.get("price")),
        )

    def floor(self, amount: float | Decimal) -> Decimal:
        """Round down to the lot step."""
        value = Decimal(str(amount))
        if value <= 0:
            return Decimal(0)
        if not self.step:
            return value
        return (value / self.step).to_integral_value(rounding=ROUND_DOWN) * self.step

    def fit(self, amount: float | Decimal, price: float | Decimal) -> Fitted:
        """The amount the venue will accept for an order of `amount` at about `price`, or why none."""
        wanted = Decimal(str(amount))
        rounded = self.floor(wanted)
        if rounded <= 0:
            return Fitted(Decimal(0), f"amount {wanted:f} is below one lot step ({self.step:f})")
        if self.min_qty is not None and rounded < self.min_qty:
            return Fitted(Decimal(0), f"amount {rounded:f} is below the minimum quantity {self.min_qty:f}")
        if self.max_qty is not None and rounded > self.max_qty:
            rounded = self.floor(self.max_qty)
        notional = rounded * Decimal(str(price))
        if self.min_notional is not None and notional < self.min_notional:
            return Fitted(
                Decimal(0), f"order value {notional:.8f} is below the minimum order value {self.min_notional:f}"
            )
        return Fitted(rounded)

    def is_dust(self, amount: float | Decimal) -> bool:
        """Less than can ever be sold: below one lot step (or below the minimum quantity)."""
        rounded = self.floor(amount)
        return rounded <= 0 or (self.min_qty is not None and rounded < self.min_qty)
