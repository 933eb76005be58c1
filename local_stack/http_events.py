"""HTTP requests to HTTP API (payload format 2.0) events and handler results back to HTTP responses.

The shapes follow what API Gateway sends a Lambda integration: routeKey from the matched route
("METHOD /path/{param}", or "$default" for what only a $default route would catch), lowercased
headers (repeats joined by commas), cookies lifted out of the headers, query values joined by
commas, path parameters decoded, the authorizer's claims as strings.

`http_event` builds the event of one request straight from its parts, for invoking the API
function without the gateway's socket (tests, benchmarks): the same translation, with the caller
as the authorizer would have verified it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from local_stack.jwt_auth import AuthorizedCaller, authorized_caller

API_ID = "local"
ACCOUNT_ID = "000000000000"
STAGE = "$default"
DEFAULT_ROUTE_KEY = "$default"
TEXT_CONTENT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded")


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    authorized: bool = True  # False for routes whose authorizer is NONE

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.template.strip("/").split("/")) if self.template != "/" else ()


_PARAMETER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    path_parameters: dict[str, str]


def match_route(method: str, raw_path: str, routes: tuple[Route, ...]) -> RouteMatch | None:
    """The route a request lands on, with its decoded path parameters; None when API Gateway would say 404."""
    segments = tuple(raw_path.strip("/").split("/")) if raw_path.strip("/") else ()
    if raw_path != "/" and raw_path.endswith("/"):
        return None
    for route in routes:
        if route.method != method.upper() or len(route.segments) != len(segments):
            continue
        parameters: dict[str, str] = {}
        for expected, actual in zip(route.segments, segments, strict=True):
            parameter = _PARAMETER.match(expected)
            if parameter:
                if not actual:
                    break
                parameters[parameter.group(1)] = unquote(actual)
            elif expected != actual:
                break
        else:
            return RouteMatch(route, parameters)
    return None


@dataclass(frozen=True)
class IncomingRequest:
    """An HTTP request as the gateway received it."""

    method: str
    raw_path: str
    raw_query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        values = [value for key, value in self.headers if key.lower() == wanted]
        return ",".join(values) if values else None


def _is_text(content_type: str | None) -> bool:
    if not content_type:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith(TEXT_CONTENT_TYPES) or media_type.endswith("+json")


def http_api_event(
    request: IncomingRequest,
    match: RouteMatch | None,
    caller: AuthorizedCaller | None,
    *,
    now: datetime | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The payload format 2.0 event API Gateway would send for this request (match None: the $default route)."""
    now = now or datetime.now(UTC)
    route_key = match.route.route_key if match is not None else DEFAULT_ROUTE_KEY
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value

    query: dict[str, str] = {}
    for name, value in parse_qsl(request.raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": headers.get("host", "127.0.0.1").split(".", 1)[0],
            "http": {
                "method": request.method.upper(),
                "path": request.raw_path,
                "protocol": request.protocol,
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id or str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": STAGE,
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if match is not None and match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    if caller is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": dict(caller.claims), "scopes": list(caller.scopes)}}
    if request.body:
        if _is_text(headers.get("content-type")):
            try:
                event["body"] = request.body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(request.body).decode("ascii")
                event["isBase64Encoded"] = True
        else:
            event["body"] = base64.b64encode(request.body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


# What a client sends in the Authorization header of a built event. The authorizer checked it before
# the function runs; the function must never need it, nor log it.
SAMPLE_BEARER_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLWFsaWNlIn0.c2lnbmF0dXJlLXRoYXQtbXVzdC1uZXZlci1iZS1sb2dnZWQ"  # noqa: S105 - an example, not a secret
EVENT_HOST = "127.0.0.1:3000"
EVENT_USER_AGENT = "local-stack"


@functools.cache
def _template_routes() -> tuple[Route, ...]:
    from local_stack.api_routes import api_routes  # api_routes builds on this module's Route

    return api_routes()


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
    routes: tuple[Route, ...] | None = None,
) -> dict[str, Any]:
    """The event the API function gets for one request that passed the authorizer as `sub` with `scopes`
    (sub=None: no token, no claims). The route is matched against `routes` (the template's by default).
    A dict or list body is sent as JSON; `headers` replace the defaults of the same name."""
    request_headers = {"accept": "application/json", "host": EVENT_HOST, "user-agent": EVENT_USER_AGENT}
    if sub is not None:
        request_headers["authorization"] = f"Bearer {SAMPLE_BEARER_TOKEN}"
    if body is not None and not isinstance(body, str | bytes):
        body = json.dumps(body)
    if body is not None:
        request_headers["content-type"] = "application/json"
    request_headers.update({name.lower(): value for name, value in (headers or {}).items()})
    request = IncomingRequest(
        method=method,
        raw_path=path,
        raw_query=urlencode(query or {}),
        headers=list(request_headers.items()),
        body=body.encode() if isinstance(body, str) else body or b"",
    )
    match = match_route(method, path, routes if routes is not None else _template_routes())
    caller = authorized_caller(sub, scopes) if sub is not None else None
    return http_api_event(request, match, caller, request_id=request_id)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    return HttpResponse(status, [("Content-Type", "application/json"), *(headers or [])], body)


def gateway_error(status: int, message: str) -> HttpResponse:
    """API Gateway's own answers: {"message": "..."}, with its error type header."""
    return json_response(status, {"message": message}, [("apigw-requestid", str(uuid.uuid4()))])


INTERNAL_SERVER_ERROR = 500


def http_response(result: Any) -> HttpResponse:
    """A handler's result as API Gateway turns it into an HTTP response (payload format 2.0)."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # Format 2.0 takes any other JSON value as the body of a 200 answer.
        return json_response(200, result)
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        return gateway_error(INTERNAL_SERVER_ERROR, "Internal Server Error")
    headers = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(value)) for value in values)
    headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])
    body = result.get("body")
    if body is None:
        payload = b""
    elif result.get("isBase64Encoded"):
        try:
            payload = base64.b64decode(body, validate=True)
        except (binascii.Error, TypeError, ValueError):
            return gateway_error(INTERNAL_SERVER_ERROR, "Internal Server Error")
    else:
        payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    if not any(name.lower() == "content-type" for name, _ in headers) and payload:
        headers.append(("Content-Type", "application/json"))
    return HttpResponse(status, headers, payload)
