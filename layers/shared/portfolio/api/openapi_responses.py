"""OpenAPI `responses` entries for the routes: the success model and the error bodies a route can answer."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, cast

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from portfolio.api.errors import ErrorResponse

ERROR_DESCRIPTIONS = {
    HTTPStatus.BAD_REQUEST: "Invalid input; details.field names the parameter or body field",
    HTTPStatus.UNAUTHORIZED: "No verified token",
    HTTPStatus.FORBIDDEN: "The token may not access this portfolio, or its sub is not a valid user id",
    HTTPStatus.NOT_FOUND: "No such resource",
    HTTPStatus.CONFLICT: (
        "The portfolio kept changing during the write; retry. Code recorded_by_wallet_sync: the transaction "
        "was recorded by a wallet's sync and goes only with its wallet. Code transaction_id_conflict: an id "
        "already recorded was sent with other content (details.transactionId, details.fields)"
    ),
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "Body over the size limit",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "Body is not application/json",
    HTTPStatus.UNPROCESSABLE_ENTITY: (
        "The change would remove more of a holding than is held (details.holding names it), "
        "or take the portfolio past a per-user limit (code portfolio_limit); code unknown_asset: an alert "
        "rule names an asset the service does not price"
    ),
    HTTPStatus.TOO_MANY_REQUESTS: (
        "Code rate_limited: past the caller's per-user limit of reads or of writes (details.limit); "
        "code too_many_requests: a wallet sync asked for again too soon. Retry after the Retry-After seconds"
    ),
    HTTPStatus.INTERNAL_SERVER_ERROR: "Unexpected failure; details.correlationId identifies the request",
    HTTPStatus.SERVICE_UNAVAILABLE: "The database is throttling; retry after the Retry-After seconds",
}

READ_ERRORS = (
    HTTPStatus.BAD_REQUEST,
    HTTPStatus.UNAUTHORIZED,
    HTTPStatus.FORBIDDEN,
    HTTPStatus.TOO_MANY_REQUESTS,
    HTTPStatus.INTERNAL_SERVER_ERROR,
    HTTPStatus.SERVICE_UNAVAILABLE,
)
WRITE_ERRORS = (
    *READ_ERRORS,
    HTTPStatus.CONFLICT,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    HTTPStatus.UNPROCESSABLE_ENTITY,
)


# Answers that tell the client when to come back.
RETRY_AFTER_HEADERS = {
    HTTPStatus.TOO_MANY_REQUESTS: {
        "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer", "minimum": 1}}
    },
}


def _json(model: type, description: str) -> OpenAPIResponse:
    content: dict[str, Any] = {"application/json": {"model": model}}
    return cast(OpenAPIResponse, {"description": description, "content": content})


def answers(
    success: dict[int, tuple[type, str]], errors: tuple[HTTPStatus, ...] = READ_ERRORS
) -> dict[int, OpenAPIResponse]:
    responses = {int(status): _json(model, description) for status, (model, description) in success.items()}
    for status in errors:
        responses[int(status)] = _json(ErrorResponse, ERROR_DESCRIPTIONS[status])
        if status in RETRY_AFTER_HEADERS:
            responses[int(status)]["headers"] = cast(dict[str, Any], RETRY_AFTER_HEADERS[status])
    return responses


def read_answers(model: type, description: str) -> dict[int, OpenAPIResponse]:
    responses = answers({HTTPStatus.OK: (model, description)})
    responses[HTTPStatus.NOT_MODIFIED] = {"description": "Unchanged since the ETag sent in If-None-Match"}
    return responses
