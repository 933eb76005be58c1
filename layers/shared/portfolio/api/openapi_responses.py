"""OpenAPI `responses` entries for the routes: the success model, and every error a route can answer.

Two shapes answer errors: the function's own, {"error": {"code", "message", "details"?}}, and API
Gateway's, {"message": "..."}, which it gives without calling the function (a token its JWT
authorizer refuses, its throttling, a body over its 10 MB limit) or instead of the function's (a
function that failed or timed out). A status either can answer declares both.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, cast

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from portfolio.api.errors import ErrorResponse
from portfolio.api.schemas import GatewayError

ERROR_DESCRIPTIONS = {
    HTTPStatus.BAD_REQUEST: "Invalid input; details.field names the parameter or body field",
    HTTPStatus.UNAUTHORIZED: (
        "API Gateway's JWT authorizer refused the request (no token, or one it could not verify: signature, "
        "expiry, issuer, audience); the function never ran. The body is API Gateway's own"
    ),
    HTTPStatus.FORBIDDEN: "The token may not access this portfolio, or its sub is not a valid user id",
    HTTPStatus.NOT_FOUND: "No such resource",
    HTTPStatus.CONFLICT: (
        "The portfolio kept changing during the write; retry. Code recorded_by_wallet_sync: the transaction "
        "was recorded by a wallet's sync and goes only with its wallet. Code transaction_id_conflict: an id "
        "already recorded was sent with other content (details.transactionId, details.fields)"
    ),
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: (
        "Body over the function's size limit (error shape), or over API Gateway's 10 MB (its own message)"
    ),
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "Body is not application/json",
    HTTPStatus.UNPROCESSABLE_ENTITY: (
        "The change would remove more of a holding than is held (details.holding names it), "
        "or take the portfolio past a per-user limit (code portfolio_limit); code unknown_asset: an alert "
        "rule names an asset the service does not price"
    ),
    HTTPStatus.TOO_MANY_REQUESTS: (
        "Code rate_limited: past the caller's per-user limit of reads or of writes (details.limit); "
        "code too_many_requests: a wallet sync asked for again too soon. Retry after the Retry-After seconds. "
        "API Gateway's throttling of the route answers its own message, without Retry-After"
    ),
    HTTPStatus.INTERNAL_SERVER_ERROR: (
        "Unexpected failure; details.correlationId identifies the request. A function that crashed or "
        "timed out gets API Gateway's own message instead"
    ),
    HTTPStatus.SERVICE_UNAVAILABLE: (
        "The database is throttling or did not answer in time, or (writes) market prices cannot be looked "
        "up; retry after the Retry-After seconds"
    ),
}

# What every portfolio route may answer: the authorizer's 401, and the function's refusals.
READ_ERRORS = (
    HTTPStatus.BAD_REQUEST,
    HTTPStatus.UNAUTHORIZED,
    HTTPStatus.FORBIDDEN,
    HTTPStatus.TOO_MANY_REQUESTS,
    HTTPStatus.INTERNAL_SERVER_ERROR,
    HTTPStatus.SERVICE_UNAVAILABLE,
)
# A write that replays the history may find an overdraft or a limit (422) or lose a race (409).
WRITE_ERRORS = (*READ_ERRORS, HTTPStatus.CONFLICT, HTTPStatus.UNPROCESSABLE_ENTITY)
# A route that takes a body: too large, not JSON.
BODY_ERRORS = (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, HTTPStatus.UNSUPPORTED_MEDIA_TYPE)

# Statuses API Gateway answers with its own body: only its (401), or its or the function's.
_GATEWAY_ONLY = frozenset({HTTPStatus.UNAUTHORIZED})
_GATEWAY_TOO = frozenset(
    {HTTPStatus.REQUEST_ENTITY_TOO_LARGE, HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.INTERNAL_SERVER_ERROR}
)

_RETRY_AFTER = {"description": "Seconds to wait before retrying", "schema": {"type": "integer", "minimum": 1}}
_HEADERS: dict[HTTPStatus, dict[str, Any]] = {
    # Absent from API Gateway's throttling answer.
    HTTPStatus.TOO_MANY_REQUESTS: {"Retry-After": _RETRY_AFTER},
    HTTPStatus.SERVICE_UNAVAILABLE: {"Retry-After": {**_RETRY_AFTER, "required": True}},
    HTTPStatus.UNAUTHORIZED: {
        "WWW-Authenticate": {
            "description": "Why API Gateway refused the token (error, error_description), when it sent one",
            "schema": {"type": "string"},
        }
    },
}
_ETAG = {
    "ETag": {
        "description": "Strong validator of the body; send it in If-None-Match",
        "required": True,
        "schema": {"type": "string", "pattern": '^"[0-9a-f]{32}"$'},
    }
}


def _json(model: Any, description: str) -> OpenAPIResponse:
    content: dict[str, Any] = {"application/json": {"model": model}}
    return cast(OpenAPIResponse, {"description": description, "content": content})


def _error(status: HTTPStatus, description: str | None = None, *, function_answers: bool = True) -> OpenAPIResponse:
    if not function_answers or status in _GATEWAY_ONLY:
        model: Any = GatewayError
    elif status in _GATEWAY_TOO:
        model = ErrorResponse | GatewayError
    else:
        model = ErrorResponse
    response = _json(model, description or ERROR_DESCRIPTIONS[status])
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


def answers(
    success: dict[int, tuple[type, str]], errors: tuple[HTTPStatus, ...] = READ_ERRORS
) -> dict[int, OpenAPIResponse]:
    """The success answers given, and the errors: the function's and API Gateway's as they can come."""
    responses = {int(status): _json(model, description) for status, (model, description) in success.items()}
    for status in errors:
        responses[int(status)] = _error(status)
    return responses


def public_answers(success: dict[int, tuple[type, str]]) -> dict[int, OpenAPIResponse]:
    """A route without the authorizer and without a refusal of its own: API Gateway's throttling,
    and an unexpected failure."""
    responses = {int(status): _json(model, description) for status, (model, description) in success.items()}
    responses[HTTPStatus.TOO_MANY_REQUESTS] = _error(
        HTTPStatus.TOO_MANY_REQUESTS, "API Gateway's throttling of the route", function_answers=False
    )
    responses[HTTPStatus.INTERNAL_SERVER_ERROR] = _error(HTTPStatus.INTERNAL_SERVER_ERROR)
    return responses


def read_answers(model: type, description: str) -> dict[int, OpenAPIResponse]:
    """A cached read: an ETag on every answer, 304 when If-None-Match names it."""
    responses = answers({HTTPStatus.OK: (model, description)})
    responses[HTTPStatus.OK]["headers"] = cast(dict[str, Any], _ETAG)
    responses[HTTPStatus.NOT_MODIFIED] = {
        "description": "Unchanged since the ETag sent in If-None-Match",
        "headers": cast(dict[str, Any], _ETAG),
    }
    return responses
