"""Re-pricing one portfolio: which tokens it holds, and the record with new quotes merged in."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from portfolio.domain.accounting import replay
from portfolio.domain.portfolio_record import PortfolioRecord, PortfolioSnapshot
from portfolio.domain.prices import PriceQuote
from portfolio.domain.tokens import TokenId


def held_tokens(snapshot: PortfolioSnapshot) -> list[TokenId]:
    """Tokens with an amount still held: the only ones worth pricing."""
    ledger = replay(snapshot.transactions, snapshot.record.cost_basis_method)
    return sorted(position.token for position in ledger.open_positions())


def repriced_record(
    snapshot: PortfolioSnapshot, quotes: Mapping[str, PriceQuote], now: datetime
) -> PortfolioRecord:
    """The record with fresh quotes for what is held.

    A held token the price service could not price keeps its previous quote, marked stale: a
    portfolio never loses value because the price API failed. A stored quote observed later than
    the new one is kept, so a save retried after a concurrent write never replaces newer prices
    with older ones. Quotes of tokens no longer held are dropped. The version is left
    as loaded; the store bumps it on a successful write.
    """
    previous = snapshot.record.prices
    prices: dict[str, PriceQuote] = {}
    for token in held_tokens(snapshot):
        quote = _better(quotes.get(token.key), previous.get(token.key))
        if quote is not None:
            prices[token.key] = quote
    return snapshot.record.model_copy(
        update={
            "prices": prices,
            "prices_as_of": min((quote.timestamp for quote in prices.values()), default=None),
            "updated_at": now,
        }
    )



def _better(new: PriceQuote | None, stored: PriceQuote | None) -> PriceQuote | None:
    """The later observation of the two; a stored quote kept for want of a new one is stale."""
    if stored is None:
        return new
    if new is None:
        return stored.model_copy(update={"stale": True})
    return stored if stored.timestamp > new.timestamp else new
