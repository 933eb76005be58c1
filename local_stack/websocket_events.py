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
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from local_stack.http_events import ACCOUNT_ID

WEBSOCKET_API_ID = "local-websocket"
CONNECT_ROUTE, DISCONNECT_ROUTE = "$connect", "$disconnect"


def _request_context(
    route_key: str,
    event_type: str,
    *,
    connection_id: str,
    domain_name: str,
    stage: str,
    source_ip: str,
    user_agent: str | None,
    connected_at_ms: int,
    now: datetime,
) -> dict[str, Any]:
    identity: dict[str, Any] = {"sourceIp": source_ip}
    if user_agent:
        identity["userAgent"] = user_agent
    return {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": uuid.uuid4().hex[:16],
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "messageDirection": "IN",
        "stage": stage,
        "connectedAt": connected_at_ms,
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "identity": identity,
        "requestId": uuid.uuid4().hex[:16],
        "domainName": domain_name,
        "connectionId": connection_id,
        "apiId": WEBSOCKET_API_ID,
    }


def _headers(pairs: Sequence[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def _query(raw_query: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def method_arn(region: str, stage: str, route_key: str) -> str:
    return f"arn:aws:execute-api:{region}:{ACCOUNT_ID}:{WEBSOCKET_API_ID}/{stage}/{route_key}"


def authorizer_event(
    *,
    headers: Sequence[tuple[str, str]],
    raw_query: str,
    connection_id: str,
    domain_name: str,
    stage: str,
    region: str,
    source_ip: str = "127.0.0.1",
    now: datetime | None = None,
) -> dict[str, Any]:
    """What a REQUEST authorizer of $connect receives."""
    now = now or datetime.now(UTC)
    single_headers, multi_headers = _headers(headers)
    single_query, multi_query = _query(raw_query)
    context = _request_context(
        CONNECT_ROUTE,
        "CONNECT",
        connection_id=connection_id,
        domain_name=domain_name,
        stage=stage,
        source_ip=source_ip,
        user_agent=single_headers.get("User-Agent"),
        connected_at_ms=int(now.timestamp() * 1000),
        now=now,
    )
    return {
        "type": "REQUEST",
        "methodArn": method_arn(region, stage, CONNECT_ROUTE),
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "stageVariables": {},
        "requestContext": context,
    }


def authorizer_context(result: Mapping[str, Any]) -> dict[str, Any]:
    """What API Gateway passes on from an authorizer's answer: its context values and principalId."""
    context = {str(name): value for name, value in (result.get("context") or {}).items()}
    context["principalId"] = str(result.get("principalId", ""))
    return context


def connect_event(
    *,
    headers: Sequence[tuple[str, str]],
    raw_query: str,
    connection_id: str,
    domain_name: str,
    stage: str,
    authorizer: Mapping[str, Any] | None,
    source_ip: str = "127.0.0.1",
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    single_headers, multi_headers = _headers(headers)
    single_query, multi_query = _query(raw_query)
    context = _request_context(
        CONNECT_ROUTE,
        "CONNECT",
        connection_id=connection_id,
        domain_name=domain_name,
        stage=stage,
        source_ip=source_ip,
        user_agent=single_headers.get("User-Agent"),
        connected_at_ms=int(now.timestamp() * 1000),
        now=now,
    )
    if authorizer is not None:
        context["authorizer"] = {**authorizer, "integrationLatency": 0}
    event: dict[str, Any] = {
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "requestContext": context,
        "isBase64Encoded": False,
    }
    if single_query:
        event["queryStringParameters"] = single_query
        event["multiValueQueryStringParameters"] = multi_query
    return event


def disconnect_event(
    *,
    connection_id: str,
    domain_name: str,
    stage: str,
    authorizer: Mapping[str, Any] | None,
    connected_at_ms: int,
    status_code: int,
    reason: str,
    source_ip: str = "127.0.0.1",
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    headers = [("Host", domain_name), ("x-api-key", ""), ("X-Forwarded-For", ""), ("x-restapi", "")]
    single_headers, multi_headers = _headers(headers)
    context = _request_context(
        DISCONNECT_ROUTE,
        "DISCONNECT",
        connection_id=connection_id,
        domain_name=domain_name,
        stage=stage,
        source_ip=source_ip,
        user_agent=None,
        connected_at_ms=connected_at_ms,
        now=now,
    )
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    return {
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "requestContext": context,
        "isBase64Encoded": False,
    }


def message_event(
    route_key: str,
    body: str,
    *,
    connection_id: str,
    domain_name: str,
    stage: str,
    authorizer: Mapping[str, Any] | None,
    connected_at_ms: int,
    source_ip: str = "127.0.0.1",
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    context = _request_context(
        route_key,
        "MESSAGE",
        connection_id=connection_id,
        domain_name=domain_name,
        stage=stage,
        source_ip=source_ip,
        user_agent=None,
        connected_at_ms=connected_at_ms,
        now=now,
    )
    context["messageId"] = uuid.uuid4().hex[:16]
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    return {"requestContext": context, "body": body, "isBase64Encoded": False}


def epoch_ms() -> int:
    return int(time.time() * 1000)
