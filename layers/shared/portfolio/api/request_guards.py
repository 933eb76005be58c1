"""Checks every request passes before a route runs: body size, and who may touch which portfolio."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from portfolio import wiring
from portfolio.api.auth import authorize, caller_from_event
from portfolio.api.errors import ApiError, PayloadTooLarge, UnsupportedMediaType

READ_METHODS = frozenset({"GET", "HEAD"})
JSON_MEDIA_TYPE = "application/json"


def parse_json_body(body: str) -> Any:
    """The request body as JSON, numbers with a fraction as Decimal (never float)."""
    return json.loads(body, parse_float=Decimal)


def unreadable_body(event: Mapping[str, Any], max_body_bytes: int) -> ApiError | None:
    """Why the body cannot be taken (too large, not JSON), checked before anything parses it."""
    body = event.get("body")
    if not body:
        return None
    size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
    if size > max_body_bytes:
        return PayloadTooLarge(f"the request body is larger than {max_body_bytes} bytes")
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    media_type = str(headers.get("content-type", JSON_MEDIA_TYPE)).split(";")[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE and not media_type.endswith("+json"):
        return UnsupportedMediaType("send the body as application/json")
    return None


def authorize_portfolio_access(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    """Routes under /portfolios/{userId} need the caller's sub to be userId (admins may read any)."""
    user_id = app.context.get("_route_args", {}).get("user_id")
    if user_id is not None:
        event = app.current_event
        caller = authorize(
            caller_from_event(event.raw_event),
            user_id,
            write=event.http_method.upper() not in READ_METHODS,
            admin_scope=wiring.settings().admin_scope,
        )
        app.append_context(caller=caller)
    return next_middleware(app)
