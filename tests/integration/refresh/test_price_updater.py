"""The refresh pipeline end to end: scheduler (price sweep, queueing) -> moto's SQS -> poller ->
PriceUpdaterFunction -> Redis.

Everything outside is real and local: moto's server over HTTP, a Redis server, a coins API server.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from portfolio import wiring
from portfolio.adapters.portfolio_cache import CacheKind
from portfolio.adapters.price_redis_tier import DEFAULT_KEY_PREFIX as PRICE_KEY_PREFIX
from portfolio.domain.views import Resolution
from portfolio.services.portfolio_refresher import PortfolioRefresher
from portfolio.services.refresh_message import RefreshMessage
from portfolio.services.transaction_recorder import TransactionRecorder
from price_updater.app import process_refresh_event

from local_stack.functions import load_handler
from local_stack.scheduler import scheduled_event
from local_stack.sqs_poller import SqsPoller
from tests.integration.refresh.conftest import MAX_RECEIVE_COUNT
from tests.integration.refresh.seeding import buy, random_token, seed_user
from tests.integration.refresh.sqs_helpers import queue_depth, receive_all

scheduler = load_handler("RefreshSchedulerFunction")
price_updater = load_handler("PriceUpdaterFunction")
WINDOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def send(sqs_client, queue_url: str, user_ids: list[str], window: datetime = WINDOW, tier: str = "active") -> str:
    body = RefreshMessage(window=window, user_ids=user_ids, tier=tier).model_dump_json(by_alias=True)
    return sqs_client.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"]


def cached_summary(user_id: str) -> dict | None:
    body = wiring.portfolio_cache().get(CacheKind.PORTFOLIO, user_id)
    return None if body is None else json.loads(body)


def cached_value(user_id: str) -> Decimal | None:
    summary = cached_summary(user_id)
    return None if summary is None else Decimal(summary["totalValueUsd"])


@pytest.fixture
def poller(refresh_env, sqs_client, refresh_queues) -> SqsPoller:
    return SqsPoller(sqs_client, refresh_queues.url, price_updater)


@pytest.fixture
def dynamodb_calls(refresh_env) -> list[str]:
    """Every DynamoDB operation the functions' shared client sends from now on."""
    calls: list[str] = []
    wiring.dynamodb_client().meta.events.register(
        "before-parameter-build.dynamodb", lambda model, **_: calls.append(model.name)
    )
    return calls


@pytest.fixture
def corrupt_user(store, refresh_env, dynamodb_client) -> str:
    """A user whose stored portfolio item no longer decodes."""
    user_id = f"corrupt-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [random_token()])
    dynamodb_client.update_item(
        TableName=refresh_env.table_name,
        Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="SET version = :broken",
        ExpressionAttributeValues={":broken": {"S": "not a number"}},
    )
    return user_id


