"""Alert rules: create, list, delete. The refresh evaluates them; what fires goes to the user's
WebSocket connections and to the stack's EventBridge bus (docs/deploy.md, "Alerts")."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from portfolio.api.alert_schemas import AlertInput, AlertList, AlertView, alert_view
from portfolio.api.dependencies import alert_rules
from portfolio.api.errors import ApiError, NotFound
from portfolio.api.openapi_responses import READ_ERRORS, WRITE_ERRORS, answers
from portfolio.api.responses import error_response
from portfolio.api.routers.common import UserId, write_response
from portfolio.domain.alerts import ALERT_ID_PATTERN, AlertNotFound, UnknownAssetError

router = Router()

AlertId = Annotated[str, Path(alias="alertId", pattern=ALERT_ID_PATTERN)]


class UnprocessableAsset(ApiError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = UnknownAssetError.code


@router.exception_handler(UnknownAssetError)
def _unknown_asset(error: UnknownAssetError) -> Response[Any]:
    return error_response(UnprocessableAsset(error.message, details={"field": error.field}))


@router.exception_handler(AlertNotFound)
def _no_alert(error: AlertNotFound) -> Response[Any]:
    return error_response(NotFound(f"no alert rule {error.alert_id!r}", details={"alertId": error.alert_id}))


@router.post(
    "/portfolios/<userId>/alerts",
    operation_id="createAlert",
    summary="Set an alert rule: the portfolio's value moving by a percentage over a window, or an asset's price",
    description=(
        'Rules: {"kind": "value_change", "thresholdPercent": "5", "window": "1h" | "24h" | "7d", '
        '"direction": "up" | "down" | "either"} (the market move of the holdings: buying or sending coins does '
        'not trip it) or {"kind": "price", "asset": "ETH", "above": "4000"} (or "below"). A rule fires once each '
        "time its condition becomes true, and re-arms when it is false again; what fires is pushed as "
        '{"type": "alert.triggered", ...} to the user\'s WebSocket connections and put on the stack\'s '
        'EventBridge bus (detail-type "Portfolio alert"). 201 with the new rule; 200 with the rule already '
        "set when the same condition is sent again. 422 unknown_asset for an asset the service does not price; "
        "422 portfolio_limit past MAX_ALERT_RULES_PER_USER (20)."
    ),
    tags=["alerts"],
    responses=answers(
        {
            HTTPStatus.CREATED: (AlertView, "Set; armed until its condition first holds"),
            HTTPStatus.OK: (AlertView, "The same condition was already set: that rule"),
        },
        errors=WRITE_ERRORS,
    ),
)
def create_alert(user_id: UserId, rule: Annotated[AlertInput, Body()]) -> Response[Any]:
    outcome = alert_rules().create(user_id, rule)
    status = HTTPStatus.CREATED if outcome.created else HTTPStatus.OK
    return write_response(status, alert_view(outcome.rule).model_dump_json(by_alias=True))


@router.get(
    "/portfolios/<userId>/alerts",
    operation_id="listAlerts",
    summary="The alert rules, each with its state (armed or fired)",
    tags=["alerts"],
    responses=answers({HTTPStatus.OK: (AlertList, "Every rule, oldest first")}, errors=READ_ERRORS),
)
def list_alerts(user_id: UserId) -> Response[Any]:
    body = AlertList(alerts=[alert_view(rule) for rule in alert_rules().rules(user_id)])
    return write_response(HTTPStatus.OK, body.model_dump_json(by_alias=True))


@router.delete(
    "/portfolios/<userId>/alerts/<alertId>",
    operation_id="deleteAlert",
    summary="Delete an alert rule",
    tags=["alerts"],
    responses={
        **answers({}, errors=(*WRITE_ERRORS, HTTPStatus.NOT_FOUND)),
        HTTPStatus.NO_CONTENT: {"description": "Deleted"},
    },
)
def delete_alert(user_id: UserId, alert_id: AlertId) -> Response[Any]:
    alert_rules().delete(user_id, alert_id)
    return Response(status_code=HTTPStatus.NO_CONTENT, headers={"Cache-Control": "no-store"})
