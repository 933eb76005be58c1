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
  `withdrawn_cost` (what left the portfolio at cost). With a priceUsd (the market's when none was
  sent), what the known-cost coins gained while held, value when they left less their cost, is
  `withdrawn_gain`: it leaves the total P&L with them, and is neither a loss nor a realized gain.
- bridge: takes `amount` out of the source token's lots and adds the same lots, cost and
  acquisition time kept (unknown stays unknown), to the destination token. No P&L.
- The fee of a transfer_in without price, a transfer_out or a bridge is an expense: it lowers
  the realized P&L of the token it was paid on (`fees_expensed`). Fees on buys and priced
  transfers in are part of the cost; fees on sells lower the proceeds.
- A fee paid in a token (`feeToken`, `feeAmount`: gas in ETH on a UNI buy) takes those coins out of
  their own lots first, at cost. On a priced buy or transfer in, or a sale, its value, feeUsd (the
  recorder fills in the market value when it is left out; without one, the coins' cost), is used
  as above and the coins leave with no P&L, as rotki does by default (`cost_paid_as_fees`; the gain
  they had is carried into the trade's cost). Elsewhere (transfers, bridges, income, arrivals of
  unknown cost) the coins are spent for nothing: their cost is a realized loss of their own
  position, and feeUsd only says what they were worth. When the fee token is the one arriving, the
  fee is kept out of the coins received: fewer arrive, at the transaction's whole cost.
- A priceUsd on a bridge is informational: moving a holding realizes nothing.
- A transaction's category overrides the registry's for its token; the latest one wins.

Which lots a removal takes:

- FIFO: the earliest acquired first. Bridged lots keep their acquisition time, so on the
  destination they take their place among the lots by when they were first acquired.
- LIFO: the latest acquired first (of lots acquired at the same moment, the one recorded last; a lot
  keeps the sequence of the transaction that acquired it).
- HIFO: the highest cost per unit first, the earliest acquired among equal ones; lots of unknown
  cost go last, as if they cost nothing (so a sale realizes the least gain the known lots allow).
- A lot taken in part keeps the rest of its amount and cost, under every method.
- Average cost: a position is one pool of known-cost amount (with its total cost) and
  unknown-cost amount. A removal takes known and unknown amounts in proportion to their share of
  the holding, and the known part at the pool's average cost.

Scope (`Ledger.scope`, the setting costBasisScope): under "chain" a removal takes the lots of its own
token on its own chain. Under "asset" it takes the method's next lots among all tokens of the same
registry asset (ETH on Ethereum, Arbitrum and Base; USDC wherever it is), as tax tools that know no
chains do; average cost is then one pool per asset. Each chain must still hold what it holds: when
a removal took another chain's lot, the removing chain's own next lots move there in exchange (cost
and acquisition time kept), and `cost_pooled` records the cost each position gained or gave up. A
removal can never take more than its own chain holds. A bridge moves its own lots under both
scopes, so under "asset" it changes no cost at all.

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
same event, seen twice, and must not leave the wallet short. The fee coins a tagged transaction
paid in a token left the same wallet.

A Ledger is also the stored form of a user's positions: `extend` applies transactions that sort
after everything already applied, starting from the positions alone, so a write never needs the
history. A transaction that sorts earlier (a backdated write), a deletion or another method needs
the history replayed (`replay`); `extend` then raises ReplayNeeded. Extending and replaying give
the same Ledger (a property test holds them to it).

Identities these rules make true (exactly, see arithmetic.py; a missing acquisition comes in at cost
zero, so it adds nothing to either side):

- per position: invested + income + cost_bridged_in + cost_pooled == cost_basis + cost_sold
                + withdrawn_cost + cost_bridged_out + cost_paid_as_fees
- per position: realized_pnl == net_proceeds_known - cost_sold - fees_expensed + income
- for the portfolio: sum of cost_bridged_in == sum of cost_bridged_out, sum of cost_pooled == 0
- for the portfolio, with unrealized P&L summed over the positions that have a price (coins spent on
  fees count in cost_sold with no proceeds):
  realized + unrealized == known_value + net_proceeds_known - invested + withdrawn_cost
                           + cost_paid_as_fees - fees_expensed + cost_basis_of_unpriced_positions
  where known_value is the value of the known-cost amounts of the priced positions.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Protocol

from portfolio.domain.arithmetic import EXACT, exact, prorate
from portfolio.domain.errors import OverdraftError
from portfolio.domain.money import ZERO
from portfolio.domain.portfolio_record import CostBasisMethod, CostBasisScope
from portfolio.domain.token_registry import lookup
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import Category, SortKey, Transaction, TransactionType


@dataclass(frozen=True, slots=True)
class Lot:
    amount: Decimal
    cost: Decimal | None  # None: received without a price, cost basis unknown
    acquired_at: datetime
    sequence: int = 0  # of the transaction that acquired it: orders lots acquired at the same moment

    @property
    def order(self) -> tuple[datetime, int]:
        return (self.acquired_at, self.sequence)


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
            bisect.insort_right(self._lots, lot, key=lambda existing: existing.order)

    def take(self, amount: Decimal, at: datetime) -> Taken:
        taken: list[Lot] = []
        remaining = amount
        while remaining > ZERO:
            index = self._next(self._lots)
            lot = self._lots[index]
            if lot.amount <= remaining:
                taken.append(self._lots.pop(index))
            else:
                part, self._lots[index] = _split(lot, remaining)
                taken.append(part)
            remaining -= taken[-1].amount
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

    @property
    def known_amount(self) -> Decimal:
        return self._known_amount

    @property
    def known_cost(self) -> Decimal:
        return self._known_cost

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


# Not frozen, though nothing assigns to a Position once built: a refresh decodes tens of thousands
# a second, and a frozen dataclass's __init__ (one object.__setattr__ per field) costs five times more.
@dataclass(slots=True)
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
    withdrawn_gain: Decimal  # value when transferred out - cost, of the known-cost coins transferred out
    cost_paid_as_fees: Decimal  # cost of coins of this token that paid other transactions' fees
    cost_pooled: Decimal  # cost that asset pooling moved in from this asset's other chains (negative: out)
    realized_pnl: Decimal  # net_proceeds_known - cost_sold - fees_expensed + income
    category_override: Category | None

    @property
    def is_open(self) -> bool:
        return self.amount > ZERO

    @property
    def net_acquired_cost(self) -> Decimal:
        """Known cost that entered this position and was not moved out of it without P&L (transferred
        out, bridged away, spent on fees): the base of its ROI."""
        add, subtract = EXACT.add, EXACT.subtract
        acquired = add(add(self.invested, self.cost_bridged_in), self.cost_pooled)
        moved_out = add(add(self.cost_bridged_out, self.withdrawn_cost), self.cost_paid_as_fees)
        return subtract(acquired, moved_out)

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
    scope: CostBasisScope = CostBasisScope.CHAIN

    @classmethod
    def empty(
        cls,
        method: CostBasisMethod = CostBasisMethod.FIFO,
        *,
        scope: CostBasisScope = CostBasisScope.CHAIN,
        accept_missing: bool = False,
    ) -> Ledger:
        return cls(method=method, positions={}, transaction_count=0, accept_missing=accept_missing, scope=scope)

    def restarted(self) -> Ledger:
        """An empty ledger under the same settings."""
        return Ledger.empty(self.method, scope=self.scope, accept_missing=self.accept_missing)

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
        # Most figures of most positions are zero: filter(None) drops them before any addition.
        with exact():
            return sum(filter(None, map(attrgetter(figure), self.positions.values())), ZERO)

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

    @property
    def withdrawn_gain(self) -> Decimal:
        return self._total("withdrawn_gain")

    @property
    def cost_paid_as_fees(self) -> Decimal:
        return self._total("cost_paid_as_fees")

    @property
    def net_invested(self) -> Decimal:
        """What was put in, less the cost of what left without P&L (transferred out, or spent on a fee
        whose value went into another trade's cost): the base of the portfolio's ROI."""
        with exact():
            return self.invested - self.withdrawn_cost - self.cost_paid_as_fees


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
    "withdrawn_gain",
    "cost_paid_as_fees",
    "cost_pooled",
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
    withdrawn_gain: Decimal = ZERO
    cost_paid_as_fees: Decimal = ZERO
    cost_pooled: Decimal = ZERO
    category_override: Category | None = field(default=None)

    def freeze(self) -> Position:
        totals = {name: getattr(self, name) for name in RUNNING_TOTALS}
        return restore_position(self.token, self.holdings.lots(), **totals, category_override=self.category_override)


class _Replay:
    """The books of one application of transactions, and how a removal takes lots (the scope)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.books: dict[TokenId, _Book] = {}
        self._next = None if ledger.method is CostBasisMethod.AVERAGE else _NEXT_LOT[ledger.method]

    def book(self, token: TokenId) -> _Book:
        if token not in self.books:
            stored = self.ledger.positions.get(token)
            if stored is None:
                self.books[token] = _Book(token=token, holdings=_restored_holdings(self.ledger.method, ()))
            else:
                self.books[token] = _restored_book(self.ledger.method, stored)
        return self.books[token]

    def remove(
        self,
        source: _Book,
        amount: Decimal,
        transaction: Transaction,
        *,
        up_to: Decimal | None = None,
        field: str = "amount",
        pooled: bool = True,
    ) -> Taken:
        """The lots a removal of `amount` from `source` takes; `missing` on the result is the part not
        held that was accepted. `up_to`: take at most this much, and never fail (what a wallet
        accounts for, for a transfer out recorded by wallet sync). `pooled`: under scope "asset", the
        lots may come from the asset's other chains."""
        at = transaction.timestamp
        available = source.holdings.held()
        if up_to is not None:
            amount = min(amount, available, max(up_to, ZERO))
            return self._take(source, amount, at, pooled) if amount > ZERO else Taken(())
        if amount > available and self.ledger.accept_missing:
            missing = amount - available
            source.missing_amount += missing
            held = self._take(source, available, at, pooled) if available > ZERO else Taken(())
            return Taken((*held.lots, Lot(missing, ZERO, at)), missing=missing)
        if amount > available:
            raise OverdraftError(
                holding=holding_label(source.token),
                available=available,
                requested=amount,
                transaction_id=transaction.id,
                field=field,
            )
        return self._take(source, amount, at, pooled)

    def _take(self, source: _Book, amount: Decimal, at: datetime, pooled: bool) -> Taken:
        if not pooled or self.ledger.scope is CostBasisScope.CHAIN:
            return source.holdings.take(amount, at)
        pool = [self.book(token) for token in self._same_asset(source.token)]
        if len(pool) == 1:
            return source.holdings.take(amount, at)
        if self._next is None:
            return _take_pooled_average(pool, source, amount, at)
        return _take_pooled_lots(pool, source, amount, self._next, self.ledger.method)

    def _same_asset(self, token: TokenId) -> list[TokenId]:
        """This token and those of the same asset the ledger has seen, in token order."""
        asset = asset_of(token)
        known = {*self.ledger.positions, *self.books}
        return sorted(other for other in known if other == token or asset_of(other) == asset)


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
    withdrawn_gain: Decimal = ZERO,
    cost_paid_as_fees: Decimal = ZERO,
    cost_pooled: Decimal = ZERO,
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
            withdrawn_gain=withdrawn_gain,
            cost_paid_as_fees=cost_paid_as_fees,
            cost_pooled=cost_pooled,
            realized_pnl=realized_pnl_of(net_proceeds_known, cost_sold, fees_expensed, income),
            category_override=category_override,
        )


