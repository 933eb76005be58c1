"""Every benchmark in one run: `make bench` (or `.venv/bin/python -m benchmarks`).

Each benchmark module runs in a child process of its own (`python -m benchmarks.<name>`), so no
module inherits another's environment, caches or warm clients; its last stdout line is its JSON.
The run prints a table of the headline figures with their baselines and targets, then, as its LAST
line, one JSON object: the headline figures at the top level and every module's full result under
"modules". A module that fails is reported as such and the exit status is 1; the others still run.

    .venv/bin/python -m benchmarks                       # everything (a few minutes)
    .venv/bin/python -m benchmarks --only imports,cache_read
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.cost import cost_usd_per_month

# Cheap ones first; refresh last, it runs the longest.
MODULES = (
    "cache_read",
    "alerts_eval",
    "price_calls",
    "api_read",
    "bulk_import",
    "imports",
    "push_fanout",
    "wallet_sync",
    "refresh",
)
MODULE_TIMEOUT_S = 900


@dataclass(frozen=True)
class Figure:
    """One row of the table: how to read the value, against what, and what it should be."""

    key: str
    label: str
    unit: str
    baseline: str
    target: str
    meets: Callable[[Any, Mapping[str, Any]], bool] | None = None
    show: Callable[[Any], str] | None = None  # how a value that is not a number is shown
    ratio_key: str | None = None  # the headline figure holding this one's ratio to its baseline, shown beside it


def _at_most(value: Any, bound: Any) -> bool:
    return bound is not None and value <= bound


def _cost_at_1m(value: Mapping[str, Mapping[str, float]]) -> str:
    return f"{value['before']['1M']:,.0f} -> {value['after']['1M']:,.0f}"


FIGURES: tuple[Figure, ...] = (
    Figure(
        "cached_read_ratio",
        "cached GET through the API handler / bare GET",
        "x",
        "redis-py GET of the same body",
        "<= 3",
        lambda value, _: value <= 3,
    ),
    Figure("cached_read_p50_us", "cached GET through the API handler, p50", "us", "bare GET p50 (modules)", "-"),
    Figure("cached_read_p99_us", "cached GET through the API handler, p99", "us", "bare GET p99 (modules)", "-"),
    Figure(
        "cache_hit_ratio",
        "PortfolioCache hit / bare GET",
        "x",
        "redis-py GET of the same body",
        "<= 1.5",
        lambda value, _: value <= 1.5,
    ),
    Figure(
        "miss_read_dynamodb_requests",
        "DynamoDB requests per cache-miss read",
        "",
        "-",
        "1 (GetItem)",
        lambda value, _: value <= 1,
    ),
    Figure(
        "miss_read_ms_10k_tx",
        "cache-miss summary read, 10,000 transactions (trading), CPU",
        "ms",
        "-",
        "< 20",
        lambda value, _: value < 20,
    ),
    Figure(
        "miss_read_ms_10k_tx_buys_only",
        "cache-miss summary read, 10,000 buys (10,000 open lots), CPU",
        "ms",
        "-",
        "< 20",
        lambda value, _: value < 20,
    ),
    Figure(
        "price_calls_per_cycle",
        "coins API calls, one cycle of 1,000 users (sweep + updaters)",
        "calls",
        "price_calls_lower_bound",
        "= lower bound",
        lambda value, figures: _at_most(value, figures.get("price_calls_lower_bound")),
    ),
    Figure("price_calls_lower_bound", "ceil(unique held coins / 50)", "calls", "-", "-"),
    Figure("seed_design_price_calls", "coins API calls fetching per user", "calls", "-", "-"),
    Figure(
        "refresh_users_per_cpu_s",
        "users valued and warmed per CPU-second, price updater",
        "users/s",
        "50 holdings, prices swept, summary readers",
        ">= 1000",
        lambda value, _: value >= 1000,
    ),
    Figure(
        "refresh_users_per_cpu_s_with_asset_lists",
        "the same, users who read their asset list too",
        "users/s",
        "summary and asset list warmed",
        "-",
    ),
    Figure(
        "refresh_dynamodb_requests_per_user",
        "DynamoDB requests per refreshed user",
        "",
        "-",
        "<= 0.05",
        lambda value, _: value <= 0.05,
    ),
    Figure(
        "refresh_write_units_per_user",
        "DynamoDB write units per refreshed user (no change)",
        "",
        "-",
        "0",
        lambda value, _: value == 0,
    ),
    Figure("refresh_read_units_per_user", "DynamoDB read units per refreshed user", "", "-", "-"),
    Figure(
        "price_sweep_write_units_per_token",
        "DynamoDB write units per swept coin",
        "",
        "last-known + 3 history items",
        "4",
        lambda value, _: value == 4,
    ),
    Figure("scheduler_cpu_ms_per_request", "scheduler CPU per request (index page, send, sweep write)", "ms", "-", "-"),
    Figure(
        "wallet_rpc_requests_per_message",
        "node HTTP requests, one message of 10 wallets on one chain",
        "requests",
        "-",
        "<= 2",
        lambda value, _: value <= 2,
    ),
    Figure(
        "wallet_sync_users_per_cpu_s",
        "users whose wallets are synced per CPU-second, nothing moved",
        "users/s",
        "CPU / bare JSON-RPC round trips",
        "-",
        ratio_key="wallet_sync_bare_rpc_ratio",
    ),
    Figure(
        "alerts_eval_us_per_user",
        "alert rules evaluated per user and refresh (5 rules, 50 holdings), p50",
        "us",
        "valuing the user's holdings",
        "-",
        ratio_key="alerts_eval_ratio",
    ),
    Figure(
        "push_fanout_ms_100",
        "one live update to 100 connections of one user (lookup + posts), in-process",
        "ms",
        "the same 100 posts one after another",
        "-",
        ratio_key="push_fanout_sequential_ratio",
    ),
    Figure("import_boto3_ms", "import boto3 in a fresh interpreter", "ms", "-", "-"),
    Figure(
        "updater_peak_rss_mb",
        "price updater peak RSS, 10 msgs x 100 users x 50 holdings",
        "MB",
        "Lambda memory 512 MB",
        "< 512",
        lambda value, _: value < 512,
    ),
    Figure(
        "cost_usd_per_month",
        "AWS cost per month, 1M users, before -> after (docs/cost.md)",
        "USD",
        "before design",
        "< before",
        lambda value, _: value["after"]["1M"] < value["before"]["1M"],
        show=_cost_at_1m,
    ),
)


def run_module(name: str, timeout_s: float = MODULE_TIMEOUT_S) -> dict[str, Any]:
    """A benchmark module's result (the JSON on its last stdout line), or {"error": ...} when it failed."""
    started = time.monotonic()
    try:
        completed = subprocess.run(
            [sys.executable, "-m", f"benchmarks.{name}"], capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout_s} s"}
    seconds = round(time.monotonic() - started, 1)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        tail = completed.stderr.strip().splitlines()[-3:]
        return {"error": f"exit status {completed.returncode}: {' | '.join(tail)}", "seconds": seconds}
    try:
        result = json.loads(lines[-1])
    except ValueError:
        return {"error": "the last line is not JSON", "seconds": seconds}
    return {**result, "seconds": seconds}


