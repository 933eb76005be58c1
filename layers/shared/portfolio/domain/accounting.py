"""Replaying a user's transactions into positions: amounts, cost basis, realized P&L, invested.

Transactions are replayed in `Transaction.sort_key` order, one position per token (chain:address).
A position holds lots; a lot has an amount, a cost in USD, or an UNKNOWN cost, and the time it
was first acquired.

Rules, per transaction type:

- buy: a lot of `amount` costing amount * priceUsd + feeUsd. That cost counts as invested.
- transfer_in with priceUsd: the same as a buy (the fee is part of the cost and of invested).
- income (staking rewards, airdrops, interest) with priceUsd: a lot costing amount * priceUsd, its
  value when received; that value is income (`income`, counted in realized P&L), not invested. Its
  fee is an expense. Without a price (none on the market either) it is a lot of unknown cost and no
  income.
- transfer_in (or buy) without priceUsd, when the market had no price either: a lot of unknown
  cost. Its value counts in the portfolio total, but it has no cost basis, no unrealized P&L and
  adds nothing to invested.
- sell: takes `amount` out of the lots. Net proceeds = amount * priceUsd - feeUsd, shared between
  the known-cost and unknown-cost parts taken in proportion to their amounts. For the known part,
  realized P&L += its net proceeds - the cost of the lots taken. The unknown part's proceeds are
  not P&L (their cost was never known); they are kept apart as `untracked_proceeds`.
- transfer_out: takes `amount` out of the lots with no P&L; the known cost leaving is
  `withdrawn_cost` (what left the portfolio at cost).
- bridge: takes `amount` out of the source token's lots and adds the same lots, cost and
  acquisition time kept (unknown stays unknown), to the destination token. No P&L.
- The fee of a transfer_in without price, a transfer_out or a bridge is an expense: it lowers
  the realized P&L of the token it was paid on (`fees_expensed`). Fees on buys and priced
  transfers in are part of the cost; fees on sells lower the proceeds.
- A priceUsd on a transfer_out or a bridge is informational: moving a holding realizes nothing.
- A transaction's category overrides the registry's for its token; the latest one wins.

Which lots a removal takes:

- FIFO: the earliest acquired first. Bridged lots keep their acquisition time, so on the
  destination they take their place among the lots by when they were first acquired.
- LIFO: the latest acquired first (of lots acquired at the same moment, the one recorded last).
- HIFO: the highest cost per unit first, the earliest acquired among equal ones; lots of unknown
  cost go last, as if they cost nothing (so a sale realizes the least gain the known lots allow).
- A lot taken in part keeps the rest of its amount and cost, under every method.
- Average cost: a position is one pool of known-cost amount (with its total cost) and
  unknown-cost amount. A removal takes known and unknown amounts in proportion to their share of
  the holding, and the known part at the pool's average cost.

Removing more than is held at that moment raises OverdraftError, with two exceptions:
- a transfer_out recorded by wallet sync (source "chain") states what left a wallet on chain, which
  has happened whatever the ledger holds; it takes, up to its amount, what is held and what the
  wallet still accounts for (coins a sale tagged with the wallet already took out are not taken
  twice, nor another wallet's coins instead), and never fails;
- a portfolio that accepts missing acquisitions (`Ledger.accept_missing`, the setting
  `missingAcquisitions: "accept"`) treats the part not held as acquired at cost zero just before the
  removal, the way rotki does: `missing_amount` counts it, and the proceeds a sale gets for it,
  all gain, are also counted apart in `missing_pnl`.

Wallets: the ledger keeps, per linked wallet and token, the amount its transactions (those wallet
sync recorded and those the user tagged with the wallet) account for: `wallet_amounts`. Wallet
sync compares that with the chain and records only the difference. A bridge tagged with a wallet
moves the amount from the source token to the destination token of the same wallet. A transfer_out
recorded by wallet sync lowers the wallet's amount by at most what it accounts for: when a sale the
user tagged with the wallet already took the coins out, the chain's record of them leaving is the
same event, seen twice, and must not leave the wallet short.

A Ledger is also the stored form of a user's positions: `extend` applies transactions that sort
after everything already applied, starting from the positions alone, so a write never needs the
history. A transaction that sorts earlier (a backdated write), a deletion or another method needs
the history replayed (`replay`); `extend` then raises ReplayNeeded. Extending and replaying give
the same Ledger (a property test holds them to it).

Identities these rules make true (exactly, see arithmetic.py):

- per position: invested + cost_bridged_in == cost_basis + cost_sold + withdrawn_cost + cost_bridged_out
- per position: invested + income + cost_bridged_in == cost_basis + cost_sold + withdrawn_cost
                + cost_bridged_out
- per position: realized_pnl == net_proceeds_known - cost_sold - fees_expensed + income
- for the portfolio, with unrealized P&L summed over the positions that have a price:
  realized + unrealized == known_value + net_proceeds_known - invested + withdrawn_cost
                           - fees_expensed + cost_basis_of_unpriced_positions
  where known_value is the value of the known-cost amounts of the priced positions.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from portfolio.domain.arithmetic import EXACT, exact, prorate
from portfolio.domain.errors import OverdraftError
from portfolio.domain.money import ZERO
from portfolio.domain.portfolio_record import CostBasisMethod
from portfolio.domain.token_registry import lookup
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import Category, Transaction, TransactionType


@dataclass(frozen=True, slots=True)
class Lot:
    amount: Decimal
    cost: Decimal | None  # None: received without a price, cost basis unknown
    acquired_at: datetime


@dataclass(frozen=True, slots=True)
class Taken:
    """What a removal took out of a position, and how much of it was not held (missing acquisitions)."""

    lots: tuple[Lot, ...]
    missing: Decimal = ZERO

    @property
    def known_amount(self) -> Decimal:
        return sum((lot.amount for lot in self.lots if lot.cost is not None), ZERO)

    @property
    def known_cost(self) -> Decimal:
        return sum((lot.cost for lot in self.lots if lot.cost is not None), ZERO)


class _Holdings(Protocol):
    def add(self, lots: Iterable[Lot]) -> None: ...
    def take(self, amount: Decimal, at: datetime) -> Taken: ...
    def held(self) -> Decimal: ...
    def lots(self) -> tuple[Lot, ...]: ...


class _LotHoldings:
    """Lots in acquisition order; which one a removal takes next is the method's choice."""

    def __init__(self, method: CostBasisMethod) -> None:
        self._lots: list[Lot] = []
        self._next = _NEXT_LOT[method]

    def add(self, lots: Iterable[Lot]) -> None:
        for lot in lots:
            bisect.insort_right(self._lots, lot, key=lambda existing: existing.acquired_at)

    def take(self, amount: Decimal, at: datetime) -> Taken:
        taken: list[Lot] = []
        remaining = amount
        while remaining > ZERO:
            index = self._next(self._lots)
            lot = self._lots[index]
            if lot.amount <= remaining:
                taken.append(self._lots.pop(index))
                remaining -= lot.amount
                continue
            part_cost = None if lot.cost is None else prorate(lot.cost, remaining, lot.amount)
            taken.append(Lot(remaining, part_cost, lot.acquired_at))
            left_cost = None if lot.cost is None or part_cost is None else lot.cost - part_cost
            self._lots[index] = Lot(lot.amount - remaining, left_cost, lot.acquired_at)
            remaining = ZERO
        return Taken(tuple(taken))

    def held(self) -> Decimal:
        return sum((lot.amount for lot in self._lots), ZERO)

    def lots(self) -> tuple[Lot, ...]:
        return tuple(self._lots)


