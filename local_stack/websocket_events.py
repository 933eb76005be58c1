"""The events API Gateway's WebSocket API sends its Lambda functions: the REQUEST authorizer's on
$connect, and the Lambda proxy integration's on $connect (CONNECT), $disconnect (DISCONNECT) and a
message routed by its action (MESSAGE).

Shapes follow what API Gateway sends: single- and multi-value headers and query parameters on
$connect, requestContext with routeKey, eventType, connectionId, domainName, stage, apiId, and,
after the authorizer allowed the connection, its context under requestContext.authorizer (with
principalId) on every later event of the connection.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from local_stack.http_events import ACCOUNT_ID

WEBSOCKET_API_ID = "local-websocket"
CONNECT_ROUTE, DISCONNECT_ROUTE = "$connect", "$disconnect"


@dataclass(frozen=True)
class EventOrigin:
    """Which connection an event is about, the host and stage the client reached, and the client's address."""

    connection_id: str
    domain_name: str
    stage: str
    source_ip: str = "127.0.0.1"


def _request_context(
    route_key: str,
    event_type: str,
    origin: EventOrigin,
    *,
    connected_at_ms: int,
    authorizer: Mapping[str, Any] | None,
    now: datetime | None,
    user_agent: str | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    identity: dict[str, Any] = {"sourceIp": origin.source_ip}
    if user_agent:
        identity["userAgent"] = user_agent
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": uuid.uuid4().hex[:16],
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "messageDirection": "IN",
        "stage": origin.stage,
        "connectedAt": connected_at_ms,
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "identity": identity,
        "requestId": uuid.uuid4().hex[:16],
        "domainName": origin.domain_name,
        "connectionId": origin.connection_id,
        "apiId": WEBSOCKET_API_ID,
    }
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    return context


def _single_and_multi(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """API Gateway's two views of repeatable values: the last one of each name, and all of them."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


@dataclass(frozen=True)
class _Handshake:
    """What every event of $connect carries: the handshake's headers and query, and the request context."""

    headers: dict[str, str]
    multi_headers: dict[str, list[str]]
    query: dict[str, str]
    multi_query: dict[str, list[str]]
    context: dict[str, Any]


def _handshake(
    origin: EventOrigin,
    headers: Sequence[tuple[str, str]],
    raw_query: str,
    *,
    authorizer: Mapping[str, Any] | None,
    now: datetime | None,
) -> _Handshake:
    now = now or datetime.now(UTC)
    single_headers, multi_headers = _single_and_multi(headers)
    single_query, multi_query = _single_and_multi(parse_qsl(raw_query, keep_blank_values=True))
    context = _request_context(
        CONNECT_ROUTE,
        "CONNECT",
        origin,
        user_agent=single_headers.get("User-Agent"),
        connected_at_ms=int(now.timestamp() * 1000),
        authorizer=authorizer,
        now=now,
    )
    return _Handshake(single_headers, multi_headers, single_query, multi_query, context)


def method_arn(region: str, stage: str, route_key: str) -> str:
    return f"arn:aws:execute-api:{region}:{ACCOUNT_ID}:{WEBSOCKET_API_ID}/{stage}/{route_key}"


def authorizer_event(
    origin: EventOrigin,
    *,
    headers: Sequence[tuple[str, str]],
    raw_query: str,
    region: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What a REQUEST authorizer of $connect receives."""
    handshake = _handshake(origin, headers, raw_query, authorizer=None, now=now)
    return {
        "type": "REQUEST",
        "methodArn": method_arn(region, origin.stage, CONNECT_ROUTE),
        "headers": handshake.headers,
        "multiValueHeaders": handshake.multi_headers,
        "queryStringParameters": handshake.query,
        "multiValueQueryStringParameters": handshake.multi_query,
        "stageVariables": {},
        "requestContext": handshake.context,
    }


def authorizer_context(result: Mapping[str, Any]) -> dict[str, Any]:
    """What API Gateway passes on from an authorizer's answer: its context values and principalId."""
    context = {str(name): value for name, value in (result.get("context") or {}).items()}
    context["principalId"] = str(result.get("principalId", ""))
    return context


def connect_event(
    origin: EventOrigin,
    *,
    headers: Sequence[tuple[str, str]],
    raw_query: str,
    authorizer: Mapping[str, Any] | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    handshake = _handshake(
        origin,
        headers,
        raw_query,
        authorizer=None if authorizer is None else {**authorizer, "integrationLatency": 0},
        now=now,
    )
    event: dict[str, Any] = {
        "headers": handshake.headers,
        "multiValueHeaders": handshake.multi_headers,
        "requestContext": handshake.context,
        "isBase64Encoded": False,
    }
    if handshake.query:
        event["queryStringParameters"] = handshake.query
        event["multiValueQueryStringParameters"] = handshake.multi_query
    return event


def disconnect_event(
    origin: EventOrigin,
    *,
    authorizer: Mapping[str, Any] | None,
    connected_at_ms: int,
    status_code: int,
    reason: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    headers = [("Host", origin.domain_name), ("x-api-key", ""), ("X-Forwarded-For", ""), ("x-restapi", "")]
    single_headers, multi_headers = _single_and_multi(headers)
    context = _request_context(
        DISCONNECT_ROUTE, "DISCONNECT", origin, connected_at_ms=connected_at_ms, authorizer=authorizer, now=now
    )
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    return {
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "requestContext": context,
        "isBase64Encoded": False,
    }


def message_event(
    route_key: str,
    body: str,
    origin: EventOrigin,
    *,
    authorizer: Mapping[str, Any] | None,
    connected_at_ms: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    context = _request_context(
        route_key, "MESSAGE", origin, connected_at_ms=connected_at_ms, authorizer=authorizer, now=now
    )
    context["messageId"] = uuid.uuid4().hex[:16]
    return {"requestContext": context, "body": body, "isBase64Encoded": False}


def epoch_ms() -> int:
    return int(time.time() * 1000)
