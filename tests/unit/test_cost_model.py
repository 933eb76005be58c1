"""The cost model of the refresh pipeline (benchmarks/cost.py): AWS USD per month, before and after the redesign."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from benchmarks.cost import (
    AFTER_TARGET_UNITS,
    BEFORE,
    HOURS_PER_MONTH,
    SCALES,
    SERVICES,
    TEMPLATE,
    US_EAST_1,
    after_from_measurements,
    cost_usd_per_month,
    held_tokens,
    main,
    monthly_cost,
)

MILLION_USERS = 1_000_000
ACTIVE_SHARE = Decimal("0.10")


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"))


def _cost_at(units, users: int, active_share: Decimal = ACTIVE_SHARE) -> dict[str, Decimal]:
    return monthly_cost(units, users, held_tokens(users), active_share)


def test_given_the_old_design_at_a_million_users_when_priced_then_dynamodb_writes_and_lambda_dominate() -> None:
    cost = _cost_at(BEFORE, MILLION_USERS)

    lambda_total = cost["lambda_compute"] + cost["lambda_requests"]
    lines = {name: cost[name] for name, _ in SERVICES}
    assert max(lines, key=lines.__getitem__) == "dynamodb_writes"
    assert cost["dynamodb_writes"] + lambda_total > Decimal("0.75") * cost["total"]
    assert lambda_total > cost["elasticache_storage"] + cost["elasticache_ecpu"] + cost["sqs"]


def test_given_the_redesign_targets_when_priced_then_every_scale_costs_less_than_the_old_design() -> None:
    for users in SCALES.values():
        before, after = _cost_at(BEFORE, users), _cost_at(AFTER_TARGET_UNITS, users)

        assert after["total"] < before["total"]
        assert after["dynamodb_writes"] < before["dynamodb_writes"]
        assert after["lambda_compute"] < before["lambda_compute"]


def test_given_more_users_when_priced_then_both_designs_cost_more() -> None:
    for units in (BEFORE, AFTER_TARGET_UNITS):
        totals = [_cost_at(units, users)["total"] for users in (0, *SCALES.values())]

        assert totals == sorted(totals)
        assert len(set(totals)) == len(totals)


def test_given_more_active_users_when_the_redesign_is_priced_then_it_costs_more() -> None:
    quiet = _cost_at(AFTER_TARGET_UNITS, MILLION_USERS, Decimal("0.05"))
    busy = _cost_at(AFTER_TARGET_UNITS, MILLION_USERS, Decimal("0.50"))

    assert quiet["total"] < busy["total"]


def test_given_no_users_when_priced_then_only_the_fixed_parts_are_billed() -> None:
    for units in (BEFORE, AFTER_TARGET_UNITS):
        cost = monthly_cost(units, 0, 0, ACTIVE_SHARE)

        cycles = TEMPLATE.cycles_per_month
        idle_polls = TEMPLATE.idle_pollers * HOURS_PER_MONTH * 3600 / TEMPLATE.long_poll_s
        # The cache's minimum metered storage, the queue's empty long polls, one run lock a cycle and the
        # scheduler reading its 16 empty shards.
        minimum_storage = US_EAST_1.cache_minimum_gb * HOURS_PER_MONTH * US_EAST_1.cache_gb_hour
        assert cost["elasticache_storage"] == _cents(minimum_storage)
        assert cost["sqs"] == _cents(idle_polls * US_EAST_1.sqs_request)
        assert cost["dynamodb_writes"] == _cents(cycles * US_EAST_1.dynamodb_write_request_unit)
        assert cost["api_gateway"] == cost["elasticache_ecpu"] == cost["coins_api"] == 0
        assert Decimal(0) < cost["total"] < Decimal(10)
        assert monthly_cost(units, 0, 0, Decimal(1)) == cost  # no user, so no active user either


def test_given_no_figures_when_the_redesign_is_built_then_it_takes_the_design_targets() -> None:
    units = after_from_measurements({})

    assert units.updater_cpu_s_per_user == Decimal("0.001")  # 1,000 users per CPU-second
    assert units.dynamodb_requests_per_user == Decimal("0.01")
    assert units.dynamodb_write_units_per_user == 0
    assert units.token_write_units == 4
    assert units.price_calls_per_token == Decimal(1) / 50  # ceil(tokens / 50) calls a cycle
    assert units.miss_read_dynamodb_requests == 1
    assert units.refreshes_idle_users is False


def test_given_measured_figures_when_the_redesign_is_built_then_they_replace_the_targets() -> None:
    units = after_from_measurements(
        {
            "refresh_users_per_cpu_s": 500,
            "refresh_dynamodb_requests_per_user": 0.02,
            "refresh_write_units_per_user": 0.5,
            "price_calls_per_cycle": 6,
            "price_calls_lower_bound": 4,
            "price_sweep_write_units_per_token": 2,
            "miss_read_dynamodb_requests": 2.0,
        }
    )

    assert units.updater_cpu_s_per_user == Decimal("0.002")
    assert units.dynamodb_requests_per_user == Decimal("0.02")
    assert units.dynamodb_write_units_per_user == Decimal("0.5")
    assert units.price_calls_per_token == Decimal("1.5") / 50  # 6 calls where 4 would do
    assert units.token_write_units == 2
    assert units.miss_read_dynamodb_requests == 2


def test_given_a_missing_or_failed_figure_when_the_redesign_is_built_then_that_one_falls_back_to_its_default() -> None:
    measured = {"refresh_users_per_cpu_s": 800, "refresh_write_units_per_user": 0.25}

    partial = after_from_measurements({**measured, "price_sweep_write_units_per_token": None})  # a failed module
    odd = after_from_measurements(
        {**measured, "refresh_dynamodb_requests_per_user": "n/a", "miss_read_dynamodb_requests": -1}
    )

    assert partial.token_write_units == 4
    assert partial.updater_cpu_s_per_user == Decimal(1) / 800
    assert partial.dynamodb_write_units_per_user == Decimal("0.25")
    assert odd.dynamodb_requests_per_user == Decimal("0.01")
    assert odd.miss_read_dynamodb_requests == 1
    assert after_from_measurements({"refresh_users_per_cpu_s": 0}).updater_cpu_s_per_user == Decimal("0.001")


def test_given_headline_figures_when_costed_then_the_figure_is_json_totals_per_scale_and_design() -> None:
    figures = cost_usd_per_month({"refresh_users_per_cpu_s": None, "price_calls_per_cycle": 4})

    assert set(figures) == {"before", "after"}
    assert all(set(totals) == {"10k", "100k", "1M"} for totals in figures.values())
    assert figures["after"]["1M"] < figures["before"]["1M"]
    assert json.loads(json.dumps(figures)) == figures
    assert figures["before"]["1M"] == float(_cost_at(BEFORE, MILLION_USERS)["total"])


def test_given_tokens_when_users_grow_then_they_grow_more_slowly_than_users() -> None:
    assert held_tokens(0) == 0
    assert held_tokens(MILLION_USERS) == 5_000
    assert held_tokens(10_000) < held_tokens(100_000) < held_tokens(MILLION_USERS)
    assert held_tokens(MILLION_USERS) / held_tokens(10_000) < MILLION_USERS / 10_000


def test_given_a_negative_share_when_priced_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match="active_share"):
        monthly_cost(BEFORE, 10, 1, Decimal("-0.1"))


def test_given_a_figures_file_when_the_cli_runs_then_it_prints_the_markdown_tables(tmp_path, capsys) -> None:
    bench_output = tmp_path / "bench.txt"
    bench_output.write_text("figure  value\n-----  -----\n" + json.dumps({"refresh_users_per_cpu_s": 2000}) + "\n")

    assert main([str(bench_output)]) == 0

    printed = capsys.readouterr().out
    assert "| **total** |" in printed
    assert "| users per CPU-second (updater) | 45 | 2,000 |" in printed
    assert "2024-11-01" in printed
