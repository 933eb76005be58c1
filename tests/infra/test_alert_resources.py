"""Alerts in the template: the bus fired alerts go to, who may put events on it, who reads and writes
the rules and the listing of users with rules, and the per-user limit."""

from __future__ import annotations

from portfolio.adapters.alert_events import DETAIL_TYPE
from portfolio.adapters.dynamodb.alerts import ALERTING_PREFIX
from portfolio.observability import SERVICE_NAME

from tests.infra.sam import FUNCTIONS, Stack, allows

ALERTING = f"{ALERTING_PREFIX}2"
WRITES = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")


def _variables(stack: Stack, function: str) -> dict:
    return stack.properties(function)["Environment"]["Variables"]


def test_given_the_template_then_it_creates_one_alert_bus_named_after_the_stack(stack: Stack, sam_template):
    buses = stack.of_type("AWS::Events::EventBus")

    assert list(buses) == ["AlertEventBus"]
    assert buses["AlertEventBus"]["Name"] == {"Fn::Sub": "${AWS::StackName}-alerts"}
    outputs = sam_template["Outputs"]
    assert outputs["AlertEventBusName"]["Value"] == {"Ref": "AlertEventBus"}
    # The event's shape users write their rules against is the one the code sends
    assert (SERVICE_NAME, DETAIL_TYPE) == ("cross-chain-portfolio", "Portfolio alert")


def test_given_the_price_updater_then_it_is_told_the_bus_and_may_put_events_on_it_alone(stack: Stack):
    statements = stack.role_statements("PriceUpdaterFunction")
    bus = stack.arn("AlertEventBus")

    assert _variables(stack, "PriceUpdaterFunction")["ALERT_EVENT_BUS_NAME"] == {"Ref": "AlertEventBus"}
    assert allows(statements, "events:PutEvents", bus)
    assert not allows(statements, "events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/default")
    assert not allows(statements, "events:PutRule", bus)


def test_given_any_other_function_then_it_cannot_put_events(stack: Stack):
    for function in set(FUNCTIONS) - {"PriceUpdaterFunction"}:
        statements = stack.role_statements(function)
        assert not allows(statements, "events:PutEvents", stack.arn("AlertEventBus")), function


def test_given_the_api_then_it_keeps_rules_in_users_partitions_and_lists_who_has_any(stack: Stack):
    statements = stack.role_statements("ApiFunction")
    table = stack.arn("PortfolioTable")

    # The rules item and the listing item, in one transaction
    assert allows(statements, "dynamodb:PutItem", table, leading_keys=["USER#alice"])
    assert allows(statements, "dynamodb:PutItem", table, leading_keys=[ALERTING])
    assert allows(statements, "dynamodb:DeleteItem", table, leading_keys=[ALERTING])
    assert not allows(statements, "dynamodb:Query", table, leading_keys=[ALERTING])
    assert _variables(stack, "ApiFunction")["MAX_ALERT_RULES_PER_USER"] == {"Ref": "MaxAlertRulesPerUser"}


def test_given_the_scheduler_then_it_reads_the_listing_of_users_with_rules_and_writes_none_of_it(stack: Stack):
    statements = stack.role_statements("RefreshSchedulerFunction")
    table = stack.arn("PortfolioTable")

    assert allows(statements, "dynamodb:Query", table, leading_keys=[ALERTING])
    for action in WRITES:
        assert not allows(statements, action, table, leading_keys=[ALERTING])
    assert not allows(statements, "dynamodb:Query", table, leading_keys=["USER#alice"])


def test_given_the_price_updater_then_it_records_a_firing_in_the_users_partition_but_never_touches_the_listing(
    stack: Stack,
):
    statements = stack.role_statements("PriceUpdaterFunction")
    table = stack.arn("PortfolioTable")

    assert allows(statements, "dynamodb:BatchGetItem", table, leading_keys=["USER#alice"])
    assert allows(statements, "dynamodb:PutItem", table, leading_keys=["USER#alice"])
    assert allows(statements, "dynamodb:BatchGetItem", table, leading_keys=["PRICE#coingecko:ethereum"])
    for action in WRITES:
        assert not allows(statements, action, table, leading_keys=[ALERTING])


def test_given_the_limit_parameter_then_it_is_bounded_like_the_setting(sam_template):
    from portfolio.settings import Settings

    parameter = sam_template["Parameters"]["MaxAlertRulesPerUser"]
    field = Settings.model_fields["max_alert_rules_per_user"]
    bounds = {type(rule).__name__: rule for rule in field.metadata}

    assert parameter["Default"] == field.default
    assert (parameter["MinValue"], parameter["MaxValue"]) == (bounds["Ge"].ge, bounds["Le"].le)
