"""The local stream mapping filters records with the FilterCriteria template.yaml deploys, read from there."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local_stack.stream_poller import CACHE_INVALIDATOR_FUNCTION, matches_pattern, template_stream_filter
from local_stack.template_resources import load_template


def record(sort_key: str, partition: str = "USER#alice") -> dict[str, Any]:
    return {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": partition}, "sk": {"S": sort_key}}}}


def template_with_patterns(*patterns: dict[str, Any]) -> dict[str, Any]:
    template = load_template()
    events = template["Resources"][CACHE_INVALIDATOR_FUNCTION]["Properties"]["Events"]
    (stream,) = [event for event in events.values() if event["Type"] == "DynamoDB"]
    stream["Properties"]["FilterCriteria"] = {"Filters": [{"Pattern": json.dumps(pattern)} for pattern in patterns]}
    return template


def test_given_the_deployed_template_then_portfolio_items_pass_and_holder_counts_do_not() -> None:
    passes = template_stream_filter(CACHE_INVALIDATOR_FUNCTION)

    assert passes(record("PROFILE"))
    assert not passes(record("ethereum:0xabc#3", partition="TOKENS#1"))


def test_given_a_pattern_with_a_prefix_rule_then_the_records_it_names_pass() -> None:
    passes = template_stream_filter(
        CACHE_INVALIDATOR_FUNCTION,
        template_with_patterns({"dynamodb": {"Keys": {"sk": {"S": ["PROFILE", {"prefix": "TX#"}]}}}}),
    )

    assert passes(record("PROFILE"))
    assert passes(record("TX#t-1"))
    assert not passes(record("NOTE#1"))


def test_given_several_patterns_then_a_record_matching_any_passes() -> None:
    passes = template_stream_filter(
        CACHE_INVALIDATOR_FUNCTION,
        template_with_patterns({"eventName": ["REMOVE"]}, {"dynamodb": {"Keys": {"sk": {"S": ["PROFILE"]}}}}),
    )

    assert passes(record("PROFILE"))
    assert passes({**record("TX#t-1"), "eventName": "REMOVE"})
    assert not passes(record("TX#t-1"))


def test_given_an_exists_rule_then_presence_decides() -> None:
    pattern = {"dynamodb": {"NewImage": {"version": [{"exists": True}]}}}

    assert matches_pattern(pattern, {"dynamodb": {"NewImage": {"version": {"N": "1"}}}})
    assert not matches_pattern(pattern, {"dynamodb": {"Keys": {}}})


def test_given_a_rule_this_filter_does_not_know_then_it_refuses_rather_than_lets_everything_through() -> None:
    with pytest.raises(ValueError, match="not supported"):
        matches_pattern({"eventName": [{"anything-but": ["REMOVE"]}]}, record("PROFILE"))
