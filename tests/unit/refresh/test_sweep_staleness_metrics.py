"""The sweep reports how many of its coins got no fresh price: what PriceStalenessAlarm divides."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from portfolio.domain.prices import PriceQuote, PriceSource
from portfolio.observability import metrics
from portfolio.services.ports import SweepResult
from portfolio.services.price_sweep import PriceSweep

WINDOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)


def quote(coin: str, *, stale: bool = False) -> PriceQuote:
    source = PriceSource.LAST_KNOWN if stale else PriceSource.FRESH
    return PriceQuote(token=coin, price=Decimal("1"), timestamp=WINDOW, source=source, stale=stale)


class Held:
    def held_tokens(self) -> list[str]:
        return [f"ethereum:0x{index:040x}" for index in range(1, 6)]


class Sweeper:
    def sweep(self, tokens, *, deadline=None) -> SweepResult:
        return SweepResult(
            fresh={"a": quote("a"), "b": quote("b")},
            stale={"c": quote("c", stale=True), "d": quote("d", stale=True)},
            unpriced=["e"],
            api_calls=1,
        )


class History:
    def record(self, prices, window) -> int:
        return len(prices)


def test_given_a_sweep_with_stale_and_unpriced_coins_then_it_counts_them_beside_the_coins_swept():
    metrics.clear_metrics()

    PriceSweep(Held(), Sweeper(), History()).run(WINDOW)

    recorded = {name: sum(entry["Value"]) for name, entry in metrics.metric_set.items()}
    metrics.clear_metrics()
    assert (recorded["SweptCoins"], recorded["SweptStaleCoins"], recorded["SweptUnpricedCoins"]) == (5, 2, 1)
