"""Fired alerts onto EventBridge: ten entries a call, only what can succeed sent again (throttled or failed
entries alone, throttled or unanswered calls), never past the deadline, nothing ever raised."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
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
    """PutEvents as EventBridge answers it; `reject` names entries (by alertId) refused once each, with
    `code`; `refuse` names entries refused for good (MalformedDetail)."""

    def __init__(
        self, reject: set[str] | None = None, outage: int = 0, code: str = "ThrottlingException", refuse=()
    ) -> None:
        self.calls: list[list[dict]] = []
        self.reject = set(reject or ())
        self.outage = outage
        self.code = code
        self.refuse = set(refuse)

    def put_events(self, Entries):
        self.calls.append(Entries)
        if self.outage:
            self.outage -= 1
            raise EndpointConnectionError(endpoint_url="https://events.us-east-1.amazonaws.com")
        results = []
        for entry in Entries:
            alert_id = json.loads(entry["Detail"])["alertId"]
            if alert_id in self.refuse:
                results.append({"ErrorCode": "MalformedDetail", "ErrorMessage": "bad JSON"})
            elif alert_id in self.reject:
                self.reject.discard(alert_id)
                results.append({"ErrorCode": self.code, "ErrorMessage": "try again"})
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


class Failing:
    """PutEvents failing every call with one error (code, HTTP status)."""

    def __init__(self, code: str, status: int) -> None:
        self.code, self.status = code, status
        self.calls = 0

    def put_events(self, Entries):
        self.calls += 1
        raise ClientError(
            {"Error": {"Code": self.code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": self.status}},
            "PutEvents",
        )


@pytest.mark.parametrize(
    ("code", "status"),
    [("AccessDeniedException", 400), ("ResourceNotFoundException", 400), ("ValidationException", 400)],
)
def test_given_an_error_that_would_only_repeat_then_the_call_is_not_retried(code, status):
    bus = Failing(code, status)

    assert EventBridgeAlertPublisher(bus, "alerts-bus", retry=NO_WAIT).publish([alert(1), alert(2)]) == 2
    assert bus.calls == 1


@pytest.mark.parametrize(
    ("code", "status"), [("ThrottlingException", 400), ("InternalException", 500), ("ServiceUnavailable", 503)]
)
def test_given_a_throttled_or_5xx_call_then_it_is_retried_up_to_the_policys_attempts(code, status):
    bus = Failing(code, status)

    assert EventBridgeAlertPublisher(bus, "alerts-bus", retry=NO_WAIT).publish([alert(1)]) == 1
    assert bus.calls == 3


def test_given_entries_failed_for_good_and_throttled_then_only_the_throttled_are_sent_again():
    bus = Bus(reject={"a1"}, refuse={"a2"}, code="InternalFailure")

    failed = EventBridgeAlertPublisher(bus, "alerts-bus", retry=NO_WAIT).publish([alert(n) for n in range(4)])

    assert failed == 1  # a2, malformed: sending it again would fail the same way
    assert [[json.loads(e["Detail"])["alertId"] for e in call] for call in bus.calls] == [
        ["a0", "a1", "a2", "a3"],
        ["a1"],
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Stalled:
    """A bus whose every call times out after `took_s` of the clock."""

    def __init__(self, clock: Clock, took_s: float) -> None:
        self.clock, self.took_s = clock, took_s
        self.calls = 0

    def put_events(self, Entries):
        self.calls += 1
        self.clock.now += self.took_s
        raise ReadTimeoutError(endpoint_url="https://events.us-east-1.amazonaws.com")


def test_given_a_stalled_bus_then_no_call_starts_that_could_not_end_by_the_deadline_and_later_groups_are_skipped():
    clock = Clock()
    bus = Stalled(clock, took_s=1.0)
    retry = RetryPolicy(3, 0.1, 1.0, sleep=clock.sleep, rng=lambda: 1.0, clock=clock)
    publisher = EventBridgeAlertPublisher(bus, "alerts-bus", retry=retry, attempt_s=1.5)

    # 3.5 s left: a call at 0 (times out at 1.0), a retry at 1.1 (times out at 2.1), none at 2.3 (2.3 + 1.5 > 3.5)
    failed = publisher.publish([alert(n) for n in range(25)], deadline=3.5)

    assert failed == 25
    assert bus.calls == 2
    assert clock.now == pytest.approx(2.1)


def test_given_too_little_time_left_for_one_call_then_the_bus_is_not_called():
    clock = Clock()
    bus = Bus()
    retry = RetryPolicy(3, 0.1, 1.0, sleep=clock.sleep, clock=clock)

    failed = EventBridgeAlertPublisher(bus, "alerts-bus", retry=retry, attempt_s=1.5).publish(
        [alert(1), alert(2)], deadline=1.0
    )

    assert failed == 2 and bus.calls == []
