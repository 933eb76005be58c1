"""What the portfolio routers share: the userId path parameter and the read answer."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from portfolio.api.responses import json_body_response
from portfolio.api.schemas import USER_ID_PATTERN

USER_ID_PARAMETER = "userId"
UserId = Annotated[
    str, Path(alias=USER_ID_PARAMETER, pattern=USER_ID_PATTERN, max_length=128, description="The token's sub")
]


def write_response(status: HTTPStatus, body: str) -> Response[Any]:
    """The answer of a write (or of a read never cached): JSON, not to be kept by any cache."""
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"Cache-Control": "no-store"},
    )


def read_response(router: Router, body: bytes) -> Response:
    return json_body_response(body, if_none_match=router.current_event.headers.get("if-none-match"))
