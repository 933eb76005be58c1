"""Writers warm the cache in whatever order they finish; the views of the latest version win."""

from __future__ import annotations

from portfolio.adapters.portfolio_cache import CacheKind, PortfolioCache
from portfolio.services.ports import PRICED_KINDS

PORTFOLIO = (CacheKind.PORTFOLIO, "")


def test_given_version_6_warmed_when_a_slower_writer_warms_version_5_then_version_6_stays(
    cache: PortfolioCache, user_id: str
) -> None:
    # Given a transaction saved and warmed version 6
    assert cache.replace_views(user_id, 6, {PORTFOLIO: b'{"version":6}'})

    # When a refresh that saved version 5 before it warms only now
    refused = not cache.replace_views(user_id, 5, {PORTFOLIO: b'{"version":5}'})

    # Then the newer views are still served
    assert refused
    assert cache.get(CacheKind.PORTFOLIO, user_id) == b'{"version":6}'


def test_given_cached_filtered_views_when_a_new_version_is_warmed_then_they_are_retired(
    cache: PortfolioCache, user_id: str
) -> None:
    # Given views of version 1, filtered ones and a transaction page among them
    cache.replace_views(user_id, 1, {PORTFOLIO: b"v1"})
    cache.set(CacheKind.ASSETS, user_id, b"ethereum only", "chain:ethereum")
    cache.set(CacheKind.TRANSACTIONS, user_id, b"page 1", "limit:50")

    # When version 2 is warmed with its summary
    assert cache.replace_views(user_id, 2, {PORTFOLIO: b"v2"})

    # Then the summary is the new one and every other view is gone, whatever its filter
    assert cache.get(CacheKind.PORTFOLIO, user_id) == b"v2"
    assert cache.get(CacheKind.ASSETS, user_id, "chain:ethereum") is None
    assert cache.get(CacheKind.TRANSACTIONS, user_id, "limit:50") is None


def test_given_the_same_version_warmed_again_when_replaced_then_it_is_accepted(
    cache: PortfolioCache, user_id: str
) -> None:
    # A repeated request re-warms the version it finds stored
    cache.replace_views(user_id, 3, {PORTFOLIO: b"first"})

    assert cache.replace_views(user_id, 3, {PORTFOLIO: b"again"})
    assert cache.get(CacheKind.PORTFOLIO, user_id) == b"again"


def test_given_a_refresh_when_it_warms_the_priced_views_then_transaction_pages_stay_cached(
    cache: PortfolioCache, user_id: str
) -> None:
    # Given a summary, a filtered asset list and a page of transactions cached for version 3
    cache.replace_views(user_id, 3, {PORTFOLIO: b"at old prices"})
    cache.set(CacheKind.ASSETS, user_id, b"ethereum only", "chain:ethereum")
    cache.set(CacheKind.TRANSACTIONS, user_id, b"page 1", "limit:50")

    # When a refresh warms the same version at new prices (prices move, transactions do not)
    assert cache.replace_views(user_id, 3, {PORTFOLIO: b"at new prices"}, kinds=PRICED_KINDS)

    # Then the priced views are renewed and the transaction page is still served
    assert cache.get(CacheKind.PORTFOLIO, user_id) == b"at new prices"
    assert cache.get(CacheKind.ASSETS, user_id, "chain:ethereum") is None
    assert cache.get(CacheKind.TRANSACTIONS, user_id, "limit:50") == b"page 1"
