"""Fired alerts to the stack's EventBridge bus, where users route them (email through SNS, a webhook
through an API destination, a queue, ...) with rules of their own and no code.

Each alert is one event: `source` the app's service name, `detail-type` "Portfolio alert", `detail`
the alert (user, rule, the figure observed, when, a human-readable message, and `eventId`, stable for
one firing so a target can drop a repeat). PutEvents takes ten entries a call.

The refresh waits for this, so it is bounded by the invocation's deadline: each call is one attempt
with short timeouts (no retries inside boto3), and only what can succeed later is sent again, with
jittered backoff, a few times: entries the answer reports throttled or failed internally (alone, not
their whole call), and a call that was throttled, answered 5xx or got no answer. An error that would
only repeat (access denied, the bus gone, a malformed entry) is not retried. No call starts that
could not end before the deadline. Nothing here raises: what still fails is counted and logged, and
the refresh goes on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import batched
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as ConnectionFailure

from portfolio.adapters.retry import RetryPolicy
from portfolio.domain.alerts import FiredAlert
from portfolio.observability import SERVICE_NAME, logger

if TYPE_CHECKING:
    from portfolio.settings import Settings

DETAIL_TYPE = "Portfolio alert"
MAX_ENTRIES_PER_CALL = 10
# EventBridge answers in tens of milliseconds; the refresh must not wait long for it.
EVENTS_CONNECT_TIMEOUT_S = 0.5
EVENTS_READ_TIMEOUT_S = 1.0
# The longest one call can take: none is started with less than this left before the deadline.
EVENTS_ATTEMPT_S = EVENTS_CONNECT_TIMEOUT_S + EVENTS_READ_TIMEOUT_S
# What PutEvents reports for an entry that may succeed when sent again (its other codes would not).
RETRYABLE_ENTRY_ERRORS = frozenset({"InternalFailure", "ThrottlingException"})
THROTTLING_ERRORS = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"})
NO_TIME_LEFT = "no time left before the deadline"


def make_events_client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "events",
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=Config(
            connect_timeout=EVENTS_CONNECT_TIMEOUT_S,
            read_timeout=EVENTS_READ_TIMEOUT_S,
            # One attempt a call: the publisher retries, and only what is worth it, within the deadline.
            retries={"mode": "standard", "total_max_attempts": 1},
            tcp_keepalive=True,
        ),
    )


def is_transient(error: ClientError | BotoCoreError) -> bool:
    """A call failure worth one more try: throttled, a 5xx, a timeout or a lost connection."""
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error.response.get("Error", {}).get("Code") in THROTTLING_ERRORS or status == 429 or status >= 500
    return isinstance(error, ConnectionFailure | HTTPClientError)


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What became of one call's entries: how many are not on the bus, the last problem met, and
    whether the bus is worth asking again within this invocation."""

    undelivered: int = 0
    problem: str = ""
    reachable: bool = True


class EventBridgeAlertPublisher:
    def __init__(
        self,
        client: Any,
        bus_name: str,
        *,
        source: str = SERVICE_NAME,
        retry: RetryPolicy | None = None,
        attempt_s: float = EVENTS_ATTEMPT_S,
    ) -> None:
        self._client = client
        self._bus_name = bus_name
        self._source = source
        self._retry = retry or RetryPolicy(3, 0.1, 1.0)
        self._attempt_s = attempt_s

    def publish(self, alerts: Sequence[FiredAlert], *, deadline: float | None = None) -> int:
        """Returns how many alerts could not be put on the bus before `deadline` (time.monotonic()).
        Once a call goes unanswered (or time runs out), the alerts after it are not tried."""
        undelivered = 0
        problem = ""
        reachable = True
        for chunk in batched(alerts, MAX_ENTRIES_PER_CALL):
            if not reachable:
                undelivered += len(chunk)
                continue
            sent = self._send([self._entry(alert) for alert in chunk], deadline)
            undelivered += sent.undelivered
            problem = sent.problem or problem
            reachable = sent.reachable
        if undelivered:
            logger.warning(
                "alerts not put on the event bus",
                extra={"alerts": undelivered, "error": problem, "bus": self._bus_name},
            )
        return undelivered

    def _entry(self, alert: FiredAlert) -> dict[str, Any]:
        return {
            "Source": self._source,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(alert.payload(), separators=(",", ":")),
            "EventBusName": self._bus_name,
            "Time": alert.fired_at,
        }

    def _send(self, entries: list[dict[str, Any]], deadline: float | None) -> BatchOutcome:
        pending = entries
        refused = 0  # entries the bus will never take
        refusal = ""
        problem = ""
        answered = True
        # The policy waits only when a whole call still fits after the wait.
        last_start = None if deadline is None else deadline - self._attempt_s
        for _ in self._retry.attempts(deadline=last_start):
            if last_start is not None and self._retry.clock() > last_start:
                return BatchOutcome(refused + len(pending), NO_TIME_LEFT, reachable=False)
            try:
                response = self._client.put_events(Entries=pending)
            except (ClientError, BotoCoreError) as error:
                problem = _describe(error)
                answered = isinstance(error, ClientError)
                if is_transient(error):
                    continue
                return BatchOutcome(refused + len(pending), problem)
            answered = True
            results = response.get("Entries", [])
            failed = [
                (entry, result["ErrorCode"])
                for entry, result in zip(pending, results, strict=False)
                if result.get("ErrorCode")
            ]
            retried = [entry for entry, code in failed if code in RETRYABLE_ENTRY_ERRORS]
            refused += len(failed) - len(retried)
            refusal = next((code for _, code in failed if code not in RETRYABLE_ENTRY_ERRORS), refusal)
            # An answer that does not account for every entry: the ones it left out are sent again.
            pending = retried + pending[len(results) :]
            if not pending:
                return BatchOutcome(refused, refusal)
            problem = next(
                (code for _, code in failed if code in RETRYABLE_ENTRY_ERRORS), "entries missing from the answer"
            )
        return BatchOutcome(refused + len(pending), problem, reachable=answered)


def _describe(error: ClientError | BotoCoreError) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or type(error).__name__)
    return type(error).__name__
