"""RefreshSchedulerFunction: every 5 minutes, once per window, sweep the prices of every held token
and queue the users that need a refresh."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from portfolio import wiring
from portfolio.observability import logger, metrics, tracer
from portfolio.services.refresh_planner import refresh_window


class ScheduledEvent(EventBridgeModel):
    """EventBridge's scheduled event. EventBridge sends "version": "0"; the sample SAM CLI generates
    (`sam local generate-event cloudwatch scheduled-event`) has no version, and is taken as it is."""

    version: str = "0"


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=ScheduledEvent)
def lambda_handler(event: ScheduledEvent, context: LambdaContext) -> dict[str, Any]:
    window = refresh_window(event.time, wiring.settings().refresh_interval_s)
    # Pricing may use half of what is left; queueing the users needs the rest.
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 / 2
    result = wiring.refresh_planner().run(window, run_id=event.id, deadline=deadline)
    return {
        "window": window.isoformat(),
        "started": result.started,
        "sweptCoins": result.sweep.coins if result.sweep else None,
        "priceApiCalls": result.sweep.api_calls if result.sweep else None,
        "usersQueued": result.users_queued,
        "activeUsers": result.active_users,
        "messages": result.messages,
        "sendMessageBatchCalls": result.send_calls,
    }
