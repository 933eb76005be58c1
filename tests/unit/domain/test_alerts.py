"""Alert rules: a rule fires once per crossing and again only after re-arming; exact comparisons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from portfolio.domain.alerts import (
    AlertRule,
    AlertStatus,
    AlertWindow,
    Direction,
    Observation,
    PriceCondition,
    UnknownAssetError,
    ValueChange,
    ValueChangeCondition,
    evaluate,
    holdings_change,
    reference_token,
    resolve_asset,
    resolved,
)
from portfolio.domain.errors import InvalidInputError

T0 = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)


def price_rule(above: str | None = "4000", below: str | None = None, alert_id: str = "a1") -> AlertRule:
    condition = PriceCondition(kind="price", asset="ETH", above=above, below=below)
    return AlertRule(alert_id=alert_id, created_at=T0, condition=condition)


def change_rule(threshold: str, window: str = "24h", direction: str = "either", alert_id: str = "c1") -> AlertRule:
    condition = ValueChangeCondition(
        kind="value_change", threshold_percent=threshold, window=window, direction=direction
    )
    return AlertRule(alert_id=alert_id, created_at=T0, condition=condition)


def eth_at(price: str, step: int = 0) -> Observation:
    return Observation(at=T0 + step * STEP, asset_prices={"eth": Decimal(price)}, value_changes={})


def changed(start: str, end: str, window: AlertWindow = AlertWindow.DAY, step: int = 0) -> Observation:
    change = ValueChange(start_value=Decimal(start), end_value=Decimal(end))
    return Observation(at=T0 + step * STEP, asset_prices={}, value_changes={window: change})


def run(rules: list[AlertRule], observations: list[Observation]) -> list[list[str]]:
    """The ids fired at each refresh, the states carried from one refresh to the next."""
    fired_per_refresh = []
    for observation in observations:
        evaluation = evaluate("alice", rules, observation)
        rules = list(evaluation.rules)
        fired_per_refresh.append([alert.alert_id for alert in evaluation.fired])
    return fired_per_refresh


def test_given_a_price_rule_when_the_price_crosses_stays_above_falls_and_crosses_again_then_it_fires_twice():
    prices = ["3900", "4000.5", "4100", "4200", "3999", "3950", "4001"]

    fired = run([price_rule()], [eth_at(price, step) for step, price in enumerate(prices)])

    assert fired == [[], ["a1"], [], [], [], [], ["a1"]]


def test_given_a_fired_rule_when_the_condition_turns_false_then_it_re_arms_with_what_was_observed():
    fired = evaluate("alice", [price_rule()], eth_at("4100")).rules

    rearmed = evaluate("alice", fired, eth_at("3800", step=1))

    (rule,) = rearmed.rules
    assert rearmed.rearmed == ("a1",) and rearmed.fired == ()
    assert (rule.state.status, rule.state.changed_at, rule.state.observed) == (AlertStatus.ARMED, T0 + STEP, 3800)
    assert rule.state.last_fired_at == T0  # kept from the firing


def test_given_refreshes_that_change_nothing_then_no_state_has_to_be_written():
    rules = list(evaluate("alice", [price_rule()], eth_at("4100")).rules)

    for step, price in enumerate(["4150", "4200", "4000"], start=1):
        evaluation = evaluate("alice", rules, eth_at(price, step))
        assert not evaluation.changed
        assert list(evaluation.rules) == rules


def test_given_the_threshold_exactly_then_above_and_below_both_hold_there():
    assert [a.alert_id for a in evaluate("alice", [price_rule(above="4000")], eth_at("4000.00")).fired] == ["a1"]
    below = price_rule(above=None, below="4000", alert_id="b1")
    assert [a.alert_id for a in evaluate("alice", [below], eth_at("4000")).fired] == ["b1"]
    assert evaluate("alice", [below], eth_at("4000.000000000000000000000000000001")).fired == ()


def test_given_no_price_for_the_asset_then_the_rule_is_left_as_it_was():
    fired = evaluate("alice", [price_rule()], eth_at("4100")).rules

    evaluation = evaluate("alice", fired, Observation(at=T0 + STEP, asset_prices={}, value_changes={}))

    assert not evaluation.changed
    assert evaluation.rules == fired


def test_given_a_firing_then_the_alert_says_what_crossed_and_carries_a_stable_event_id():
    (alert,) = evaluate("alice", [price_rule()], eth_at("4012.5")).fired

    assert (alert.user_id, alert.alert_id, alert.observed, alert.fired_at) == ("alice", "a1", Decimal("4012.5"), T0)
    assert alert.message == "ETH is at 4012.5 USD, at or above 4000"
    payload = alert.payload()
    assert payload["eventId"] == f"a1:{T0.isoformat()}"
    assert payload["rule"] == {"kind": "price", "asset": "ETH", "above": "4000"}
    assert payload["observed"] == "4012.5"


@pytest.mark.parametrize(
    ("direction", "start", "end", "fires"),
    [
        ("either", "10000", "10500", True),  # +5 % exactly
        ("either", "10000", "9500", True),  # -5 %
        ("either", "10000", "10499.99", False),  # +4.9999 %
        ("up", "10000", "9000", False),
        ("up", "10000", "10600", True),
        ("down", "10000", "10600", False),
        ("down", "10000", "9499.99", True),
    ],
)
def test_given_a_value_change_rule_then_it_fires_on_a_move_of_the_threshold_in_its_direction(
    direction, start, end, fires
):
    evaluation = evaluate("alice", [change_rule("5", direction=direction)], changed(start, end))

    assert bool(evaluation.fired) is fires


def test_given_a_value_change_then_the_comparison_is_exact_where_a_rounded_percentage_would_say_otherwise():
    # 3 -> 3.1 is +3.3333... %: shown as 3.33, but it does not reach a threshold of 3.333334
    close = changed("3", "3.1")

    assert evaluate("alice", [change_rule("3.333334")], close).fired == ()
    (alert,) = evaluate("alice", [change_rule("3.333333")], close).fired
    assert alert.observed == Decimal("3.33")
    assert (alert.start_value_usd, alert.end_value_usd) == (Decimal("3.00"), Decimal("3.10"))
    assert alert.message == "Portfolio value rose 3.33 % over 24h (3 -> 3.1 USD)"


def test_given_rules_on_different_windows_then_each_reads_its_own_window():
    rules = [change_rule("10", window="1h", alert_id="hour"), change_rule("10", window="7d", alert_id="week")]
    observation = Observation(
        at=T0,
        asset_prices={},
        value_changes={
            AlertWindow.HOUR: ValueChange(Decimal(100), Decimal(101)),
            AlertWindow.WEEK: ValueChange(Decimal(100), Decimal(80)),
        },
    )

    assert [alert.alert_id for alert in evaluate("alice", rules, observation).fired] == ["week"]


def test_given_a_value_change_rule_when_the_move_reverses_then_it_fires_again_only_after_falling_back():
    moves = [("100", "104"), ("100", "106"), ("100", "108"), ("100", "103"), ("100", "106")]

    fired = run([change_rule("5")], [changed(start, end, step=step) for step, (start, end) in enumerate(moves)])

    assert fired == [[], ["c1"], [], [], ["c1"]]


def test_given_holdings_then_only_those_priced_at_both_ends_count_on_both_sides():
    change = holdings_change(
        [
            (Decimal("2"), Decimal("110"), Decimal("100")),
            (Decimal("1.5"), Decimal("3"), None),  # no price at the start: left out
            (Decimal("10"), None, Decimal("7")),  # no price now: left out
        ]
    )

    assert change == ValueChange(start_value=Decimal("200"), end_value=Decimal("220"))
    assert change.percent == Decimal("10.00")
    assert holdings_change([(Decimal("1"), Decimal("5"), None)]) is None


def test_given_asset_names_then_symbols_and_ids_resolve_to_the_registry_symbol_and_others_are_refused():
    assert resolve_asset("eth") == resolve_asset("ETH") == "ETH"
    assert resolve_asset("wsteth") == "wstETH"
    with pytest.raises(UnknownAssetError) as refused:
        resolve_asset("NOPE")
    assert refused.value.field == "asset"
    stored = resolved(PriceCondition(kind="price", asset="sol", below="100"))
    assert stored.asset == "SOL"


def test_given_an_asset_then_it_is_priced_by_its_native_coin_wherever_it_is_held():
    assert reference_token("eth").price_coin_id == "coingecko:ethereum"
    assert reference_token("sol").price_coin_id == "coingecko:solana"
    assert reference_token("usdc").chain == "ethereum"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"asset": "ETH"}, "above"),
        ({"asset": "ETH", "above": "1", "below": "2"}, "above"),
        ({"asset": "ETH", "above": "0"}, "above"),
        ({"asset": "ETH", "below": "-3"}, "below"),
        ({"asset": "E TH", "above": "1"}, "asset"),
    ],
)
def test_given_a_malformed_price_rule_then_it_is_refused_naming_the_field(fields, field):
    with pytest.raises(InvalidInputError) as refused:
        PriceCondition(kind="price", **fields)

    assert refused.value.field == field


@pytest.mark.parametrize("threshold", ["0", "-1", "10000.01"])
def test_given_a_threshold_out_of_bounds_then_it_is_refused(threshold):
    with pytest.raises(InvalidInputError) as refused:
        change_rule(threshold)

    assert refused.value.field == "thresholdPercent"


def test_given_defaults_then_a_value_change_rule_looks_back_24h_either_way():
    rule = change_rule("5").condition

    assert (rule.window, rule.direction) == (AlertWindow.DAY, Direction.EITHER)
    assert AlertWindow.WEEK.length == timedelta(days=7)
