"""Checks every request passes before a route runs: body size, and who may touch which portfolio."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from portfolio import wiring
from portfolio.api.auth import authorize, caller_from_event
from portfolio.api.errors import PayloadTooLarge

READ_METHODS = frozenset({"GET", "HEAD"})


def parse_json_body(body: str) -> Any:
    """The request body as JSON, numbers with a fraction as Decimal (never float); refuses bodies over the limit."""
    limit = wiring.settings().max_body_bytes
    # A UTF-8 byte count is at least the character count: skip the encode for small bodies.
    if len(body) > limit or len(body.encode()) > limit:
        raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    return json.loads(body, parse_float=Decimal)


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
