"""The use cases a route calls, assembled from this container's adapters (portfolio.wiring)."""

from __future__ import annotations

import time
from typing import Any

from portfolio import wiring
from portfolio.services.alert_rules import AlertRules
from portfolio.services.portfolio_reader import PortfolioReader
from portfolio.services.ports import RateLimiter
from portfolio.services.transaction_recorder import TransactionRecorder
from portfolio.services.wallet_links import WalletLinks

# A write may spend this share of the invocation's remaining time on prices; the rest is for the commit.
PRICING_TIME_SHARE = 0.5


def portfolio_reader() -> PortfolioReader:
    return wiring.portfolio_reader()


def transaction_recorder() -> TransactionRecorder:
    return wiring.transaction_recorder()


def wallet_links() -> WalletLinks:
    return wiring.wallet_links()


def alert_rules() -> AlertRules:
    return wiring.alert_rules()


def rate_limiter() -> RateLimiter:
    return wiring.rate_limiter()


def pricing_deadline(lambda_context: Any) -> float | None:
    """A time.monotonic() deadline for re-pricing, from the Lambda's remaining time."""
    remaining_ms = getattr(lambda_context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        return None
    return time.monotonic() + remaining_ms() / 1000 * PRICING_TIME_SHARE
