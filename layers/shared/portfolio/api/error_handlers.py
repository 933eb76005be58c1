"""Every failure becomes {"error": {"code", "message", "details"?}} with the right status."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from portfolio.api.errors import (
    ApiError,
    Conflict,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    UnprocessableLimit,
    UnprocessableOverdraft,
    UnsupportedMediaType,
)
from portfolio.api.responses import error_response
from portfolio.api.validation_errors import invalid_request_from
from portfolio.domain.errors import (
    DomainError,
    OverdraftError,
    PortfolioLimitError,
    RecordedBySyncError,
    TransactionIdConflict,
    VersionConflict,
    WalletNotFound,
)
from portfolio.observability import logger, metrics
from portfolio.services.ports import PricesUnavailableError, StoreBusyError, StoreUnavailableError

THROTTLED_RETRY_AFTER_S = 1
PRICES_RETRY_AFTER_S = 30


def register_error_handlers(app: APIGatewayHttpResolver) -> None:
    @app.exception_handler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> Response:
        return error_response(invalid_request_from(list(error.errors())))

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported_media(_error: RequestUnsupportedContentType) -> Response:
        return error_response(UnsupportedMediaType("send the body as application/json"))

    @app.exception_handler(OverdraftError)
    def _overdraft(error: OverdraftError) -> Response:
        details = {
            "holding": error.holding,
            "transactionId": error.transaction_id,
            "available": str(error.available),
            "requested": str(error.requested),
            "field": error.field,
        }
        return error_response(UnprocessableOverdraft(error.message, details=details))

    @app.exception_handler(PortfolioLimitError)
    def _limit(error: PortfolioLimitError) -> Response:
        details = {"field": error.field} if error.field else None
        return error_response(UnprocessableLimit(error.message, details=details))

    @app.exception_handler(VersionConflict)
    def _still_conflicting(_error: VersionConflict) -> Response:
        # Raised only once the recorder's bounded re-read-and-retry is spent: nothing was written.
        return error_response(Conflict("the portfolio kept changing while this request was applied; send it again"))

    @app.exception_handler(RecordedBySyncError)
    def _recorded_by_sync(error: RecordedBySyncError) -> Response:
        conflict = Conflict(error.message, details={"field": error.field} if error.field else None)
        conflict.code = error.code
        return error_response(conflict)

    @app.exception_handler(TransactionIdConflict)
    def _id_taken(error: TransactionIdConflict) -> Response:
        details = {"transactionId": error.transaction_id, "fields": list(error.fields), "field": error.field}
        conflict = Conflict(error.message, details=details)
        conflict.code = error.code
        return error_response(conflict)

    @app.exception_handler(WalletNotFound)
    def _no_wallet(error: WalletNotFound) -> Response:
        return error_response(NotFound(f"no linked wallet {error.wallet_id!r}", details={"walletId": error.wallet_id}))

    @app.exception_handler(DomainError)
    def _domain_error(error: DomainError) -> Response:
        invalid = InvalidRequest(error.message, field=error.field)
        invalid.code = error.code
        return error_response(invalid)

    @app.not_found
    def _no_route(_error: NotFoundError) -> Response:
        event = app.current_event
        allowed = allowed_methods(app, event.path)
        if allowed:
            response = error_response(MethodNotAllowed(f"{event.http_method} is not allowed here"))
            response.headers["Allow"] = ", ".join(sorted(allowed))
            return response
        return error_response(NotFound(f"no route for {event.http_method} {event.path}"))

    @app.exception_handler(PricesUnavailableError)
    def _no_prices(_error: PricesUnavailableError) -> Response:
        # Nothing was written: the transactions sent without a price wait for the coins API.
        response = error_response(
            ServiceUnavailable("market prices cannot be looked up right now; retry, or send priceUsd")
        )
        response.headers["Retry-After"] = str(PRICES_RETRY_AFTER_S)
        return response

    @app.exception_handler(StoreBusyError)
    def _busy(error: StoreBusyError) -> Response:
        # Writes are conditional, atomic and idempotent by transaction id: the client may simply retry.
        request_id = app.current_event.request_context.request_id
        if isinstance(error, StoreUnavailableError):
            logger.warning("database did not answer in time", extra={"correlation_id": request_id})
            message = "the database did not answer in time; retry in a moment"
        else:
            logger.warning("database throttled past its retries", extra={"correlation_id": request_id})
            message = "the database is busy; retry in a moment"
        response = error_response(ServiceUnavailable(message))
        response.headers["Retry-After"] = str(THROTTLED_RETRY_AFTER_S)
        return response

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        request_id = app.current_event.request_context.request_id
        logger.exception("unhandled error", extra={"error_type": type(error).__name__})
        # Answered 500 without a Lambda error: this count is what a deploy's rollback alarm watches.
        metrics.add_metric(name="ApiUnhandledErrors", unit="Count", value=1)
        return error_response(
            InternalError(
                "internal error; quote the correlation id when reporting it", details={"correlationId": request_id}
            )
        )


def allowed_methods(app: APIGatewayHttpResolver, path: str) -> set[str]:
    """Methods registered for this path (Powertools keeps no public route table, hence the private lists)."""
    routes = [*app._static_routes, *app._dynamic_routes]
    return {route.method for route in routes if route.rule.match(path)}
