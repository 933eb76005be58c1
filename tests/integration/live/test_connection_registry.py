"""The connections of each user: one item per connection in the user's partition (with a TTL), and a
Redis index that answers "none" for the users nearly every refresh asks about."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import redis
from portfolio import wiring
from portfolio.adapters.connection_registry import (
    CONNECTION_TTL_S,
    DynamoConnectionRegistry,
    connection_key,
    connections_key,
)
from portfolio.services.ports import PushedFigures

from local_stack.ports import free_port


class CountingClient:
    """The functions' DynamoDB client, counting the Queries it sends."""

    def __init__(self, client) -> None:
        self._client = client
        self.queries = 0

    def query(self, **arguments):
        self.queries += 1
        return self._client.query(**arguments)

    def __getattr__(self, name):
        return getattr(self._client, name)


@pytest.fixture
def counting(live_env) -> CountingClient:
    return CountingClient(wiring.dynamodb_client())


def test_given_two_connections_of_a_user_when_listed_then_both_and_only_theirs_are_found(registry, user_id):
    registry.add(user_id, "conn-a")
    registry.add(user_id, "conn-b")
    registry.add(f"{user_id}-other", "conn-c")

    assert sorted(registry.connections_of(user_id)) == ["conn-a", "conn-b"]


def test_given_a_connection_when_added_then_its_item_lives_in_the_users_partition_with_a_ttl(
    registry, user_id, dynamodb_client, live_env
):
    before = int(time.time())
    registry.add(user_id, "conn-a")

    item = dynamodb_client.get_item(TableName=live_env.table_name, Key=connection_key(user_id, "conn-a"))["Item"]
    assert item["pk"] == {"S": f"USER#{user_id}"}
    assert item["sk"] == {"S": "CONN#conn-a"}
    assert before + CONNECTION_TTL_S <= int(item["expiresAt"]["N"]) <= int(time.time()) + CONNECTION_TTL_S


def test_given_a_removed_connection_then_it_is_no_longer_listed_nor_indexed(registry, user_id, redis_client):
    registry.add(user_id, "conn-a")

    registry.remove(user_id, "conn-a")

    assert registry.connections_of(user_id) == []
    assert redis_client.scard(connections_key(user_id)) == 0


def test_given_a_user_with_no_connection_then_redis_answers_without_any_dynamodb_query(
    counting, live_env, redis_client, user_id
):
    registry = DynamoConnectionRegistry(counting, live_env.table_name, wiring.redis_client())

    assert registry.connections_of(user_id) == []
    assert counting.queries == 0


def test_given_redis_unreachable_then_the_connections_are_read_from_dynamodb(counting, live_env, user_id):
    registry = DynamoConnectionRegistry(counting, live_env.table_name, wiring.redis_client())
    registry.add(user_id, "conn-a")
    unreachable = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    without_redis = DynamoConnectionRegistry(counting, live_env.table_name, unreachable)

    assert without_redis.connections_of(user_id) == ["conn-a"]
    assert counting.queries == 1


def test_given_an_item_past_its_ttl_but_not_yet_swept_then_it_is_not_listed(live_env, user_id):
    clock = [time.time()]
    registry = DynamoConnectionRegistry(
        wiring.dynamodb_client(), live_env.table_name, wiring.redis_client(), clock=lambda: clock[0]
    )
    registry.add(user_id, "conn-a")

    clock[0] += CONNECTION_TTL_S + 1

    assert registry.connections_of(user_id) == []


def test_given_an_index_lost_by_redis_when_the_connection_pings_then_it_is_found_again(registry, user_id, redis_client):
    registry.add(user_id, "conn-a")
    redis_client.delete(connections_key(user_id))
    assert registry.connections_of(user_id) == []

    registry.keep_alive(user_id, "conn-a")

    assert registry.connections_of(user_id) == ["conn-a"]


def test_given_figures_pushed_then_they_are_read_back_as_pushed(registry, user_id):
    figures = PushedFigures(total_value_usd=Decimal("1234.56"), total_pnl_usd=Decimal("-0.5"), stale_price_count=2)

    registry.remember_pushed(user_id, figures)

    assert registry.last_pushed(user_id) == figures
    assert registry.last_pushed(f"{user_id}-other") is None
