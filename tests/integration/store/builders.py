"""Builders for the store tests: transactions with sensible defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from portfolio.domain.accounting import replay
from portfolio.domain.performance import RETENTION
from portfolio.domain.portfolio_record import PortfolioRecord
from portfolio.domain.stored_portfolio import StoredPortfolio
from portfolio.domain.transactions import Transaction
from portfolio.domain.views import Resolution

USDC_ETHEREUM = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
USDC_ARBITRUM = "0xaf88d065e77c8cc2239327c5edb3a432268e5831"
WETH_BASE = "0x4200000000000000000000000000000000000006"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def a_transaction(
    transaction_id: str,
    *,
    at: datetime = T0,
    type: str = "buy",
    chain: str = "ethereum",
    token_address: str = USDC_ETHEREUM,
    amount: str = "1.5",
    price_usd: str | None = "1.0001",
    **extra: Any,
) -> Transaction:
    return Transaction(
        id=transaction_id,
        type=type,
        chain=chain,
        token_address=token_address,
        amount=Decimal(amount),
        price_usd=None if price_usd is None else Decimal(price_usd),
        timestamp=at,
        **extra,
    )


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def expiry(resolution: Resolution, bucket_start: datetime) -> datetime | None:
    """When a point of this resolution may go: the domain's retention."""
    retention = RETENTION[resolution]
    return None if retention is None else bucket_start + retention


def a_portfolio(user_id: str, transactions: Any = (), **record: Any) -> StoredPortfolio:
    """The portfolio those transactions make, ready to commit (record fields as given)."""
    stored = PortfolioRecord(user_id=user_id, **record)
    return StoredPortfolio(record=stored, ledger=replay(transactions, stored.cost_basis_method))
