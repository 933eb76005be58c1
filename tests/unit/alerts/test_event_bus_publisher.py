"""Fired alerts onto EventBridge: ten entries a call, rejected entries sent again, nothing ever raised."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from botocore.exceptions import ClientError, EndpointConnectionError
from portfolio.adapters.alert_events import DETAIL_TYPE, EventBridgeAlertPublisher
from portfolio.adapters.retry import RetryPolicy
from portfolio.domain.alerts import FiredAlert, PriceCondition

AT = datetime(2025, 1, 15, 10, 5, tzinfo=UTC)
NO_WAIT = RetryPolicy(3, 0.0, 0.0, sleep=lambda _: None)


def alert(index: int) -> FiredAlert:
    return FiredAlert(
        user_id=f"user-{index}",
        alert_id=f"a{index}",
        rule=PriceCondition(kind="price", asset="ETH", above="4000"),
        observed=Decimal("4100"),
        fired_at=AT,
        message="ETH is at 4100 USD, at or above 4000",
    )


class Bus:
    """PutEvents as EventBridge answers it; `reject` names entries (by alertId) refused once each."""

    def __init__(self, reject: set[str] | None = None, outage: int = 0) -> None:
        self.calls: list[list[dict]] = []
        self.reject = set(reject or ())
        self.outage = outage

    def put_events(self, Entries):
        self.calls.append(Entries)
        if self.outage:
            self.outage -= 1
            raise EndpointConnectionError(endpoint_url="https://events.us-east-1.amazonaws.com")
        results = []
        for entry in Entries:
            alert_id = json.loads(entry["Detail"])["alertId"]
            if alert_id in self.reject:
                self.reject.discard(alert_id)
                results.append({"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"})
            else:
                results.append({"EventId": f"e-{alert_id}"})
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def test_given_23_alerts_then_three_calls_of_at_most_ten_entries_each_on_the_bus():
    bus = Bus()

    failed = EventBridgeAlertPublisher(bus, "alerts-bus", retry=NO_WAIT).publish([alert(n) for n in range(23)])

    assert failed == 0
    assert [len(call) for call in bus.calls] == [10, 10, 3]
    entry = bus.calls[0][0]
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"], entry["Time"]) == (
        "cross-chain-portfolio",
        DETAIL_TYPE,
        "alerts-bus",
        AT,
    )
    detail = json.loads(entry["Detail"])
    assert (detail["userId"], detail["observed"], detail["eventId"]) == ("user-0", "4100", f"a0:{AT.isoformat()}")


def test_given_entries_the_bus_rejects_once_then_only_they_are_sent_again():
    bus = Bus(reject={"a1", "a3"})

    failed = EventBridgeAlertPublisher(bus, "alerts-bus", retry=NO_WAIT).publish([alert(n) for n in range(4)])

    assert failed == 0
    assert [[json.loads(e["Detail"])["alertId"] for e in call] for call in bus.calls] == [
        ["a0", "a1", "a2", "a3"],
        ["a1", "a3"],
    ]


def test_given_the_bus_unreachable_then_the_alerts_are_counted_undelivered_and_nothing_raises():
    bus = Bus(outage=10)

    failed = EventBridgeAlertPublisher(bus, "alerts-bus", retry=NO_WAIT).publish([alert(1), alert(2)])

    assert failed == 2
    assert len(bus.calls) == 3  # the policy's attempts


def test_given_a_bus_refusing_the_caller_then_the_alerts_are_undelivered_without_raising():
    class Refusing:
        def put_events(self, Entries):
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutEvents")

    assert EventBridgeAlertPublisher(Refusing(), "alerts-bus", retry=NO_WAIT).publish([alert(1)]) == 1
