"""Writes through the real handler: idempotent, all-or-nothing, overdraft-safe, and the cache warmed after."""

from __future__ import annotations

from decimal import Decimal

import pytest
from portfolio import wiring
from portfolio.domain import import_plan

from tests.integration.api.conftest import USDC, WETH, Call, buy, sell
from tests.support.stored_state import stored_state


def stored_ids(user_id: str) -> list[str]:
    return [transaction.id for transaction in stored_state(wiring.portfolio_store(), user_id).transactions]


def test_given_one_transaction_when_posted_then_201_with_the_normalized_stored_record(call: Call, user_id: str) -> None:
    body = buy("tx-1", "1.5") | {"tokenAddress": WETH.upper().replace("0X", "0x"), "amount": 1.5}

    answer = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=body)

    assert answer.status == 201
    [record] = answer.json["transactions"]
    assert record["tokenAddress"] == WETH
    assert record["amount"] == "1.5"
    assert stored_ids(user_id) == ["tx-1"]


def test_given_the_same_id_twice_when_posted_then_one_record_and_the_same_answer(call: Call, user_id: str) -> None:
    path = f"/portfolios/{user_id}/transactions"
    first = call("POST", path, sub=user_id, body=buy("tx-1", "1"))

    repeat = call("POST", path, sub=user_id, body=buy("tx-1", "1"))

    assert first.status == 201
    assert repeat.status == 200
    assert repeat.json == first.json
    assert stored_ids(user_id) == ["tx-1"]


def test_given_a_known_id_with_other_content_when_posted_then_409_naming_the_id_and_nothing_changes(
    call: Call, user_id: str
) -> None:
    # Given a buy of 1 WETH recorded as tx-1
    path = f"/portfolios/{user_id}/transactions"
    call("POST", path, sub=user_id, body=buy("tx-1", "1"))

    # When tx-1 is sent again as a buy of 7 at another price
    repeat = call("POST", path, sub=user_id, body=buy("tx-1", "7", price="2100"))

    # Then it is a conflict that names the id and what differs, and the stored buy is unchanged
    assert repeat.status == 409
    assert repeat.error["code"] == "transaction_id_conflict"
    assert "'tx-1'" in repeat.error["message"]
    assert repeat.error["details"] == {
        "transactionId": "tx-1",
        "fields": ["amount", "priceUsd"],
        "field": "transactions[0].id",
    }
    summary = call("GET", f"/portfolios/{user_id}", sub=user_id).json
    assert Decimal(summary["totalValueUsd"]) == Decimal("3000")


def test_given_a_batch_with_one_known_id_of_other_content_when_posted_then_409_and_the_new_ones_are_not_written(
    call: Call, user_id: str
) -> None:
    # Given tx-1 recorded
    path = f"/portfolios/{user_id}/transactions"
    call("POST", path, sub=user_id, body=buy("tx-1", "1"))

    # When a batch brings a new tx-2 and tx-1 at another time
    batch = [buy("tx-2", "2"), buy("tx-1", "1", at="2024-01-02T00:00:00Z")]
    answer = call("POST", path, sub=user_id, body={"transactions": batch})

    # Then the batch is refused as a whole, naming the item
    assert answer.status == 409
    assert answer.error["details"]["field"] == "transactions[1].id"
    assert answer.error["details"]["fields"] == ["timestamp"]
    assert stored_ids(user_id) == ["tx-1"]


def test_given_a_known_id_sent_again_in_another_spelling_of_the_same_content_when_posted_then_200_as_stored(
    call: Call, user_id: str
) -> None:
    # Given tx-1 recorded
    path = f"/portfolios/{user_id}/transactions"
    first = call("POST", path, sub=user_id, body=buy("tx-1", "1.5"))

    # When the same buy is sent with trailing zeros, a number, an upper-case address and another time zone
    same = buy("tx-1", "1.50", price="2000.00") | {
        "tokenAddress": WETH.upper().replace("0X", "0x"),
        "timestamp": "2024-01-01T01:00:00+01:00",
    }
    repeat = call("POST", path, sub=user_id, body=same)

    # Then it is the same transaction: the stored record, as first answered
    assert repeat.status == 200
    assert repeat.json == first.json


def test_given_a_batch_mixing_known_and_new_ids_when_posted_then_only_the_new_are_added(
    call: Call, user_id: str
) -> None:
    path = f"/portfolios/{user_id}/transactions"
    call("POST", path, sub=user_id, body=buy("tx-1", "1"))

    answer = call("POST", path, sub=user_id, body={"transactions": [buy("tx-1", "1"), buy("tx-2", "2")]})

    assert answer.status == 201
    assert [t["id"] for t in answer.json["transactions"]] == ["tx-1", "tx-2"]
    assert sorted(stored_ids(user_id)) == ["tx-1", "tx-2"]


