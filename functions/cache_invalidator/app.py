"""CacheInvalidatorFunction: the table's stream delivers every committed change of a portfolio item
and of a transaction item, whether written in this region or replicated from another one; the user's
cached views older than it are retired (services/stale_views.py). A record Redis could not take is
reported failed (ReportBatchItemFailures) and delivered again; after the stream's retries, it goes to
the DLQ."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from portfolio import wiring
from portfolio.observability import logger, metrics, tracer
from portfolio.services.stale_views import PortfolioChange, TransactionChange
from pydantic import BaseModel, ConfigDict, Field

# Redis down fails every record: that is reported like any partial failure (retried from the first
# one), not raised as the function's error.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)

PORTFOLIO_SORT_KEY = "PROFILE"
TRANSACTION_SORT_KEY_PREFIX = "TX#"
USER_PARTITION_PREFIX = "USER#"


class CommittedPortfolio(BaseModel):
    """What a portfolio item's new image must carry."""

    model_config = ConfigDict(extra="ignore")

    user_id: str = Field(alias="userId")
    version: int


def portfolio_change(record: DynamoDBRecord) -> PortfolioChange | TransactionChange | None:
    """The change a record tells, or None for an item that is neither a portfolio nor a transaction
    (the stream's filter already keeps those out; a record that slips through is skipped, not retried).
    A transaction's user, and a removed portfolio's, come from the keys: every record carries them,
    whatever its event and its stream's view type."""
    stream = record.dynamodb
    keys = stream.keys if stream is not None else {}
    partition, sort_key = str(keys.get("pk", "")), str(keys.get("sk", ""))
    if not partition.startswith(USER_PARTITION_PREFIX):
        return None
    user_id = partition.removeprefix(USER_PARTITION_PREFIX)
    if sort_key.startswith(TRANSACTION_SORT_KEY_PREFIX):
        return TransactionChange(user_id=user_id)
    if sort_key != PORTFOLIO_SORT_KEY:
        return None
    if record.event_name is DynamoDBRecordEventName.REMOVE:
        return PortfolioChange(user_id=user_id, version=None)
    committed = CommittedPortfolio.model_validate(stream.new_image if stream is not None else {})
    return PortfolioChange(user_id=committed.user_id, version=committed.version)


def process_stream_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    retirement = wiring.stale_view_retirement()
    # Every record of a batch is committed before the batch is read: one retirement of a user's
    # transaction views covers all of that user's transaction records in it (an import brings 100).
    transaction_views_retired: set[str] = set()

    def record_handler(record: DynamoDBRecord) -> None:
        change = portfolio_change(record)
        if isinstance(change, TransactionChange):
            if change.user_id in transaction_views_retired:
                return
            retirement.retire(change)
            transaction_views_retired.add(change.user_id)
        elif change is not None:
            retirement.retire(change)

    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_stream_event(event, context)
