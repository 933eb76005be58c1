"""API Gateway HTTP API (payload 2.0) events, shaped like `sam local generate-event apigateway http-api-proxy`,
with the claims a JWT authorizer adds."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

NO_CLAIMS = None
# What a client sends; API Gateway verifies it and the function must never log it.
SAMPLE_BEARER_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLWFsaWNlIn0.c2lnbmF0dXJlLXRoYXQtbXVzdC1uZXZlci1iZS1sb2dnZWQ"


def jwt_claims(sub: str, *, scope: str | None = None) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "iss": "https://issuer.example.com",
        "aud": "portfolio-api",
        "iat": str(now),
        "exp": str(now + 3600),
    }
    if scope is not None:
        claims["scope"] = scope
    return claims


def http_event(
    method: str,
    path: str,
    *,
    sub: str | None = "user-alice",
    scopes: Sequence[str] = (),
    query: Mapping[str, str] | None = None,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """One request. `sub=None` leaves the authorizer out (no claims); a dict/list body is sent as JSON."""
    all_headers = {
        "accept": "application/json",
        "host": "api-id.execute-api.us-east-1.amazonaws.com",
        "user-agent": "pytest",
        "x-forwarded-proto": "https",
    }
    if sub is not None:
        all_headers["authorization"] = f"Bearer {SAMPLE_BEARER_TOKEN}"
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    if body is not None:
        all_headers["content-type"] = "application/json"
    all_headers.update({name.lower(): value for name, value in (headers or {}).items()})
    request_id = request_id or uuid.uuid4().hex
    request_context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "api-id",
        "domainName": "api-id.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "api-id",
        "http": {
            "method": method.upper(),
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "192.0.2.10",
            "userAgent": "pytest",
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
        "timeEpoch": int(time.time() * 1000),
    }
    if sub is not None:
        request_context["authorizer"] = {
            "jwt": {"claims": jwt_claims(sub, scope=" ".join(scopes) or None), "scopes": list(scopes) or None}
        }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": all_headers,
        "requestContext": request_context,
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if body is not None:
        event["body"] = body
    return event
