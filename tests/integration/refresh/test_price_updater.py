"""The refresh pipeline end to end: scheduler -> moto's SQS -> poller -> PriceUpdaterFunction -> DynamoDB + Redis.

Everything outside is real and local: moto's server over HTTP, a Redis server, a coins API server.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from portfolio import wiring
from portfolio.adapters.portfolio_cache import CacheKind
from portfolio.adapters.price_redis_tier import DEFAULT_KEY_PREFIX as PRICE_KEY_PREFIX
from portfolio.domain.portfolio_record import PortfolioSnapshot
from portfolio.domain.views import Resolution
from portfolio.services.portfolio_refresher import PortfolioRefresher, process_refresh_event
from portfolio.services.refresh_planner import RefreshMessage
from price_updater.app import lambda_handler as price_updater
from refresh_scheduler.app import lambda_handler as scheduler

from local_stack.scheduler import scheduled_event as local_scheduled_event
from local_stack.sqs_poller import SqsPoller
from tests.integration.refresh.conftest import MAX_RECEIVE_COUNT
from tests.integration.refresh.seeding import buy, random_token, seed_user
from tests.integration.refresh.sqs_helpers import queue_depth, receive_all

WINDOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)


def scheduled_event(when: datetime = WINDOW) -> dict:
    return local_scheduled_event(when)


def send(sqs_client, queue_url: str, user_ids: list[str], window: datetime = WINDOW) -> str:
    body = RefreshMessage(window=window, user_ids=user_ids).model_dump_json(by_alias=True)
    return sqs_client.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"]


def total_value(snapshot: PortfolioSnapshot) -> Decimal:
    from portfolio.domain.valuation import compute_portfolio

    return compute_portfolio(snapshot).summary.total_value_usd


def cached_summary(user_id: str) -> dict | None:
    body = wiring.portfolio_cache().get(CacheKind.PORTFOLIO, user_id)
    return None if body is None else json.loads(body)


def five_minute_points(store, user_id: str) -> list:
    return store.query_history(user_id, Resolution.FIVE_MINUTES, WINDOW.replace(hour=0), WINDOW.replace(hour=23))


@pytest.fixture
def poller(refresh_env, sqs_client, refresh_queues) -> SqsPoller:
    return SqsPoller(sqs_client, refresh_queues.url, price_updater)


@pytest.fixture
def corrupt_user(store, refresh_env, dynamodb_client) -> str:
    """A user whose stored portfolio item no longer parses: loading it raises."""
    user_id = f"corrupt-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [random_token()])
    dynamodb_client.update_item(
        TableName=refresh_env.table_name,
        Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="SET prices = :broken",
        ExpressionAttributeValues={":broken": {"S": "{not json"}},
    )
    return user_id


def test_given_users_queued_by_the_scheduler_when_the_updater_runs_then_every_portfolio_is_priced_recorded_and_cached(
    store, coins_api, poller, sqs_client, refresh_queues, lambda_context
):
    tokens = [random_token() for _ in range(30)]
    for index, token_id in enumerate(tokens):
        coins_api.set_price(token_id.key, f"{index + 1}.5")
    users = [f"pipe-{uuid.uuid4().hex[:10]}" for _ in range(15)]
    for index, user_id in enumerate(users):
        seed_user(store, user_id, [tokens[index], tokens[index + 15]])  # 2 units of each

    scheduler(scheduled_event(), lambda_context)
    results = poller.drain()

    assert sum(len(result.deleted) for result in results) == 2  # 15 users in messages of 10
    assert not any(result.failed for result in results)
    assert queue_depth(sqs_client, refresh_queues.url) == 0
    for index, user_id in enumerate(users):
        snapshot = store.load(user_id)
        expected = 2 * Decimal(f"{index + 1}.5") + 2 * Decimal(f"{index + 16}.5")
        assert snapshot.record.version == 2
        assert total_value(snapshot) == expected
        assert {quote.stale for quote in snapshot.record.prices.values()} == {False}
        [point] = five_minute_points(store, user_id)
        assert (point.timestamp, point.value_usd) == (WINDOW, expected)
        assert Decimal(cached_summary(user_id)["totalValueUsd"]) == expected
    # 30 unique tokens of one invocation: one call of up to 50 coins is the lower bound, and it is met.
    assert coins_api.request_count == len(results) == 1


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
    assert all(store.load(user_id).record.version == 2 for user_id in healthy)

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


def test_given_the_same_message_delivered_twice_when_processed_then_the_state_is_as_after_one(
    store, coins_api, poller, sqs_client, refresh_queues
):
    user_id = f"twice-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [random_token()])
    send(sqs_client, refresh_queues.url, [user_id])
    poller.drain()
    after_first = store.load(user_id)

    send(sqs_client, refresh_queues.url, [user_id])  # SQS's at-least-once: the same body again
    results = poller.drain()

    assert [len(result.deleted) for result in results] == [1]
    assert store.load(user_id) == after_first  # not even the version moved
    assert len(five_minute_points(store, user_id)) == 1


def test_given_the_price_api_down_when_refreshed_then_no_portfolio_drops_in_value_and_prices_are_marked_stale(
    store, coins_api, poller, sqs_client, refresh_queues
):
    token_id = random_token()
    coins_api.set_price(token_id.key, "40")
    user_id = f"down-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [token_id])
    send(sqs_client, refresh_queues.url, [user_id])
    poller.drain()
    coins_api.fail_always(500)
    # The first refresh left the fresh price in the shared tiers; forget it, as if it had expired.
    wiring.price_service().clear_cache()
    wiring.redis_client().delete(f"{PRICE_KEY_PREFIX}{token_id.price_coin_id}")

    send(sqs_client, refresh_queues.url, [user_id], window=WINDOW.replace(minute=5))
    poller.drain()

    snapshot = store.load(user_id)
    assert total_value(snapshot) == Decimal("80")
    assert snapshot.record.prices[token_id.key].stale is True
    assert cached_summary(user_id)["stalePriceCount"] == 1


class CommitsBeforeFirstSave:
    """The real store, with a transaction posted by someone else between the refresher's load and its save."""

    def __init__(self, store, user_id: str, transaction) -> None:
        self._store = store
        self._user_id = user_id
        self._transaction = transaction
        self.interleaved = False

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def save_record(self, record, expected_version: int):
        if not self.interleaved and record.user_id == self._user_id:
            self.interleaved = True
            current = self._store.load(self._user_id, consistent_read=True)
            self._store.commit(
                self._user_id,
                expected_version=current.record.version,
                record=current.record,
                put_transactions=[self._transaction],
            )
        return self._store.save_record(record, expected_version)