class _AverageHoldings:
    """One pool: known-cost amount with its total cost, and unknown-cost amount."""

    def __init__(self) -> None:
        self._known_amount = ZERO
        self._known_cost = ZERO
        self._unknown_amount = ZERO
        self._first_acquired: datetime | None = None

    def add(self, lots: Iterable[Lot]) -> None:
        for lot in lots:
            if lot.cost is None:
                self._unknown_amount += lot.amount
            else:
                self._known_amount += lot.amount
                self._known_cost += lot.cost
            if self._first_acquired is None or lot.acquired_at < self._first_acquired:
                self._first_acquired = lot.acquired_at

    def take(self, amount: Decimal, at: datetime) -> Taken:
        taken = self._take(amount, at)
        if self.held() == ZERO:
            # An emptied pool starts afresh: its lots() then read the same whether restored or replayed.
            self._first_acquired = None
        return taken

    def _take(self, amount: Decimal, at: datetime) -> Taken:
        held = self.held()
        known_part = prorate(amount, self._known_amount, held)
        # Amounts share one grid (arithmetic.QUANTUM), so rounding never pushes a part past its pool;
        # the clamp only documents that.
        unknown_part = min(amount - known_part, self._unknown_amount)
        known_part = amount - unknown_part
        cost_part = prorate(self._known_cost, known_part, self._known_amount) if known_part else ZERO
        self._known_amount -= known_part
        self._known_cost -= cost_part
        self._unknown_amount -= unknown_part
        taken = []
        if known_part > ZERO:
            taken.append(Lot(known_part, cost_part, at))
        if unknown_part > ZERO:
            taken.append(Lot(unknown_part, None, at))
        return Taken(tuple(taken))

    def held(self) -> Decimal:
        return self._known_amount + self._unknown_amount

    def lots(self) -> tuple[Lot, ...]:
        acquired = self._first_acquired
        if acquired is None:
            return ()
        pool = []
        if self._known_amount > ZERO:
            pool.append(Lot(self._known_amount, self._known_cost, acquired))
        if self._unknown_amount > ZERO:
            pool.append(Lot(self._unknown_amount, None, acquired))
        return tuple(pool)


