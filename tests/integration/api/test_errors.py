"""Every failure answers {"error": {"code", "message", "details"?}} with the right status and field."""

from __future__ import annotations

import json

import pytest
from portfolio import wiring

from tests.integration.api.conftest import Call, buy
from tests.support.stored_state import stored_state


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("assets", {"chain": "atlantis"}, "chain"),
        ("assets", {"minValueUsd": "lots"}, "minValueUsd"),
        ("assets", {"sort": "mood"}, "sort"),
        ("assets", {"order": "sideways"}, "order"),
        ("assets", {"category": "collectible"}, "category"),
        ("performance", {"period": "1y"}, "period"),
        ("transactions", {"limit": "0"}, "limit"),
        ("transactions", {"limit": "201"}, "limit"),
        ("transactions", {"limit": "ten"}, "limit"),
        ("transactions", {"cursor": "not-a-cursor"}, "cursor"),
        ("transactions", {"from": "last tuesday"}, "from"),
        ("transactions", {"from": "2024-02-01T00:00:00Z", "to": "2024-01-01T00:00:00Z"}, "from"),
        ("transactions", {"token": "ethereum:0x12"}, "token"),
        ("transactions", {"token": "no-colon"}, "token"),
        ("transactions", {"chain": "atlantis"}, "chain"),
        ("transactions", {"type": "gift"}, "type"),
    ],
)
def test_given_an_invalid_query_parameter_when_reading_then_400_names_it(
    call: Call, user_id: str, path: str, query: dict[str, str], field: str
) -> None:
    answer = call("GET", f"/portfolios/{user_id}/{path}", sub=user_id, query=query)

    assert answer.status == 400
    assert answer.error["details"]["field"] == field
    assert answer.error["message"]


def test_given_an_invalid_json_body_when_posting_then_400_and_nothing_written(call: Call, user_id: str) -> None:
    answer = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body='{"id": "tx-1",')

    assert answer.status == 400
    assert answer.error["details"]["field"] == "body"
    assert stored_state(wiring.portfolio_store(), user_id).transactions == ()


def test_given_a_float_amount_when_posting_then_it_is_taken_digit_for_digit(call: Call, user_id: str) -> None:
    body = (
        '{"id":"tx-1","type":"buy","chain":"ethereum","tokenAddress":"0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",'
        '"amount":0.1000000000000000055511151231257827,"priceUsd":"2000","timestamp":"2024-01-01T00:00:00Z"}'
    )

    answer = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=body)

    assert answer.status == 201
    assert answer.json["transactions"][0]["amount"] == "0.1000000000000000055511151231257827"


def test_given_a_non_json_content_type_when_posting_then_415(call: Call, user_id: str) -> None:
    answer = call(
        "POST", f"/portfolios/{user_id}/transactions", sub=user_id, body="<tx/>", headers={"content-type": "text/xml"}
    )

    assert answer.status == 415
    assert answer.error["code"] == "unsupported_media_type"


def test_given_an_unknown_route_when_called_then_404(call: Call, user_id: str) -> None:
    answer = call("GET", f"/portfolios/{user_id}/dividends", sub=user_id)

    assert answer.status == 404
    assert answer.error["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/portfolios/{user}", "GET"),
        ("PATCH", "/portfolios/{user}/transactions", "GET, POST"),
        ("POST", "/health", "GET"),
    ],
)
def test_given_a_known_path_with_the_wrong_method_when_called_then_405_with_allow(
    call: Call, user_id: str, method: str, path: str, allowed: str
) -> None:
    answer = call(method, path.format(user=user_id), sub=user_id)

    assert answer.status == 405
    assert answer.headers["allow"] == allowed
    assert answer.error["code"] == "method_not_allowed"


def test_given_dynamodb_fails_when_reading_then_500_with_the_request_id_and_no_stack_trace(
    call: Call, user_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A table that does not exist: DynamoDB itself answers with an error.
    monkeypatch.setenv("TABLE_NAME", "table-that-does-not-exist")
    wiring.reset()

    answer = call("GET", f"/portfolios/{user_id}/transactions", sub=user_id, request_id="req-12345")

    assert answer.status == 500
    assert answer.error["code"] == "internal_error"
    assert answer.error["details"] == {"correlationId": "req-12345"}
    assert "Traceback" not in answer.raw_body
    assert "ResourceNotFound" not in answer.raw_body


def test_given_dynamodb_fails_during_a_write_when_posting_then_500_and_the_portfolio_is_unchanged(
    call: Call, user_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = f"/portfolios/{user_id}/transactions"
    call("POST", path, sub=user_id, body=buy("tx-1", "1"))
    table_name = wiring.settings().table_name
    before = stored_state(wiring.portfolio_store(), user_id)
    monkeypatch.setenv("TABLE_NAME", "table-that-does-not-exist")
    wiring.reset()

    answer = call("POST", path, sub=user_id, body=buy("tx-2", "1"))

    assert answer.status == 500
    assert answer.error["code"] == "internal_error"
    monkeypatch.setenv("TABLE_NAME", table_name)
    wiring.reset()
    assert stored_state(wiring.portfolio_store(), user_id) == before


def test_given_an_unhandled_error_when_answered_500_then_the_count_a_deploy_rolls_back_on_is_emitted(
    call: Call, user_id: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given: a failure no handler expects (DynamoDB answers that the table does not exist)
    monkeypatch.setenv("TABLE_NAME", "table-that-does-not-exist")
    wiring.reset()
    capsys.readouterr()

    # When
    answer = call("GET", f"/portfolios/{user_id}/transactions", sub=user_id)

    # Then: the 500, and one ApiUnhandledErrors in the invocation's metrics (ApiUnhandledErrorsAlarm)
    assert answer.status == 500
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    counts = [document["ApiUnhandledErrors"] for document in emitted if "ApiUnhandledErrors" in document]
    assert counts == [[1.0]], emitted
