"""The bot's position is its own fills.

A ledger replays the fills of the orders this bot placed (its client order ids), as the venue reports
them: a buy adds the amount received *net of a fee charged in the bought asset* (Binance spot charges
the commission in the asset received unless the account pays fees in BNB: a buy of 0.5 BTC leaves
0.4995 BTC, docs/research/venues.md); a sell removes the amount sold (plus a fee charged in the base
asset, where a venue does that). Entry price is the average cost of what is held, quote fees included;
realised PnL is counted on each sell against that average. Fees in a third asset (BNB) are kept apart
in their own currency. The account balance is a bound, never the position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class Fill:
    trade_id: str
    order_id: str
    client_order_id: str
    side: str  # "buy" or "sell"
    amount: Decimal  # gross base amount of the fill
    price: Decimal
    fee: Decimal = Decimal(0)
    fee_currency: str | None = None
    time: datetime | None = None


@dataclass
class Ledger:
    base: str
    quote: str
    position: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)  # quote paid for what is held (fees in quote included)
    realized_pnl: Decimal = Decimal(0)
    fees_quote: Decimal = Decimal(0)
    fees_other: dict[str, Decimal] = field(default_factory=dict)
    fills: int = 0

    @classmethod
    def of(cls, base: str, quote: str, fills: list[Fill]) -> Ledger:
        ledger = cls(base, quote)
        for fill in fills:
            ledger.apply(fill)
        return ledger

    @property
    def entry_price(self) -> Decimal:
        return self.cost / self.position if self.position > 0 else Decimal(0)

    def net_amount(self, fill: Fill) -> Decimal:
        """What the fill changes in the bot's holding of the base asset (signed)."""
        base_fee = fill.fee if fill.fee_currency == self.base else Decimal(0)
        return fill.amount - base_fee if fill.side == "buy" else -(fill.amount + base_fee)

    def fee_in_quote(self, fill: Fill) -> Decimal:
        """The fee valued in the quote asset (a base fee at the fill's price); 0 for a third asset."""
        if fill.fee_currency == self.quote:
            return fill.fee
        if fill.fee_currency == self.base:
            return fill.fee * fill.price
        return Decimal(0)

    def apply(self, fill: Fill) -> Decimal:
        """Book one fill; returns the change of the position."""
        self.fills += 1
        quote_fee = fill.fee if fill.fee_currency == self.quote else Decimal(0)
        if fill.fee and fill.fee_currency not in (self.base, self.quote, None):
            currency = str(fill.fee_currency)
            self.fees_other[currency] = self.fees_other.get(currency, Decimal(0)) + fill.fee
        self.fees_quote += quote_fee
        delta = self.net_amount(fill)
        if fill.side == "buy":
            self.cost += fill.amount * fill.price + quote_fee
            self.position += delta
            return delta
        given = -delta  # base given up: the amount sold, and a base fee
        held = min(self.position, given) if self.position > 0 else Decimal(0)
        entry = self.entry_price
        proceeds = fill.amount * fill.price - quote_fee
        share = held / given if given else Decimal(0)  # a sell of more than the ledger holds: only its part counts
        self.realized_pnl += proceeds * share - entry * held
        self.cost -= entry * held
        self.position += delta
        if self.position <= 0:
            self.position, self.cost = Decimal(0), Decimal(0)
        return delta
