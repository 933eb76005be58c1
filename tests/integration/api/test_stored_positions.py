"""Writes keep each user's positions stored, so reads never replay: a write that comes after the
stored ones extends them, anything else rebuilds them from the history; per-user bounds hold."""

from __future__ import annotations

from decimal import Decimal

import pytest
from portfolio import wiring
from portfolio.domain.accounting import replay

from tests.integration.api.conftest import USDC, WETH, Call, DynamoCalls, buy, sell
from tests.support.stored_state import stored_state


def assert_positions_are_a_replay_of_the_history(user_id: str) -> None:
    state = stored_state(wiring.portfolio_store(), user_id)
    assert state.portfolio.ledger == replay(state.transactions, state.portfolio.record.cost_basis_method)


def post(call: Call, user_id: str, *transactions: dict):
    return call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body={"transactions": list(transactions)})


def test_given_stored_positions_when_a_later_transaction_is_posted_then_no_history_is_read(
    call: Call, user_id: str, dynamo_calls: DynamoCalls
) -> None:
    # Given 1.5 WETH bought in January
    post(call, user_id, buy("w-1", "1.5"))
    dynamo_calls.operations.clear()

    # When a sale in February is posted
    answer = post(call, user_id, sell("w-2", "0.5"))

    # Then it was applied to the stored positions alone: no Query of the transactions
    assert answer.status == 201
    assert "Query" not in dynamo_calls.operations
    assert dynamo_calls.operations.count("TransactWriteItems") == 1
    assert_positions_are_a_replay_of_the_history(user_id)


def test_given_stored_positions_when_a_backdated_transaction_is_posted_then_they_are_rebuilt_in_time_order(
    call: Call, user_id: str, dynamo_calls: DynamoCalls
) -> None:
    # Given a buy at 2000 in January and a sale in February (FIFO)
    post(call, user_id, buy("w-1", "1", price="2000"), sell("w-3", "1", price="2500", at="2024-02-01T00:00:00Z"))
    dynamo_calls.operations.clear()

    # When a cheaper buy dated before the first one arrives late
    answer = post(call, user_id, buy("w-0", "1", price="1000", at="2023-12-01T00:00:00Z"))

    # Then the history was read and replayed: the sale took the older, cheaper lot
    assert answer.status == 201
    assert "Query" in dynamo_calls.operations
    summary = call("GET", f"/portfolios/{user_id}", sub=user_id).json
    assert Decimal(summary["realizedPnlUsd"]) == Decimal("1500")
    assert Decimal(summary["costBasisUsd"]) == Decimal("2000")
    assert_positions_are_a_replay_of_the_history(user_id)


def test_given_a_deletion_and_a_method_change_then_positions_follow_the_history(call: Call, user_id: str) -> None:
    post(
        call,
        user_id,
        buy("w-1", "1", price="1000"),
        buy("w-2", "1", price="3000", at="2024-01-05T00:00:00Z"),
        sell("w-3", "1", price="2500"),
    )

    call("DELETE", f"/portfolios/{user_id}/transactions/w-2", sub=user_id)
    assert_positions_are_a_replay_of_the_history(user_id)
    call("PUT", f"/portfolios/{user_id}/settings", sub=user_id, body={"costBasisMethod": "average"})

    assert_positions_are_a_replay_of_the_history(user_id)
    summary = call("GET", f"/portfolios/{user_id}", sub=user_id).json
    assert summary["costBasisMethod"] == "average"
    assert Decimal(summary["realizedPnlUsd"]) == Decimal("1500")  # only the 1000 lot was left to sell


def test_given_writes_when_tokens_are_first_held_and_then_sold_out_then_the_held_tokens_follow(
    call: Call, user_id: str
) -> None:
    store = wiring.portfolio_store()
    post(call, user_id, buy("w-1", "1"), buy("u-1", "10", price="1", token=USDC))
    assert {f"ethereum:{WETH}", f"ethereum:{USDC}"} <= set(store.held_tokens())

    post(call, user_id, sell("u-2", "10", price="1", token=USDC))

    held = store.held_tokens()
    assert f"ethereum:{WETH}" in held and f"ethereum:{USDC}" not in held


