"""The sample events in events/ match the template's routes and parse the way AWS would deliver them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventV2Model,
    EventBridgeModel,
    SqsModel,
)
from portfolio.api.schemas import SettingsUpdate, TransactionBatch, TransactionSubmission
from portfolio.domain.transactions import Transaction
from portfolio.services.refresh_planner import RefreshMessage
from pydantic import TypeAdapter

from tests.infra.sam import PUBLIC_ROUTES, ROUTES

EVENTS = Path(__file__).resolve().parents[2] / "events"
API_EVENTS = sorted(EVENTS.glob("api-*.json"))
USER = "user-alice"


def _load(name: str | Path) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def _route(event: dict[str, Any]) -> tuple[str, str]:
    method, path = event["routeKey"].split(" ", 1)
    return method, path


def test_given_the_api_events_then_every_route_of_the_template_has_one():
    covered = {_route(_load(path)) for path in API_EVENTS}

    assert covered == ROUTES


@pytest.mark.parametrize("path", API_EVENTS, ids=lambda path: path.name)
def test_given_an_api_event_then_it_is_a_valid_http_api_v2_event_for_its_route(path):
    event = _load(path)

    parsed = APIGatewayProxyEventV2Model.model_validate(event)

    assert parsed.version == "2.0"
    assert parsed.requestContext.stage == "$default"
    assert parsed.requestContext.routeKey == event["routeKey"]
    assert parsed.requestContext.http.method == _route(event)[0]
    assert parsed.rawPath == parsed.requestContext.http.path
    template_path = _route(event)[1]
    for name, value in (parsed.pathParameters or {}).items():
        template_path = template_path.replace("{" + name + "}", value)
    assert template_path == parsed.rawPath


@pytest.mark.parametrize("path", API_EVENTS, ids=lambda path: path.name)
def test_given_an_api_event_then_it_carries_claims_exactly_when_the_route_requires_a_token(path):
    event = _load(path)

    authorizer = event["requestContext"].get("authorizer")

    if _route(event) in PUBLIC_ROUTES:
        assert authorizer is None
    else:
        assert authorizer["jwt"]["claims"]["sub"] == USER
        assert event["pathParameters"]["userId"] == USER
        assert isinstance(authorizer["jwt"]["claims"]["scope"], str)


def test_given_the_single_transaction_event_then_its_body_is_a_valid_buy():
    body = _load("api-post-transaction.json")["body"]

    submission = TypeAdapter(TransactionSubmission).validate_json(body)

    assert isinstance(submission, Transaction)
    assert submission.type == "buy"
    assert str(submission.amount) == "1.5"


def test_given_the_bulk_event_then_its_body_is_a_batch_of_valid_transactions():
    body = _load("api-post-transactions-bulk.json")["body"]

    submission = TypeAdapter(TransactionSubmission).validate_json(body)

    assert isinstance(submission, TransactionBatch)
    assert len(submission.transactions) > 1


def test_given_the_settings_event_then_it_selects_the_average_cost_method():
    update = SettingsUpdate.model_validate_json(_load("api-put-settings.json")["body"])

    assert update.cost_basis_method == "average"


def test_given_the_scheduler_event_then_it_is_an_eventbridge_scheduled_event():
    parsed = EventBridgeModel.model_validate(_load("scheduler-event.json"))

    assert parsed.source == "aws.events"
    assert parsed.detail_type == "Scheduled Event"


def test_given_the_sqs_event_then_its_two_records_carry_refresh_messages_from_the_refresh_queue():
    parsed = SqsModel.model_validate(_load("sqs-refresh-batch.json"))

    assert len(parsed.Records) == 2
    messages = [RefreshMessage.model_validate_json(record.body) for record in parsed.Records]
    assert USER in messages[0].user_ids
    assert all(record.eventSourceARN.endswith("RefreshQueue") for record in parsed.Records)


def test_given_the_events_readme_then_it_names_every_event_file():
    readme = (EVENTS / "README.md").read_text()

    missing = [path.name for path in EVENTS.glob("*.json") if f"events/{path.name}" not in readme]
    assert missing == []


def test_given_the_alert_events_then_the_post_sets_a_price_rule_and_the_delete_names_its_id():
    from portfolio.api.alert_schemas import AlertInput
    from portfolio.domain.alerts import alert_id_for, resolved

    rule = TypeAdapter(AlertInput).validate_json(_load("api-post-alert.json")["body"])

    assert (rule.kind, rule.asset, str(rule.above)) == ("price", "ETH", "4000")
    assert _load("api-delete-alert.json")["pathParameters"]["alertId"] == alert_id_for(resolved(rule))
