"""Durable invalidation: no cached view outlives the change of the items it shows.

A write retires the user's views and warms new ones right after its commit; when Redis is
unreachable at that moment, or the function stops between commit and warm, the old views would be
served until their TTL. So every committed change of a portfolio item is also delivered, by the
table's DynamoDB stream, to the cache invalidator, which retires the user's views older than the
committed version, and is retried (the stream keeps the record) until Redis answers. The version
guard makes it idempotent and cheap: views the writer already warmed for that version are kept.

Transaction items are delivered too. In one region they change together with the portfolio item (one
DynamoDB transaction), but a global table replicates items one by one: another region may receive
the portfolio item first, retire its views, and cache a transaction page or a performance view read
before the transactions themselves arrived. Those two views read transaction items, so each
transaction item's arrival retires them (no version to compare: a transaction item carries none).
"""

from __future__ import annotations

from dataclasses import dataclass

from portfolio.services.ports import CacheKind, CacheUnavailableError, ViewRetirement

# The views built from transaction items rather than from the portfolio item alone.
TRANSACTION_VIEWS: tuple[CacheKind, ...] = (CacheKind.TRANSACTIONS, CacheKind.PERFORMANCE)


@dataclass(frozen=True, slots=True)
class PortfolioChange:
    """A portfolio item as committed (`version`), or removed (`version` None)."""

    user_id: str
    version: int | None


@dataclass(frozen=True, slots=True)
class TransactionChange:
    """A transaction item of the user written or deleted."""

    user_id: str


class StaleViewRetirement:
    def __init__(self, cache: ViewRetirement) -> None:
        self._cache = cache

    def retire(self, change: PortfolioChange | TransactionChange) -> None:
        """Raises CacheUnavailableError when Redis did not answer: the change must be delivered again."""
        if isinstance(change, TransactionChange):
            done = self._cache.invalidate(change.user_id, TRANSACTION_VIEWS)
        elif change.version is None:
            done = self._cache.invalidate_user(change.user_id)
        else:
            done = self._cache.retire_views_before(change.user_id, change.version)
        if not done:
            raise CacheUnavailableError(f"the views of {change.user_id} could not be retired")
