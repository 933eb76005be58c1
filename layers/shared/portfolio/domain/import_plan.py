"""Splitting a large import into steps that each leave a valid history.

A DynamoDB transaction holds at most 100 writes (each transaction, each token whose holder count
changes, and the portfolio item), so an import of hundreds of transactions is stored in several
atomic steps. Readers may load the portfolio between two steps, and a step may
fail after earlier ones landed, so every prefix of the plan must replay without an overdraft on
its own. Acquisitions go first (adding one never takes a holding below zero), then the other
transactions in time order; each step is checked by a replay, and shortened if it would overdraw.

A replay costs the whole history, so it is skipped where no overdraft is possible: once the complete
history is known to replay, a prefix that leaves out only departures (sells and transfers out, whose
absence leaves every later balance higher), or that adds to the stored history only arrivals paying
no fee in another token, replays too. A plain import of buys and sells is then planned with one replay,
however many steps it takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain

from portfolio.domain.accounting import ARRIVING, Ledger, extend
from portfolio.domain.errors import DomainError, OverdraftError
from portfolio.domain.transactions import Transaction, TransactionType

_ACQUISITIONS = ARRIVING
_DEPARTURES = frozenset({TransactionType.SELL, TransactionType.TRANSFER_OUT})


class ImportNotSplittable(DomainError):
    """No order of steps keeps every intermediate history valid; the client should split the import."""

    code = "import_not_splittable"


# What storing one backdated import may replay, in transactions (history and import, once per step):
# a few seconds of the API function's CPU, well inside its timeout.
MAX_REPLAYED_PER_IMPORT = 30_000


class ImportTooCostly(DomainError):
    """A backdated import would replay the history once per step, more than one request may."""

    code = "import_too_large"


def check_replay_cost(stored: int, new: int, steps: int) -> None:
    """Raises ImportTooCostly when `steps` replays of `stored` + `new` transactions exceed the bound,
    saying how many transactions one request may carry for this history."""
    if steps <= 1 or steps * (stored + new) <= MAX_REPLAYED_PER_IMPORT:
        return
    fitting = 1
    while _steps_for(fitting + 1) * (stored + fitting + 1) <= MAX_REPLAYED_PER_IMPORT and fitting < new:
        fitting += 1
    raise ImportTooCostly(
        f"these {new} transactions are older than stored ones, so each of the {steps} steps storing them "
        f"replays all {stored + new}; send at most {max(fitting, _PER_STEP)} per request, oldest first",
        field="transactions",
    )


# Transactions in a step when they are all of one token (the step's other write is its holder count).
_PER_STEP = 98


def _steps_for(transactions: int) -> int:
    return -(-transactions // _PER_STEP)


def plan_appended(new: Sequence[Transaction], *, max_actions: int) -> list[list[Transaction]]:
    """Steps for transactions that all sort after the stored history, in time order. Each prefix of
    a history that replays replays too, so once the complete history is checked no step needs a
    replay, and each step's positions extend the previous step's."""
    ordered = sorted(new, key=lambda transaction: transaction.sort_key)
    steps: list[list[Transaction]] = []
    start = 0
    while start < len(ordered):
        end = _longest_step_end(ordered, start, max_actions)
        steps.append(ordered[start:end])
        start = end
    return steps


@dataclass(frozen=True, slots=True)
class StoredImport:
    """An import planned against the stored positions: its steps, the positions it ends at, and
    (computed as they are asked for) the positions after each step."""

    steps: list[list[Transaction]]
    final: Ledger
    after_each: Iterator[Ledger]


def plan_stored_import(
    base: Ledger,
    new: Sequence[Transaction],
    *,
    history: Callable[[], Sequence[Transaction]],
    max_actions: int,
) -> StoredImport:
    """Steps of at most `max_actions` writes for `new` after the stored positions `base`, whose
    `history` is read only when needed. Transactions that all sort after the stored ones extend the
    positions in one pass; a backdated import replays the stored history, once for where it ends and
    once per step but the last. Raises OverdraftError, ImportNotSplittable or ImportTooCostly."""
    if base.last_applied is None or min(transaction.sort_key for transaction in new) > base.last_applied:
        steps = plan_appended(new, max_actions=max_actions)
        return StoredImport(steps, extend(base, new), _extended(base, steps))
    stored = history()
    restarted = base.restarted()
    final = extend(restarted, [*stored, *new])

    def apply(prefix: Sequence[Transaction]) -> Ledger:
        return final if len(prefix) == len(new) else extend(restarted, [*stored, *prefix])

    steps = plan_import(apply, new, max_actions=max_actions)
    check_replay_cost(len(stored), len(new), len(steps))
    after_each = (apply(list(chain.from_iterable(steps[: index + 1]))) for index in range(len(steps)))
    return StoredImport(steps, final, after_each)


def _extended(ledger: Ledger, steps: Sequence[Sequence[Transaction]]) -> Iterator[Ledger]:
    for step in steps:
        ledger = extend(ledger, step)
        yield ledger


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
    surely_valid = _prefixes_that_replay(ordered)
    steps: list[list[Transaction]] = []
    start = 0
    while start < len(ordered):
        end = _longest_step_end(ordered, start, max_actions)
        while not (surely_valid(end) or _valid(apply, ordered[:end])):
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


def _longest_step_end(ordered: Sequence[Transaction], start: int, max_actions: int) -> int:
    """The end of the longest step from `start` within `max_actions` writes (at least one transaction)."""
    tokens: set[object] = set()
    end = start
    while end < len(ordered):
        transaction = ordered[end]
        added = {transaction.token, transaction.destination_token} - {None} - tokens
        if end > start and (end - start + 1) + len(tokens) + len(added) > max_actions:
            break
        tokens |= added
        end += 1
    return end


def _prefixes_that_replay(ordered: Sequence[Transaction]) -> Callable[[int], bool]:
    """Whether the stored history plus `ordered[:end]` surely replays, given that the stored history
    plus all of `ordered` does (acquisitions first, then the others in time order)."""
    acquisitions = sum(1 for transaction in ordered if transaction.type in _ACQUISITIONS)
    # Leading acquisitions that only add: the stored history plus any of them replays.
    only_adding = 0
    while only_adding < acquisitions and _only_adds(ordered[only_adding]):
        only_adding += 1
    # From here on only departures: leaving any tail of them out keeps every balance as high or higher.
    departures_from = len(ordered)
    while departures_from > acquisitions and ordered[departures_from - 1].type in _DEPARTURES:
        departures_from -= 1
    return lambda end: end <= only_adding or end >= departures_from


def _only_adds(transaction: Transaction) -> bool:
    return transaction.fee_token_id is None or transaction.fee_token_id == transaction.token


def _valid(apply: Callable[[Sequence[Transaction]], Ledger], prefix: Sequence[Transaction]) -> bool:
    try:
        apply(prefix)
    except OverdraftError:
        return False
    return True
