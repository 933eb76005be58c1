"""Per-user rate limits through the real handler: one caller past its burst gets 429 with Retry-After,
everyone else (and the same caller's other kind of request) goes on."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from portfolio import wiring
from portfolio.settings import Settings

from tests.integration.api.conftest import ADMIN_SCOPE, Call, DynamoCalls, buy

# Low limits, so a handful of requests passes the burst: one write every 100 s, 3 at once; reads 2 at once
# (slow enough that a busy machine never refills one between two requests).
LIMITS = {
    "USER_WRITE_RATE_PER_S": "0.01",
    "USER_WRITE_BURST": "3",
    "USER_READ_RATE_PER_S": "0.01",
    "USER_READ_BURST": "2",
}


@pytest.fixture
def limited(call: Call, function_environment: Callable[..., Settings]) -> Call:
    """The handler with LIMITS in its environment (on top of the API tests' own)."""
    function_environment(**LIMITS)
    return call


def transactions_path(user_id: str) -> str:
    return f"/portfolios/{user_id}/transactions"


def test_given_one_user_past_the_write_burst_when_it_writes_again_then_429_and_another_users_writes_still_pass(
    limited: Call, user_id: str
) -> None:
    # Given: a user who spent its burst of writes
    other = f"{user_id}-other"
    first = [limited("POST", transactions_path(user_id), sub=user_id, body=buy(f"tx-{n}", "1")) for n in range(3)]
    assert [answer.status for answer in first] == [201, 201, 201]

    # When: it writes once more
    refused = limited("POST", transactions_path(user_id), sub=user_id, body=buy("tx-3", "1"))

    # Then: 429 in the error shape, Retry-After in whole seconds (about 100 s at 0.01 a second), nothing stored
    assert refused.status == 429
    assert refused.error["code"] == "rate_limited"
    assert refused.error["details"]["limit"] == "write"
    retry_after = int(refused.headers["retry-after"])
    assert 50 <= retry_after <= 100
    assert refused.error["details"]["retryAfterSeconds"] == retry_after
    assert refused.headers["cache-control"] == "no-store"

    # Then: another user's writes pass, and the limited user can still read (reads have their own bucket)
    others = [limited("POST", transactions_path(other), sub=other, body=buy(f"tx-{n}", "1")) for n in range(3)]
    assert [answer.status for answer in others] == [201, 201, 201]
    page = limited("GET", transactions_path(user_id), sub=user_id)
    assert page.status == 200
    assert sorted(item["id"] for item in page.json["transactions"]) == ["tx-0", "tx-1", "tx-2"]


def test_given_a_limited_caller_when_it_sends_any_write_then_it_is_refused_before_validation_or_any_read(
    limited: Call, user_id: str, dynamo_calls: DynamoCalls
) -> None:
    # Given: a caller past its writes (invalid bodies count: the limit comes before the body is read)
    for _ in range(3):
        assert limited("POST", transactions_path(user_id), sub=user_id, body={"type": "nonsense"}).status == 400
    dynamo_calls.reset()

    # When: every kind of write, valid or not
    answers = [
        limited("POST", transactions_path(user_id), sub=user_id, body={"type": "nonsense"}),
        limited("PUT", f"/portfolios/{user_id}/settings", sub=user_id, body={"costBasisMethod": "average"}),
        limited("DELETE", f"{transactions_path(user_id)}/tx-1", sub=user_id),
        limited("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": "0x" + "ab" * 20}),
    ]

    # Then: 429 each time, and not one DynamoDB call
    assert [answer.status for answer in answers] == [429] * 4
    assert {answer.error["code"] for answer in answers} == {"rate_limited"}
    assert dynamo_calls.operations == []


def test_given_an_admin_reading_others_portfolios_when_past_its_read_burst_then_the_admin_is_limited_not_the_owner(
    limited: Call, user_id: str
) -> None:
    # Given: an admin token that read a user's portfolio as often as its read burst allows
    admin = f"admin-{user_id}"
    reads = [limited("GET", f"/portfolios/{user_id}", sub=admin, scopes=[ADMIN_SCOPE]) for _ in range(2)]
    assert [answer.status for answer in reads] == [200, 200]

    # When: the admin reads again, and the owner reads its own portfolio
    refused = limited("GET", f"/portfolios/{user_id}", sub=admin, scopes=[ADMIN_SCOPE])
    owner = limited("GET", f"/portfolios/{user_id}", sub=user_id)

    # Then: the bucket is the token's sub, never the path's user id
    assert refused.status == 429 and refused.error["details"]["limit"] == "read"
    assert owner.status == 200


def test_given_the_default_limits_when_a_user_writes_and_reads_a_little_then_nothing_is_refused(
    call: Call, user_id: str
) -> None:
    # Given: the limits every deployment gets unless told otherwise
    config = wiring.settings()
    assert (config.user_write_rate_per_s, config.user_write_burst) == (2.0, 10)
    assert config.user_read_rate_per_s == 0  # reads: bounded by the route throttles only

    # When: a burst's worth of writes, then many reads
    writes = [call("POST", transactions_path(user_id), sub=user_id, body=buy(f"tx-{n}", "1")) for n in range(10)]
    reads = [call("GET", f"/portfolios/{user_id}", sub=user_id) for _ in range(60)]

    # Then
    assert {answer.status for answer in writes} == {201}
    assert {answer.status for answer in reads} == {200}


def test_given_limits_set_to_zero_when_a_user_writes_more_than_any_burst_then_nothing_is_refused(
    call: Call, function_environment: Callable[..., Settings], user_id: str
) -> None:
    function_environment(USER_WRITE_RATE_PER_S="0", USER_WRITE_BURST="1")

    answers = [call("POST", transactions_path(user_id), sub=user_id, body={"type": "nonsense"}) for _ in range(15)]

    assert {answer.status for answer in answers} == {400}