def test_given_a_transaction_posted_while_a_refresh_writes_the_portfolio_when_both_finish_then_it_is_kept_and_priced(
    store, coins_api, refresh_env, sqs_client, refresh_queues, lambda_context
):
    held, bought_meanwhile = random_token(), random_token()
    coins_api.set_price(held.key, "10")
    coins_api.set_price(bought_meanwhile.key, "3")
    user_id = f"race-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [held])
    racing_store = CommitsBeforeFirstSave(store, user_id, buy(bought_meanwhile, amount="5", transaction_id="meanwhile"))
    refresher = PortfolioRefresher(racing_store, wiring.price_service(), wiring.portfolio_cache())
    send(sqs_client, refresh_queues.url, [user_id])
    poller = SqsPoller(
        sqs_client,
        refresh_queues.url,
        lambda event, context: process_refresh_event(
            event,
            context,
            refresher=refresher,
            persistence_store=DynamoDBPersistenceLayer(
                table_name=refresh_env.idempotency_table_name, boto3_client=wiring.dynamodb_client()
            ),
            processor=BatchProcessor(EventType.SQS),
        ),
    )

    [result] = poller.drain()

    assert racing_store.interleaved and result.failed == []
    snapshot = store.load(user_id)
    assert [transaction.id for transaction in snapshot.transactions if transaction.id == "meanwhile"] == ["meanwhile"]
    assert snapshot.record.version == 3  # seeded, the concurrent commit, the refresh
    assert snapshot.record.prices[bought_meanwhile.key].price == Decimal("3")
    assert total_value(snapshot) == Decimal("2") * 10 + Decimal("5") * 3
    assert Decimal(cached_summary(user_id)["totalValueUsd"]) == Decimal("35")