@dataclass(frozen=True, slots=True)
class Position:
    """One token on one chain after the replay. `amount` 0 means closed (its P&L still counts)."""

    token: TokenId
    lots: tuple[Lot, ...]
    amount: Decimal
    known_amount: Decimal
    unknown_amount: Decimal
    cost_basis: Decimal  # cost of the known-cost amount still held
    invested: Decimal  # buys and priced transfers in, fees included
    cost_bridged_in: Decimal
    cost_bridged_out: Decimal
    cost_sold: Decimal
    withdrawn_cost: Decimal
    net_proceeds_known: Decimal
    untracked_proceeds: Decimal
    fees_expensed: Decimal
    missing_amount: Decimal  # removed without being held: acquired at cost zero (missing acquisitions)
    missing_pnl: Decimal  # the part of realized P&L that sales of missing acquisitions made
    income: Decimal  # the value of what came in as income, when it came
    realized_pnl: Decimal  # net_proceeds_known - cost_sold - fees_expensed + income
    category_override: Category | None

    @property
    def is_open(self) -> bool:
        return self.amount > ZERO

    @property
    def acquired_cost(self) -> Decimal:
        """Known cost that ever entered this position: the base of its ROI."""
        with exact():
            return self.invested + self.cost_bridged_in

    def value(self, price: Decimal) -> Decimal:
        with exact():
            return self.amount * price

    def unrealized_pnl(self, price: Decimal) -> Decimal:
        """Value of the known-cost amount at `price` minus its cost; unknown-cost amounts have none."""
        with exact():
            return self.known_amount * price - self.cost_basis


# What brings coins into a position (a bridge's destination aside).
ARRIVING = frozenset({TransactionType.BUY, TransactionType.TRANSFER_IN, TransactionType.INCOME})


class ReplayNeeded(Exception):
    """A transaction sorts before what the ledger already holds: rebuild it from the whole history."""


SortKey = tuple[datetime, str]


@dataclass(frozen=True, slots=True)
class Ledger:
    """All positions of one user, closed ones included, and portfolio-level totals.

    `last_applied` is the sort key of the latest transaction applied; `first_applied_at` the time
    of the earliest. Both are None for an empty ledger. `lots_omitted`: read for valuation only,
    with every figure but without the lots, so it cannot be extended (a sale needs the lots).
    """

    method: CostBasisMethod
    positions: Mapping[TokenId, Position]
    transaction_count: int
    last_applied: SortKey | None = None
    first_applied_at: datetime | None = None
    lots_omitted: bool = False
    wallet_amounts: Mapping[tuple[str, TokenId], Decimal] = field(default_factory=dict)
    accept_missing: bool = False

    @classmethod
    def empty(cls, method: CostBasisMethod = CostBasisMethod.FIFO, *, accept_missing: bool = False) -> Ledger:
        return cls(method=method, positions={}, transaction_count=0, accept_missing=accept_missing)

    def wallet_amount(self, wallet_id: str, token: TokenId) -> Decimal:
        """What the transactions of this wallet account for of this token (0 when none)."""
        return self.wallet_amounts.get((wallet_id, token), ZERO)

    def wallet_tokens(self, wallet_id: str, chain: str) -> list[TokenId]:
        """Tokens of this chain that the wallet's transactions account for an amount of."""
        return [token for (owner, token) in self.wallet_amounts if owner == wallet_id and token.chain == chain]

    def held_tokens(self) -> list[TokenId]:
        """Tokens with an amount still held: the only ones worth pricing."""
        return [position.token for position in self.positions.values() if position.is_open]

    def valued_tokens(self) -> list[TokenId]:
        """Tokens a view values: those held, and those with missing acquisitions (valued apart)."""
        return [position.token for position in self.positions.values() if position.is_open or position.missing_amount]

    def open_positions(self) -> Iterator[Position]:
        return (position for position in self.positions.values() if position.is_open)

    def _total(self, figure: str) -> Decimal:
        with exact():
            return sum((getattr(position, figure) for position in self.positions.values()), ZERO)

    @property
    def invested(self) -> Decimal:
        return self._total("invested")

    @property
    def realized_pnl(self) -> Decimal:
        return self._total("realized_pnl")

    @property
    def untracked_proceeds(self) -> Decimal:
        return self._total("untracked_proceeds")

    @property
    def withdrawn_cost(self) -> Decimal:
        return self._total("withdrawn_cost")

    @property
    def fees_expensed(self) -> Decimal:
        return self._total("fees_expensed")

    @property
    def net_proceeds_known(self) -> Decimal:
        return self._total("net_proceeds_known")

    @property
    def cost_basis(self) -> Decimal:
        return self._total("cost_basis")

    @property
    def missing_pnl(self) -> Decimal:
        return self._total("missing_pnl")

    @property
    def income(self) -> Decimal:
        return self._total("income")


