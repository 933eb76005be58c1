"""What storing a large import costs the API function, in replays of the complete history.

    .venv/bin/python -m benchmarks.bulk_import

The domain steps TransactionRecorder takes before it writes (the steps of at most 99 writes, the
positions after each, the check of the complete history), for a user with 10,000 stored
transactions (ETH bought 2 and sold 1 in turn, hourly):

- `appended`: 5,000 more after everything stored (an exchange export brought up to date): one pass,
  each step's positions extending the last's;
- `backdated`: 196 older than the stored ones (the most MAX_REPLAYED_PER_IMPORT lets one request
  carry for this history): acquisitions first, a replay of the whole history for each step's positions;
- `refused`: 500 older ones, which the bound refuses (400 import_too_large) before any replay per step.

Each is CPU time (`process_time`), the median of 5 rounds, divided by the baseline measured in the
same rounds: one replay of the 15,000 transactions of the appended case.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any

from portfolio.domain.accounting import Ledger, extend, replay
from portfolio.domain.import_plan import (
    MAX_REPLAYED_PER_IMPORT,
    ImportTooCostly,
    check_replay_cost,
    plan_appended,
    plan_import,
)
from portfolio.domain.portfolio_record import CostBasisMethod
from portfolio.domain.transactions import Transaction

# The recorder's step size: the portfolio item and 99 transactions or holder counts.
MAX_ACTIONS_PER_STEP = 99
STORED = 10_000
APPENDED = 5_000
BACKDATED = 196
REFUSED = 500
ROUNDS = 5
ETH = "0x0000000000000000000000000000000000000000"
START = datetime(2023, 1, 1, tzinfo=UTC)


def _trades(count: int, first_hour: int, prefix: str) -> list[Transaction]:
    return [
        Transaction.model_validate(
            {
                "id": f"{prefix}-{index}",
                "type": "buy" if index % 2 == 0 else "sell",
                "chain": "ethereum",
                "tokenAddress": ETH,
                "amount": "2" if index % 2 == 0 else "1",
                "priceUsd": "2000" if index % 2 == 0 else "2100",
                "timestamp": (START + timedelta(hours=first_hour + index)).isoformat(),
            }
        )
        for index in range(count)
    ]


def store_appended(base: Ledger, new: Sequence[Transaction]) -> int:
    """As the recorder stores transactions that sort after the stored history; returns the steps."""
    extend(base, new)
    steps = plan_appended(new, max_actions=MAX_ACTIONS_PER_STEP)
    ledger = base
    for step in steps:
        ledger = extend(ledger, step)
    return len(steps)


def store_backdated(base: Ledger, history: Sequence[Transaction], new: Sequence[Transaction]) -> int:
    """As the recorder stores transactions older than stored ones; returns the steps."""
    restarted = base.restarted()

    def apply(prefix: Sequence[Transaction]) -> Ledger:
        return extend(restarted, [*history, *prefix])

    steps = plan_import(apply, new, max_actions=MAX_ACTIONS_PER_STEP)
    check_replay_cost(len(history), len(new), len(steps))
    apply(new)
    for index in range(len(steps)):
        apply(list(chain.from_iterable(steps[: index + 1])))
    return len(steps)


def _cpu_s(call: Callable[[], object]) -> float:
    started = time.process_time()
    call()
    return time.process_time() - started


def _refuse(base: Ledger, history: Sequence[Transaction], new: Sequence[Transaction]) -> None:
    try:
        store_backdated(base, history, new)
    except ImportTooCostly:
        return
    raise RuntimeError("the import past the bound was not refused")


def run(rounds: int = ROUNDS) -> dict[str, Any]:
    history = _trades(STORED, first_hour=10_000, prefix="stored")
    base = replay(history, CostBasisMethod.FIFO)
    appended = _trades(APPENDED, first_hour=10_000 + STORED, prefix="appended")
    backdated = _trades(BACKDATED, first_hour=0, prefix="backdated")
    refused = _trades(REFUSED, first_hour=0, prefix="refused")
    complete = [*history, *appended]
    samples: dict[str, list[float]] = {"baseline": [], "appended": [], "backdated": [], "refused": []}
    steps = {
        "appended": store_appended(base, appended),
        "backdated": store_backdated(base, history, backdated),
    }
    for _ in range(rounds):
        samples["baseline"].append(_cpu_s(lambda: replay(complete, CostBasisMethod.FIFO)))
        samples["appended"].append(_cpu_s(lambda: store_appended(base, appended)))
        samples["backdated"].append(_cpu_s(lambda: store_backdated(base, history, backdated)))
        samples["refused"].append(_cpu_s(lambda: _refuse(base, history, refused)))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    baseline = medians["baseline"]
    return {
        "stored_transactions": STORED,
        "max_replayed_per_import": MAX_REPLAYED_PER_IMPORT,
        "baseline_replay_ms": round(baseline * 1000, 1),
        "appended_5000_ms": round(medians["appended"] * 1000, 1),
        "appended_5000_replays": round(medians["appended"] / baseline, 2),
        "appended_steps": steps["appended"],
        "backdated_196_ms": round(medians["backdated"] * 1000, 1),
        "backdated_196_replays": round(medians["backdated"] / baseline, 2),
        "backdated_steps": steps["backdated"],
        "refused_500_ms": round(medians["refused"] * 1000, 1),
        "refused_500_replays": round(medians["refused"] / baseline, 2),
    }


def main() -> None:
    result = run()
    print(
        f"one replay of {STORED + APPENDED:,} transactions: {result['baseline_replay_ms']} ms CPU; "
        f"{APPENDED:,} appended ({result['appended_steps']} steps): {result['appended_5000_replays']} replays; "
        f"{BACKDATED} backdated ({result['backdated_steps']} steps): {result['backdated_196_replays']} replays; "
        f"{REFUSED} backdated, refused: {result['refused_500_replays']} replays"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
