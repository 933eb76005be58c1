"""PUT /portfolios/{userId}/settings: the cost-basis method, its scope (per chain or per asset) and
what removing more than is held does; the portfolio is recomputed under them."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from portfolio.api.dependencies import pricing_deadline, transaction_recorder
from portfolio.api.openapi_responses import BODY_ERRORS, WRITE_ERRORS, answers
from portfolio.api.routers.common import UserId
from portfolio.api.schemas import SETTINGS_EXAMPLES, PortfolioSettings, SettingsUpdate

router = Router()


@router.put(
    "/portfolios/<userId>/settings",
    operation_id="putSettings",
    summary=(
        "Choose the cost-basis method (fifo, lifo, hifo or average), its scope (chain or asset) and whether "
        "missing acquisitions are accepted"
    ),
    tags=["settings"],
    responses=answers(
        {HTTPStatus.OK: (PortfolioSettings, "The settings now in force")}, errors=(*WRITE_ERRORS, *BODY_ERRORS)
    ),
)
def put_settings(
    user_id: UserId, update: Annotated[SettingsUpdate, Body(openapi_examples=SETTINGS_EXAMPLES)]
) -> PortfolioSettings:
    record = transaction_recorder().change_settings(
        user_id,
        method=update.cost_basis_method,
        scope=update.cost_basis_scope,
        missing_acquisitions=update.missing_acquisitions,
        deadline=pricing_deadline(router.lambda_context),
    )
    return PortfolioSettings(
        user_id=user_id,
        cost_basis_method=record.cost_basis_method,
        cost_basis_scope=record.cost_basis_scope,
        missing_acquisitions=record.missing_acquisitions,
    )
