"""The cache when Redis is switched off or unreachable: callers get misses and loads, never exceptions."""

from __future__ import annotations

import json
from collections.abc import Iterator

import fakeredis
import pytest
from portfolio.adapters.portfolio_cache import CacheKind, PortfolioCache
from portfolio.observability import metrics
from portfolio.settings import Settings


@pytest.fixture
def clean_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture
def disconnected_cache() -> PortfolioCache:
    server = fakeredis.FakeServer()
    server.connected = False
    return PortfolioCache(fakeredis.FakeRedis(server=server), Settings(REDIS_URL=""))


def test_given_no_redis_configured_when_reading_then_every_read_misses_and_loads() -> None:
    # Given
    cache = PortfolioCache(None, Settings(REDIS_URL=""))
    loads: list[int] = []

    # When
    first = cache.get_or_load(CacheKind.PORTFOLIO, "alice", lambda: loads.append(1) or b"body-1")
    second = cache.get_or_load(CacheKind.PORTFOLIO, "alice", lambda: loads.append(2) or b"body-2")

    # Then
    assert (first, second) == (b"body-1", b"body-2")
    assert loads == [1, 2]
    assert cache.get(CacheKind.PORTFOLIO, "alice") is None
    assert cache.set(CacheKind.PORTFOLIO, "alice", b"x") is False
    assert cache.invalidate_user("alice") is False
    assert cache.stats().misses == 3
    assert cache.enabled is False


def test_given_redis_unreachable_when_reading_and_writing_then_misses_and_skipped_writes_are_counted(
    disconnected_cache: PortfolioCache,
) -> None:
    # Given: a client whose server refuses every command

    # When
    read = disconnected_cache.get(CacheKind.ASSETS, "alice", "chain=base")
    stored = disconnected_cache.set(CacheKind.ASSETS, "alice", b"{}", "chain=base")
    warmed = disconnected_cache.set_many("alice", {(CacheKind.PORTFOLIO, ""): b"{}", (CacheKind.ASSETS, ""): b"[]"})
    invalidated = disconnected_cache.invalidate_portfolio("alice")
    loaded = disconnected_cache.get_or_load(CacheKind.TRANSACTIONS, "alice", lambda: b"from-db")

    # Then
    assert read is None
    assert (stored, warmed, invalidated) == (False, False, False)
    assert loaded == b"from-db"
    stats = disconnected_cache.stats()
    assert stats.kinds[CacheKind.ASSETS].errors == 4  # get, set, set_many, invalidate_portfolio
    assert stats.kinds[CacheKind.TRANSACTIONS].misses == 1
    assert stats.hits == 0
    assert stats.hit_rate == 0.0


def test_given_no_lambda_invocation_when_cache_events_are_published_then_metrics_carry_the_counts(
    disconnected_cache: PortfolioCache, clean_metrics: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given: a first read (published at once), then more within the batching interval
    for _ in range(150):
        disconnected_cache.get(CacheKind.PORTFOLIO, "alice")

    # When: the counts are handed over and flushed as EMF, as the handler's log_metrics would do
    disconnected_cache.publish_metrics()
    metrics.flush_metrics()

    # Then: every miss and error is accounted for, and nothing raised outside an invocation
    assert "CacheMiss" not in metrics.metric_set
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert _total(emitted, "CacheMiss") == 150
    assert _total(emitted, "CacheError") == 150


def _total(emf_documents: list[dict], metric: str) -> float:
    """EMF holds one value as a number and several as a list."""
    total = 0.0
    for document in emf_documents:
        values = document.get(metric, [])
        total += sum(values) if isinstance(values, list) else values
    return total


def test_given_a_hits_and_misses_mix_when_reading_stats_then_the_hit_rate_is_per_kind_and_overall() -> None:
    # Given
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    cache = PortfolioCache(client, Settings(REDIS_URL=""))
    # A value written by hand in the stored layout: the initial generation, then the body.
    client.set("portfolio:cross-chain:{alice}", b"0" * 16 + b"body")

    # When
    cache.get(CacheKind.PORTFOLIO, "alice")
    cache.get(CacheKind.PORTFOLIO, "alice")
    cache.get(CacheKind.PORTFOLIO, "bob")
    cache.get(CacheKind.ASSETS, "alice")

    # Then
    stats = cache.stats()
    assert stats.kinds[CacheKind.PORTFOLIO].hit_rate == pytest.approx(2 / 3)
    assert stats.hit_rate == pytest.approx(2 / 4)
    assert stats.model_dump(by_alias=True)["hitRate"] == pytest.approx(0.5)
