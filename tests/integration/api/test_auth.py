"""Only the owner reads and writes a portfolio; an admin scope reads any; everyone else is refused first."""

from __future__ import annotations

import io

import pytest
from portfolio import wiring
from portfolio.observability import logger

from local_stack.http_events import SAMPLE_BEARER_TOKEN
from tests.integration.api.conftest import ADMIN_SCOPE, Call, DynamoCalls, buy
from tests.support.stored_state import stored_state

READS = [
    ("GET", "/portfolios/{user}", None),
    ("GET", "/portfolios/{user}/assets", None),
    ("GET", "/portfolios/{user}/performance", None),
    ("GET", "/portfolios/{user}/transactions", None),
]
WRITES = [
    ("POST", "/portfolios/{user}/transactions", buy("tx-1", "1")),
    ("DELETE", "/portfolios/{user}/transactions/tx-1", None),
    ("PUT", "/portfolios/{user}/settings", {"costBasisMethod": "average"}),
]


@pytest.mark.parametrize(("method", "path", "body"), READS + WRITES)
def test_given_another_users_token_when_calling_any_route_then_403_before_any_data_is_read(
    call: Call, user_id: str, dynamo_calls: DynamoCalls, method: str, path: str, body: object
) -> None:
    dynamo_calls.reset()

    answer = call(method, path.format(user=user_id), sub="user-mallory", body=body)

    assert answer.status == 403
    assert answer.error["code"] == "forbidden"
    assert dynamo_calls.operations == []


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        ("GET", "/portfolios/{user}/assets", {"sort": "sideways"}, None),
        ("GET", "/portfolios/{user}/performance", {"period": "forever"}, None),
        ("POST", "/portfolios/{user}/transactions", None, {"id": "tx-1", "amount": "-1"}),
    ],
)
def test_given_another_users_token_and_invalid_input_when_calling_then_403_not_400(
    call: Call, user_id: str, method: str, path: str, query: dict[str, str] | None, body: object
) -> None:
    # Given a request that would fail validation, from a caller who may not touch this portfolio
    answer = call(method, path.format(user=user_id), sub="user-mallory", query=query, body=body)

    # Then the refusal comes first: validation errors would tell a stranger about the request shape
    assert answer.status == 403
    assert answer.error["code"] == "forbidden"


@pytest.mark.parametrize(("method", "path", "body"), READS + WRITES)
def test_given_no_claims_when_calling_any_portfolio_route_then_401(
    call: Call, user_id: str, method: str, path: str, body: object
) -> None:
    answer = call(method, path.format(user=user_id), sub=None, body=body)

    assert answer.status == 401
    assert answer.error["code"] == "unauthorized"


@pytest.mark.parametrize(("method", "path", "body"), READS)
def test_given_an_admin_token_when_reading_another_portfolio_then_allowed(
    call: Call, user_id: str, method: str, path: str, body: object
) -> None:
    answer = call(method, path.format(user=user_id), sub="ops-admin", scopes=[ADMIN_SCOPE], body=body)

    assert answer.status == 200


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_given_an_admin_token_when_writing_another_portfolio_then_403_and_nothing_written(
    call: Call, user_id: str, method: str, path: str, body: object
) -> None:
    answer = call(method, path.format(user=user_id), sub="ops-admin", scopes=[ADMIN_SCOPE], body=body)

    assert answer.status == 403
    assert stored_state(wiring.portfolio_store(), user_id).version == 0


def test_given_requests_with_a_bearer_token_when_handled_then_neither_token_nor_header_reaches_the_logs(
    call: Call, user_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The most verbose setting an operator could choose, event logging included.
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    previous_level = logger.log_level
    logger.setLevel("DEBUG")
    captured = io.StringIO()
    previous_stream = logger.registered_handler.setStream(captured)
    try:
        call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy("tx-1", "1"))
        call("GET", f"/portfolios/{user_id}", sub=user_id)
        call("GET", f"/portfolios/{user_id}", sub="user-mallory")
        monkeypatch.setenv("TABLE_NAME", "table-that-does-not-exist")
        wiring.reset()
        call("GET", f"/portfolios/{user_id}/transactions", sub=user_id, request_id="req-logged")
    finally:
        logger.registered_handler.setStream(previous_stream)
        logger.setLevel(previous_level)

    logs = captured.getvalue()

    assert "req-logged" in logs  # the failure was logged, with its correlation id
    assert SAMPLE_BEARER_TOKEN not in logs
    assert SAMPLE_BEARER_TOKEN.split(".")[2] not in logs
    assert "authorization" not in logs.lower()


@pytest.mark.parametrize("path", ["/portfolios/{user}\n", "/portfolios/{user}%0A"], ids=["decoded", "percent-encoded"])
def test_given_a_token_whose_sub_is_a_user_id_and_a_newline_when_reading_that_path_then_403_and_no_data(
    call: Call, user_id: str, dynamo_calls: DynamoCalls, path: str
) -> None:
    # Given a user with a holding
    assert call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy("tx-1", "1")).status == 201
    dynamo_calls.reset()

    # When a token whose sub is that user id followed by a newline reads the path ending the same way
    answer = call("GET", path.format(user=user_id), sub=f"{user_id}\n")

    # Then it is refused, before anything is read, and nothing of the user's portfolio is answered
    assert answer.status == 403
    assert answer.error["code"] == "forbidden"
    assert user_id not in answer.raw_body
    assert dynamo_calls.operations == []


@pytest.mark.parametrize(("sub", "scopes"), [("{user}", ()), ("ops-admin", (ADMIN_SCOPE,))], ids=["owner", "admin"])
def test_given_a_path_whose_user_id_ends_in_a_newline_when_read_then_404_not_the_portfolio_without_it(
    call: Call, user_id: str, sub: str, scopes: tuple[str, ...]
) -> None:
    # Given a user with a holding
    assert call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy("tx-1", "1")).status == 201

    # When a caller allowed to read it asks for the same path with a final newline
    answer = call("GET", f"/portfolios/{user_id}\n", sub=sub.format(user=user_id), scopes=list(scopes))

    # Then no route owns that path: the portfolio without the newline is not served
    assert answer.status == 404
    assert answer.error["code"] == "not_found"
    assert "totalValueUsd" not in answer.raw_body


@pytest.mark.parametrize("sub", ["a%41", "al ice", "-leading-dash"])
@pytest.mark.parametrize(("method", "path", "body"), [READS[0], WRITES[0]], ids=["read", "write"])
def test_given_a_token_whose_sub_is_not_a_valid_user_id_when_calling_its_own_path_then_403(
    call: Call, dynamo_calls: DynamoCalls, sub: str, method: str, path: str, body: object
) -> None:
    # Given a verified token whose sub no route accepts as a userId
    dynamo_calls.reset()

    # When it calls the path spelled exactly like its sub
    answer = call(method, path.format(user=sub), sub=sub, body=body)

    # Then it is refused as a caller (403), not answered as a request with a bad parameter (422)
    assert answer.status == 403
    assert answer.error == {"code": "forbidden", "message": "the token's subject is not a valid user id"}
    assert dynamo_calls.operations == []
