"""Re-prices the portfolios of one SQS batch of refresh messages.

Two steps, so that prices are fetched once per invocation while failures stay per message:
1. prefetch: load every user of every message (one Query each) and price the union of their
   tokens in one PriceService call;
2. per message (the BatchProcessor's record handler, idempotent on the message body): recompute
   each user's portfolio from the prefetched quotes, save it under its version, add the history
   point of the window and warm the cache.

A portfolio never loses value because prices failed: the price service falls back to last-known
prices, and repriced_record keeps a held token's previous quote (marked stale) when there is none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch import BatchProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from pydantic import ValidationError

from portfolio.adapters.portfolio_cache import CacheKind
from portfolio.adapters.portfolio_store import VersionConflict
from portfolio.domain.performance import history_keys
from portfolio.domain.portfolio_record import PortfolioRecord, PortfolioSnapshot
from portfolio.domain.prices import PriceQuote
from portfolio.domain.tokens import TokenId
from portfolio.domain.valuation import compute_portfolio
from portfolio.domain.views import HistoryPoint, PortfolioView, Resolution
from portfolio.observability import logger, metrics
from portfolio.services.portfolio_pricing import held_tokens, repriced_record
from portfolio.services.portfolio_rendering import warm_bodies
from portfolio.services.refresh_planner import RefreshMessage

DEFAULT_MAX_SAVE_ATTEMPTS = 3
DEFAULT_LOAD_CONCURRENCY = 8
# Pricing may use this share of the invocation's remaining time; the rest is for saving and caching.
PRICING_TIME_SHARE = 0.5
# A message is a duplicate for as long as its window can still be redelivered.
IDEMPOTENCY_EXPIRY_S = 60 * 60

# (user id, resolution, bucket start, point, expires at or None): the store's HistoryWrite.
HistoryItem = tuple[str, Resolution, datetime, HistoryPoint, int | None]


class RefreshStore(Protocol):
    def load(self, user_id: str, *, consistent_read: bool = False) -> PortfolioSnapshot: ...
    def save_record(self, record: PortfolioRecord, expected_version: int) -> Any: ...
    def put_history_points(self, items: Iterable[HistoryItem]) -> Any: ...


class PriceLookup(Protocol):
    def get_prices(self, tokens: Iterable[TokenId | str], *, deadline: float | None = None) -> dict[str, PriceQuote]:
        ...


class WarmableCache(Protocol):
    def replace_views(self, user_id: str, version: int, bodies: Mapping[tuple[CacheKind, str], bytes]) -> Any: ...


class UserRefreshError(Exception):
    """Some users of a message could not be refreshed; the others were."""

    def __init__(self, failures: Mapping[str, BaseException]) -> None:
        described = ", ".join(f"{user_id}: {type(error).__name__}" for user_id, error in failures.items())
        super().__init__(f"{len(failures)} user(s) not refreshed ({described})")
        self.failures = dict(failures)


@dataclass
class PricedBatch:
    """What the prefetch found: each user's snapshot (or why it failed to load) and the quotes."""

    snapshots: dict[str, PortfolioSnapshot] = field(default_factory=dict)
    load_errors: dict[str, Exception] = field(default_factory=dict)
    quotes: dict[str, PriceQuote] = field(default_factory=dict)
    requested: set[str] = field(default_factory=set)  # token keys already asked for, priced or not
    price_lookups: int = 0
    deadline: float | None = None  # time.monotonic() past which no price request may run

    @property
    def stale_tokens(self) -> set[str]:
        """Tokens with no fresh price this time: stale fallbacks and tokens the service had nothing for."""
        return {key for key in self.requested if key not in self.quotes or self.quotes[key].stale}


@dataclass
class RefreshCounts:
    users_refreshed: int = 0
    users_failed: int = 0
    save_conflicts: int = 0


