"""Users with holdings, written through the real PortfolioStore as a write would: transactions,
positions and holder counts in one commit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from portfolio.adapters.dynamodb.store import PortfolioStore
from portfolio.domain.accounting import Ledger, replay
from portfolio.domain.portfolio_record import PortfolioRecord
from portfolio.domain.stored_portfolio import StoredPortfolio
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import Transaction
from portfolio.services.positions import holder_changes

BOUGHT_AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def token(index: int, chain: str = "ethereum") -> TokenId:
    """A distinct, valid ERC-20 address per index (never the zero address, which is the native token)."""
    return TokenId(chain, f"0x{index + 1:040x}")


def random_token(chain: str = "ethereum") -> TokenId:
    """A token no other test prices: the shared Redis price tier cannot answer for it."""
    return TokenId(chain, "0x" + (uuid.uuid4().hex + uuid.uuid4().hex)[:40])


def buy(
    token_id: TokenId, amount: str = "2", price_usd: str = "100", *, transaction_id: str | None = None
) -> Transaction:
    return Transaction(
        id=transaction_id or f"buy-{token_id.address[-8:]}",
        type="buy",
        chain=token_id.chain,
        token_address=token_id.address,
        amount=amount,
        price_usd=price_usd,
        timestamp=BOUGHT_AT,
    )


def seed_user(store: PortfolioStore, user_id: str, tokens: list[TokenId]) -> StoredPortfolio:
    """A new user holding 2 of each token."""
    transactions = [buy(token_id) for token_id in tokens]
    ledger = replay(transactions)
    return store.commit(
        StoredPortfolio(record=PortfolioRecord(user_id=user_id), ledger=ledger),
        expected_version=0,
        put_transactions=transactions,
        holder_changes=holder_changes(Ledger.empty(), ledger),
    )