def test_given_readers_and_idle_users_when_a_cycle_runs_then_prices_are_swept_once_and_only_readers_are_warmed(
    store, coins_api, poller, sqs_client, refresh_queues, lambda_context, dynamodb_calls
):
    # Given 15 users holding 2 of each of two tokens (30 tokens in all), of whom 5 read lately
    tokens = [random_token() for _ in range(30)]
    for index, token_id in enumerate(tokens):
        coins_api.set_price(token_id.key, f"{index + 1}.5")
    users = [f"pipe-{uuid.uuid4().hex[:10]}" for _ in range(15)]
    for index, user_id in enumerate(users):
        seed_user(store, user_id, [tokens[index], tokens[index + 15]])
    readers = users[:5]
    for user_id in readers:
        wiring.activity_log().touch(user_id)
    asset_readers = readers[3:]
    for user_id in asset_readers:
        wiring.activity_log().touch(user_id, asset_list=True)
    dynamodb_calls.clear()

    # When the scheduler runs for the window and the updater drains the queue
    outcome = scheduler(scheduled_event(WINDOW), lambda_context)
    results = poller.drain()

    # Then every held token was priced once, in ceil(30 / 50) = 1 call, and the updater asked nothing more
    assert (outcome["sweptCoins"], outcome["priceApiCalls"], coins_api.request_count) == (30, 1, 1)
    assert math.ceil(len(tokens) / 50) == 1
    # And the readers' views hold the new values; idle users are left to their next read
    for index, user_id in enumerate(users):
        expected = 2 * Decimal(f"{index + 1}.5") + 2 * Decimal(f"{index + 16}.5")
        assert cached_value(user_id) == (expected if user_id in readers else None)
        assert store.load_portfolio(user_id).version == 1  # nothing about the user was rewritten
    # And the asset lists of those who read theirs are warmed too, at the same prices
    for user_id in users:
        assets = wiring.portfolio_cache().get(CacheKind.ASSETS, user_id)
        assert (assets is not None) == (user_id in asset_readers)
        if assets is not None:
            assert sum(Decimal(line["valueUsd"]) for line in json.loads(assets)["assets"]) == cached_value(user_id)
    assert (outcome["activeUsers"], outcome["usersQueued"]) == (5, 15)
    assert not any(result.failed for result in results)
    assert queue_depth(sqs_client, refresh_queues.url) == 0
    # And the updater wrote nothing to DynamoDB: the scheduler's run lock and price items were all
    updater_writes = [call for call in dynamodb_calls if call in WRITES]
    assert set(updater_writes) == {"PutItem", "BatchWriteItem"}
    assert updater_writes.count("PutItem") == 1  # the run lock


def test_given_a_swept_cycle_when_a_reader_asks_for_performance_then_the_point_is_valued_from_token_prices(
    store, coins_api, poller, lambda_context
):
    held = random_token()
    coins_api.set_price(held.key, "7")
    user_id = f"perf-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [held])

    scheduler(scheduled_event(WINDOW), lambda_context)

    [(at, price)] = wiring.price_history_store().series([held.price_coin_id], Resolution.FIVE_MINUTES, WINDOW, WINDOW)[
        held.price_coin_id
    ]
    assert (at, price) == (WINDOW, Decimal("7"))


def test_given_a_user_whose_stored_item_is_corrupt_when_refreshed_then_only_its_message_fails_and_comes_back(
    store, coins_api, poller, sqs_client, refresh_queues, corrupt_user
):
    healthy = [f"ok-{uuid.uuid4().hex[:10]}" for _ in range(3)]
    for user_id in healthy:
        seed_user(store, user_id, [random_token()])
    good_message = send(sqs_client, refresh_queues.url, healthy[:2])
    bad_message = send(sqs_client, refresh_queues.url, [corrupt_user, healthy[2]])

    first = poller.poll_once()

    assert sorted(first.received) == sorted([good_message, bad_message])
    assert (first.deleted, first.failed) == ([good_message], [bad_message])
    # The healthy user sharing the failed message was refreshed all the same.
    assert all(cached_value(user_id) is not None for user_id in healthy)

    redelivered = poller.poll_once()
    assert redelivered.received == [bad_message]


def test_given_a_poison_message_when_it_keeps_failing_then_it_ends_in_the_dead_letter_queue(
    refresh_env, poller, sqs_client, refresh_queues
):
    poison = sqs_client.send_message(QueueUrl=refresh_queues.url, MessageBody='{"window": "not a time"')["MessageId"]

    results = poller.drain(max_polls=MAX_RECEIVE_COUNT + 3)

    assert [result.received for result in results] == [[poison]] * MAX_RECEIVE_COUNT
    assert queue_depth(sqs_client, refresh_queues.url) == 0
    assert [message["MessageId"] for message in receive_all(sqs_client, refresh_queues.dead_letter_url)] == [poison]


def test_given_the_same_message_delivered_twice_when_processed_then_the_second_is_recognised_and_skipped(
    store, coins_api, poller, sqs_client, refresh_queues, redis_client
):
    held = random_token()
    coins_api.set_price(held.key, "10")
    user_id = f"twice-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [held])
    send(sqs_client, refresh_queues.url, [user_id])
    poller.drain()
    # The price moves, but the redelivered message is the same one: it must not be processed again
    coins_api.set_price(held.key, "11")
    wiring.price_service().clear_cache()
    redis_client.delete(f"{PRICE_KEY_PREFIX}{held.price_coin_id}")

    send(sqs_client, refresh_queues.url, [user_id])  # SQS's at-least-once: the same body again
    results = poller.drain()

    assert [len(result.deleted) for result in results] == [1]
    assert cached_value(user_id) == Decimal("20")  # not the 22 a second pass would have warmed