class PortfolioRefresher:
    def __init__(
        self,
        store: RefreshStore,
        prices: PriceLookup,
        cache: WarmableCache,
        *,
        max_save_attempts: int = DEFAULT_MAX_SAVE_ATTEMPTS,
        load_concurrency: int = DEFAULT_LOAD_CONCURRENCY,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._prices = prices
        self._cache = cache
        self._max_save_attempts = max_save_attempts
        self._load_concurrency = load_concurrency
        self._clock = clock
        self.counts = RefreshCounts()

    def prefetch(self, user_ids: Iterable[str], *, deadline: float | None = None) -> PricedBatch:
        """Load every user once and price all their tokens in one PriceService call."""
        batch = PricedBatch(deadline=deadline)
        unique_user_ids = list(dict.fromkeys(user_ids))
        # One Query per user, several in flight: a batch of 100 users loads in the time of about 13.
        with ThreadPoolExecutor(max_workers=self._load_concurrency, thread_name_prefix="refresh-load") as pool:
            loaded = pool.map(self._try_load, unique_user_ids)
            for user_id, outcome in zip(unique_user_ids, loaded, strict=True):
                if isinstance(outcome, Exception):  # reported when this user's message is processed
                    batch.load_errors[user_id] = outcome
                else:
                    batch.snapshots[user_id] = outcome
        tokens = {token.key: token for snapshot in batch.snapshots.values() for token in held_tokens(snapshot)}
        self._price(batch, list(tokens.values()), deadline)
        return batch

    def _try_load(self, user_id: str) -> PortfolioSnapshot | Exception:
        try:
            return self._store.load(user_id)
        except Exception as error:
            return error

    def refresh_message(self, message: RefreshMessage, batch: PricedBatch) -> list[PortfolioView]:
        """Refresh every user of the message; if any fails, the others still complete, then this raises."""
        views: list[PortfolioView] = []
        failures: dict[str, BaseException] = {}
        for user_id in message.user_ids:
            try:
                views.append(self.refresh_user(user_id, message.window, batch))
            except Exception as error:
                failures[user_id] = error
                self.counts.users_failed += 1
                logger.warning(
                    "user not refreshed",
                    extra={"user_id": user_id, "window": message.window.isoformat(), "error": repr(error)[:300]},
                )
        if failures:
            raise UserRefreshError(failures)
        return views

    def refresh_user(self, user_id: str, window: datetime, batch: PricedBatch) -> PortfolioView:
        if user_id in batch.load_errors:
            raise batch.load_errors.pop(user_id)
        # Taken out of the batch: once saved, the next writer of this user must read the new version.
        prefetched = batch.snapshots.pop(user_id, None)
        snapshot = prefetched or self._store.load(user_id)
        for attempt in range(1, self._max_save_attempts + 1):
            view, record = self._recompute(snapshot, batch, fully_priced=prefetched is not None and attempt == 1)
            try:
                stored = self._store.save_record(record, expected_version=snapshot.record.version)
                break
            except VersionConflict:
                # Someone wrote this portfolio since it was loaded (a transaction, another refresh).
                self.counts.save_conflicts += 1
                if attempt == self._max_save_attempts:
                    raise
                snapshot = self._store.load(user_id, consistent_read=True)
        self._store.put_history_points(_history_items(user_id, window, view))
        self._cache.replace_views(user_id, stored.version, warm_bodies(view))
        self.counts.users_refreshed += 1
        return view

    def _recompute(
        self, snapshot: PortfolioSnapshot, batch: PricedBatch, *, fully_priced: bool
    ) -> tuple[PortfolioView, PortfolioRecord]:
        if not fully_priced:
            # A snapshot read after the prefetch can hold a token the batch never asked about (a fresh buy).
            unseen = [token for token in held_tokens(snapshot) if token.key not in batch.requested]
            if unseen:
                self._price(batch, unseen, deadline=batch.deadline)
        now = self._clock()
        record = repriced_record(snapshot, batch.quotes, now)
        view = compute_portfolio(snapshot.model_copy(update={"record": record}), now=now)
        return view, record

    def _price(self, batch: PricedBatch, tokens: Sequence[TokenId], deadline: float | None) -> None:
        if not tokens:
            return
        batch.requested.update(token.key for token in tokens)
        batch.quotes.update(self._prices.get_prices(tokens, deadline=deadline))
        batch.price_lookups += 1


def _history_items(user_id: str, window: datetime, view: PortfolioView) -> list[HistoryItem]:
    """One point per resolution; bucket keys derive from the window, so a repeat overwrites, never adds."""
    summary = view.summary
    point = HistoryPoint(
        timestamp=window,
        value_usd=summary.total_value_usd,
        invested_usd=summary.invested_usd,
        total_pnl_usd=summary.total_pnl_usd,
    )
    return [
        (user_id, resolution, bucket, point, expires)
        for resolution, bucket, expires in history_keys(window)
    ]


def _user_ids_of(records: Iterable[dict[str, Any]]) -> list[str]:
    """Users of every well-formed message; a malformed one fails later, in its own record handler."""
    user_ids: list[str] = []
    for record in records:
        try:
            user_ids.extend(RefreshMessage.model_validate_json(record.get("body", "")).user_ids)
        except ValidationError:
            continue
    return user_ids


def _pricing_deadline(context: Any) -> float | None:
    remaining_ms = context.get_remaining_time_in_millis() if context is not None else None
    if remaining_ms is None:
        return None
    return time.monotonic() + remaining_ms / 1000 * PRICING_TIME_SHARE


def process_refresh_event(
    event: dict[str, Any],
    context: Any,
    *,
    refresher: PortfolioRefresher,
    persistence_store: BasePersistenceLayer,
    processor: BatchProcessor,
    price_api_calls: Callable[[], int] = lambda: 0,
) -> dict[str, Any]:
    """Refresh the users of an SQS event; answers Lambda's partial batch response."""
    started = time.monotonic()
    records = event.get("Records", [])
    calls_before = price_api_calls()
    batch = refresher.prefetch(_user_ids_of(records), deadline=_pricing_deadline(context))
    prefetch_ms = (time.monotonic() - started) * 1000

    config = IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_EXPIRY_S, raise_on_no_idempotency_key=True)
    if context is not None:
        config.register_lambda_context(context)

    @idempotent_function(
        data_keyword_argument="message", persistence_store=persistence_store, config=config, key_prefix="refresh"
    )
    def refresh_once(message: dict[str, Any]) -> dict[str, Any]:
        views = refresher.refresh_message(RefreshMessage.model_validate(message), batch)
        return {"usersRefreshed": len(views)}

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        message = RefreshMessage.model_validate_json(record.body)
        # The key is the message itself (window + users): a redelivery, or the same users queued
        # twice for one window, is recognised whichever SQS message id carries it.
        return refresh_once(message=message.model_dump(mode="json", by_alias=True))

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    _report(
        messages=len(records),
        failed_messages=len(response.get("batchItemFailures", [])),
        batch=batch,
        counts=refresher.counts,
        price_api_calls=price_api_calls() - calls_before,
        prefetch_ms=prefetch_ms,
        duration_ms=(time.monotonic() - started) * 1000,
    )
    return dict(response)


def _report(
    *,
    messages: int,
    failed_messages: int,
    batch: PricedBatch,
    counts: RefreshCounts,
    price_api_calls: int,
    prefetch_ms: float,
    duration_ms: float,
) -> None:
    stale = len(batch.stale_tokens)
    logger.info(
        "refresh batch done",
        extra={
            "messages": messages,
            "failed_messages": failed_messages,
            "users_refreshed": counts.users_refreshed,
            "users_failed": counts.users_failed,
            "users_not_loaded": len(batch.load_errors),
            "save_conflicts": counts.save_conflicts,
            "unique_tokens": len(batch.requested),
            "stale_prices": stale,
            "price_api_calls": price_api_calls,
            "prefetch_ms": round(prefetch_ms, 1),
            "duration_ms": round(duration_ms, 1),
        },
    )
    # PriceApiCalls and StalePrices are emitted by the PriceService itself, into this same flush.
    metrics.add_metric(name="UsersRefreshed", unit="Count", value=counts.users_refreshed)
    metrics.add_metric(name="RefreshFailures", unit="Count", value=counts.users_failed)
    metrics.add_metric(name="RefreshDurationMs", unit="Milliseconds", value=duration_ms)