@pytest.mark.parametrize(
    ("bad_item", "field"),
    [
        ({"amount": "abc"}, "transactions[2].amount"),
        ({"amount": "-1"}, "transactions[2]"),
        ({"chain": "atlantis"}, "transactions[2].chain"),
        ({"tokenAddress": "0x1234"}, "transactions[2].tokenAddress"),
        ({"timestamp": "yesterday"}, "transactions[2].timestamp"),
        ({"type": "gift"}, "transactions[2].type"),
    ],
)
def test_given_a_batch_with_one_invalid_item_when_posted_then_400_names_it_and_nothing_is_written(
    call: Call, user_id: str, bad_item: dict[str, str], field: str
) -> None:
    batch = [buy("ok-1", "1"), buy("ok-2", "1"), buy("bad", "1") | bad_item]

    answer = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body={"transactions": batch})

    assert answer.status == 400
    assert answer.error["details"]["field"] == field
    assert stored_ids(user_id) == []


def test_given_a_sell_larger_than_the_holding_when_posted_then_422_names_the_holding_and_nothing_changes(
    call: Call, user_id: str
) -> None:
    path = f"/portfolios/{user_id}/transactions"
    call("POST", path, sub=user_id, body=buy("tx-1", "1"))
    before = stored_state(wiring.portfolio_store(), user_id)

    answer = call("POST", path, sub=user_id, body={"transactions": [buy("tx-2", "1", token=USDC), sell("tx-3", "2")]})

    assert answer.status == 422
    assert answer.error["code"] == "insufficient_holding"
    assert WETH in answer.error["details"]["holding"]
    assert stored_state(wiring.portfolio_store(), user_id) == before


def test_given_more_transactions_than_allowed_when_posted_then_400_and_nothing_written(
    call: Call, user_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_TRANSACTIONS_PER_REQUEST", "2")
    wiring.reset()
    batch = [buy(f"tx-{index}", "1") for index in range(3)]

    answer = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body={"transactions": batch})

    assert answer.status == 400
    assert answer.error["details"]["field"] == "transactions"
    assert stored_ids(user_id) == []


def test_given_a_body_over_the_size_limit_when_posted_then_413_and_nothing_written(
    call: Call, user_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", "1000")
    wiring.reset()
    batch = [buy(f"tx-{index}", "1") for index in range(10)]

    answer = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body={"transactions": batch})

    assert answer.status == 413
    assert answer.error["code"] == "payload_too_large"
    assert stored_ids(user_id) == []


def test_given_a_transaction_when_deleted_then_the_new_summary_and_it_is_gone(call: Call, user_id: str) -> None:
    path = f"/portfolios/{user_id}/transactions"
    call("POST", path, sub=user_id, body={"transactions": [buy("tx-1", "1"), buy("tx-2", "2")]})

    answer = call("DELETE", f"{path}/tx-2", sub=user_id)

    assert answer.status == 200
    assert Decimal(answer.json["totalValueUsd"]) == Decimal("3000")
    assert stored_ids(user_id) == ["tx-1"]
    assert call("GET", f"/portfolios/{user_id}", sub=user_id).json == answer.json


def test_given_an_unknown_transaction_when_deleted_then_404(call: Call, user_id: str) -> None:
    answer = call("DELETE", f"/portfolios/{user_id}/transactions/never-recorded", sub=user_id)

    assert answer.status == 404
    assert answer.error["code"] == "not_found"


def test_given_a_buy_a_later_sell_depends_on_when_deleted_then_422_and_nothing_changes(
    call: Call, user_id: str
) -> None:
    path = f"/portfolios/{user_id}/transactions"
    call("POST", path, sub=user_id, body={"transactions": [buy("tx-1", "1"), sell("tx-2", "1")]})
    before = stored_state(wiring.portfolio_store(), user_id)

    answer = call("DELETE", f"{path}/tx-1", sub=user_id)

    assert answer.status == 422
    assert WETH in answer.error["details"]["holding"]
    assert stored_state(wiring.portfolio_store(), user_id) == before


