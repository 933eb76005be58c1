"""A WSGI app in front of a Lambda handler: each HTTP request becomes an HTTP API (payload 2.0) event.

Lets HTTP tools (schemathesis, werkzeug's test client) drive the real handler in-process. The caller
is authenticated as the API Gateway JWT authorizer would do it; `subject_for(path)` picks the `sub`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from tests.support.http_events import http_event
from tests.support.lambda_context import LambdaContext

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

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            name[5:].replace("_", "-").lower(): value for name, value in environ.items() if name.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        event = http_event(
            environ["REQUEST_METHOD"],
            path,
            sub=self._subject_for(path),
            query=dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)),
            headers=headers,
        )
        event["rawQueryString"] = environ.get("QUERY_STRING", "")
        if body:
            try:
                event["body"] = body.decode()
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(body).decode()
                event["isBase64Encoded"] = True
        elif not environ.get("CONTENT_TYPE"):
            event["headers"].pop("content-type", None)
        answer = self._handler(event, LambdaContext(aws_request_id=event["requestContext"]["requestId"]))
        payload = answer.get("body") or ""
        data = base64.b64decode(payload) if answer.get("isBase64Encoded") else payload.encode()
        status = HTTPStatus(answer["statusCode"])
        start_response(f"{status.value} {status.phrase}", list((answer.get("headers") or {}).items()))
        return [data]
