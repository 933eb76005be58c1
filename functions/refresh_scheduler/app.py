"""RefreshSchedulerFunction: every 5 minutes, queue every user for re-pricing, once per window."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from portfolio import wiring
from portfolio.observability import logger, metrics, tracer
from portfolio.services.refresh_planner import refresh_window


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=EventBridgeModel)
def lambda_handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    window = refresh_window(event.time, wiring.settings().refresh_interval_s)
    result = wiring.refresh_planner().run(window, run_id=event.id)
    return {
        "window": window.isoformat(),
        "started": result.started,
        "usersQueued": result.users_queued,
        "messages": result.messages,
        "sendMessageBatchCalls": result.send_calls,
    }
