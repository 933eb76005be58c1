"""GET /health: no auth, no dependencies touched."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from portfolio.api.openapi_responses import public_answers
from portfolio.api.schemas import Health

router = Router()


@router.get(
    "/health",
    operation_id="health",
    summary="Liveness",
    tags=["health"],
    responses=public_answers({200: (Health, "The function answers")}),
)
def health() -> Health:
    return Health(status="ok")
