"""The local global table (local_stack/global_tables.py) over moto's server: the template's table in two
regions, writes copied between them item by item, last writer wins, copies on the receiving stream,
nothing copied back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local_stack.aws import local_client
from local_stack.global_tables import GlobalTableReplicator, replicas_of
from local_stack.template_resources import create_tables

REGION_A, REGION_B = "us-east-1", "eu-west-1"


@dataclass
class GlobalTable:
    name: str
    a: Any  # DynamoDB clients of each region
    b: Any
    streams: dict[Any, Any]  # DynamoDB client -> a streams client of its region
    replicator: GlobalTableReplicator

    def replicate(self, passes: int = 3) -> None:
        for _ in range(passes):
            self.replicator.replicate_once()

    def item(self, region: Any, key: dict[str, Any]) -> dict[str, Any] | None:
        return region.get_item(TableName=self.name, Key=key, ConsistentRead=True).get("Item")

    def stream_records(self, region: Any) -> list[dict[str, Any]]:
        """Every record of that region's stream, oldest first."""
        streams = self.streams[region]
        arn = region.describe_table(TableName=self.name)["Table"]["LatestStreamArn"]
        records: list[dict[str, Any]] = []
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            iterator = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            records += streams.get_records(ShardIterator=iterator)["Records"]
        return records


@pytest.fixture
def table(moto_endpoint: str) -> Iterator[GlobalTable]:
    name = f"global-{uuid.uuid4().hex[:8]}"
    clients = {}
    for region in (REGION_A, REGION_B):
        client = local_client("dynamodb", moto_endpoint, region)
        create_tables(client, {"PortfolioTable": name}, streams=True)
        clients[region] = (client, local_client("dynamodbstreams", moto_endpoint, region))
    yield GlobalTable(
        name=name,
        a=clients[REGION_A][0],
        b=clients[REGION_B][0],
        streams=dict(clients.values()),
        replicator=GlobalTableReplicator(replicas_of(moto_endpoint, name, [REGION_A, REGION_B])),
    )


def profile(user_id: str, version: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"USER#{user_id}"},
        "sk": {"S": "PROFILE"},
        "userId": {"S": user_id},
        "version": {"N": str(version)},
    }


def key_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"pk": item["pk"], "sk": item["sk"]}


def next_millisecond() -> None:
    """Until the clock's millisecond changes: two writes then carry different stream timestamps."""
    start = int(time.time() * 1000)
    while int(time.time() * 1000) == start:
        pass


def test_given_a_write_in_one_region_when_replicated_then_the_other_holds_the_same_item_and_streams_it_once(
    table: GlobalTable,
) -> None:
    # Given
    written = profile("alice", 1)
    table.a.put_item(TableName=table.name, Item=written)

    # When: several passes, as the replicator runs all the time
    table.replicate(passes=4)

    # Then: B holds exactly the item (no attribute added), its stream shows the copy once, and the copy
    # never came back to A
    assert table.item(table.b, key_of(written)) == written
    assert [record["eventName"] for record in table.stream_records(table.b)] == ["INSERT"]
    assert [record["eventName"] for record in table.stream_records(table.a)] == ["INSERT"]
    assert table.replicator.converged()


@pytest.mark.parametrize(("earlier_region", "later_region"), [("b", "a"), ("a", "b")], ids=["a-later", "b-later"])
def test_given_one_item_written_in_both_regions_when_replicated_then_both_keep_the_later_write(
    table: GlobalTable, earlier_region: str, later_region: str
) -> None:
    # Given: one region writes the item, the other writes it again a moment later, before either was replicated
    earlier_writer, later_writer = getattr(table, earlier_region), getattr(table, later_region)
    earlier_writer.put_item(TableName=table.name, Item=profile("bob", 7))
    next_millisecond()
    later = profile("bob", 8)
    later_writer.put_item(TableName=table.name, Item=later)

    # When
    table.replicate()

    # Then: last writer wins in both regions, the one whose write lost included
    assert table.item(table.a, key_of(later)) == later
    assert table.item(table.b, key_of(later)) == later
    assert table.replicator.converged()


def test_given_a_delete_in_one_region_when_replicated_then_the_item_is_gone_from_the_other(table: GlobalTable) -> None:
    item = profile("dave", 1)
    table.a.put_item(TableName=table.name, Item=item)
    table.replicate()
    assert table.item(table.b, key_of(item)) == item

    table.b.delete_item(TableName=table.name, Key=key_of(item))
    table.replicate()

    assert table.item(table.a, key_of(item)) is None
    assert [record["eventName"] for record in table.stream_records(table.a)] == ["INSERT", "REMOVE"]


def test_given_a_transaction_when_its_items_are_held_then_the_other_region_sees_part_of_it_until_release(
    table: GlobalTable,
) -> None:
    # Given: transaction items held back, as global tables may deliver a transaction's items apart
    table.replicator.hold(lambda keys: keys["sk"]["S"].startswith("TX#"))
    transaction = {"pk": {"S": "USER#erin"}, "sk": {"S": "TX#t-1"}, "id": {"S": "t-1"}}
    portfolio = profile("erin", 1)
    table.a.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table.name, "Item": transaction}},
            {"Put": {"TableName": table.name, "Item": portfolio}},
        ]
    )

    # When: replicated while held
    table.replicate()

    # Then: B has the portfolio item without its transaction, until release
    assert table.item(table.b, key_of(portfolio)) == portfolio
    assert table.item(table.b, key_of(transaction)) is None
    assert not table.replicator.converged()
    table.replicator.release()
    table.replicate()
    assert table.item(table.b, key_of(transaction)) == transaction
    assert table.replicator.converged()