def _dig(source: Mapping[str, Any], *path: str | int) -> Any:
    """source[path[0]][path[1]]...; None when any step is missing."""
    value: Any = source
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def headline(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The figures `make bench` promises, taken from the modules' results (None where a module failed)."""
    api_read = results.get("api_read", {})
    cache_read = results.get("cache_read", {})
    price_calls = results.get("price_calls", {})
    imports = results.get("imports", {})
    refresh = results.get("refresh", {})
    wallet_sync = results.get("wallet_sync", {})
    push_fanout = results.get("push_fanout", {})
    alerts_eval = results.get("alerts_eval", {})
    figures = {
        "cached_read_ratio": api_read.get("ratio_p50"),
        "cached_read_p50_us": api_read.get("handler_hit_p50_us"),
        "cached_read_p99_us": api_read.get("handler_hit_p99_us"),
        "cache_hit_ratio": cache_read.get("ratio_p50"),
        "miss_read_dynamodb_requests": api_read.get("dynamodb_requests_per_miss"),
        "miss_read_ms_10k_tx": api_read.get("heavy_miss_cpu_ms"),
        "miss_read_ms_10k_tx_buys_only": api_read.get("heavy_miss_cpu_ms_buys_only"),
        "price_calls_per_cycle": price_calls.get("cycle_api_calls"),
        "price_calls_lower_bound": price_calls.get("lower_bound_calls"),
        "seed_design_price_calls": price_calls.get("naive_api_calls"),
        "refresh_users_per_cpu_s": _dig(refresh, "price_updater", "users_per_cpu_second"),
        "refresh_users_per_cpu_s_with_asset_lists": _dig(
            refresh, "price_updater_with_asset_lists", "users_per_cpu_second"
        ),
        "refresh_dynamodb_requests_per_user": _dig(refresh, "price_updater", "dynamodb_requests_per_user"),
        "refresh_write_units_per_user": _dig(refresh, "price_updater", "write_units_per_user"),
        "refresh_read_units_per_user": _dig(refresh, "price_updater", "read_units_per_user"),
        "price_sweep_write_units_per_token": _dig(refresh, "sweep", "write_units_per_coin"),
        "scheduler_cpu_ms_per_request": _dig(refresh, "scheduler", "cpu_ms_per_request"),
        "wallet_rpc_requests_per_message": _dig(wallet_sync, "warm", "node_requests"),
        "wallet_sync_users_per_cpu_s": _dig(wallet_sync, "steady_state", "users_per_cpu_second"),
        "wallet_sync_bare_rpc_ratio": _dig(wallet_sync, "steady_state", "ratio_to_bare_json_rpc"),
        "alerts_eval_us_per_user": alerts_eval.get("alerts_eval_us_per_user"),
        "alerts_eval_ratio": alerts_eval.get("ratio_to_valuation"),
        "push_fanout_ms_100": push_fanout.get("fanout_ms_p50"),
        "push_fanout_sequential_ratio": push_fanout.get("ratio_to_sequential"),
        "import_ms": imports.get("import_ms"),
        "import_boto3_ms": imports.get("import_boto3_ms"),
        "updater_peak_rss_mb": _dig(refresh, "memory", "process_max_rss_mb"),
    }
    # Priced from the figures above (benchmarks/cost.py); a missing figure falls back to its target.
    figures["cost_usd_per_month"] = cost_usd_per_month(figures)
    return figures


def _shown(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _verdict(figure: Figure, value: Any, figures: Mapping[str, Any]) -> str:
    if figure.meets is None:
        return ""
    if value is None:
        return "n/a"
    return "ok" if figure.meets(value, figures) else "MISSED"


def table_rows(figures: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(figure, value, baseline, target, verdict) per headline figure; one row per function for imports."""
    rows = []
    for figure in FIGURES:
        value = figures.get(figure.key)
        shown = figure.show(value) if figure.show and value is not None else _shown(value)
        shown += f" {figure.unit}" if figure.unit and value is not None else ""
        baseline = figure.baseline
        if figure.ratio_key is not None and figures.get(figure.ratio_key) is not None:
            baseline += f": {_shown(figures[figure.ratio_key])} x"
        rows.append((figure.label, shown, baseline, figure.target, _verdict(figure, value, figures)))
        if figure.key == "import_boto3_ms":
            for function, milliseconds in (figures.get("import_ms") or {}).items():
                rows.append(
                    (
                        f"import {function}.app in a fresh interpreter",
                        f"{_shown(milliseconds)} ms",
                        "import boto3",
                        "-",
                        "",
                    )
                )
    return rows


def render_table(figures: Mapping[str, Any], failures: Mapping[str, str] | None = None) -> str:
    header = ("figure", "value", "baseline", "target", "")
    rows = [header, *table_rows(figures)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths).rstrip())
    for name, error in (failures or {}).items():
        lines.append(f"benchmark {name} FAILED: {error}")
    return "\n".join(lines)


def report(results: Mapping[str, Mapping[str, Any]]) -> tuple[str, str]:
    """(table, last JSON line) for the modules' results."""
    figures = headline(results)
    failures = {name: str(result["error"]) for name, result in results.items() if "error" in result}
    summary = {**figures, "failed": sorted(failures), "modules": dict(results)}
    return render_table(figures, failures), json.dumps(summary, separators=(",", ":"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated modules, from: " + ", ".join(MODULES))
    arguments = parser.parse_args(argv)
    chosen = MODULES if not arguments.only else tuple(arguments.only.split(","))
    unknown = set(chosen) - set(MODULES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    results: dict[str, dict[str, Any]] = {}
    for name in chosen:
        print(f"running benchmarks.{name} ...", flush=True)
        results[name] = run_module(name)
        print(f"  done in {results[name].get('seconds', '?')} s", flush=True)
    table, last_line = report(results)
    print(table)
    print(last_line)
    return 1 if any("error" in result for result in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