# What a position carries besides its lots: kept by the replay, stored with the positions.
RUNNING_TOTALS = (
    "invested",
    "cost_bridged_in",
    "cost_bridged_out",
    "cost_sold",
    "withdrawn_cost",
    "net_proceeds_known",
    "untracked_proceeds",
    "fees_expensed",
    "missing_amount",
    "missing_pnl",
    "income",
)


@dataclass
class _Book:
    """A position while the replay runs."""

    token: TokenId
    holdings: _Holdings
    invested: Decimal = ZERO
    cost_bridged_in: Decimal = ZERO
    cost_bridged_out: Decimal = ZERO
    cost_sold: Decimal = ZERO
    withdrawn_cost: Decimal = ZERO
    net_proceeds_known: Decimal = ZERO
    untracked_proceeds: Decimal = ZERO
    fees_expensed: Decimal = ZERO
    missing_amount: Decimal = ZERO
    missing_pnl: Decimal = ZERO
    income: Decimal = ZERO
    category_override: Category | None = field(default=None)

    def take(
        self, transaction: Transaction, *, accept_missing: bool = False, wallet_holds: Decimal | None = None
    ) -> Taken:
        """The lots a removal takes; `missing` on the result is the part not held that was accepted.
        `wallet_holds`: what the transaction's wallet accounts for of the token, before it."""
        available = self.holdings.held()
        if transaction.from_chain and transaction.type is TransactionType.TRANSFER_OUT:
            # The coins left on chain: take what the ledger holds of them and the wallet accounts for.
            amount = min(transaction.amount, available, max(wallet_holds or ZERO, ZERO))
            return self.holdings.take(amount, transaction.timestamp) if amount > ZERO else Taken(())
        if transaction.amount > available and accept_missing:
            missing = transaction.amount - available
            self.holdings.add([Lot(missing, ZERO, transaction.timestamp)])
            self.missing_amount += missing
            return replace(self.holdings.take(transaction.amount, transaction.timestamp), missing=missing)
        if transaction.amount > available:
            raise OverdraftError(
                holding=holding_label(self.token),
                available=available,
                requested=transaction.amount,
                transaction_id=transaction.id,
            )
        return self.holdings.take(transaction.amount, transaction.timestamp)

    def freeze(self) -> Position:
        totals = {name: getattr(self, name) for name in RUNNING_TOTALS}
        return restore_position(self.token, self.holdings.lots(), **totals, category_override=self.category_override)


