"""ApiFunction: the HTTPS API (API Gateway HTTP API, payload 2.0, JWT authorizer in front)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from portfolio import wiring
from portfolio.api.resolver import build_resolver
from portfolio.observability import logger, metrics, tracer

app = build_resolver()


# log_event stays False whatever the environment says: the event carries the Authorization header.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # DynamoDB retries stop in time for this function to answer 503 itself, not time out into a bare 500.
    try:
        with wiring.dynamodb_deadline(context.get_remaining_time_in_millis()):
            return app.resolve(event, context)
    finally:
        # A write's live updates go out concurrently with the rest of the request; bounded wait here.
        wiring.finish_live_updates()
