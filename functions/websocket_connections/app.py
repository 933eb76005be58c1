"""WebSocketConnectionsFunction: the WebSocket API's $connect, $disconnect and ping routes.

The authorizer has verified the token on $connect; API Gateway hands its context ({"userId": sub})
to every event of the connection, so the connection belongs to that user. `ping` answers
{"type": "pong"} (the route's response) and keeps the connection listed. A $connect answered with a
status other than 2xx is refused by API Gateway: 429 when the user already holds
MAX_CONNECTIONS_PER_USER open connections.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from portfolio import wiring
from portfolio.api.schemas import is_user_id
from portfolio.observability import logger, metrics, tracer
from portfolio.services.live_connections import TooManyConnectionsError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONNECT, DISCONNECT, PING = "$connect", "$disconnect", "ping"
PONG = json.dumps({"type": "pong"})


class _Authorizer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user_id: str = Field(alias="userId")


class ConnectionRequest(BaseModel):
    """The part of a WebSocket event's requestContext this function reads."""

    model_config = ConfigDict(extra="ignore")

    route_key: str = Field(alias="routeKey")
    connection_id: str = Field(alias="connectionId", min_length=1, max_length=128)
    authorizer: _Authorizer


def handle(event: dict[str, Any]) -> dict[str, Any]:
    try:
        request = ConnectionRequest.model_validate(event.get("requestContext") or {})
    except ValidationError:
        return {"statusCode": 400}
    user_id, connection_id = request.authorizer.user_id, request.connection_id
    if not is_user_id(user_id):  # the authorizer already refuses these; never stored under another shape
        return {"statusCode": 403}
    connections = wiring.live_connections()
    if request.route_key == CONNECT:
        try:
            connections.connect(user_id, connection_id)
        except TooManyConnectionsError:
            logger.info("connection refused: too many open connections", extra={"user_id": user_id})
            metrics.add_metric(name="ConnectionsRefused", unit="Count", value=1)
            return {"statusCode": 429}
        metrics.add_metric(name="ConnectionsOpened", unit="Count", value=1)
        return {"statusCode": 200}
    if request.route_key == DISCONNECT:
        connections.disconnect(user_id, connection_id)
        return {"statusCode": 200}
    if request.route_key == PING:
        connections.ping(user_id, connection_id)
        return {"statusCode": 200, "body": PONG}
    logger.warning("route not handled here", extra={"route": request.route_key[:64]})
    return {"statusCode": 400}


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event)
