"""The `make bench` report: headline figures from the modules' results, the table, and the last JSON line."""

from __future__ import annotations

import json

from benchmarks.__main__ import headline, report

FAKE_RESULTS = {
    "cache_read": {"ratio_p50": 1.21},
    "api_read": {
        "ratio_p50": 3.4,
        "handler_hit_p50_us": 180.5,
        "handler_hit_p99_us": 402.0,
        "dynamodb_requests_per_miss": 1.0,
    },
    "price_calls": {"unique_tokens": 200, "service_api_calls": 4, "naive_api_calls": 1000},
    "imports": {"import_ms": {"api": 900.0, "price_updater": 950.0}, "import_boto3_ms": 300.0},
    "refresh": {
        "price_updater": {"cycles": [{"users_per_second": 3.2, "users_per_second_projected_aws": 19.4},
                                     {"users_per_second": 4.1}]},
        "memory": {"process_max_rss_mb": 129.4},
    },
}


def test_given_every_module_result_when_summarized_then_each_promised_figure_is_taken_from_its_module() -> None:
    figures = headline(FAKE_RESULTS)

    assert figures["cached_read_ratio"] == 3.4
    assert (figures["cached_read_p50_us"], figures["cached_read_p99_us"]) == (180.5, 402.0)
    assert figures["cache_hit_ratio"] == 1.21
    assert figures["miss_read_dynamodb_requests"] == 1.0
    assert (figures["price_calls_per_cycle"], figures["price_calls_lower_bound"]) == (4, 4)  # ceil(200 / 50)
    assert figures["seed_design_price_calls"] == 1000
    assert figures["refresh_users_per_s"] == 3.2
    assert figures["import_ms"] == {"api": 900.0, "price_updater": 950.0}
    assert figures["import_boto3_ms"] == 300.0
    assert figures["updater_peak_rss_mb"] == 129.4


def test_given_results_when_reported_then_the_last_line_is_one_json_object_with_figures_and_module_details() -> None:
    table, last_line = report(FAKE_RESULTS)

    summary = json.loads(last_line)
    assert "\n" not in last_line
    assert summary["cached_read_ratio"] == 3.4
    assert summary["failed"] == []
    assert summary["modules"]["price_calls"]["naive_api_calls"] == 1000
    assert "import api.app in a fresh interpreter" in table


def test_given_a_figure_past_its_target_when_tabled_then_its_row_says_missed_and_the_others_ok() -> None:
    table, _ = report(FAKE_RESULTS)

    rows = {line.split("  ")[0]: line for line in table.splitlines()}
    assert rows["cached GET through the API handler / bare GET"].rstrip().endswith("MISSED")
    assert rows["PortfolioCache hit / bare GET"].rstrip().endswith("ok")
    assert rows["coins API calls, refresh of 1,000 users"].rstrip().endswith("ok")


def test_given_a_failed_module_when_reported_then_its_figures_are_null_and_the_failure_is_named() -> None:
    results = {**FAKE_RESULTS, "refresh": {"error": "exit status 1: boom"}}

    table, last_line = report(results)

    summary = json.loads(last_line)
    assert summary["failed"] == ["refresh"]
    assert summary["refresh_users_per_s"] is None and summary["updater_peak_rss_mb"] is None
    assert "benchmark refresh FAILED: exit status 1: boom" in table
