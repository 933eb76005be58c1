"""Durable invalidation: no cached view outlives the change of the portfolio it shows.

A write retires the user's views and warms new ones right after its commit; when Redis is
unreachable at that moment, or the function stops between commit and warm, the old views would be
served until their TTL. So every committed change of a portfolio item is also delivered, by the
table's DynamoDB stream, to the cache invalidator, which retires the user's views older than the
committed version, and is retried (the stream keeps the record) until Redis answers. The version
guard makes it idempotent and cheap: views the writer already warmed for that version are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from portfolio.services.ports import CacheUnavailableError, ViewRetirement


@dataclass(frozen=True, slots=True)
class PortfolioChange:
    """A portfolio item as committed (`version`), or removed (`version` None)."""

    user_id: str
    version: int | None


class StaleViewRetirement:
    def __init__(self, cache: ViewRetirement) -> None:
        self._cache = cache

    def retire(self, change: PortfolioChange) -> None:
        """Raises CacheUnavailableError when Redis did not answer: the change must be delivered again."""
        if change.version is None:
            done = self._cache.invalidate_user(change.user_id)
        else:
            done = self._cache.retire_views_before(change.user_id, change.version)
        if not done:
            raise CacheUnavailableError(f"the views of {change.user_id} could not be retired")
