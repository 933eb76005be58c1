"""Splitting a large import into steps that each leave a valid history.

A DynamoDB transaction holds at most 100 writes, so an import of hundreds of transactions is
stored in several atomic steps. Readers may load the portfolio between two steps, and a step may
fail after earlier ones landed, so every prefix of the plan must replay without an overdraft on
its own. Acquisitions go first (adding one never takes a holding below zero), then the other
transactions in time order; each step is checked by a replay, and shortened if it would overdraw.
"""

from __future__ import annotations

from collections.abc import Sequence

from portfolio.domain.accounting import replay
from portfolio.domain.errors import DomainError, OverdraftError
from portfolio.domain.portfolio_record import CostBasisMethod
from portfolio.domain.transactions import Transaction, TransactionType

_ACQUISITIONS = frozenset({TransactionType.BUY, TransactionType.TRANSFER_IN})


class ImportNotSplittable(DomainError):
    """No order of steps keeps every intermediate history valid; the client should split the import."""

    code = "import_not_splittable"


def plan_import(
    stored: Sequence[Transaction], new: Sequence[Transaction], method: CostBasisMethod, *, max_step: int
) -> list[list[Transaction]]:
    """Steps of at most `max_step` new transactions; stored + any prefix of the steps replays cleanly.

    Raises OverdraftError when the complete history overdraws (nothing may be written), and
    ImportNotSplittable in the rare case where only the complete history is valid.
    """
    replay([*stored, *new], method)
    if len(new) <= max_step:
        return [list(new)] if new else []
    ordered = sorted(new, key=lambda transaction: (transaction.type not in _ACQUISITIONS, transaction.sort_key))
    steps: list[list[Transaction]] = []
    start = 0
    while start < len(ordered):
        end = min(start + max_step, len(ordered))
        while not _replays(stored, ordered[:end], method):
            end -= 1
            if end == start:
                raise ImportNotSplittable(
                    f"these {len(new)} transactions can only be stored together; "
                    f"send them in requests of at most {max_step}, oldest first",
                    field="transactions",
                )
        steps.append(ordered[start:end])
        start = end
    return steps


def _replays(stored: Sequence[Transaction], prefix: Sequence[Transaction], method: CostBasisMethod) -> bool:
    try:
        replay([*stored, *prefix], method)
    except OverdraftError:
        return False
    return True
