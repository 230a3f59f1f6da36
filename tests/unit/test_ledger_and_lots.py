"""The bot's position from its own fills, and the venue's lot rules (pure)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from bot_runtime.ledger import Fill, Ledger
from bot_runtime.lots import LotRules

BINANCE_BTC = {
    "precision": {"amount": 1e-05, "price": 0.01},
    "limits": {"amount": {"min": 1e-05, "max": 9000.0}, "cost": {"min": 5.0}},
}


def fill(side: str, amount: str, price: str, fee: str = "0", currency: str | None = None) -> Fill:
    return Fill("t", "o", "c", side, D(amount), D(price), D(fee), currency)


def test_a_fee_in_the_bought_asset_is_not_held() -> None:
    ledger = Ledger.of("BTC", "USDT", [fill("buy", "0.5", "100", "0.0005", "BTC")])
    assert ledger.position == D("0.4995")
    assert ledger.entry_price == D("50") / D("0.4995")  # what was paid per coin held
    ledger.apply(fill("sell", "0.4995", "110", "0.054945", "USDT"))
    assert ledger.position == 0
    assert ledger.realized_pnl == D("0.4995") * 110 - D("0.054945") - 50


def test_quote_and_third_asset_fees() -> None:
    quote = Ledger.of("BTC", "USDT", [fill("buy", "1", "100", "0.1", "USDT")])
    assert quote.position == 1 and quote.entry_price == D("100.1") and quote.fees_quote == D("0.1")
    bnb = Ledger.of("BTC", "USDT", [fill("buy", "1", "100", "0.002", "BNB"), fill("sell", "1", "120", "0.002", "BNB")])
    assert bnb.position == 0 and bnb.realized_pnl == 20 and bnb.fees_other == {"BNB": D("0.004")}


def test_partial_sells_count_pnl_on_the_average_cost() -> None:
    ledger = Ledger.of("BTC", "USDT", [fill("buy", "1", "100"), fill("buy", "1", "200")])
    assert ledger.entry_price == 150
    ledger.apply(fill("sell", "0.5", "160"))
    assert ledger.position == D("1.5") and ledger.realized_pnl == 5 and ledger.entry_price == 150


def test_a_sell_of_more_than_the_ledger_holds_counts_only_its_part() -> None:
    ledger = Ledger.of("BTC", "USDT", [fill("buy", "1", "100"), fill("sell", "2", "110")])
    assert ledger.position == 0 and ledger.realized_pnl == 10


@pytest.mark.parametrize(
    ("amount", "price", "sent", "reason"),
    [
        ("0.123456789", "100", "0.12345", None),
        ("0.000009", "100", "0", "below one lot step"),
        ("0.04", "100", "0", "below the minimum order value 5"),
        ("0.05", "100", "0.05", None),
        ("10000", "1", "9000", None),
    ],
)
def test_amounts_round_down_to_the_step_and_respect_minimums(
    amount: str, price: str, sent: str, reason: str | None
) -> None:
    fitted = LotRules.of_market(BINANCE_BTC).fit(D(amount), D(price))
    assert fitted.amount == D(sent)
    assert (fitted.reason is None) if reason is None else (reason in (fitted.reason or ""))


def test_dust_below_one_step_is_not_a_position() -> None:
    rules = LotRules.of_market(BINANCE_BTC)
    assert rules.is_dust(D("0.000009")) and not rules.is_dust(D("0.00001"))
    assert LotRules.of_market({"precision": {"amount": 3}}, precision_mode=2).floor(D("1.23456")) == D("1.234")
