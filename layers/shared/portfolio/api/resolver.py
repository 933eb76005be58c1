"""The API's resolver: routers, request guards and error handlers, assembled once per container."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from portfolio.api.error_handlers import register_error_handlers
from portfolio.api.request_guards import authorize_portfolio_access, parse_json_body
from portfolio.api.routers import health, portfolios, settings, transactions


def build_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=parse_json_body)
    app.use(middlewares=[authorize_portfolio_access])
    for router in (health.router, portfolios.router, transactions.router, settings.router):
        app.include_router(router)
    register_error_handlers(app)
    return app
