"""Checks every request passes before a route runs: body size, and who may touch which portfolio."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from portfolio.api.auth import authorize, caller_from_event
from portfolio.api.errors import ApiError, InvalidRequest, PayloadTooLarge, UnsupportedMediaType

READ_METHODS = frozenset({"GET", "HEAD"})
JSON_MEDIA_TYPE = "application/json"
_PORTFOLIO_PATH = re.compile(r"^/portfolios/(?P<user_id>[^/]+)")


def parse_json_body(body: str) -> Any:
    """The request body as JSON, numbers with a fraction as Decimal (never float).

    Documents json cannot take (an integer of thousands of digits, nesting deeper than the
    interpreter's stack) are invalid JSON to the caller, not a server error; so is an object that
    names a key twice, since which of the two values was meant cannot be known.
    """
    try:
        return json.loads(body, parse_float=Decimal, object_pairs_hook=_object_without_duplicate_keys)
    except (ValueError, RecursionError) as error:
        if isinstance(error, json.JSONDecodeError):
            raise
        raise json.JSONDecodeError(f"unreadable JSON: {type(error).__name__}", body[:100], 0) from None


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        repeated = sorted(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
        raise ValueError(f"duplicate keys {repeated[:5]}")
    return document


def unreadable_body(event: Mapping[str, Any], max_body_bytes: int) -> ApiError | None:
    """Why the body cannot be taken (too large, not JSON), checked before anything parses it."""
    body = event.get("body")
    if not body:
        return None
    size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode("utf-8", "surrogatepass"))
    if size > max_body_bytes:
        return PayloadTooLarge(f"the request body is larger than {max_body_bytes} bytes")
    if not _is_utf8_text(body, base64_encoded=bool(event.get("isBase64Encoded"))):
        return InvalidRequest("the request body is not valid UTF-8 text", field="body")
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    media_type = str(headers.get("content-type", JSON_MEDIA_TYPE)).split(";")[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE and not media_type.endswith("+json"):
        return UnsupportedMediaType("send the body as application/json")
    return None


def _is_utf8_text(body: str, *, base64_encoded: bool) -> bool:
    try:
        raw = base64.b64decode(body, validate=True) if base64_encoded else body.encode("utf-8")
        raw.decode("utf-8")
    except (ValueError, UnicodeError):
        return False
    return True


def access_refusal(event: Mapping[str, Any], admin_scope: str) -> ApiError | None:
    """401 or 403 for a caller who may not touch the portfolio in the path, else None.

    Checked on the raw event before routing, so a refusal comes before parameter validation and
    before any data is read.
    """
    # The same path the router matches (rawPath less a named stage), so the checked user is the routed one.
    request = APIGatewayProxyEventV2(dict(event))
    match = _PORTFOLIO_PATH.match(request.path or "")
    if match is None:
        return None
    write = request.http_method.upper() not in READ_METHODS
    try:
        authorize(caller_from_event(event), match["user_id"], write=write, admin_scope=admin_scope)
    except ApiError as refusal:
        return refusal
    return None