def restore_position(
    token: TokenId,
    lots: tuple[Lot, ...],
    *,
    invested: Decimal,
    cost_bridged_in: Decimal,
    cost_bridged_out: Decimal,
    cost_sold: Decimal,
    withdrawn_cost: Decimal,
    net_proceeds_known: Decimal,
    untracked_proceeds: Decimal,
    fees_expensed: Decimal,
    category_override: Category | None,
    missing_amount: Decimal = ZERO,
    missing_pnl: Decimal = ZERO,
    income: Decimal = ZERO,
) -> Position:
    """A Position from its lots and running totals; the amounts, cost basis and realized P&L follow."""
    known_amount = unknown_amount = cost_basis = ZERO
    add = EXACT.add  # stored positions are restored thousands of times a second: no context switches
    for lot in lots:
        if lot.cost is None:
            unknown_amount = add(unknown_amount, lot.amount)
        else:
            known_amount = add(known_amount, lot.amount)
            cost_basis = add(cost_basis, lot.cost)
    with exact():
        return Position(
            token=token,
            lots=lots,
            amount=known_amount + unknown_amount,
            known_amount=known_amount,
            unknown_amount=unknown_amount,
            cost_basis=cost_basis,
            invested=invested,
            cost_bridged_in=cost_bridged_in,
            cost_bridged_out=cost_bridged_out,
            cost_sold=cost_sold,
            withdrawn_cost=withdrawn_cost,
            net_proceeds_known=net_proceeds_known,
            untracked_proceeds=untracked_proceeds,
            fees_expensed=fees_expensed,
            missing_amount=missing_amount,
            missing_pnl=missing_pnl,
            income=income,
            realized_pnl=net_proceeds_known - cost_sold - fees_expensed + income,
            category_override=category_override,
        )


def holding_label(token: TokenId) -> str:
    """`chain:address (SYMBOL)` when the registry knows the symbol, else `chain:address`."""
    info = lookup(token)
    return token.key if info is None else f"{token.key} ({info.symbol})"


def replay(
    transactions: Iterable[Transaction],
    method: CostBasisMethod = CostBasisMethod.FIFO,
    *,
    accept_missing: bool = False,
) -> Ledger:
    """Positions per token after every transaction, in replay order. Raises OverdraftError unless
    missing acquisitions are accepted."""
    return _apply_all(Ledger.empty(method, accept_missing=accept_missing), transactions)


def extend(ledger: Ledger, transactions: Iterable[Transaction]) -> Ledger:
    """The ledger after `transactions`, which must all sort after `ledger.last_applied`.

    Raises ReplayNeeded when one sorts earlier, and OverdraftError like replay.
    """
    return _apply_all(ledger, transactions)


def _highest_unit_cost(lots: list[Lot]) -> int:
    """The lot of the highest cost per unit (unknown cost counts as none); the earliest among equals.
    Unit costs are compared to 1e-18 USD: what is left of a lot taken in part may have lost a last
    digit to rounding, and must still tie with a lot bought at the same price."""
    best, best_cost = 0, _unit_cost(lots[0])
    for index in range(1, len(lots)):
        cost = _unit_cost(lots[index])
        if cost is not None and (best_cost is None or cost > best_cost):
            best, best_cost = index, cost
    return best


_UNIT_COST_QUANTUM = Decimal("1e-18")


def _unit_cost(lot: Lot) -> Decimal | None:
    if lot.cost is None:
        return None
    return EXACT.divide(lot.cost, lot.amount).quantize(_UNIT_COST_QUANTUM, context=EXACT)


_NEXT_LOT: dict[CostBasisMethod, Callable[[list[Lot]], int]] = {
    CostBasisMethod.FIFO: lambda lots: 0,
    CostBasisMethod.LIFO: lambda lots: len(lots) - 1,
    CostBasisMethod.HIFO: _highest_unit_cost,
}


def _restored_holdings(method: CostBasisMethod, lots: Iterable[Lot]) -> _Holdings:
    holdings: _Holdings = _AverageHoldings() if method is CostBasisMethod.AVERAGE else _LotHoldings(method)
    holdings.add(lots)
    return holdings


def _restored_book(method: CostBasisMethod, position: Position) -> _Book:
    totals = {name: getattr(position, name) for name in RUNNING_TOTALS}
    holdings = _restored_holdings(method, position.lots)
    return _Book(token=position.token, holdings=holdings, **totals, category_override=position.category_override)


