"""What storing a large import costs the API function, in replays of the complete history.

    .venv/bin/python -m benchmarks.bulk_import

What TransactionRecorder computes before it writes (`import_plan.plan_stored_import`: the steps of
at most 99 writes, the positions the import ends at and after each step), for a user with 10,000
stored transactions (ETH bought 2 and sold 1 in turn, hourly):

- `appended`: 5,000 more after everything stored (an exchange export brought up to date): one pass,
  each step's positions extending the last's;
- `backdated`: 196 older than the stored ones (the most MAX_REPLAYED_PER_IMPORT lets one request
  carry for this history): acquisitions first, a replay of the whole history for where it ends and
  for each step's positions but the last;
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
from typing import Any

from portfolio.domain.accounting import Ledger, replay
from portfolio.domain.import_plan import MAX_REPLAYED_PER_IMPORT, ImportTooCostly, plan_stored_import
from portfolio.domain.portfolio_record import CostBasisMethod
from portfolio.domain.transactions import Transaction
from portfolio.services.transaction_recorder import MAX_ACTIONS_PER_STEP

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


def store(base: Ledger, history: Sequence[Transaction], new: Sequence[Transaction]) -> int:
    """What TransactionRecorder computes before its writes: the plan, and the positions after each
    step (the limits are checked on the plan's final positions, which cost nothing more). Returns
    the steps."""
    planned = plan_stored_import(base, new, history=lambda: history, max_actions=MAX_ACTIONS_PER_STEP)
    for _ in planned.after_each:
        pass
    return len(planned.steps)


def _cpu_s(call: Callable[[], object]) -> float:
    started = time.process_time()
    call()
    return time.process_time() - started


def _refuse(base: Ledger, history: Sequence[Transaction], new: Sequence[Transaction]) -> None:
    try:
        store(base, history, new)
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
        "appended": store(base, history, appended),
        "backdated": store(base, history, backdated),
    }
    for _ in range(rounds):
        samples["baseline"].append(_cpu_s(lambda: replay(complete, CostBasisMethod.FIFO)))
        samples["appended"].append(_cpu_s(lambda: store(base, history, appended)))
        samples["backdated"].append(_cpu_s(lambda: store(base, history, backdated)))
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
