"""Alert rules through the refresh pipeline: scheduler (sweep, queueing users with rules) -> moto's SQS
-> PriceUpdaterFunction -> EventBridge (moto), with prices from the local coins API.

The alert bus is routed to an SQS queue by a rule, as a user would route it to SNS or a webhook; the
test reads what arrives there.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3
import pytest
from portfolio import wiring
from portfolio.adapters.alert_events import DETAIL_TYPE
from portfolio.adapters.portfolio_cache import CacheKind
from portfolio.domain.alerts import AlertStatus, PriceCondition, ValueChangeCondition
from portfolio.domain.tokens import EVM_ZERO_ADDRESS, TokenId
from portfolio.observability import SERVICE_NAME

from local_stack.functions import load_handler
from local_stack.scheduler import scheduled_event
from local_stack.sqs_poller import SqsPoller
from tests.integration.refresh.seeding import seed_user
from tests.integration.refresh.sqs_helpers import receive_all
from tests.support.management_api import ManagementApiStandIn

scheduler = load_handler("RefreshSchedulerFunction")
price_updater = load_handler("PriceUpdaterFunction")
ETH = TokenId("ethereum", EVM_ZERO_ADDRESS)
FIRST_WINDOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def alert_inbox(refresh_env, function_environment, moto_endpoint, sqs_client) -> str:
    """A bus of this test's, named to the updater, and a queue its rule routes the app's alerts to."""
    suffix = uuid.uuid4().hex[:8]
    events = boto3.client("events", endpoint_url=moto_endpoint, region_name="us-east-1")
    bus = f"alerts-{suffix}"
    events.create_event_bus(Name=bus)
    queue_url = sqs_client.create_queue(QueueName=f"alert-inbox-{suffix}")["QueueUrl"]
    queue_arn = sqs_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {"source": [SERVICE_NAME], "detail-type": [DETAIL_TYPE]}
    events.put_rule(Name=f"to-inbox-{suffix}", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=f"to-inbox-{suffix}", EventBusName=bus, Targets=[{"Id": "inbox", "Arn": queue_arn}])
    function_environment(ALERT_EVENT_BUS_NAME=bus)
    return queue_url


@pytest.fixture
def poller(alert_inbox, sqs_client, refresh_queues) -> SqsPoller:
    return SqsPoller(sqs_client, refresh_queues.url, price_updater)


def run_cycle(window: datetime, poller: SqsPoller, lambda_context) -> dict:
    outcome = scheduler(scheduled_event(window), lambda_context)
    assert not any(result.failed for result in poller.drain())
    return outcome


def arrived(sqs_client, queue_url: str) -> list[dict]:
    return [json.loads(message["Body"]) for message in receive_all(sqs_client, queue_url)]


def test_given_a_price_rule_when_eth_crosses_stays_falls_and_crosses_again_then_the_bus_gets_two_events(
    store, coins_api, poller, sqs_client, alert_inbox, lambda_context
):
    # Given a user who reads nothing lately, holding 2 ETH, with a rule on ETH above 4000
    user_id = f"alert-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [ETH])
    rule = wiring.alert_rules().create(user_id, PriceCondition(kind="price", asset="eth", above="4000")).rule

    # When five cycles see ETH at these prices (the coins API's, swept as in AWS)
    received_per_cycle = []
    for step, price in enumerate(["3900", "4100", "4250", "3800", "4050"]):
        coins_api.set_price(ETH.price_coin_id, price)
        outcome = run_cycle(FIRST_WINDOW + timedelta(minutes=5 * step), poller, lambda_context)
        received_per_cycle.append(arrived(sqs_client, alert_inbox))

    # Then the bus got one event per crossing: at 4100, and again at 4050 after falling below
    assert [len(events) for events in received_per_cycle] == [0, 1, 0, 0, 1]
    first, second = received_per_cycle[1][0], received_per_cycle[4][0]
    assert (first["source"], first["detail-type"]) == (SERVICE_NAME, DETAIL_TYPE)
    assert (first["detail"]["userId"], first["detail"]["alertId"]) == (user_id, rule.alert_id)
    assert (first["detail"]["observed"], second["detail"]["observed"]) == ("4100", "4050")
    assert first["detail"]["rule"] == {"kind": "price", "asset": "ETH", "above": "4000"}
    assert first["detail"]["eventId"] != second["detail"]["eventId"]
    # And the user was queued for its rule alone every cycle: never warmed, since it reads nothing
    assert outcome["activeUsers"] == 0
    assert wiring.portfolio_cache().get(CacheKind.PORTFOLIO, user_id) is None
    (stored,) = wiring.alert_store().load_rules(user_id).rules
    assert (stored.state.status, stored.state.observed) == (AlertStatus.FIRED, Decimal("4050"))


def test_given_a_value_change_rule_when_eth_gains_6_percent_in_an_hour_then_it_fires_with_the_values(
    store, coins_api, poller, sqs_client, alert_inbox, lambda_context
):
    user_id = f"alert-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [ETH])
    wiring.alert_rules().create(
        user_id, ValueChangeCondition(kind="value_change", threshold_percent="5", window="1h", direction="up")
    )

    # An hour apart: the first sweep records the price the second cycle compares with
    coins_api.set_price(ETH.price_coin_id, "1000")
    run_cycle(FIRST_WINDOW, poller, lambda_context)
    coins_api.set_price(ETH.price_coin_id, "1060")
    run_cycle(FIRST_WINDOW + timedelta(hours=1), poller, lambda_context)

    (event,) = arrived(sqs_client, alert_inbox)
    detail = event["detail"]
    assert (detail["observed"], detail["startValueUsd"], detail["endValueUsd"]) == ("6", "2000", "2120")
    assert detail["message"] == "Portfolio value rose 6 % over 1h (2000 -> 2120 USD)"


def test_given_no_rule_when_cycles_run_then_nothing_reaches_the_bus_and_no_rule_is_written(
    store, coins_api, poller, sqs_client, alert_inbox, lambda_context
):
    user_id = f"alert-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [ETH])
    coins_api.set_price(ETH.price_coin_id, "9000")

    outcome = run_cycle(FIRST_WINDOW, poller, lambda_context)

    assert arrived(sqs_client, alert_inbox) == []
    assert wiring.alert_store().load_rules(user_id).version == 0
    assert outcome["usersQueued"] == 1  # its idle pass only


@pytest.fixture
def management_api() -> Iterator[ManagementApiStandIn]:
    with ManagementApiStandIn() as server:
        yield server


def test_given_a_user_with_an_open_connection_when_its_rule_fires_then_the_connection_gets_alert_triggered(
    store, coins_api, poller, sqs_client, alert_inbox, lambda_context, function_environment, management_api
):
    # Given the updater pushing through API Gateway's management API (a local stand-in), and a user
    # with one open WebSocket connection and a rule on ETH above 4000
    function_environment(WEBSOCKET_CALLBACK_URL=management_api.callback_url, LIVE_UPDATE_BUDGET_MS="2000")
    user_id = f"alert-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [ETH])
    rule = wiring.alert_rules().create(user_id, PriceCondition(kind="price", asset="ETH", above="4000")).rule
    wiring.connection_registry().add(user_id, "conn-alert-1")

    # When a cycle sees ETH at 4100, and the next at 4200
    coins_api.set_price(ETH.price_coin_id, "4100")
    run_cycle(FIRST_WINDOW, poller, lambda_context)
    coins_api.set_price(ETH.price_coin_id, "4200")
    run_cycle(FIRST_WINDOW + timedelta(minutes=5), poller, lambda_context)

    # Then the connection got one alert.triggered, the same firing the bus got
    (pushed,) = [json.loads(data) for data in management_api.delivered_to("conn-alert-1")]
    (event,) = arrived(sqs_client, alert_inbox)
    assert pushed["type"] == "alert.triggered"
    assert (pushed["alertId"], pushed["userId"], pushed["observed"]) == (rule.alert_id, user_id, "4100")
    assert pushed["eventId"] == event["detail"]["eventId"]


def test_given_a_crossing_for_ten_connected_users_and_a_stalling_management_api_then_the_refresh_waits_one_budget(
    store, coins_api, poller, sqs_client, alert_inbox, lambda_context, function_environment, management_api
):
    # Given ten users with a rule on ETH above 4000 and an open connection each, and a management API
    # answering every post only after 1.5 s, past the 0.4 s push budget
    function_environment(WEBSOCKET_CALLBACK_URL=management_api.callback_url, LIVE_UPDATE_BUDGET_MS="400")
    users = [f"alert-{uuid.uuid4().hex[:10]}" for _ in range(10)]
    for user_id in users:
        seed_user(store, user_id, [ETH])
        wiring.alert_rules().create(user_id, PriceCondition(kind="price", asset="ETH", above="4000"))
        wiring.connection_registry().add(user_id, f"conn-{user_id}")
    coins_api.set_price(ETH.price_coin_id, "4100")
    scheduler(scheduled_event(FIRST_WINDOW), lambda_context)
    management_api.stall_s = 1.5

    # When the updater takes the users the cycle queued
    started = time.monotonic()
    results = poller.drain()
    took_s = time.monotonic() - started

    # Then the refresh succeeded, having waited about one push budget for all ten pushes (not one
    # budget per alert: 4 s)
    assert results and not any(result.failed for result in results)
    assert took_s < 2.5
    # And each connection was posted its own user's alert, and the bus got all ten
    posted = {post.connection_id: json.loads(post.data) for post in management_api.requests}
    assert {connection: (message["type"], message["userId"]) for connection, message in posted.items()} == {
        f"conn-{user_id}": ("alert.triggered", user_id) for user_id in users
    }
    assert len(arrived(sqs_client, alert_inbox)) == 10


def test_given_the_alert_bus_gone_when_a_rule_fires_then_the_refresh_succeeds_and_the_firing_is_recorded_once(
    store, coins_api, poller, sqs_client, alert_inbox, lambda_context, function_environment, capsys, caplog
):
    # Given the updater told of a bus that no longer exists (deleted by hand, say)
    function_environment(ALERT_EVENT_BUS_NAME=f"gone-{uuid.uuid4().hex[:8]}")
    user_id = f"alert-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [ETH])
    wiring.alert_rules().create(user_id, PriceCondition(kind="price", asset="ETH", above="4000"))
    coins_api.set_price(ETH.price_coin_id, "4100")

    # When two cycles see ETH above the threshold
    run_cycle(FIRST_WINDOW, poller, lambda_context)
    run_cycle(FIRST_WINDOW + timedelta(minutes=5), poller, lambda_context)

    # Then no message failed (run_cycle checks it), the rule is recorded fired, and the failure is reported
    (stored,) = wiring.alert_store().load_rules(user_id).rules
    assert stored.state.status is AlertStatus.FIRED
    assert [record.getMessage() for record in caplog.records].count("alerts not put on the event bus") == 1
    assert '"AlertDeliveryFailures":[1.0]' in capsys.readouterr().out
