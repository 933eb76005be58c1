"""The alert routes through the API handler: create, list, delete, the per-user limit, what is refused
and how, and that nobody reaches another user's rules."""

from __future__ import annotations

import pytest
from portfolio import wiring
from portfolio.settings import Settings

from tests.integration.api.conftest import ADMIN_SCOPE, Call, DynamoCalls

ETH_ABOVE = {"kind": "price", "asset": "ETH", "above": "4000"}
FIVE_PERCENT = {"kind": "value_change", "thresholdPercent": "5", "window": "24h"}


def create(call: Call, user_id: str, body: object, *, sub: str | None = None):
    return call("POST", f"/portfolios/{user_id}/alerts", sub=sub or user_id, body=body)


def listed(call: Call, user_id: str) -> list[dict]:
    answer = call("GET", f"/portfolios/{user_id}/alerts", sub=user_id)
    assert answer.status == 200, answer.raw_body
    return answer.json["alerts"]


def test_given_two_rules_when_created_listed_and_one_deleted_then_the_other_remains(call: Call, user_id: str):
    price = create(call, user_id, {**ETH_ABOVE, "asset": "eth"})
    change = create(call, user_id, FIVE_PERCENT)

    assert (price.status, change.status) == (201, 201)
    assert price.json["alertId"] != change.json["alertId"]
    assert {key: price.json[key] for key in ("kind", "asset", "above", "status")} == {
        "kind": "price",
        "asset": "ETH",  # the registry's own symbol
        "above": "4000",
        "status": "armed",
    }
    assert change.json["direction"] == "either"
    assert [rule["alertId"] for rule in listed(call, user_id)] == [price.json["alertId"], change.json["alertId"]]

    deleted = call("DELETE", f"/portfolios/{user_id}/alerts/{price.json['alertId']}", sub=user_id)

    assert deleted.status == 204
    assert [rule["kind"] for rule in listed(call, user_id)] == ["value_change"]


def test_given_the_same_rule_sent_again_then_it_is_the_same_rule_answered_200(call: Call, user_id: str):
    first = create(call, user_id, ETH_ABOVE)
    again = create(call, user_id, {"kind": "price", "asset": "eth", "above": "4000.00"})

    assert (first.status, again.status) == (201, 200)
    assert again.json == first.json
    assert len(listed(call, user_id)) == 1


def test_given_an_unknown_alert_id_when_deleted_then_404_naming_it(call: Call, user_id: str):
    answer = call("DELETE", f"/portfolios/{user_id}/alerts/0123456789abcdef", sub=user_id)

    assert answer.status == 404
    assert answer.error["code"] == "not_found"
    assert answer.error["details"] == {"alertId": "0123456789abcdef"}


@pytest.fixture
def two_rules_at_most(function_environment, api_settings: Settings) -> Settings:
    return function_environment(MAX_ALERT_RULES_PER_USER="2", USER_WRITE_RATE_PER_S="0")


def test_given_the_per_user_limit_when_one_more_rule_is_sent_then_422_and_nothing_is_added(
    call: Call, user_id: str, two_rules_at_most: Settings
):
    create(call, user_id, ETH_ABOVE)
    create(call, user_id, FIVE_PERCENT)

    refused = create(call, user_id, {"kind": "price", "asset": "SOL", "below": "100"})

    assert refused.status == 422
    assert refused.error["code"] == "portfolio_limit"
    assert "at most 2 alert rules" in refused.error["message"]
    assert len(listed(call, user_id)) == 2
    # A rule already set is still answered: it adds nothing
    assert create(call, user_id, ETH_ABOVE).status == 200


