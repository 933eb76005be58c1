"""PriceUpdaterFunction: re-prices the users of an SQS batch; failures are reported per message."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.typing import LambdaContext
from portfolio import wiring
from portfolio.observability import logger, metrics, tracer
from portfolio.services.portfolio_refresher import PortfolioRefresher, process_refresh_event

processor = BatchProcessor(event_type=EventType.SQS)


def _idempotency_store() -> DynamoDBPersistenceLayer:
    # Cheap to build: it wraps the container's DynamoDB client.
    return DynamoDBPersistenceLayer(
        table_name=wiring.settings().idempotency_table_name, boto3_client=wiring.dynamodb_client()
    )


def _price_api_calls() -> int:
    return wiring.price_service().stats().api_calls


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    refresher = PortfolioRefresher(wiring.portfolio_store(), wiring.price_service(), wiring.portfolio_cache())
    return process_refresh_event(
        event,
        context,
        refresher=refresher,
        persistence_store=_idempotency_store(),
        processor=processor,
        price_api_calls=_price_api_calls,
    )
