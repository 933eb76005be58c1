"""PriceUpdaterFunction: re-prices the users of an SQS batch; failures are reported per message."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.typing import LambdaContext
from portfolio import wiring
from portfolio.observability import logger, metrics, tracer
from portfolio.services.portfolio_refresher import process_refresh_event

processor = BatchProcessor(event_type=EventType.SQS)


def _price_api_calls() -> int:
    return wiring.price_service().stats().api_calls


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_refresh_event(
        event,
        context,
        refresher=wiring.portfolio_refresher(),
        persistence_store=wiring.idempotency_store(),
        processor=processor,
        price_api_calls=_price_api_calls,
    )
