"""A WSGI app in front of a Lambda handler: each HTTP request becomes an HTTP API (payload 2.0) event.

Lets HTTP tools (schemathesis, werkzeug's test client) drive the real handler in-process. Requests
and answers are translated as the local stack's gateway translates them (local_stack.http_events),
but every request reaches the handler: the caller counts as verified by the JWT authorizer, with the
`sub` that `subject_for(path)` picks (None: no claims), and a path no route declares goes to the
function as a $default route would send it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from local_stack.api_routes import api_routes
from local_stack.http_events import IncomingRequest, http_api_event, http_response, match_route
from local_stack.jwt_auth import authorized_caller
from local_stack.lambda_context import LocalLambdaContext

_PORTFOLIO_OWNER = re.compile(r"^/portfolios/([^/]+)")


def owner_of_path(path: str) -> str:
    """The portfolio owner named in the path, so requests pass auth and reach the route; else a fixed user."""
    match = _PORTFOLIO_OWNER.match(path)
    return match.group(1) if match else "user-alice"


class LambdaWsgiApp:
    def __init__(
        self,
        handler: Callable[[dict[str, Any], Any], dict[str, Any]],
        *,
        subject_for: Callable[[str], str | None] = owner_of_path,
    ) -> None:
        self._handler = handler
        self._subject_for = subject_for
        self._routes = api_routes()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO") or "/"
        length = int(environ.get("CONTENT_LENGTH") or 0)
        headers = [
            (name[5:].replace("_", "-").lower(), value) for name, value in environ.items() if name.startswith("HTTP_")
        ]
        if environ.get("CONTENT_TYPE"):
            headers.append(("content-type", environ["CONTENT_TYPE"]))
        request = IncomingRequest(
            method=method,
            raw_path=path,
            raw_query=environ.get("QUERY_STRING", ""),
            headers=headers,
            body=environ["wsgi.input"].read(length) if length else b"",
        )
        subject = self._subject_for(path)
        event = http_api_event(
            request, match_route(method, path, self._routes), authorized_caller(subject) if subject else None
        )
        answer = self._handler(event, LocalLambdaContext("api", aws_request_id=event["requestContext"]["requestId"]))
        response = http_response(answer)
        status = HTTPStatus(response.status)
        start_response(f"{status.value} {status.phrase}", response.headers)
        return [response.body]
