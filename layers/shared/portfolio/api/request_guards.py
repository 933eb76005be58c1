"""Checks every request passes before a route runs: body size, who may touch which portfolio, and
how often a caller may."""

from __future__ import annotations

import base64
import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from portfolio.api.auth import authorize, caller_from_event
from portfolio.api.errors import ApiError, InvalidRequest, PayloadTooLarge, RateLimited, UnsupportedMediaType
from portfolio.services.ports import RateLimiter, RequestKind

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


def access_refusal(event: Mapping[str, Any], admin_scope: str, user_id: str | None) -> ApiError | None:
    """401 or 403 for a caller who may not touch the portfolio of `user_id`, else None.

    `user_id` is the `userId` argument the matched route will be called with (None: the route has
    none), never read from the path a second way, so the user checked is the user served. Checked
    before the route runs, so a refusal comes before parameter validation and before any data is read.
    """
    if user_id is None:
        return None
    write = APIGatewayProxyEventV2(dict(event)).http_method.upper() not in READ_METHODS
    try:
        authorize(caller_from_event(event), user_id, write=write, admin_scope=admin_scope)
    except ApiError as refusal:
        return refusal
    return None


def rate_limit_refusal(event: Mapping[str, Any], limiter: RateLimiter) -> ApiError | None:
    """429 `rate_limited` (with Retry-After) for a caller past its per-user limit on a portfolio route.

    Reads and writes have buckets of their own, keyed by the token's sub, not by the path's user id:
    an admin reading other portfolios spends its own reads. Checked after access_refusal (a request
    without claims never gets here) and before the body is parsed or any data is read.
    """
    request = APIGatewayProxyEventV2(dict(event))
    if _PORTFOLIO_PATH.match(request.path or "") is None:
        return None
    caller = caller_from_event(event)
    if caller is None:
        return None
    kind = RequestKind.READ if request.http_method.upper() in READ_METHODS else RequestKind.WRITE
    decision = limiter.take(caller.subject, kind)
    if decision.allowed:
        return None
    retry_after_s = max(1, math.ceil(decision.retry_after_s))
    return RateLimited(
        f"too many {kind.value}s from this caller; retry in {retry_after_s} s",
        retry_after_s=retry_after_s,
        details={"limit": kind.value},
    )
