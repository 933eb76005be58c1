"""An alert rules item is no portfolio change: the cache invalidator never retires views for it."""

from __future__ import annotations

import json
from pathlib import Path

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBStreamEvent
from portfolio.adapters.dynamodb.alerts import ALERTS_SK, alerts_key

from local_stack.functions import load_handler

EVENTS = Path(__file__).resolve().parents[3] / "events"


def test_given_a_committed_rules_item_on_the_stream_then_the_invalidator_sees_no_portfolio_change():
    load_handler("CacheInvalidatorFunction")
    from cache_invalidator.app import portfolio_change  # importable once the handler is loaded

    event = json.loads((EVENTS / "dynamodb-portfolio-change.json").read_text())
    record = event["Records"][0]
    record["dynamodb"]["Keys"] = alerts_key("user-alice")
    record["dynamodb"]["NewImage"] = {**alerts_key("user-alice"), "version": {"N": "3"}, "rules": {"S": "[]"}}

    (parsed,) = DynamoDBStreamEvent(event).records

    assert alerts_key("user-alice")["sk"] == {"S": ALERTS_SK}
    assert portfolio_change(parsed) is None
