"""Small builders for domain tests: transactions and quotes with readable defaults."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from portfolio.domain.prices import PriceQuote, PriceSource
from portfolio.domain.transactions import Transaction

T0 = datetime(2024, 1, 1, tzinfo=UTC)

EVM_NATIVE = "0x0000000000000000000000000000000000000000"
USDC_ETHEREUM = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
USDC_ARBITRUM = "0xaf88d065e77c8cc2239327c5edb3a432268e5831"
USDC_BASE = "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"
UNI_ETHEREUM = "0x1f9840a85d5af5bf1d1762f925bdaddc4201f984"
PEPE_ETHEREUM = "0x6982508145454ce325ddbe47a25d4ec3d2311933"
UNLISTED_TOKEN = "0x1111111111111111111111111111111111111111"
SOL_MINT = "So11111111111111111111111111111111111111112"

_ids = itertools.count(1)


def tx(
    type: str,
    amount: str,
    *,
    price: str | None = None,
    fee: str | None = None,
    chain: str = "ethereum",
    token: str = EVM_NATIVE,
    hour: int = 0,
    id: str | None = None,
    category: str | None = None,
    to_chain: str | None = None,
    to_token: str | None = None,
    fee_token: str | None = None,
    fee_amount: str | None = None,
    sequence: int | None = None,
) -> Transaction:
    """A validated transaction `hour` hours after T0."""
    return Transaction.model_validate(
        {
            "id": id or f"tx-{next(_ids):05d}",
            "type": type,
            "chain": chain,
            "tokenAddress": token,
            "amount": amount,
            "priceUsd": price,
            "feeUsd": fee,
            "timestamp": (T0 + timedelta(hours=hour)).isoformat(),
            "category": category,
            "destinationChain": to_chain,
            "destinationTokenAddress": to_token,
            "feeToken": fee_token,
            "feeAmount": fee_amount,
            "sequence": sequence,
        }
    )


def quote(
    key: str,
    price: str,
    *,
    stale: bool = False,
    at: datetime = T0,
    symbol: str | None = None,
) -> PriceQuote:
    return PriceQuote(
        token=key,
        price=Decimal(price),
        symbol=symbol,
        timestamp=at,
        source=PriceSource.LAST_KNOWN if stale else PriceSource.FRESH,
        stale=stale,
    )


def key(chain: str, token: str) -> str:
    return f"{chain}:{token}"