def test_given_an_asset_the_service_does_not_price_then_422_naming_the_field(call: Call, user_id: str):
    answer = create(call, user_id, {"kind": "price", "asset": "DOGEX", "above": "1"})

    assert answer.status == 422
    assert answer.error["code"] == "unknown_asset"
    assert answer.error["details"] == {"field": "asset"}
    assert listed(call, user_id) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "price", "asset": "ETH"}, "above"),
        ({"kind": "price", "asset": "ETH", "above": "4000", "below": "3000"}, "above"),
        ({"kind": "price", "asset": "ETH", "above": True}, "above"),
        ({"kind": "price", "asset": "ETH", "above": "-1"}, "above"),
        ({"kind": "value_change", "thresholdPercent": "abc"}, "thresholdPercent"),
        ({"kind": "value_change", "thresholdPercent": "0"}, "thresholdPercent"),
        ({"kind": "value_change"}, "thresholdPercent"),
        ({"kind": "value_change", "thresholdPercent": "5", "window": "30d"}, "window"),
        ({"kind": "value_change", "thresholdPercent": "5", "direction": "sideways"}, "direction"),
        ({"kind": "value_change", "thresholdPercent": "5", "asset": "ETH"}, "asset"),
        ({"kind": "volume", "thresholdPercent": "5"}, "kind"),
        ({"thresholdPercent": "5"}, "kind"),
    ],
)
def test_given_a_malformed_rule_then_400_naming_the_field_and_nothing_is_stored(
    call: Call, user_id: str, no_rate_limits: Settings, body: dict, field: str
):
    answer = create(call, user_id, body)

    assert answer.status == 400, answer.raw_body
    assert answer.error["code"] == "invalid_request"
    assert answer.error["details"]["field"] == field
    assert listed(call, user_id) == []


def test_given_a_body_that_is_not_json_then_400(call: Call, user_id: str):
    answer = create(call, user_id, "{not json")

    assert (answer.status, answer.error["details"]["field"]) == (400, "body")


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [("POST", "", ETH_ABOVE), ("GET", "", None), ("DELETE", "/db5da04878ba8695", None)],
)
def test_given_another_users_token_then_403_before_any_rule_is_read(
    call: Call, user_id: str, dynamo_calls: DynamoCalls, method: str, suffix: str, body: object
):
    create(call, user_id, ETH_ABOVE)
    dynamo_calls.reset()

    answer = call(method, f"/portfolios/{user_id}/alerts{suffix}", sub="user-mallory", body=body)

    assert answer.status == 403
    assert dynamo_calls.operations == []
    assert len(listed(call, user_id)) == 1


def test_given_an_admin_token_then_it_may_list_anyones_rules_but_set_or_delete_none(call: Call, user_id: str):
    rule = create(call, user_id, ETH_ABOVE).json

    read = call("GET", f"/portfolios/{user_id}/alerts", sub="ops", scopes=[ADMIN_SCOPE])
    written = call("POST", f"/portfolios/{user_id}/alerts", sub="ops", scopes=[ADMIN_SCOPE], body=FIVE_PERCENT)
    deleted = call("DELETE", f"/portfolios/{user_id}/alerts/{rule['alertId']}", sub="ops", scopes=[ADMIN_SCOPE])

    assert read.status == 200 and [r["alertId"] for r in read.json["alerts"]] == [rule["alertId"]]
    assert (written.status, deleted.status) == (403, 403)


def test_given_rules_then_each_user_sees_only_its_own(call: Call, user_id: str):
    other = f"{user_id}-other"
    create(call, user_id, ETH_ABOVE)
    create(call, other, FIVE_PERCENT)

    assert [rule["kind"] for rule in listed(call, user_id)] == ["price"]
    assert [rule["kind"] for rule in listed(call, other)] == ["value_change"]


def test_given_the_first_rule_and_the_last_deletion_then_the_user_is_listed_for_the_refresh_exactly_meanwhile(
    call: Call, user_id: str
):
    def alerting() -> bool:
        return any(user_id in page for page in wiring.alert_store().iter_alerting_users())

    assert not alerting()
    first = create(call, user_id, ETH_ABOVE).json["alertId"]
    second = create(call, user_id, FIVE_PERCENT).json["alertId"]
    assert alerting()

    call("DELETE", f"/portfolios/{user_id}/alerts/{first}", sub=user_id)
    assert alerting()
    call("DELETE", f"/portfolios/{user_id}/alerts/{second}", sub=user_id)
    assert not alerting()
