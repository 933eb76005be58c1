"""The coins API misbehaving during a refresh (scheduler's price sweep -> SQS -> price updater through
the poller).

What must hold whatever the API does: the refresh completes, every held token keeps a price (the
last known one, marked stale, when no fresh one came), no portfolio loses value, and retries stay
within PRICE_MAX_ATTEMPTS and within the invocation's deadline.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

from portfolio import wiring
from portfolio.adapters.price_redis_tier import DEFAULT_KEY_PREFIX
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import Transaction

from local_stack.coins_api import CoinsApiServer
from local_stack.lambda_context import LocalLambdaContext
from tests.faults.conftest import FunctionEnv
from tests.faults.handlers import (
    WINDOW,
    RefreshQueues,
    drain_with_price_updater,
    random_address,
    run_scheduler,
    warmed_prices,
)

AMOUNT = Decimal("2")
NEXT_WINDOW = WINDOW + timedelta(minutes=5)


def seed_users(user_count: int, tokens: list[TokenId], per_user: int) -> dict[str, list[TokenId]]:
    """Readers holding AMOUNT of `per_user` overlapping tokens each, recorded as a write would."""
    recorder = wiring.transaction_recorder()
    holdings: dict[str, list[TokenId]] = {}
    for index in range(user_count):
        user_id = f"coins-{index}-{random_address()[-10:]}"
        held = [tokens[(index * (per_user // 2) + offset) % len(tokens)] for offset in range(per_user)]
        transactions = [
            Transaction(
                id=f"buy-{position}",
                type="buy",
                chain=token.chain,
                token_address=token.address,
                amount=AMOUNT,
                price_usd="1",
                timestamp=WINDOW - timedelta(days=30),
            )
            for position, token in enumerate(held)
        ]
        recorder.record(user_id, transactions)  # marks the user active too: the refresh warms its views
        wiring.activity_log().touch(user_id, asset_list=True)  # and its asset list, whose prices are checked
        holdings[user_id] = held
    return holdings


def price_all(coins_api: CoinsApiServer, tokens: list[TokenId], offset: Decimal) -> dict[str, Decimal]:
    prices = {token.key: Decimal(index + 1) + offset for index, token in enumerate(tokens)}
    for key, price in prices.items():
        coins_api.set_price(key, price)
    return prices


def forget_shared_price_tiers(tokens: list[TokenId]) -> None:
    """As if the cached prices had expired: the next refresh must ask the API (our own keys only)."""
    wiring.price_service().clear_cache()
    wiring.redis_client().delete(*(f"{DEFAULT_KEY_PREFIX}{token.price_coin_id}" for token in tokens))


def refresh(
    sqs_client: Any, queues: RefreshQueues, when: Any, context: LocalLambdaContext | None = None, **poller_options: Any
) -> list[Any]:
    run_scheduler(when, context)
    results = drain_with_price_updater(sqs_client, queues.url, **poller_options)
    assert results, "the scheduler queued nothing"
    assert [result.failed for result in results] == [[]] * len(results)
    assert [result.handler_error for result in results] == [None] * len(results)
    return results


def test_given_a_mix_of_api_faults_when_a_refresh_runs_then_it_completes_and_no_price_is_lost_or_zero(
    function_env: FunctionEnv,
    coins_api: CoinsApiServer,
    sqs_client: Any,
    refresh_queues: RefreshQueues,
    fault_figures: dict,
) -> None:
    # Given: 4 users over 20 tokens, priced once by a healthy API (the last-known prices)
    function_env(PRICE_BATCH_SIZE="5", PRICE_MAX_CONCURRENCY="1", PRICE_MAX_ATTEMPTS="4", PRICE_MEMORY_TTL_SECONDS="0")
    tokens = [TokenId("ethereum", random_address()) for _ in range(20)]
    holdings = seed_users(4, tokens, per_user=10)
    old_prices = price_all(coins_api, tokens, Decimal(0))
    refresh(sqs_client, refresh_queues, WINDOW)
    values_before = {user: sum(AMOUNT * old_prices[t.key] for t in held) for user, held in holdings.items()}

    # When: prices move, and the API answers 500, then 429 with Retry-After, then drops a connection;
    # one coin is missing from its answers, one has a low confidence, one breaks its JSON
    new_prices = price_all(coins_api, tokens, Decimal("0.5"))
    forget_shared_price_tiers(tokens)
    missing, doubtful, poisonous = tokens[3].key, tokens[8].key, tokens[15].key
    coins_api.fail_next(1, status=500)
    coins_api.fail_next(1, status=429, retry_after="0")
    coins_api.drop_next(1)
    coins_api.hide(missing)
    coins_api.set_confidence(doubtful, "0.1")
    coins_api.malformed_when_asked_for(poisonous)
    coins_api.reset_counters()
    stats_before = wiring.price_service().stats()
    run_scheduler(NEXT_WINDOW)
    sweep_stats = wiring.price_service().stats()
    drain_with_price_updater(sqs_client, refresh_queues.url)

    # Then: the coins of the broken answer, the missing and the doubtful one keep their last price, stale
    broken_chunks = [r.coins for r in coins_api.requests if poisonous in r.coins and r.status == 200]
    expected_stale = {missing, doubtful} | {coin for coins in broken_chunks for coin in coins}
    for user_id, held in holdings.items():
        prices = warmed_prices(user_id)
        assert set(prices) == {token.key for token in held}  # no price lost
        for token in held:
            if token.key in expected_stale:
                assert prices[token.key] == (old_prices[token.key], True), token.key
            else:
                assert prices[token.key] == (new_prices[token.key], False), token.key
        value = sum(AMOUNT * prices[token.key][0] for token in held)
        assert value >= values_before[user_id] > 0
    # And: no chunk was asked more than PRICE_MAX_ATTEMPTS times
    attempts_per_chunk = Counter(request.coins for request in coins_api.requests)
    assert max(attempts_per_chunk.values()) == 4
    stats = sweep_stats
    fault_figures.update(
        api_requests=coins_api.request_count,
        chunks=len(attempts_per_chunk),
        max_attempts_per_chunk=max(attempts_per_chunk.values()),
        retries=stats.retries - stats_before.retries,
        failed_chunks=stats.failures - stats_before.failures,
        low_confidence=stats.low_confidence - stats_before.low_confidence,
        stale_prices_served=stats.stale_served - stats_before.stale_served,
        stale_tokens_expected=len(expected_stale),
    )
    assert stats.stale_served - stats_before.stale_served == len(expected_stale)


def test_given_an_api_that_never_answers_in_time_when_a_refresh_runs_then_each_chunk_gives_up_after_its_attempts(
    function_env: FunctionEnv,
    coins_api: CoinsApiServer,
    sqs_client: Any,
    refresh_queues: RefreshQueues,
    fault_figures: dict,
) -> None:
    # Given: priced users
    function_env(PRICE_BATCH_SIZE="5", PRICE_MAX_ATTEMPTS="2", PRICE_READ_TIMEOUT_S="0.2", PRICE_MEMORY_TTL_SECONDS="0")
    tokens = [TokenId("ethereum", random_address()) for _ in range(8)]
    holdings = seed_users(2, tokens, per_user=6)
    old_prices = price_all(coins_api, tokens, Decimal(0))
    refresh(sqs_client, refresh_queues, WINDOW)

    # When: every answer comes later than the client's read timeout
    forget_shared_price_tiers(tokens)
    coins_api.reset_counters()
    coins_api.delay_s = 0.6
    refresh(sqs_client, refresh_queues, NEXT_WINDOW)

    # Then: two attempts per chunk, then the last-known prices, stale, and the same values as before
    attempts_per_chunk = Counter(request.coins for request in coins_api.requests)
    assert set(attempts_per_chunk.values()) == {2}
    for user_id, held in holdings.items():
        prices = warmed_prices(user_id)
        assert {token.key: prices[token.key] for token in held} == {
            token.key: (old_prices[token.key], True) for token in held
        }
    fault_figures.update(chunks=len(attempts_per_chunk), requests=coins_api.request_count)


def test_given_an_api_asking_to_retry_later_when_a_refresh_runs_then_retries_stop_at_the_invocation_deadline(
    function_env: FunctionEnv,
    coins_api: CoinsApiServer,
    sqs_client: Any,
    refresh_queues: RefreshQueues,
    fault_figures: dict,
) -> None:
    # Given: priced users, and retries allowed far beyond what the invocation has time for
    function_env(PRICE_MAX_ATTEMPTS="10", PRICE_BACKOFF_CAP_S="2", PRICE_MEMORY_TTL_SECONDS="0")
    tokens = [TokenId("ethereum", random_address()) for _ in range(4)]
    holdings = seed_users(2, tokens, per_user=4)
    old_prices = price_all(coins_api, tokens, Decimal(0))
    refresh(sqs_client, refresh_queues, WINDOW)

    # When: every call is answered 503 with Retry-After: 1, in an invocation with 4 s to live
    forget_shared_price_tiers(tokens)
    coins_api.reset_counters()
    coins_api.fail_always(503, retry_after="1")
    contexts: list[LocalLambdaContext] = []

    def short_lived_context() -> LocalLambdaContext:
        contexts.append(LocalLambdaContext("test-function", timeout_s=4))
        return contexts[-1]

    refresh(sqs_client, refresh_queues, NEXT_WINDOW, short_lived_context(), context_factory=short_lived_context)

    # Then: the chunk was retried only while the pricing share of the deadline allowed, and the
    # invocation returned in time with every price kept (stale)
    assert 2 <= coins_api.request_count < 10
    assert all(context.get_remaining_time_in_millis() > 0 for context in contexts)
    for user_id, held in holdings.items():
        prices = warmed_prices(user_id)
        assert {prices[t.key] for t in held} == {(old_prices[t.key], True) for t in held}
    fault_figures.update(attempts=coins_api.request_count, max_attempts_setting=10, invocation_timeout_ms=4000)
