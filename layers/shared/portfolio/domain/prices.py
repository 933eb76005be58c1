"""A price as the price service answers it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from portfolio.domain.money import DecimalValue
from portfolio.wire_format import CamelModel


class PriceSource(StrEnum):
    FRESH = "fresh"  # from the coins API in this call
    MEMORY = "memory"  # this container's in-memory tier
    REDIS = "redis"  # the shared Redis tier
    LAST_KNOWN = "last_known"  # the durable last-known store, after the API gave no fresh price


class PriceQuote(CamelModel):
    """The USD price of one token. A token with no quote at all is unpriced, never zero."""

    token: str = Field(description="chain:address")
    price: DecimalValue
    symbol: str | None = None
    decimals: int | None = None
    timestamp: datetime = Field(description="When the price was observed upstream")
    confidence: DecimalValue | None = None
    source: PriceSource
    stale: bool = False
