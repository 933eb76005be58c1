"""The alert bus misbehaving on the wire (an HTTP proxy in front of moto's EventBridge): the publisher,
with the client the updater builds, gives up at the invocation's deadline, retries what can succeed
and nothing else, and never raises.

Without a deadline of its own the old settings spent 3 attempts x 3 boto3 attempts x a 3 s read
timeout on each group of ten alerts while the bus stalled: half of the updater's 60 s for 30 alerts.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from portfolio.adapters.alert_events import EVENTS_READ_TIMEOUT_S, EventBridgeAlertPublisher, make_events_client
from portfolio.domain.alerts import FiredAlert, PriceCondition

from tests.support.aws_proxy import forward, serving

AT = datetime(2025, 1, 15, 10, 5, tzinfo=UTC)
ACCESS_DENIED = json.dumps(
    {"__type": "AccessDeniedException", "message": "not authorized to perform events:PutEvents"}
).encode()


@dataclass
class AlertBusProxy:
    """Forwards PutEvents to moto, except: the first `stall` calls (every call when < 0) are held until
    the test ends, unanswered; with `deny`, every call is refused as AccessDenied."""

    upstream: str
    stall: int = 0
    deny: bool = False
    url: str = ""
    calls: int = 0
    released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        with self._lock:
            self.calls += 1
            stalled = self.stall < 0 or self.calls <= self.stall
        if stalled:
            self.released.wait(30)
            return 503, b"{}"
        if self.deny:
            return 400, ACCESS_DENIED
        return forward(self.upstream, body, headers)


@pytest.fixture
def alert_bus(moto_endpoint: str) -> Iterator[AlertBusProxy]:
    proxy = AlertBusProxy(moto_endpoint)
    with serving(proxy.handle) as url:
        proxy.url = url
        try:
            yield proxy
        finally:
            proxy.released.set()


@pytest.fixture
def bus_with_inbox(moto_endpoint: str) -> tuple[str, Any, str]:
    """A bus on moto whose rule routes everything to a queue: (bus name, SQS client, queue URL)."""
    suffix = uuid.uuid4().hex[:8]
    events = boto3.client("events", endpoint_url=moto_endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    bus = f"alerts-{suffix}"
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=f"alert-inbox-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"all-{suffix}", EventBusName=bus, EventPattern=json.dumps({"source": [{"prefix": ""}]}))
    events.put_targets(Rule=f"all-{suffix}", EventBusName=bus, Targets=[{"Id": "inbox", "Arn": queue_arn}])
    return bus, sqs, queue_url


def publisher(url: str, bus: str) -> EventBridgeAlertPublisher:
    """The publisher the updater builds (wiring.alert_publisher), its client pointed at `url`."""
    return EventBridgeAlertPublisher(
        make_events_client(SimpleNamespace(aws_region="us-east-1", aws_endpoint_url=url)), bus
    )


def alerts(count: int) -> list[FiredAlert]:
    return [
        FiredAlert(
            user_id=f"user-{n}",
            alert_id=f"a{n}",
            rule=PriceCondition(kind="price", asset="ETH", above="4000"),
            observed=Decimal("4100"),
            fired_at=AT,
            message="ETH is at 4100 USD, at or above 4000",
        )
        for n in range(count)
    ]


def test_given_a_bus_that_never_answers_when_30_alerts_are_published_then_it_gives_up_by_the_deadline(
    alert_bus: AlertBusProxy, fault_figures: dict
) -> None:
    # Given: a bus that takes every call and answers none, and 2.5 s left in the invocation
    alert_bus.stall = -1
    deadline = time.monotonic() + 2.5

    # When: three groups of ten alerts are published
    started = time.monotonic()
    undelivered = publisher(alert_bus.url, "alerts").publish(alerts(30), deadline=deadline)
    took_s = time.monotonic() - started

    # Then: one call timed out, no retry could end before the deadline, the other groups were not
    # tried against an unanswering bus, and every alert is counted undelivered
    assert undelivered == 30
    assert alert_bus.calls == 1
    assert EVENTS_READ_TIMEOUT_S <= took_s < 2.5
    fault_figures["seconds spent on an unanswering bus (2.5 s left)"] = round(took_s, 2)


def test_given_the_bus_answers_late_once_then_the_alerts_are_sent_again_and_arrive_once(
    alert_bus: AlertBusProxy, bus_with_inbox: tuple[str, Any, str]
) -> None:
    bus, sqs, queue_url = bus_with_inbox
    alert_bus.stall = 1

    undelivered = publisher(alert_bus.url, bus).publish(alerts(3), deadline=time.monotonic() + 10)

    assert undelivered == 0
    assert alert_bus.calls == 2
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    assert sorted(json.loads(message["Body"])["detail"]["alertId"] for message in received) == ["a0", "a1", "a2"]


def test_given_the_caller_denied_then_each_group_is_tried_once_and_counted_undelivered(
    alert_bus: AlertBusProxy,
) -> None:
    alert_bus.deny = True

    undelivered = publisher(alert_bus.url, "alerts").publish(alerts(12), deadline=time.monotonic() + 10)

    assert undelivered == 12
    assert alert_bus.calls == 2  # one call per group of ten, none repeated


def test_given_a_bus_that_does_not_exist_then_the_call_is_not_repeated(alert_bus: AlertBusProxy) -> None:
    # moto answers ResourceNotFoundException, as EventBridge does for a deleted bus
    undelivered = publisher(alert_bus.url, f"gone-{uuid.uuid4().hex[:8]}").publish(alerts(2))

    assert undelivered == 2
    assert alert_bus.calls == 1