def test_given_a_portfolio_stored_before_positions_were_kept_when_read_and_written_then_it_is_migrated(
    call: Call, user_id: str, api_settings, dynamodb_client
) -> None:
    # Given a portfolio item without positions (as the first design stored it)
    post(call, user_id, buy("w-1", "2"))
    dynamodb_client.update_item(
        TableName=api_settings.table_name,
        Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="REMOVE positions, lots",
    )
    wiring.portfolio_cache().invalidate_user(user_id)

    # When it is read, then written
    read = call("GET", f"/portfolios/{user_id}", sub=user_id)
    written = post(call, user_id, sell("w-2", "1"))

    # Then the read replays the history, and the write stores positions again and counts the token
    assert (read.status, Decimal(read.json["totalValueUsd"])) == (200, Decimal("6000"))
    assert written.status == 201
    assert_positions_are_a_replay_of_the_history(user_id)
    assert f"ethereum:{WETH}" in wiring.portfolio_store().held_tokens()


def test_given_an_old_portfolio_of_many_tokens_when_first_written_then_its_counts_go_in_steps_that_fit(
    call: Call, user_id: str, api_settings, dynamodb_client
) -> None:
    # Given a portfolio of 120 tokens stored before positions (and holder counts) were kept
    tokens = [f"0x{n + 1:040x}" for n in range(120)]
    post(call, user_id, *(buy(f"b-{n}", "1", price="1", token=token) for n, token in enumerate(tokens)))
    dynamodb_client.update_item(
        TableName=api_settings.table_name,
        Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="REMOVE positions, lots",
    )

    # When it is written to for the first time since
    answer = post(call, user_id, sell("s-1", "1", price="2", token=tokens[0]))

    # Then the write succeeds: its 120 holder counts went in steps of at most 99 writes
    assert answer.status == 201
    assert_positions_are_a_replay_of_the_history(user_id)


def test_given_stored_positions_that_no_longer_decode_when_written_then_counts_are_not_counted_twice(
    call: Call, user_id: str, api_settings, dynamodb_client
) -> None:
    # Given a holder of a token only it holds, whose stored positions became unreadable
    token = f"0x{int(user_id.encode().hex()[:20], 16):040x}"
    post(call, user_id, buy("b-1", "1", price="1", token=token))
    dynamodb_client.update_item(
        TableName=api_settings.table_name,
        Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="SET positions = :broken",
        ExpressionAttributeValues={":broken": {"B": b"not positions"}},
    )

    # When the holding is sold out
    answer = post(call, user_id, sell("s-1", "1", price="2", token=token))

    # Then nobody holds the token any more: it was counted once, and uncounted once
    assert answer.status == 201
    assert f"ethereum:{token}" not in wiring.portfolio_store().held_tokens()
    assert_positions_are_a_replay_of_the_history(user_id)


@pytest.fixture
def small_limits(function_environment, coins_api):
    return function_environment(PRICES_API_URL=coins_api.url, MAX_TRANSACTIONS_PER_USER="3", MAX_TOKENS_PER_USER="1")


def test_given_a_transaction_limit_when_a_post_would_pass_it_then_422_and_nothing_written(
    small_limits, call: Call, user_id: str
) -> None:
    post(call, user_id, buy("w-1", "1"), buy("w-2", "1", at="2024-01-02T00:00:00Z"))
    before = stored_state(wiring.portfolio_store(), user_id)

    answer = post(call, user_id, buy("w-3", "1", at="2024-01-03T00:00:00Z"), buy("w-4", "1", at="2024-01-04T00:00:00Z"))

    assert answer.status == 422
    assert answer.json["error"]["code"] == "portfolio_limit"
    assert "at most 3 transactions" in answer.json["error"]["message"]
    assert stored_state(wiring.portfolio_store(), user_id) == before


def test_given_a_token_limit_when_a_post_would_pass_it_then_422_and_nothing_written(
    small_limits, call: Call, user_id: str
) -> None:
    post(call, user_id, buy("w-1", "1"))

    answer = post(call, user_id, buy("u-1", "5", price="1", token=USDC))

    assert answer.status == 422
    assert "at most 1 distinct tokens" in answer.json["error"]["message"]
    assert [t.id for t in stored_state(wiring.portfolio_store(), user_id).transactions] == ["w-1"]