def _apply_all(ledger: Ledger, transactions: Iterable[Transaction]) -> Ledger:
    if ledger.lots_omitted:
        raise ValueError("positions read without their lots cannot be extended")
    ordered = sorted(transactions, key=lambda transaction: transaction.sort_key)
    if not ordered:
        return ledger
    if ledger.last_applied is not None and ordered[0].sort_key <= ledger.last_applied:
        raise ReplayNeeded(f"transaction {ordered[0].id} sorts before the latest one applied")
    method = ledger.method
    books: dict[TokenId, _Book] = {}

    def book(token: TokenId) -> _Book:
        if token not in books:
            stored = ledger.positions.get(token)
            if stored is None:
                books[token] = _Book(token=token, holdings=_restored_holdings(method, ()))
            else:
                books[token] = _restored_book(method, stored)
        return books[token]

    wallet_amounts = dict(ledger.wallet_amounts)
    with exact():
        for transaction in ordered:
            source = book(transaction.token)
            if transaction.category is not None:
                source.category_override = transaction.category
            wallet_holds = None
            if transaction.wallet_id is not None:
                wallet_holds = wallet_amounts.get((transaction.wallet_id, transaction.token), ZERO)
            missing_before = source.missing_amount
            _apply(transaction, source, book, accept_missing=ledger.accept_missing, wallet_holds=wallet_holds)
            if transaction.wallet_id is not None:
                # Coins it removed that were not held (accepted missing acquisitions) were the wallet's too.
                _count_for_wallet(transaction, wallet_amounts, source.missing_amount - missing_before)
        positions = dict(ledger.positions) | {token: touched.freeze() for token, touched in books.items()}
    return Ledger(
        method=method,
        positions={token: positions[token] for token in sorted(positions)},
        transaction_count=ledger.transaction_count + len(ordered),
        last_applied=ordered[-1].sort_key,
        first_applied_at=ledger.first_applied_at or ordered[0].timestamp,
        accept_missing=ledger.accept_missing,
        wallet_amounts={key: wallet_amounts[key] for key in sorted(wallet_amounts) if wallet_amounts[key]},
    )


def _count_for_wallet(
    transaction: Transaction, amounts: dict[tuple[str, TokenId], Decimal], missing: Decimal = ZERO
) -> None:
    wallet_id = transaction.wallet_id
    assert wallet_id is not None
    arriving = transaction.type in ARRIVING
    source_key = (wallet_id, transaction.token)
    accounted = amounts.get(source_key, ZERO) + missing
    if arriving:
        amounts[source_key] = accounted + transaction.amount
    elif transaction.from_chain:
        amounts[source_key] = accounted - min(transaction.amount, max(accounted, ZERO))
    else:
        amounts[source_key] = accounted - transaction.amount
    destination = transaction.destination_token
    if destination is not None:
        destination_key = (wallet_id, destination)
        amounts[destination_key] = amounts.get(destination_key, ZERO) + transaction.amount


def _apply(
    transaction: Transaction,
    source: _Book,
    book: Callable[[TokenId], _Book],
    *,
    accept_missing: bool,
    wallet_holds: Decimal | None = None,
) -> None:
    fee = transaction.fee_usd or ZERO
    match transaction.type:
        case TransactionType.BUY | TransactionType.TRANSFER_IN if transaction.price_usd is not None:
            cost = transaction.amount * transaction.price_usd + fee
            source.holdings.add([Lot(transaction.amount, cost, transaction.timestamp)])
            source.invested += cost
        case TransactionType.INCOME if transaction.price_usd is not None:
            value = transaction.amount * transaction.price_usd
            source.holdings.add([Lot(transaction.amount, value, transaction.timestamp)])
            source.income += value
            source.fees_expensed += fee
        case TransactionType.BUY | TransactionType.TRANSFER_IN | TransactionType.INCOME:
            # No price known (none given, none on the market at the time): a lot of unknown cost.
            source.holdings.add([Lot(transaction.amount, None, transaction.timestamp)])
            source.fees_expensed += fee
        case TransactionType.SELL:
            if transaction.price_usd is None:
                raise ValueError(f"sale {transaction.id} has no price")  # the recorder prices every sale
            taken = source.take(transaction, accept_missing=accept_missing)
            net_proceeds = transaction.amount * transaction.price_usd - fee
            known_proceeds = prorate(net_proceeds, taken.known_amount, transaction.amount)
            source.net_proceeds_known += known_proceeds
            source.untracked_proceeds += net_proceeds - known_proceeds
            source.cost_sold += taken.known_cost
            if taken.missing:
                source.missing_pnl += prorate(net_proceeds, taken.missing, transaction.amount)
        case TransactionType.TRANSFER_OUT:
            taken = source.take(transaction, accept_missing=accept_missing, wallet_holds=wallet_holds)
            source.withdrawn_cost += taken.known_cost
            source.fees_expensed += fee
        case TransactionType.BRIDGE:
            destination_token = transaction.destination_token
            assert destination_token is not None  # the model requires it for a bridge
            taken = source.take(transaction, accept_missing=accept_missing)
            destination = book(destination_token)
            destination.holdings.add(taken.lots)
            source.cost_bridged_out += taken.known_cost
            destination.cost_bridged_in += taken.known_cost
            source.fees_expensed += fee