def test_given_the_price_api_down_when_a_cycle_runs_then_no_portfolio_drops_in_value_and_prices_are_marked_stale(
    store, coins_api, poller, redis_client, lambda_context
):
    held = random_token()
    coins_api.set_price(held.key, "40")
    user_id = f"down-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [held])
    wiring.activity_log().touch(user_id)
    scheduler(scheduled_event(WINDOW), lambda_context)
    poller.drain()
    coins_api.fail_always(500)
    # The first cycle left the fresh price in the shared tiers; forget it, as if it had expired.
    wiring.price_service().clear_cache()
    redis_client.delete(f"{PRICE_KEY_PREFIX}{held.price_coin_id}")

    scheduler(scheduled_event(WINDOW.replace(minute=5)), lambda_context)
    poller.drain()

    summary = cached_summary(user_id)
    assert Decimal(summary["totalValueUsd"]) == Decimal("80")
    assert summary["stalePriceCount"] == 1


def test_given_an_idle_user_when_refreshed_then_its_views_are_not_warmed(
    store, coins_api, poller, sqs_client, refresh_queues
):
    user_id = f"idle-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [random_token()])
    send(sqs_client, refresh_queues.url, [user_id], tier="idle")

    [result] = poller.drain()

    assert result.failed == []
    assert cached_summary(user_id) is None


class WritesBeforeWarming:
    """The real cache, with a transaction recorded by someone else just before the refresh warms its views."""

    def __init__(self, cache, recorder: TransactionRecorder, user_id: str, transaction) -> None:
        self._cache = cache
        self._recorder = recorder
        self._user_id = user_id
        self._transaction = transaction
        self.interleaved = False

    def __getattr__(self, name: str):
        return getattr(self._cache, name)

    def replace_views_of_many(self, replacements, **options):
        if not self.interleaved and any(replacement.user_id == self._user_id for replacement in replacements):
            self.interleaved = True
            self._recorder.record(self._user_id, [self._transaction])
        return self._cache.replace_views_of_many(replacements, **options)


def test_given_a_transaction_posted_while_a_refresh_values_the_portfolio_when_both_finish_then_its_views_win(
    store, coins_api, refresh_env, sqs_client, refresh_queues
):
    held, bought_meanwhile = random_token(), random_token()
    coins_api.set_price(held.key, "10")
    coins_api.set_price(bought_meanwhile.key, "3")
    user_id = f"race-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [held])
    racing_cache = WritesBeforeWarming(
        wiring.portfolio_cache(),
        wiring.transaction_recorder(),
        user_id,
        buy(bought_meanwhile, amount="5", transaction_id="meanwhile"),
    )
    refresher = PortfolioRefresher(store, wiring.price_service(), racing_cache)
    send(sqs_client, refresh_queues.url, [user_id])
    poller = SqsPoller(
        sqs_client,
        refresh_queues.url,
        lambda event, context: process_refresh_event(event, context, refresher=refresher, persistence_store=None),
    )

    [result] = poller.drain()

    # Then the refresh's views, computed before the write, were refused: the write's views stand
    assert racing_cache.interleaved and result.failed == []
    assert store.load_portfolio(user_id).version == 2
    assert cached_value(user_id) == Decimal("2") * 10 + Decimal("5") * 3


def test_given_a_token_the_sweep_never_saw_when_refreshed_then_the_updater_prices_it_itself(
    store, coins_api, poller, sqs_client, refresh_queues
):
    # Given a user who bought a token after the sweep ran (here: no sweep at all this cycle)
    late = random_token()
    coins_api.set_price(late.key, "4")
    user_id = f"late-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [late])
    send(sqs_client, refresh_queues.url, [user_id])

    poller.drain()

    assert cached_value(user_id) == Decimal("8")
    assert coins_api.request_count == 1
