"""Fired alerts to the stack's EventBridge bus, where users route them (email through SNS, a webhook
through an API destination, a queue, ...) with rules of their own and no code.

Each alert is one event: `source` the app's service name, `detail-type` "Portfolio alert", `detail`
the alert (user, rule, the figure observed, when, a human-readable message, and `eventId`, stable for
one firing so a target can drop a repeat). PutEvents takes ten entries a call; entries it reports
failed (throttled, an internal error) are sent again with jittered backoff, a few times. Nothing here
raises: what still fails is counted and logged, and the refresh goes on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import batched
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from portfolio.adapters.retry import RetryPolicy
from portfolio.domain.alerts import FiredAlert
from portfolio.observability import SERVICE_NAME, logger

if TYPE_CHECKING:
    from portfolio.settings import Settings

DETAIL_TYPE = "Portfolio alert"
MAX_ENTRIES_PER_CALL = 10
# EventBridge answers in tens of milliseconds; the refresh must not wait long for it.
EVENTS_CONNECT_TIMEOUT_S = 1.0
EVENTS_READ_TIMEOUT_S = 3.0


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
            retries={"mode": "standard", "total_max_attempts": 3},
        ),
    )


class EventBridgeAlertPublisher:
    def __init__(
        self,
        client: Any,
        bus_name: str,
        *,
        source: str = SERVICE_NAME,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._client = client
        self._bus_name = bus_name
        self._source = source
        self._retry = retry or RetryPolicy(3, 0.1, 1.0)

    def publish(self, alerts: Sequence[FiredAlert]) -> int:
        """Returns how many alerts could not be put on the bus."""
        return sum(
            self._send([self._entry(alert) for alert in chunk]) for chunk in batched(alerts, MAX_ENTRIES_PER_CALL)
        )

    def _entry(self, alert: FiredAlert) -> dict[str, Any]:
        return {
            "Source": self._source,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(alert.payload(), separators=(",", ":")),
            "EventBusName": self._bus_name,
            "Time": alert.fired_at,
        }

    def _send(self, entries: list[dict[str, Any]]) -> int:
        pending = entries
        problem = ""
        for _ in self._retry.attempts():
            try:
                response = self._client.put_events(Entries=pending)
            except (ClientError, BotoCoreError) as error:
                problem = type(error).__name__
                continue
            results = response.get("Entries", [])
            failed = [entry for entry, result in zip(pending, results, strict=False) if result.get("ErrorCode")]
            if len(results) < len(pending):  # an answer that does not account for every entry
                failed += pending[len(results) :]
            if not failed:
                return 0
            problem = next((result["ErrorCode"] for result in results if result.get("ErrorCode")), "missing entries")
            pending = failed
        logger.warning(
            "alerts not put on the event bus", extra={"alerts": len(pending), "error": problem, "bus": self._bus_name}
        )
        return len(pending)
