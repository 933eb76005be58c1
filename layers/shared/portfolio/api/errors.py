"""Errors the API answers with, and the one JSON shape every error takes."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import Field

from portfolio.domain.errors import OverdraftError, PortfolioLimitError
from portfolio.wire_format import CamelModel


class ErrorDetail(CamelModel):
    code: str = Field(description="Stable machine-readable code, e.g. invalid_input")
    message: str
    details: dict[str, Any] | None = Field(None, description="Which field or holding, the correlation id, ...")


class ErrorResponse(CamelModel):
    """Every 4xx and 5xx body."""

    error: ErrorDetail


class ApiError(Exception):
    """An answer other than success, raised anywhere below a route and turned into JSON by one handler."""

    status = HTTPStatus.BAD_REQUEST
    code = "bad_request"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> ErrorResponse:
        return ErrorResponse(error=ErrorDetail(code=self.code, message=self.message, details=self.details))

    def headers(self) -> dict[str, str]:
        """Headers the answer carries besides the body's (Retry-After, ...)."""
        return {}


class InvalidRequest(ApiError):
    code = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None) -> None:
        merged = dict(details or {})
        if field is not None:
            merged["field"] = field
        super().__init__(message, details=merged or None)


class Unauthorized(ApiError):
    status = HTTPStatus.UNAUTHORIZED
    code = "unauthorized"


class Forbidden(ApiError):
    status = HTTPStatus.FORBIDDEN
    code = "forbidden"


class NotFound(ApiError):
    status = HTTPStatus.NOT_FOUND
    code = "not_found"


class MethodNotAllowed(ApiError):
    status = HTTPStatus.METHOD_NOT_ALLOWED
    code = "method_not_allowed"


class PayloadTooLarge(ApiError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_media_type"


class Conflict(ApiError):
    status = HTTPStatus.CONFLICT
    code = "conflict"


class ServiceUnavailable(ApiError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "service_unavailable"


class UnprocessableOverdraft(ApiError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = OverdraftError.code


class UnprocessableLimit(ApiError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = PortfolioLimitError.code


class TooManyRequests(ApiError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    code = "too_many_requests"


class RateLimited(TooManyRequests):
    """The caller is past its per-user rate limit; Retry-After (whole seconds) says when to come back."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details={**(details or {}), "retryAfterSeconds": retry_after_s})
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class InternalError(ApiError):
    status = HTTPStatus.INTERNAL_SERVER_ERROR
    code = "internal_error"
