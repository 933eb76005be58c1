"""What the portfolio routers share: the userId path parameter and the read answer."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from portfolio.api.responses import json_body_response
from portfolio.api.schemas import USER_ID_PATTERN

UserId = Annotated[str, Path(alias="userId", pattern=USER_ID_PATTERN, max_length=128, description="The token's sub")]


def read_response(router: Router, body: bytes) -> Response:
    return json_body_response(body, if_none_match=router.current_event.headers.get("if-none-match"))
