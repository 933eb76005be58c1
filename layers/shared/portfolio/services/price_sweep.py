"""The refresh's one pricing pass: every held token priced once per window, for every reader.

The held tokens come from the holder counts that every write keeps (never from looking at users).
The sweep asks the coins API for each coin once, ceil(coins / batch size) calls fetched a few at a
time, and leaves the quotes where updaters and API containers read them (Redis, and the durable
last-known copy); then it records each quoted coin's price for the window, which is what the
performance view values positions at. A coin with no fresh price is recorded at its last-known
price, as the portfolio is valued, so the history keeps no gaps while the API is down.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from portfolio.observability import logger, metrics
from portfolio.services.ports import HeldTokenSource, PriceHistoryWriter, PriceSweeper


@dataclass(frozen=True, slots=True)
class SweepOutcome:
    tokens: int
    coins: int
    fresh: int
    stale: int
    unpriced: int
    api_calls: int
    history_items: int
    duration_ms: float


class PriceSweep:
    def __init__(self, held: HeldTokenSource, prices: PriceSweeper, history: PriceHistoryWriter) -> None:
        self._held = held
        self._prices = prices
        self._history = history

    def run(self, window: datetime, *, deadline: float | None = None) -> SweepOutcome:
        started = time.monotonic()
        tokens = self._held.held_tokens()
        result = self._prices.sweep(tokens, deadline=deadline)
        quoted = {coin_id: quote.price for coin_id, quote in (result.stale | result.fresh).items()}
        written = self._history.record(quoted, window)
        outcome = SweepOutcome(
            tokens=len(tokens),
            coins=result.coins,
            fresh=len(result.fresh),
            stale=len(result.stale),
            unpriced=len(result.unpriced),
            api_calls=result.api_calls,
            history_items=written,
            duration_ms=(time.monotonic() - started) * 1000,
        )
        logger.info(
            "price sweep done",
            extra={
                "window": window.isoformat(),
                "tokens": outcome.tokens,
                "coins": outcome.coins,
                "fresh": outcome.fresh,
                "stale": outcome.stale,
                "unpriced": outcome.unpriced,
                "price_api_calls": outcome.api_calls,
                "history_items": outcome.history_items,
                "duration_ms": round(outcome.duration_ms, 1),
            },
        )
        metrics.add_metric(name="SweptCoins", unit="Count", value=outcome.coins)
        # The share of coins without a fresh price is alarmed on (PriceStalenessAlarm).
        metrics.add_metric(name="SweptStaleCoins", unit="Count", value=outcome.stale)
        metrics.add_metric(name="SweptUnpricedCoins", unit="Count", value=outcome.unpriced)
        metrics.add_metric(name="SweepDurationMs", unit="Milliseconds", value=outcome.duration_ms)
        return outcome
