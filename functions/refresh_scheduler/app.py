"""RefreshSchedulerFunction: every 5 minutes, queue every user for re-pricing, once per window."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from portfolio import wiring
from portfolio.adapters.refresh_queue import RefreshQueue, make_sqs_client
from portfolio.adapters.run_lock import RunLock
from portfolio.observability import logger, metrics, tracer
from portfolio.services.refresh_planner import RefreshPlanner, refresh_window
from portfolio.settings import Settings


@cache
def _sqs_client(settings: Settings) -> Any:
    return make_sqs_client(settings)


def _planner(settings: Settings) -> RefreshPlanner:
    if not settings.refresh_queue_url:
        raise RuntimeError("REFRESH_QUEUE_URL is not set")
    return RefreshPlanner(
        wiring.portfolio_store(),
        RefreshQueue(_sqs_client(settings), settings.refresh_queue_url),
        RunLock(wiring.dynamodb_client(), settings.table_name),
        users_per_message=settings.users_per_message,
    )


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=EventBridgeModel)
def lambda_handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    settings = wiring.settings()
    window = refresh_window(event.time, settings.refresh_interval_s)
    result = _planner(settings).run(window, run_id=event.id)
    return {
        "window": window.isoformat(),
        "started": result.started,
        "usersQueued": result.users_queued,
        "messages": result.messages,
        "sendMessageBatchCalls": result.send_calls,
    }
