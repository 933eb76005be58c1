"""Splitting a large import into steps that each leave a valid history.

A DynamoDB transaction holds at most 100 writes (each transaction, each token whose holder count
changes, and the portfolio item), so an import of hundreds of transactions is stored in several
atomic steps. Readers may load the portfolio between two steps, and a step may
fail after earlier ones landed, so every prefix of the plan must replay without an overdraft on
its own. Acquisitions go first (adding one never takes a holding below zero), then the other
transactions in time order; each step is checked by a replay, and shortened if it would overdraw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from portfolio.domain.accounting import ARRIVING, Ledger
from portfolio.domain.errors import DomainError, OverdraftError
from portfolio.domain.transactions import Transaction

_ACQUISITIONS = ARRIVING


class ImportNotSplittable(DomainError):
    """No order of steps keeps every intermediate history valid; the client should split the import."""

    code = "import_not_splittable"


def actions_of(step: Sequence[Transaction]) -> int:
    """Writes a step costs at most: one per transaction and one per token whose holder count may change."""
    tokens = {transaction.token for transaction in step}
    tokens |= {transaction.destination_token for transaction in step if transaction.destination_token is not None}
    return len(step) + len(tokens)


def plan_import(
    apply: Callable[[Sequence[Transaction]], Ledger], new: Sequence[Transaction], *, max_actions: int
) -> list[list[Transaction]]:
    """Steps of at most `max_actions` writes (actions_of); the stored history plus any prefix of the
    steps is valid. `apply(prefix)` returns the ledger after the stored history and `prefix`, or
    raises OverdraftError.

    Raises OverdraftError when the complete history overdraws (nothing may be written), and
    ImportNotSplittable in the rare case where only the complete history is valid.
    """
    apply(new)
    if not new:
        return []
    if actions_of(new) <= max_actions:
        return [list(new)]
    ordered = sorted(new, key=lambda transaction: (transaction.type not in _ACQUISITIONS, transaction.sort_key))
    steps: list[list[Transaction]] = []
    start = 0
    while start < len(ordered):
        end = start + 1
        while end < len(ordered) and actions_of(ordered[start : end + 1]) <= max_actions:
            end += 1
        while not _valid(apply, ordered[:end]):
            end -= 1
            if end == start:
                raise ImportNotSplittable(
                    f"these {len(new)} transactions can only be stored together; "
                    f"send them in smaller requests, oldest first",
                    field="transactions",
                )
        steps.append(ordered[start:end])
        start = end
    return steps


def _valid(apply: Callable[[Sequence[Transaction]], Ledger], prefix: Sequence[Transaction]) -> bool:
    try:
        apply(prefix)
    except OverdraftError:
        return False
    return True