@pytest.mark.parametrize(("method", "realized"), [("average", "500"), ("lifo", "500"), ("hifo", "-500")])
def test_given_another_method_when_settings_change_then_the_summary_is_recomputed_under_it(
    call: Call, user_id: str, method: str, realized: str
) -> None:
    # Given lots bought at 1000, 3000 and 2000, one of them sold at 2500, first in first out
    path = f"/portfolios/{user_id}/transactions"
    batch = [
        buy("tx-1", "1", price="1000", at="2024-01-01T00:00:00Z"),
        buy("tx-2", "1", price="3000", at="2024-01-02T00:00:00Z"),
        buy("tx-3", "1", price="2000", at="2024-01-03T00:00:00Z"),
        sell("tx-4", "1", price="2500", at="2024-01-04T00:00:00Z"),
    ]
    call("POST", path, sub=user_id, body={"transactions": batch})
    fifo = call("GET", f"/portfolios/{user_id}", sub=user_id).json

    # When the method changes
    answer = call("PUT", f"/portfolios/{user_id}/settings", sub=user_id, body={"costBasisMethod": method})

    # Then the realized P&L is that of what it takes: FIFO the 1000 lot, average 2000 a coin, LIFO the
    # 2000 lot, HIFO the 3000 one
    assert answer.status == 200
    assert answer.json == {
        "userId": user_id,
        "costBasisMethod": method,
        "costBasisScope": "chain",
        "missingAcquisitions": "refuse",
    }
    changed = call("GET", f"/portfolios/{user_id}", sub=user_id).json
    assert Decimal(fifo["realizedPnlUsd"]) == Decimal("1500")
    assert Decimal(changed["realizedPnlUsd"]) == Decimal(realized)
    assert changed["costBasisMethod"] == method


def test_given_an_unknown_method_when_changing_settings_then_400_naming_it(call: Call, user_id: str) -> None:
    answer = call("PUT", f"/portfolios/{user_id}/settings", sub=user_id, body={"costBasisMethod": "newest"})

    assert answer.status == 400
    assert answer.error["details"]["field"] == "costBasisMethod"


def test_given_missing_acquisitions_accepted_when_more_is_sold_than_held_then_it_is_stored_and_reported(
    call: Call, user_id: str
) -> None:
    # Given a portfolio that accepts missing acquisitions, holding 1 WETH bought at 1000
    path = f"/portfolios/{user_id}/transactions"
    call("POST", path, sub=user_id, body=buy("tx-1", "1", price="1000", at="2024-01-01T00:00:00Z"))
    accepted = call("PUT", f"/portfolios/{user_id}/settings", sub=user_id, body={"missingAcquisitions": "accept"})
    assert accepted.json == {
        "userId": user_id,
        "costBasisMethod": "fifo",
        "costBasisScope": "chain",
        "missingAcquisitions": "accept",
    }

    # When 3 are sold at 2500 (an import that lacks the other two's purchase)
    sold = call("POST", path, sub=user_id, body=sell("tx-2", "3", price="2500", at="2024-02-01T00:00:00Z"))

    # Then the sale is stored; the 2 not held are reported, and the gain they made is labelled
    assert sold.status == 201
    summary = call("GET", f"/portfolios/{user_id}", sub=user_id).json
    assert Decimal(summary["realizedPnlUsd"]) == Decimal(7500) - Decimal(1000)
    assert Decimal(summary["missingAcquisitionPnlUsd"]) == Decimal(5000)
    assert [(m["tokenAddress"], m["amount"], m["valueUsd"]) for m in summary["missingAcquisitions"]] == [
        (WETH, "2", "6000")
    ]
    assert call("GET", f"/portfolios/{user_id}/performance", sub=user_id, query={"period": "7d"}).status == 200

    # And refusing them again is refused while the history holds one, naming the sale
    refused = call("PUT", f"/portfolios/{user_id}/settings", sub=user_id, body={"missingAcquisitions": "refuse"})
    assert refused.status == 422 and refused.error["details"]["transactionId"] == "tx-2"


def test_given_no_setting_named_when_changing_settings_then_400(call: Call, user_id: str) -> None:
    answer = call("PUT", f"/portfolios/{user_id}/settings", sub=user_id, body={})

    assert answer.status == 400
    assert "name a setting" in answer.error["message"]


def test_given_a_large_history_when_a_backdated_import_would_replay_it_too_often_then_422_and_nothing_written(
    call: Call, user_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: a stored history, and a bound that 200 older transactions in 3 steps exceed
    monkeypatch.setattr(import_plan, "MAX_REPLAYED_PER_IMPORT", 300)
    seeded = call(
        "POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy("late", "1", at="2024-06-01T00:00:00Z")
    )
    assert seeded.status == 201
    before = stored_state(wiring.portfolio_store(), user_id)
    older = [buy(f"old-{n}", "1", at=f"2024-01-{1 + n // 24:02d}T{n % 24:02d}:00:00Z") for n in range(200)]

    # When
    answer = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body={"transactions": older})

    # Then: refused with a size that fits, and nothing of it written
    assert answer.status == 400
    assert answer.error["code"] == "import_too_large"
    assert answer.error["details"] == {"field": "transactions"}
    assert "send at most 149 per request" in answer.error["message"]
    assert stored_state(wiring.portfolio_store(), user_id) == before
