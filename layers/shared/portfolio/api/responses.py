"""HTTP answers: JSON bodies with an ETag, 304 for a matching If-None-Match, and error bodies."""

from __future__ import annotations

import hashlib
from http import HTTPStatus

from aws_lambda_powertools.event_handler import Response, content_types

from portfolio.api.errors import ApiError

CACHE_CONTROL = "private, no-cache"


def etag_of(body: bytes) -> str:
    """A strong validator: the same bytes always give the same tag."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {candidate.strip().removeprefix("W/") for candidate in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


def json_body_response(body: bytes, *, if_none_match: str | None = None, status: int = HTTPStatus.OK) -> Response:
    """A read's answer; the body is sent exactly as given (cached bytes are not re-encoded)."""
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if status == HTTPStatus.OK and _matches(if_none_match, etag):
        return Response(status_code=HTTPStatus.NOT_MODIFIED, content_type=None, body="", headers=headers)
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body.decode(), headers=headers
    )


def error_response(error: ApiError) -> Response:
    body = error.body().model_dump_json(by_alias=True, exclude_none=True)
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"Cache-Control": "no-store", **error.headers()},
    )
