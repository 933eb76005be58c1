"""The API's resolver: routers, request guards and error handlers, assembled once per container."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext

from portfolio import wiring
from portfolio.api.dependencies import rate_limiter
from portfolio.api.error_handlers import register_error_handlers
from portfolio.api.errors import ApiError, NotFound
from portfolio.api.request_guards import access_refusal, parse_json_body, rate_limit_refusal, unreadable_body
from portfolio.api.responses import error_response
from portfolio.api.routers import alerts, health, portfolios, settings, transactions, wallets
from portfolio.api.routers.common import USER_ID_PARAMETER
from portfolio.settings import Settings


class PortfolioApiResolver(APIGatewayHttpResolver):
    """Refuses callers who may not touch the portfolio, callers past their per-user rate limit, and
    bodies it must not parse (over the size limit, not JSON), before routing and validation.

    The checks run here rather than as Powertools middlewares: a middleware (or a Depends()) runs
    after the request validation middleware has parsed and validated the body."""

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        config = wiring.settings()
        refused = (
            self._access_refusal(event, config.admin_scope)
            or rate_limit_refusal(event, rate_limiter())
            or unreadable_body(event, config.max_body_bytes)
        )
        if refused is not None:
            response = error_response(refused)
            builder: ResponseBuilder[APIGatewayProxyEventV2] = ResponseBuilder(response, serializer=json.dumps)
            return builder.build(APIGatewayProxyEventV2(dict(event)))
        return super().resolve(event, context)

    def _access_refusal(self, event: Mapping[str, Any], admin_scope: str) -> ApiError | None:
        """access_refusal for the user the route will be given: the route is looked up as Powertools'
        _resolve looks it up (same routes, same order, same path), since it keeps no public route table.
        A rule matching all but a final newline (Python's `$`) would serve a path that is not its own:
        once the caller is known to be allowed, that is a 404."""
        request = APIGatewayProxyEventV2(dict(event))
        path = self._remove_prefix(request.path)
        method = request.http_method.upper()
        for route in (*self._static_routes, *self._dynamic_routes):
            match = route.rule.match(path) if route.method == method else None
            if match is None:
                continue
            refused = access_refusal(event, admin_scope, match.groupdict().get(USER_ID_PARAMETER))
            if refused is None and match.end() != len(path):
                refused = NotFound(f"no route for {method} {path!r}")
            return refused
        return None


def build_resolver() -> APIGatewayHttpResolver:
    # Runs when the API starts (the handler's import): it signs page cursors, so it refuses the local
    # key outside STAGE=local. Read afresh, not through wiring's cache, which tests and the local stack reset.
    Settings().check_cursor_signing_key()  # type: ignore[call-arg]
    app = PortfolioApiResolver(enable_validation=True, json_body_deserializer=parse_json_body)
    for router in (
        health.router,
        portfolios.router,
        transactions.router,
        settings.router,
        wallets.router,
        alerts.router,
    ):
        app.include_router(router)
    register_error_handlers(app)
    return app
