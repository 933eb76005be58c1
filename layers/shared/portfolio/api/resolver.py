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
from portfolio.api.error_handlers import register_error_handlers
from portfolio.api.request_guards import access_refusal, parse_json_body, unreadable_body
from portfolio.api.responses import error_response
from portfolio.api.routers import health, portfolios, settings, transactions, wallets


class PortfolioApiResolver(APIGatewayHttpResolver):
    """Refuses callers who may not touch the portfolio, and bodies it must not parse (over the size
    limit, not JSON), before routing and validation."""

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        config = wiring.settings()
        refused = access_refusal(event, config.admin_scope) or unreadable_body(event, config.max_body_bytes)
        if refused is not None:
            response = error_response(refused)
            builder: ResponseBuilder[APIGatewayProxyEventV2] = ResponseBuilder(response, serializer=json.dumps)
            return builder.build(APIGatewayProxyEventV2(dict(event)))
        return super().resolve(event, context)


def build_resolver() -> APIGatewayHttpResolver:
    app = PortfolioApiResolver(enable_validation=True, json_body_deserializer=parse_json_body)
    for router in (health.router, portfolios.router, transactions.router, settings.router, wallets.router):
        app.include_router(router)
    register_error_handlers(app)
    return app
