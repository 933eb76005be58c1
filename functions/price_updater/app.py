"""PriceUpdaterFunction: syncs the wallets of the users of an SQS batch, values the active ones and
warms their views; failures are reported per message (ReportBatchItemFailures), and a redelivered
message is recognised (idempotency)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from portfolio import wiring
from portfolio.observability import logger, metrics, tracer
from portfolio.services.portfolio_refresher import PortfolioRefresher, RefreshBatch
from portfolio.services.refresh_message import RefreshMessage
from pydantic import ValidationError

processor = BatchProcessor(event_type=EventType.SQS)
# A message is a duplicate for as long as its window can still be redelivered.
IDEMPOTENCY_EXPIRY_S = 60 * 60
# Leave this much of the invocation unused: the partial batch response must still get out.
RESERVE_S = 1.0


def _user_ids_by_tier(records: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Users of every well-formed message: (those valued: active ones, and those queued for their alert
    rules; idle ones, synced only). A malformed message fails later, in its own record handler."""
    active: list[str] = []
    idle: list[str] = []
    for record in records:
        try:
            message = RefreshMessage.model_validate_json(record.get("body", ""))
        except ValidationError:
            continue
        (idle if message.tier == "idle" else active).extend(message.user_ids)
    return active, idle


@contextmanager
def cyclic_collection_paused() -> Iterator[None]:
    """A batch builds and drops millions of small objects (decimals, positions, figures), freed by
    reference counting as it goes; meanwhile the cyclic collector would walk every portfolio the
    batch holds, again and again, for about a sixth of the handler's CPU. It resumes after the
    batch, and collects whatever cycles the batch made (an exception's traceback, say) then."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _deadline(context: Any) -> float | None:
    remaining_ms = context.get_remaining_time_in_millis() if context is not None else None
    return None if remaining_ms is None else time.monotonic() + remaining_ms / 1000 - RESERVE_S


def process_refresh_event(
    event: dict[str, Any], context: Any, *, refresher: PortfolioRefresher, persistence_store: Any
) -> dict[str, Any]:
    """The batch: one prefetch for every message, then each message through the record handler."""
    started = time.monotonic()
    records = event.get("Records", [])
    active, idle = _user_ids_by_tier(records)
    batch: RefreshBatch = refresher.prefetch(active, idle_user_ids=idle, deadline=_deadline(context))

    def refresh(message: dict[str, Any]) -> dict[str, Any]:
        return {"usersRefreshed": refresher.refresh_message(RefreshMessage.model_validate(message), batch)}

    refresh_once = refresh
    # Imported here: Powertools' idempotency package imports boto3, a cold-start cost this path alone needs.
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyPersistenceConnectionError,
        IdempotencyPersistenceLayerError,
    )

    if persistence_store is not None:
        config = IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_EXPIRY_S, raise_on_no_idempotency_key=True)
        if context is not None:
            config.register_lambda_context(context)
        refresh_once = idempotent_function(
            data_keyword_argument="message", persistence_store=persistence_store, config=config, key_prefix="refresh"
        )(refresh)

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        # The key is the message itself (window, tier and users): a redelivery, or the same users
        # queued twice for one window, is recognised whichever SQS message id carries it.
        message = RefreshMessage.model_validate_json(record.body).model_dump(mode="json", by_alias=True)
        try:
            return refresh_once(message=message)
        except (IdempotencyPersistenceConnectionError, IdempotencyPersistenceLayerError) as error:
            # Redis (where duplicates are remembered) is out: refreshing twice is harmless, not refreshing is not.
            logger.warning("refresh not deduplicated", extra={"error": type(error).__name__})
            return refresh(message=message)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    refresher.report(
        messages=len(records),
        failed_messages=len(response.get("batchItemFailures", [])),
        batch=batch,
        duration_ms=(time.monotonic() - started) * 1000,
    )
    return dict(response)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        with cyclic_collection_paused():
            return process_refresh_event(
                event, context, refresher=wiring.portfolio_refresher(), persistence_store=wiring.idempotency_store()
            )
    finally:
        # The live updates the batch started, all at once; bounded, and within what is left of the invocation.
        wiring.finish_live_updates(context.get_remaining_time_in_millis() / 1000 - RESERVE_S)
