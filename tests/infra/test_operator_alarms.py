"""Operator alarms: refresh lag, the updater near its timeout, stale prices, Redis errors, the HTTP
API's 5xx and p99 latency, alerts not delivered; each on the metric the code (or AWS) really emits."""

from __future__ import annotations

from typing import Any

import pytest
from portfolio.observability import METRICS_NAMESPACE, SERVICE_NAME

from tests.infra.sam import Stack

SERVICE_DIMENSION = [{"Name": "service", "Value": SERVICE_NAME}]


def _alarm(stack: Stack, name: str) -> dict[str, Any]:
    return stack.of_type("AWS::CloudWatch::Alarm")[name]


def _queried(alarm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Metric math alarm: its metrics by name."""
    return {
        query["MetricStat"]["Metric"]["MetricName"]: query["MetricStat"]["Metric"]
        for query in alarm["Metrics"]
        if "MetricStat" in query
    }


def _expression(alarm: dict[str, Any]) -> str:
    (returned,) = [query for query in alarm["Metrics"] if query.get("ReturnData")]
    return returned["Expression"]


def test_given_refresh_messages_older_than_the_interval_then_the_lag_alarm_fires(stack: Stack):
    alarm = _alarm(stack, "RefreshLagAlarm")

    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["RefreshQueue", "QueueName"]}}]
    assert alarm["Threshold"] == {"Ref": "RefreshIntervalSeconds"}
    assert (alarm["Statistic"], alarm["ComparisonOperator"]) == ("Maximum", "GreaterThanThreshold")


def test_given_the_updater_p99_near_its_timeout_then_the_duration_alarm_fires_at_80_percent(stack: Stack):
    alarm = _alarm(stack, "PriceUpdaterDurationAlarm")
    timeout_s = stack.properties("PriceUpdaterFunction")["Timeout"]

    assert (alarm["Namespace"], alarm["MetricName"], alarm["ExtendedStatistic"]) == ("AWS/Lambda", "Duration", "p99")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "PriceUpdaterFunction"}}]
    assert alarm["Threshold"] == timeout_s * 1000 * 0.8


def test_given_swept_coins_without_a_fresh_price_then_the_staleness_alarm_divides_them_by_the_coins_swept(
    stack: Stack,
):
    alarm = _alarm(stack, "PriceStalenessAlarm")
    metrics = _queried(alarm)

    assert sorted(metrics) == ["SweptCoins", "SweptStaleCoins", "SweptUnpricedCoins"]
    assert all(m["Namespace"] == METRICS_NAMESPACE and m["Dimensions"] == SERVICE_DIMENSION for m in metrics.values())
    assert "(FILL(stale, 0) + FILL(unpriced, 0)) / swept" in _expression(alarm)
    assert alarm["Threshold"] == 20


def test_given_cache_reads_failing_then_the_redis_alarm_divides_errors_by_reads(stack: Stack):
    from portfolio.adapters.portfolio_cache import _METRIC_NAMES

    alarm = _alarm(stack, "RedisErrorRateAlarm")
    metrics = _queried(alarm)

    assert sorted(metrics) == sorted(_METRIC_NAMES.values())  # the names the cache publishes
    assert all(m["Namespace"] == METRICS_NAMESPACE and m["Dimensions"] == SERVICE_DIMENSION for m in metrics.values())
    assert "100 * FILL(errors, 0) / (FILL(hits, 0) + FILL(misses, 0))" in _expression(alarm)


@pytest.mark.parametrize(("name", "metrics"), [("HttpApi5xxRateAlarm", ["5xx", "Count"])])
def test_given_api_5xx_answers_then_their_share_of_requests_is_alarmed_on(stack: Stack, name, metrics):
    alarm = _alarm(stack, name)
    queried = _queried(alarm)

    assert sorted(queried) == sorted(metrics)
    for metric in queried.values():
        assert metric["Namespace"] == "AWS/ApiGateway"
        assert metric["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": "HttpApi"}}]
    assert "100 * FILL(errors, 0) / requests" in _expression(alarm)


def test_given_slow_api_answers_then_the_p99_latency_alarm_watches_the_http_api(stack: Stack):
    alarm = _alarm(stack, "HttpApiLatencyAlarm")

    assert (alarm["Namespace"], alarm["MetricName"], alarm["ExtendedStatistic"]) == ("AWS/ApiGateway", "Latency", "p99")
    assert alarm["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": "HttpApi"}}]


@pytest.mark.parametrize("metric", ["AlertDeliveryFailures", "AlertEvaluationFailures"])
def test_given_alerts_failing_then_an_alarm_fires_on_the_first_failure_or_most_cycles(stack: Stack, metric):
    # The evaluation emits both (tests/unit/refresh/test_alert_evaluation.py checks it)
    (alarm,) = [a for a in stack.of_type("AWS::CloudWatch::Alarm").values() if a.get("MetricName") == metric]

    assert (alarm["Namespace"], alarm["Dimensions"]) == (METRICS_NAMESPACE, SERVICE_DIMENSION)
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")


def test_given_every_new_alarm_then_it_notifies_the_alarm_topic(stack: Stack):
    for name in (
        "RefreshLagAlarm",
        "PriceUpdaterDurationAlarm",
        "PriceStalenessAlarm",
        "RedisErrorRateAlarm",
        "HttpApi5xxRateAlarm",
        "HttpApiLatencyAlarm",
        "AlertDeliveryFailuresAlarm",
        "AlertEvaluationFailuresAlarm",
    ):
        assert _alarm(stack, name)["AlarmActions"] == {
            "Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]
        }, name
