"""The `make bench` report: headline figures from the modules' results, the table, and the last JSON line."""

from __future__ import annotations

import json

from benchmarks.__main__ import headline, report
from benchmarks.cost import after_from_measurements

FAKE_RESULTS = {
    "cache_read": {"ratio_p50": 1.21},
    "api_read": {
        "ratio_p50": 3.4,
        "handler_hit_p50_us": 180.5,
        "handler_hit_p99_us": 402.0,
        "dynamodb_requests_per_miss": 1.0,
        "heavy_miss_cpu_ms": 8.7,
        "heavy_miss_cpu_ms_buys_only": 41.0,
    },
    "price_calls": {"cycle_api_calls": 4, "lower_bound_calls": 4, "naive_api_calls": 1000},
    "alerts_eval": {"alerts_eval_us_per_user": 233.7, "ratio_to_valuation": 0.173},
    "imports": {"import_ms": {"api": 900.0, "price_updater": 950.0}, "import_boto3_ms": 300.0},
    "push_fanout": {"fanout_ms_p50": 48.2, "ratio_to_sequential": 0.31},
    "refresh": {
        "sweep": {"write_units_per_coin": 4.0},
        "price_updater": {
            "users_per_cpu_second": 1250.0,
            "dynamodb_requests_per_user": 0.01,
            "write_units_per_user": 0.0,
            "read_units_per_user": 0.5,
        },
        "scheduler": {"cpu_ms_per_request": 4.7},
        "memory": {"process_max_rss_mb": 129.4},
    },
}


def _rows(table: str) -> dict[str, str]:
    return {line.split("  ")[0]: line.rstrip() for line in table.splitlines()}


def test_given_every_module_result_when_summarized_then_each_promised_figure_is_taken_from_its_module() -> None:
    figures = headline(FAKE_RESULTS)

    assert figures["cached_read_ratio"] == 3.4
    assert (figures["cached_read_p50_us"], figures["cached_read_p99_us"]) == (180.5, 402.0)
    assert figures["cache_hit_ratio"] == 1.21
    assert figures["miss_read_dynamodb_requests"] == 1.0
    assert (figures["miss_read_ms_10k_tx"], figures["miss_read_ms_10k_tx_buys_only"]) == (8.7, 41.0)
    assert (figures["price_calls_per_cycle"], figures["price_calls_lower_bound"]) == (4, 4)
    assert figures["seed_design_price_calls"] == 1000
    assert figures["refresh_users_per_cpu_s"] == 1250.0
    assert figures["refresh_dynamodb_requests_per_user"] == 0.01
    assert figures["refresh_write_units_per_user"] == 0.0
    assert figures["refresh_read_units_per_user"] == 0.5
    assert figures["price_sweep_write_units_per_token"] == 4.0
    assert figures["scheduler_cpu_ms_per_request"] == 4.7
    assert figures["import_ms"] == {"api": 900.0, "price_updater": 950.0}
    assert figures["import_boto3_ms"] == 300.0
    assert figures["updater_peak_rss_mb"] == 129.4
    assert (figures["alerts_eval_us_per_user"], figures["alerts_eval_ratio"]) == (233.7, 0.173)
    assert (figures["push_fanout_ms_100"], figures["push_fanout_sequential_ratio"]) == (48.2, 0.31)


def test_given_the_headline_figures_when_costed_then_the_cost_model_reads_every_measured_unit() -> None:
    figures = headline(FAKE_RESULTS)

    units = after_from_measurements(figures)

    assert float(1 / units.updater_cpu_s_per_user) == 1250.0
    assert float(units.dynamodb_requests_per_user) == 0.01
    assert float(units.dynamodb_read_units_per_user) == 0.5
    assert float(units.dynamodb_write_units_per_user) == 0.0
    assert float(units.token_write_units) == 4.0
    assert float(units.price_calls_per_token) == 1 / 50  # calls at their lower bound
    assert float(units.miss_read_dynamodb_requests) == 1.0


def test_given_results_when_reported_then_the_last_line_is_one_json_object_with_figures_and_module_details() -> None:
    table, last_line = report(FAKE_RESULTS)

    summary = json.loads(last_line)
    assert "\n" not in last_line
    assert summary["cached_read_ratio"] == 3.4
    assert summary["failed"] == []
    assert summary["modules"]["price_calls"]["naive_api_calls"] == 1000
    assert set(summary["cost_usd_per_month"]) == {"before", "after"}
    assert "import api.app in a fresh interpreter" in table
    alerts_row = _rows(table)["alert rules evaluated per user and refresh (5 rules, 50 holdings), p50"]
    assert "233.7 us" in alerts_row and "valuing the user's holdings: 0.173 x" in alerts_row


def test_given_a_figure_past_its_target_when_tabled_then_its_row_says_missed_and_the_others_ok() -> None:
    table, _ = report(FAKE_RESULTS)

    rows = _rows(table)
    assert rows["cached GET through the API handler / bare GET"].endswith("MISSED")
    assert rows["cache-miss summary read, 10,000 buys (10,000 open lots), CPU"].endswith("MISSED")
    assert rows["PortfolioCache hit / bare GET"].endswith("ok")
    assert rows["coins API calls, one cycle of 1,000 users (sweep + updaters)"].endswith("ok")
    assert rows["users valued and warmed per CPU-second, price updater"].endswith("ok")
    assert rows["DynamoDB write units per refreshed user (no change)"].endswith("ok")
    assert rows["DynamoDB write units per swept coin"].endswith("ok")


def test_given_calls_above_their_lower_bound_when_tabled_then_the_price_calls_row_says_missed() -> None:
    results = {**FAKE_RESULTS, "price_calls": {"cycle_api_calls": 6, "lower_bound_calls": 4, "naive_api_calls": 1000}}

    table, _ = report(results)

    assert _rows(table)["coins API calls, one cycle of 1,000 users (sweep + updaters)"].endswith("MISSED")


def test_given_a_failed_module_when_reported_then_its_figures_are_null_and_the_failure_is_named() -> None:
    results = {**FAKE_RESULTS, "refresh": {"error": "exit status 1: boom"}}

    table, last_line = report(results)

    summary = json.loads(last_line)
    assert summary["failed"] == ["refresh"]
    assert summary["refresh_users_per_cpu_s"] is None and summary["updater_peak_rss_mb"] is None
    assert summary["price_sweep_write_units_per_token"] is None
    assert "benchmark refresh FAILED: exit status 1: boom" in table


def test_given_a_failed_price_calls_module_when_tabled_then_its_rows_say_not_available() -> None:
    results = {**FAKE_RESULTS, "price_calls": {"error": "exit status 1: boom"}}

    table, _ = report(results)

    assert _rows(table)["coins API calls, one cycle of 1,000 users (sweep + updaters)"].endswith("n/a")
