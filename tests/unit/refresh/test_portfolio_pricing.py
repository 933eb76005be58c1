"""Re-pricing a stored portfolio keeps the best quote it has for every held token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from portfolio.domain.portfolio_record import PortfolioRecord, PortfolioSnapshot
from portfolio.domain.prices import PriceQuote, PriceSource
from portfolio.domain.transactions import Transaction
from portfolio.services.portfolio_pricing import repriced_record

T0 = datetime(2025, 1, 15, 10, tzinfo=UTC)
ETH = "ethereum:0x0000000000000000000000000000000000000000"


def quote(price: str, at: datetime, *, stale: bool = False) -> PriceQuote:
    return PriceQuote(
        token=ETH, price=Decimal(price), timestamp=at, stale=stale,
        source=PriceSource.LAST_KNOWN if stale else PriceSource.FRESH,
    )


def holding_eth(prices: dict[str, PriceQuote]) -> PortfolioSnapshot:
    buy = Transaction(
        id="b1", type="buy", chain="ethereum", token_address=ETH.split(":")[1],
        amount=Decimal(1), price_usd=Decimal(2000), timestamp=T0 - timedelta(days=1),
    )
    return PortfolioSnapshot(record=PortfolioRecord(user_id="u", version=2, prices=prices), transactions=(buy,))


def test_given_a_newer_stored_quote_when_repricing_with_an_older_one_then_the_stored_quote_stays():
    # Given a write stored a fresh 3100 two hours after the refresh fetched a stale 2900
    snapshot = holding_eth({ETH: quote("3100", T0 + timedelta(hours=2))})

    # When the refresh retries its save with the quote it fetched earlier
    record = repriced_record(snapshot, {ETH: quote("2900", T0, stale=True)}, T0 + timedelta(hours=3))

    # Then the newer price is kept
    assert record.prices[ETH].price == Decimal("3100")
    assert record.prices[ETH].stale is False


def test_given_no_new_quote_when_repricing_then_the_previous_one_stays_marked_stale():
    snapshot = holding_eth({ETH: quote("3000", T0)})

    record = repriced_record(snapshot, {}, T0 + timedelta(minutes=5))

    assert (record.prices[ETH].price, record.prices[ETH].stale) == (Decimal("3000"), True)


def test_given_a_newer_quote_when_repricing_then_it_replaces_the_stored_one():
    snapshot = holding_eth({ETH: quote("3000", T0)})

    record = repriced_record(snapshot, {ETH: quote("3050", T0 + timedelta(minutes=5))}, T0 + timedelta(minutes=5))

    assert record.prices[ETH].price == Decimal("3050")
