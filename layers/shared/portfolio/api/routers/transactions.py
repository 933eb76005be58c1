"""Transactions: list (newest first), record (one or a batch, idempotent by id), delete."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from portfolio import wiring
from portfolio.api.dependencies import portfolio_reader, pricing_deadline, transaction_recorder
from portfolio.api.errors import InvalidRequest, NotFound
from portfolio.api.openapi_fields import token_key_pattern
from portfolio.api.openapi_responses import BODY_ERRORS, WRITE_ERRORS, answers, read_answers
from portfolio.api.routers.common import UserId, read_response, write_response
from portfolio.api.schemas import (
    TRANSACTION_EXAMPLES,
    ChainSlug,
    RecordedTransactions,
    TransactionBatch,
    TransactionSubmission,
)
from portfolio.domain.errors import TransactionNotFound
from portfolio.domain.tokens import TokenId, normalize_chain
from portfolio.domain.transactions import TRANSACTION_ID_PATTERN, WALLET_ID_PATTERN, TransactionSource, TransactionType
from portfolio.domain.views import PortfolioSummary, TransactionPage
from portfolio.services.portfolio_rendering import summary_body
from portfolio.services.ports import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, TransactionListing

router = Router()

TransactionId = Annotated[str, Path(alias="transactionId", pattern=TRANSACTION_ID_PATTERN)]


@router.get(
    "/portfolios/<userId>/transactions",
    operation_id="listTransactions",
    summary="Transactions, newest first, one page at a time",
    tags=["transactions"],
    responses=read_answers(TransactionPage, "One page; nextCursor is null on the last one"),
)
def list_transactions(
    user_id: UserId,
    chain: Annotated[ChainSlug | None, Query(max_length=40)] = None,
    type: Annotated[TransactionType | None, Query()] = None,
    token: Annotated[
        str | None,
        Query(max_length=160, description="chain:address", json_schema_extra={"pattern": token_key_pattern()}),
    ] = None,
    start: Annotated[datetime | None, Query(alias="from", description="ISO 8601, inclusive")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="ISO 8601, inclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=1024, description="nextCursor of the previous page")] = None,
    source: Annotated[
        TransactionSource | None, Query(description="user: posted; chain: recorded by wallet sync")
    ] = None,
    wallet_id: Annotated[str | None, Query(alias="walletId", pattern=WALLET_ID_PATTERN)] = None,
) -> Response[Any]:
    start, end = _utc(start, field="from"), _utc(end, field="to")
    if start is not None and end is not None and start > end:
        raise InvalidRequest("from must not be after to", field="from")
    listing = TransactionListing(
        limit=limit,
        cursor=cursor,
        chain=normalize_chain(chain) if chain is not None else None,
        type=type,
        token=TokenId.parse(token) if token is not None else None,
        start=start,
        end=end,
        source=source,
        wallet_id=wallet_id,
    )
    return read_response(router, portfolio_reader().transactions(user_id, listing))


@router.post(
    "/portfolios/<userId>/transactions",
    operation_id="recordTransactions",
    summary="Record one transaction or a batch; an id already stored answers its stored record",
    description=(
        "201 when at least one transaction was created, 200 when every id was already stored with the "
        "same content (fields the server set, such as sequence or a market price, aside); an id stored "
        "with other content is a 409 transaction_id_conflict naming it, and nothing is written. "
        "One invalid item (400), an overdraft anywhere in the history or a per-user limit passed (422) "
        "writes nothing. An import that fits one DynamoDB transaction (99 writes: its transactions and "
        "one per token it touches) is stored all at once; a larger one is stored in steps that each leave "
        "a valid portfolio, and if it fails part way, sending the same request again completes it (stored "
        "ids are skipped)."
    ),
    tags=["transactions"],
    responses=answers(
        {
            HTTPStatus.CREATED: (RecordedTransactions, "Stored; at least one was new"),
            HTTPStatus.OK: (RecordedTransactions, "Every id was already stored; nothing changed"),
        },
        errors=(*WRITE_ERRORS, *BODY_ERRORS),
    ),
)
def record_transactions(
    user_id: UserId, submission: Annotated[TransactionSubmission, Body(openapi_examples=TRANSACTION_EXAMPLES)]
) -> Response[Any]:
    transactions = submission.transactions if isinstance(submission, TransactionBatch) else [submission]
    limit = wiring.settings().max_transactions_per_request
    if len(transactions) > limit:
        raise InvalidRequest(f"at most {limit} transactions per request", field="transactions")
    outcome = transaction_recorder().record(user_id, transactions, deadline=pricing_deadline(router.lambda_context))
    body = RecordedTransactions(transactions=outcome.transactions)
    return write_response(HTTPStatus.CREATED if outcome.created else HTTPStatus.OK, body.model_dump_json(by_alias=True))


@router.delete(
    "/portfolios/<userId>/transactions/<transactionId>",
    operation_id="deleteTransaction",
    summary="Delete one transaction; answers the recomputed summary",
    tags=["transactions"],
    responses=answers(
        {HTTPStatus.OK: (PortfolioSummary, "The summary without it")}, errors=(*WRITE_ERRORS, HTTPStatus.NOT_FOUND)
    ),
)
def delete_transaction(user_id: UserId, transaction_id: TransactionId) -> Response[Any]:
    recorder = transaction_recorder()
    try:
        view = recorder.delete(user_id, transaction_id, deadline=pricing_deadline(router.lambda_context))
    except TransactionNotFound:
        raise NotFound(f"no transaction {transaction_id!r}", details={"transactionId": transaction_id}) from None
    return write_response(HTTPStatus.OK, summary_body(view).decode())


def _utc(moment: datetime | None, *, field: str) -> datetime | None:
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest(f"{field} is outside the supported date range", field=field) from None
