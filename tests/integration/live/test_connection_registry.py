"""The connections of each user: one item per connection in a partition of the user's connections (with
a TTL), and a Redis index that answers "none" for the users nearly every refresh asks about, and says
"not known" (the Query answers) when it lost a user's set."""

from __future__ import annotations

import time

import pytest
import redis
from portfolio import wiring
from portfolio.adapters.connection_registry import (
    CONNECTION_TTL_S,
    INDEXED,
    DynamoConnectionRegistry,
    connection_key,
    connections_key,
)

from local_stack.ports import free_port

# The region the functions run in here (their AWS_REGION).
REGION = "us-east-1"


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


def test_given_a_connection_when_added_then_its_item_lives_in_the_connections_partition_with_a_ttl(
    registry, user_id, dynamodb_client, live_env
):
    before = int(time.time())
    registry.add(user_id, "conn-a")

    item = dynamodb_client.get_item(TableName=live_env.table_name, Key=connection_key(user_id, "conn-a"))["Item"]
    assert item["pk"] == {"S": f"CONN#{user_id}"}
    assert item["sk"] == {"S": "conn-a"}
    user_partition = dynamodb_client.query(
        TableName=live_env.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"USER#{user_id}"}},
    )
    assert user_partition["Items"] == []
    assert before + CONNECTION_TTL_S <= int(item["expiresAt"]["N"]) <= int(time.time()) + CONNECTION_TTL_S


def test_given_a_removed_connection_then_it_is_no_longer_listed_nor_indexed(registry, user_id, redis_client):
    registry.add(user_id, "conn-a")
    registry.connections_of(user_id)

    registry.remove(user_id, "conn-a")

    assert registry.connections_of(user_id) == []
    assert redis_client.smembers(connections_key(user_id)) == {INDEXED.encode()}


def test_given_a_user_with_no_connection_then_after_one_query_redis_answers_without_dynamodb(
    counting, live_env, redis_client, user_id
):
    registry = DynamoConnectionRegistry(counting, live_env.table_name, wiring.redis_client(), region=REGION)

    # The first ask finds no index for the user: the record answers, and the index learns "none"
    assert registry.connections_of(user_id) == []
    assert counting.queries == 1
    assert [registry.connections_of(user_id) for _ in range(3)] == [[], [], []]
    assert counting.queries == 1


def test_given_a_user_whose_connections_all_closed_then_redis_answers_none_without_a_query(counting, live_env, user_id):
    registry = DynamoConnectionRegistry(counting, live_env.table_name, wiring.redis_client(), region=REGION)
    registry.add(user_id, "conn-a")
    assert registry.connections_of(user_id) == ["conn-a"]
    registry.remove(user_id, "conn-a")
    queries = counting.queries

    assert registry.connections_of(user_id) == []
    assert counting.queries == queries


def test_given_redis_unreachable_then_the_connections_are_read_from_dynamodb(counting, live_env, user_id):
    registry = DynamoConnectionRegistry(counting, live_env.table_name, wiring.redis_client(), region=REGION)
    registry.add(user_id, "conn-a")
    unreachable = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    without_redis = DynamoConnectionRegistry(counting, live_env.table_name, unreachable, region=REGION)

    assert without_redis.connections_of(user_id) == ["conn-a"]
    assert counting.queries == 1


def test_given_an_item_past_its_ttl_but_not_yet_swept_then_it_is_not_listed(live_env, user_id):
    clock = [time.time()]
    registry = DynamoConnectionRegistry(
        wiring.dynamodb_client(), live_env.table_name, wiring.redis_client(), region=REGION, clock=lambda: clock[0]
    )
    registry.add(user_id, "conn-a")

    clock[0] += CONNECTION_TTL_S + 1

    assert registry.connections_of(user_id) == []


def test_given_an_index_evicted_by_redis_then_the_connection_is_still_found_and_indexed_again(
    registry, user_id, redis_client
):
    registry.add(user_id, "conn-a")
    assert registry.connections_of(user_id) == ["conn-a"]  # the index knows the user: {INDEXED, conn-a}

    redis_client.delete(connections_key(user_id))  # evicted, or lost by a failover (test_connections_redis_outage.py)

    assert registry.connections_of(user_id) == ["conn-a"]
    assert redis_client.smembers(connections_key(user_id)) == {INDEXED.encode(), b"conn-a"}


def test_given_a_set_started_by_a_ping_on_a_lost_index_then_the_other_connections_are_found_too(
    registry, user_id, redis_client
):
    registry.add(user_id, "conn-a")
    registry.add(user_id, "conn-b")
    redis_client.delete(connections_key(user_id))

    registry.keep_alive(user_id, "conn-b")  # {conn-b}: not known to be every connection

    assert sorted(registry.connections_of(user_id)) == ["conn-a", "conn-b"]


def test_given_more_connections_than_the_cap_then_a_listing_names_no_more_than_the_cap(live_env, user_id):
    roomy = DynamoConnectionRegistry(
        wiring.dynamodb_client(), live_env.table_name, None, region=REGION, max_connections=50
    )
    for number in range(7):
        roomy.add(user_id, f"conn-{number}")
    capped = DynamoConnectionRegistry(
        wiring.dynamodb_client(), live_env.table_name, wiring.redis_client(), region=REGION, max_connections=3
    )

    listed = capped.connections_of(user_id)

    assert len(listed) == 3
    assert set(listed) <= {f"conn-{number}" for number in range(7)}
    assert capped.open_count(user_id) == 3
    assert roomy.open_count(user_id) == 7


def test_given_expired_items_not_yet_swept_then_they_are_not_counted(live_env, user_id):
    clock = [time.time()]
    registry = DynamoConnectionRegistry(
        wiring.dynamodb_client(), live_env.table_name, None, region=REGION, max_connections=5, clock=lambda: clock[0]
    )
    for number in range(4):
        registry.add(user_id, f"old-{number}")
    clock[0] += CONNECTION_TTL_S + 1
    registry.add(user_id, "new")

    assert registry.open_count(user_id) == 1
    assert registry.connections_of(user_id) == ["new"]


def test_given_a_connection_of_another_region_replicated_here_when_listing_then_it_is_not_this_regions_to_push_to(
    live_env, user_id
):
    # Given: the same global table seen from two regions, a connection opened in the other one
    elsewhere = DynamoConnectionRegistry(wiring.dynamodb_client(), live_env.table_name, None, region="eu-west-1")
    here = DynamoConnectionRegistry(wiring.dynamodb_client(), live_env.table_name, None, region=REGION)
    elsewhere.add(user_id, "conn-over-there")

    # When / Then: this region neither pushes to it nor counts it against the cap, and the other region still does
    assert here.connections_of(user_id) == []
    assert here.open_count(user_id) == 0
    assert elsewhere.connections_of(user_id) == ["conn-over-there"]