def realized_pnl_of(
    net_proceeds_known: Decimal, cost_sold: Decimal, fees_expensed: Decimal, income: Decimal
) -> Decimal:
    """A position's realized P&L from its running totals: what its sales brought over their cost,
    less the fees expensed, plus the income received."""
    if not (net_proceeds_known or cost_sold or fees_expensed or income):
        return ZERO  # most positions have sold nothing and received no income
    add, subtract = EXACT.add, EXACT.subtract
    return add(subtract(subtract(net_proceeds_known, cost_sold), fees_expensed), income)


def holding_label(token: TokenId) -> str:
    """`chain:address (SYMBOL)` when the registry knows the symbol, else `chain:address`."""
    info = lookup(token)
    return token.key if info is None else f"{token.key} ({info.symbol})"


def asset_of(token: TokenId) -> str:
    """The cross-chain asset a token's lots pool under (scope "asset"): the registry's asset id, else
    the token itself (a token the registry does not know pools with nothing)."""
    info = lookup(token)
    return token.key if info is None else info.asset


def replay(
    transactions: Iterable[Transaction],
    method: CostBasisMethod = CostBasisMethod.FIFO,
    *,
    scope: CostBasisScope = CostBasisScope.CHAIN,
    accept_missing: bool = False,
) -> Ledger:
    """Positions per token after every transaction, in replay order. Raises OverdraftError unless
    missing acquisitions are accepted."""
    return _apply_all(Ledger.empty(method, scope=scope, accept_missing=accept_missing), transactions)


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
    run = _Replay(ledger)
    wallet_amounts = dict(ledger.wallet_amounts)
    with exact():
        for transaction in ordered:
            source = run.book(transaction.token)
            if transaction.category is not None:
                source.category_override = transaction.category
            missing_before = source.missing_amount
            wallet_holds = None
            if transaction.wallet_id is not None:
                wallet_holds = wallet_amounts.get((transaction.wallet_id, transaction.token), ZERO)
            fee_missing = _apply(transaction, source, run, wallet_holds=wallet_holds)
            if transaction.wallet_id is not None:
                # Coins it removed that were not held (accepted missing acquisitions) were the wallet's too.
                missing = source.missing_amount - missing_before
                if transaction.fee_token_id == transaction.token:
                    missing -= fee_missing
                _count_for_wallet(transaction, wallet_amounts, missing)
                if transaction.fee_token_id is not None:
                    _count_fee_for_wallet(transaction, wallet_amounts, fee_missing)
        positions = dict(ledger.positions) | {token: touched.freeze() for token, touched in run.books.items()}
    return Ledger(
        method=ledger.method,
        positions={token: positions[token] for token in sorted(positions)},
        transaction_count=ledger.transaction_count + len(ordered),
        last_applied=ordered[-1].sort_key,
        first_applied_at=ledger.first_applied_at or ordered[0].timestamp,
        accept_missing=ledger.accept_missing,
        scope=ledger.scope,
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


def _count_fee_for_wallet(
    transaction: Transaction, amounts: dict[tuple[str, TokenId], Decimal], missing: Decimal
) -> None:
    """The fee coins a tagged transaction paid left the same wallet (its gas, on chain)."""
    assert transaction.wallet_id is not None and transaction.fee_token_id is not None
    assert transaction.fee_amount is not None
    key = (transaction.wallet_id, transaction.fee_token_id)
    amounts[key] = amounts.get(key, ZERO) + missing - transaction.fee_amount


def _apply(transaction: Transaction, source: _Book, run: _Replay, *, wallet_holds: Decimal | None = None) -> Decimal:
    """Applies one transaction; returns what its fee coins took that was not held (missing)."""
    fee_coins_arrive_with_it = transaction.type in ARRIVING and transaction.fee_token_id == transaction.token
    fee, fee_missing = (ZERO, ZERO) if fee_coins_arrive_with_it else _pay_fee_in_token(transaction, run)
    # A fee taken out of the coins that arrive (an exchange keeping part of a purchase) leaves fewer
    # of them at the same cost: it is inside the cost already.
    received = transaction.amount - (transaction.fee_amount or ZERO) if fee_coins_arrive_with_it else transaction.amount
    at, sequence = transaction.timestamp, transaction.sequence or 0
    match transaction.type:
        case TransactionType.BUY | TransactionType.TRANSFER_IN if transaction.price_usd is not None:
            cost = transaction.amount * transaction.price_usd + fee
            source.holdings.add([Lot(received, cost, at, sequence)])
            source.invested += cost
        case TransactionType.INCOME if transaction.price_usd is not None:
            value = transaction.amount * transaction.price_usd
            source.holdings.add([Lot(received, value, at, sequence)])
            source.income += value
            source.fees_expensed += fee
        case TransactionType.BUY | TransactionType.TRANSFER_IN | TransactionType.INCOME:
            # No price known (none given, none on the market at the time): a lot of unknown cost.
            source.holdings.add([Lot(received, None, at, sequence)])
            source.fees_expensed += fee
        case TransactionType.SELL:
            if transaction.price_usd is None:
                raise ValueError(f"sale {transaction.id} has no price")  # the recorder prices every sale
            taken = run.remove(source, transaction.amount, transaction)
            net_proceeds = transaction.amount * transaction.price_usd - fee
            known_proceeds = prorate(net_proceeds, taken.known_amount, transaction.amount)
            source.net_proceeds_known += known_proceeds
            source.untracked_proceeds += net_proceeds - known_proceeds
            source.cost_sold += taken.known_cost
            if taken.missing:
                source.missing_pnl += prorate(net_proceeds, taken.missing, transaction.amount)
        case TransactionType.TRANSFER_OUT:
            up_to = wallet_holds if transaction.from_chain else None
            taken = run.remove(source, transaction.amount, transaction, up_to=up_to)
            source.withdrawn_cost += taken.known_cost
            if transaction.price_usd is not None:
                # Not a loss and not a gain: what the coins gained while held left with them.
                source.withdrawn_gain += taken.known_amount * transaction.price_usd - taken.known_cost
            source.fees_expensed += fee
        case TransactionType.BRIDGE:
            destination_token = transaction.destination_token
            assert destination_token is not None  # the model requires it for a bridge
            # A bridge moves its own chain's lots, whatever the scope: under "asset" the pool is unchanged.
            taken = run.remove(source, transaction.amount, transaction, pooled=False)
            destination = run.book(destination_token)
            destination.holdings.add(taken.lots)
            source.cost_bridged_out += taken.known_cost
            destination.cost_bridged_in += taken.known_cost
            source.fees_expensed += fee
    return fee_missing


# With a price, their fee is part of their cost (a sale's lowers its proceeds); elsewhere an expense.
_PRICED_ARRIVALS = frozenset({TransactionType.BUY, TransactionType.TRANSFER_IN})


def _pay_fee_in_token(transaction: Transaction, run: _Replay) -> tuple[Decimal, Decimal]:
    """The USD amount of the fee that the transaction's own figures carry (its cost, its proceeds or
    its expenses), and what of the fee coins was not held (accepted as missing).

    A fee paid in a token takes those coins out of their own lots at cost first. On a trade (a buy, a
    priced transfer in, a sale) its value, feeUsd (the recorder fills in the market's, else the
    coins' cost), goes into the trade, and the coins leave with no P&L (`cost_paid_as_fees`), as
    rotki does by default. Elsewhere the coins are simply spent: their cost is the expense, realized
    where they were held, and feeUsd only says what they were worth."""
    fee_token, fee_amount = transaction.fee_token_id, transaction.fee_amount
    if fee_token is None or fee_amount is None:
        return transaction.fee_usd or ZERO, ZERO
    fee_book = run.book(fee_token)
    taken = run.remove(fee_book, fee_amount, transaction, field="feeAmount")
    capitalized = transaction.type is TransactionType.SELL or (
        transaction.type in _PRICED_ARRIVALS and transaction.price_usd is not None
    )
    if not capitalized:
        fee_book.cost_sold += taken.known_cost  # spent for nothing: a loss of its cost
        return ZERO, taken.missing
    fee_book.cost_paid_as_fees += taken.known_cost
    return (taken.known_cost if transaction.fee_usd is None else transaction.fee_usd), taken.missing


def _take_pooled_lots(
    pool: list[_Book], seller: _Book, amount: Decimal, next_lot: Callable[[list[Lot]], int], method: CostBasisMethod
) -> Taken:
    """A removal from `seller` that takes the method's next lots of the whole asset, on any chain.

    The seller's chain must still end `amount` lighter and the others as heavy as before: for what was
    taken from another chain, the seller's own next lots move there (cost and acquisition time kept),
    and `cost_pooled` records the cost each position gained or gave up in the exchange.
    """
    tagged = sorted(
        ((lot, owner, order) for owner, book in enumerate(pool) for order, lot in enumerate(book.holdings.lots())),
        key=lambda entry: (entry[0].order, entry[1], entry[2]),
    )
    lots = [lot for lot, _, _ in tagged]
    owners = [owner for _, owner, _ in tagged]
    taken: list[Lot] = []
    taken_from: dict[int, tuple[Decimal, Decimal]] = defaultdict(lambda: (ZERO, ZERO))  # amount, known cost
    remaining = amount
    while remaining > ZERO:
        index = next_lot(lots)
        lot, owner = lots[index], owners[index]
        if lot.amount <= remaining:
            part = lot
            lots.pop(index)
            owners.pop(index)
        else:
            part, lots[index] = _split(lot, remaining)
        taken.append(part)
        moved, cost = taken_from[owner]
        taken_from[owner] = (moved + part.amount, cost + (part.cost or ZERO))
        remaining -= part.amount
    kept: list[list[Lot]] = [[] for _ in pool]
    for lot, owner in zip(lots, owners, strict=True):
        kept[owner].append(lot)
    seller_index = pool.index(seller)
    seller_lots = kept[seller_index]
    for owner, (owed, owed_cost) in sorted(taken_from.items()):
        if owner == seller_index:
            continue
        received = _give(seller_lots, owed, next_lot)
        received_cost = sum((lot.cost or ZERO for lot in received), ZERO)
        kept[owner].extend(received)
        pool[owner].cost_pooled += received_cost - owed_cost
        seller.cost_pooled += owed_cost - received_cost
    for book, lots_left in zip(pool, kept, strict=True):
        book.holdings = _restored_holdings(method, lots_left)
    return Taken(tuple(taken))


def _split(lot: Lot, amount: Decimal) -> tuple[Lot, Lot]:
    """(`amount` of the lot, the rest), each with its share of the cost."""
    part_cost = None if lot.cost is None else prorate(lot.cost, amount, lot.amount)
    rest_cost = None if lot.cost is None or part_cost is None else lot.cost - part_cost
    return (
        Lot(amount, part_cost, lot.acquired_at, lot.sequence),
        Lot(lot.amount - amount, rest_cost, lot.acquired_at, lot.sequence),
    )


def _give(lots: list[Lot], amount: Decimal, next_lot: Callable[[list[Lot]], int]) -> list[Lot]:
    """Takes `amount` out of `lots` (in place), the method's next lots first."""
    given: list[Lot] = []
    remaining = amount
    while remaining > ZERO:
        index = next_lot(lots)
        lot = lots[index]
        if lot.amount <= remaining:
            given.append(lots.pop(index))
        else:
            part, lots[index] = _split(lot, remaining)
            given.append(part)
        remaining -= given[-1].amount
    return given


def _take_pooled_average(pool: list[_Book], seller: _Book, amount: Decimal, at: datetime) -> Taken:
    """Average cost over the whole asset: the removal takes the pool's average, and what is left is
    shared out again so every chain holds its amount at the pool's average cost."""
    known = sum((lot.amount for book in pool for lot in book.holdings.lots() if lot.cost is not None), ZERO)
    cost = sum((lot.cost or ZERO for book in pool for lot in book.holdings.lots()), ZERO)
    held = sum((book.holdings.held() for book in pool), ZERO)
    combined = _AverageHoldings()
    combined.add([Lot(known, cost, at)] if known else [])
    combined.add([Lot(held - known, None, at)] if held - known else [])
    taken = combined.take(amount, at)
    known_left, cost_left, total_left = combined.known_amount, combined.known_cost, combined.held()
    for book in pool:
        target = book.holdings.held() - (amount if book is seller else ZERO)
        first = min((lot.acquired_at for lot in book.holdings.lots()), default=at)
        before = sum((lot.cost or ZERO for lot in book.holdings.lots()), ZERO)
        share = min(prorate(known_left, target, total_left), target) if total_left else ZERO
        share = max(share, known_left - (total_left - target))
        share_cost = prorate(cost_left, share, known_left) if known_left else ZERO
        lots = [Lot(share, share_cost, first)] if share else []
        if target - share:
            lots.append(Lot(target - share, None, first))
        book.holdings = _restored_holdings(CostBasisMethod.AVERAGE, lots)
        book.cost_pooled += share_cost - before + (taken.known_cost if book is seller else ZERO)
        known_left, cost_left, total_left = known_left - share, cost_left - share_cost, total_left - target
    return taken
