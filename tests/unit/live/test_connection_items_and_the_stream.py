"""A connection item is no portfolio change: neither its put nor its TTL expiry retires cached views."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBStreamEvent
from portfolio.adapters.connection_registry import connection_key

from local_stack.functions import load_handler

EVENTS = Path(__file__).resolve().parents[3] / "events"


@pytest.mark.parametrize("event_name", ["INSERT", "REMOVE"])
def test_given_a_connection_item_on_the_stream_then_the_invalidator_sees_no_portfolio_change(event_name):
    load_handler("CacheInvalidatorFunction")
    from cache_invalidator.app import portfolio_change  # importable once the handler is loaded

    event = json.loads((EVENTS / "dynamodb-portfolio-change.json").read_text())
    record = event["Records"][0]
    record["eventName"] = event_name
    record["dynamodb"]["Keys"] = connection_key("user-alice", "L0SM9cOFvHcCIhw=")
    record["dynamodb"]["NewImage"] = {**connection_key("user-alice", "L0SM9cOFvHcCIhw="), "expiresAt": {"N": "1"}}

    (parsed,) = DynamoDBStreamEvent(event).records

    assert portfolio_change(parsed) is None
