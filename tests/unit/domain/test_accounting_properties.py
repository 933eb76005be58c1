"""Properties of the replay that hold for any valid history (hypothesis)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal, localcontext

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from portfolio.domain.accounting import Ledger, ReplayNeeded, extend, replay
from portfolio.domain.arithmetic import EXACT
from portfolio.domain.errors import OverdraftError
from portfolio.domain.money import ZERO
from portfolio.domain.portfolio_record import CostBasisMethod, CostBasisScope
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import Transaction

from tests.unit.domain.builders import EVM_NATIVE, T0, USDC_ARBITRUM, USDC_ETHEREUM

TOKENS = (
    TokenId("ethereum", EVM_NATIVE),
    TokenId("arbitrum", EVM_NATIVE),
    TokenId("ethereum", USDC_ETHEREUM),
    TokenId("arbitrum", USDC_ARBITRUM),
)
WEI = Decimal("1e-18")
WALLETS = ("w0000000000000001", "w0000000000000002")

# Scaled integers: as exact as st.decimals(places=...) and much cheaper to draw.
amounts = st.integers(min_value=1, max_value=10**24).map(lambda wei: Decimal(wei).scaleb(-18))
prices = st.integers(min_value=0, max_value=10**13).map(lambda units: Decimal(units).scaleb(-8))
fees = st.one_of(st.none(), st.integers(min_value=0, max_value=5_000).map(lambda cents: Decimal(cents).scaleb(-2)))
fractions = st.one_of(st.just(Decimal(1)), st.integers(min_value=1, max_value=99).map(lambda pct: Decimal(pct) / 100))


@dataclass(frozen=True)
class History:
    transactions: list[Transaction]
    received: dict[TokenId, Decimal]  # bought, transferred in, bridged in
    sent: dict[TokenId, Decimal]  # sold, transferred out, bridged out


@st.composite
def histories(draw: st.DrawFn, *, one_price: Decimal | None = None, with_fees: bool = True) -> History:
    """Valid histories: every outflow takes a fraction of what is held at that moment.

    With `one_price`, every acquisition is at that price (no fees, no unknown-cost lots).
    """
    held: dict[TokenId, Decimal] = defaultdict(Decimal)
    received: dict[TokenId, Decimal] = defaultdict(Decimal)
    sent: dict[TokenId, Decimal] = defaultdict(Decimal)
    in_wallet: dict[tuple[str, TokenId], Decimal] = defaultdict(Decimal)  # what each wallet accounts for
    transactions = []
    kinds = ["buy", "transfer_in", "income", "sell", "transfer_out", "bridge"]
    with localcontext(EXACT):
        for index in range(draw(st.integers(min_value=1, max_value=20))):
            kind = draw(st.sampled_from(kinds))
            token = draw(st.sampled_from(TOKENS))
            fee = draw(fees) if with_fees and one_price is None else None
            # Some are a linked wallet's: tagged by the user, or recorded by wallet sync.
            wallet = draw(st.sampled_from([None, *WALLETS]))
            source = "user"
            if wallet is not None and kind in ("transfer_in", "transfer_out"):
                source = draw(st.sampled_from(["user", "chain"]))
            fields: dict = {"id": f"t{index:03d}", "type": kind, "feeUsd": fee, "walletId": wallet, "source": source}
            # Some pay their fee in the chain's native coin (gas), which leaves its own lots first (or, when
            # the native coin is what arrives, is taken out of what arrives).
            gas = TokenId(token.chain, EVM_NATIVE)
            arriving = kind in ("buy", "transfer_in", "income")
            pays_gas = source == "user" and one_price is None and with_fees and draw(st.booleans())
            if pays_gas and not (arriving and token == gas) and held[gas] > 0:
                gas_amount = (held[gas] * draw(fractions) / 2).quantize(WEI, rounding=ROUND_DOWN)
                if gas_amount > 0:
                    fields.update(feeToken=gas.address, feeAmount=str(gas_amount), feeUsd=fee or Decimal(0))
                    held[gas] -= gas_amount
                    sent[gas] += gas_amount
                    if wallet is not None:
                        in_wallet[(wallet, gas)] -= gas_amount
            if kind in ("buy", "transfer_in", "income"):
                amount = draw(amounts)
                if one_price is not None:
                    price = one_price
                elif kind == "buy":
                    price = draw(prices)
                else:
                    price = draw(st.one_of(st.none(), prices))
                fields["priceUsd"] = price
                held[token] += amount
                received[token] += amount
                if wallet is not None:
                    in_wallet[(wallet, token)] += amount
                kept_back = (amount * draw(fractions) / 2).quantize(WEI, rounding=ROUND_DOWN)
                if pays_gas and token == gas and kept_back > 0:
                    fields.update(feeToken=gas.address, feeAmount=str(kept_back), feeUsd=fee or Decimal(0))
                    held[gas] -= kept_back
                    sent[gas] += kept_back
                    if wallet is not None:
                        in_wallet[(wallet, gas)] -= kept_back
            else:
                # What wallet sync sees leaving a wallet is never more than the wallet accounts for.
                limit = held[token] if source == "user" else min(held[token], max(in_wallet[(wallet, token)], ZERO))
                amount = (limit * draw(fractions)).quantize(WEI, rounding=ROUND_DOWN)
                if amount <= 0:
                    if "feeToken" in fields:  # not recorded after all: its fee coins stay
                        gas_amount = Decimal(fields["feeAmount"])
                        held[gas] += gas_amount
                        sent[gas] -= gas_amount
                        if wallet is not None:
                            in_wallet[(wallet, gas)] += gas_amount
                    continue
                if kind == "sell":
                    fields["priceUsd"] = draw(prices)
                if kind == "bridge":
                    destination = draw(st.sampled_from([t for t in TOKENS if t != token]))
                    fields["destinationChain"] = destination.chain
                    fields["destinationTokenAddress"] = destination.address
                    held[destination] += amount
                    received[destination] += amount
                    if wallet is not None:
                        in_wallet[(wallet, destination)] += amount
                held[token] -= amount
                sent[token] += amount
                if wallet is not None:
                    in_wallet[(wallet, token)] -= amount
            fields.update(
                chain=token.chain,
                tokenAddress=token.address,
                amount=str(amount),
                timestamp=(T0 + timedelta(minutes=index)).isoformat(),
                sequence=draw(st.sampled_from([None, index])),  # stored before sequences were kept, or after
            )
            transactions.append(Transaction.model_validate(fields))
    # Replay must not depend on the order the caller passes them in.
    shuffled = draw(st.permutations(transactions))
    return History(list(shuffled), dict(received), dict(sent))


quote_maps = st.dictionaries(st.sampled_from(TOKENS), prices, max_size=len(TOKENS))
methods = st.sampled_from(list(CostBasisMethod))
scopes = st.sampled_from(list(CostBasisScope))


def portfolio_pnl(ledger: Ledger, quoted: dict[TokenId, Decimal]) -> tuple[Decimal, Decimal, Decimal]:
    """(realized + unrealized, known_value of priced positions, cost basis of unpriced positions)."""
    with localcontext(EXACT):
        unrealized = known_value = unpriced_cost = Decimal(0)
        for position in ledger.positions.values():
            price = quoted.get(position.token)
            if price is None:
                unpriced_cost += position.cost_basis
            else:
                unrealized += position.unrealized_pnl(price)
                known_value += position.known_amount * price
        return ledger.realized_pnl + unrealized, known_value, unpriced_cost


@settings(max_examples=200, deadline=None)
@given(history=histories(), quoted=quote_maps, method=methods, scope=scopes)
def test_total_pnl_identity_holds_exactly_for_any_history(
    history: History, quoted: dict[TokenId, Decimal], method: CostBasisMethod, scope: CostBasisScope
) -> None:
    # Given any valid history, under any method and scope, and prices for some of the tokens
    ledger = replay(history.transactions, method, scope=scope)

    # When the P&L is totalled
    total_pnl, known_value, unpriced_cost = portfolio_pnl(ledger, quoted)

    # Then realized + unrealized == known value + net known proceeds - invested + withdrawn + cost of fee coins
    # - fees + unpriced cost, with invested, expensed fees and sale proceeds taken from the transactions themselves
    with localcontext(EXACT):
        invested = fees_expensed = net_proceeds = Decimal(0)
        for transaction in history.transactions:
            fee = transaction.fee_usd or Decimal(0)
            if transaction.fee_token is not None:
                # Paid in coins: their value counts in a priced arrival's cost or a sale's proceeds; taken out
                # of the coins that arrive it is inside the cost already; elsewhere the coins' cost is spent.
                priced_trade = transaction.type == "sell" or (
                    transaction.type in ("buy", "transfer_in") and transaction.price_usd is not None
                )
                kept_back = transaction.type != "sell" and transaction.fee_token_id == transaction.token
                fee = fee if priced_trade and not kept_back else Decimal(0)
            if transaction.type in ("buy", "transfer_in") and transaction.price_usd is not None:
                invested += transaction.amount * transaction.price_usd + fee
            elif transaction.type == "sell":
                assert transaction.price_usd is not None
                net_proceeds += transaction.amount * transaction.price_usd - fee
            else:
                fees_expensed += fee
        assert ledger.invested == invested
        assert ledger.fees_expensed == fees_expensed
        net_proceeds_known = net_proceeds - ledger.untracked_proceeds
        expected = (
            known_value
            + net_proceeds_known
            - invested
            + ledger.withdrawn_cost
            + ledger.cost_paid_as_fees
            - fees_expensed
            + unpriced_cost
        )
    assert total_pnl == expected


@settings(max_examples=300, deadline=None)
@given(history=histories(), method=methods, scope=scopes)
def test_amounts_and_cost_are_conserved_exactly(
    history: History, method: CostBasisMethod, scope: CostBasisScope
) -> None:
    # Given any valid history, When replayed under any method and scope
    ledger = replay(history.transactions, method, scope=scope)

    with localcontext(EXACT):
        # Then each token holds exactly what came in minus what went out, bridged amounts included
        for token in TOKENS:
            expected = history.received.get(token, Decimal(0)) - history.sent.get(token, Decimal(0))
            position = ledger.positions.get(token)
            assert (position.amount if position else Decimal(0)) == expected
        # And every unit of cost that came in is still held, was sold, withdrawn, paid as a fee, or bridged
        # or pooled on (cost in = cost out + cost held; a missing acquisition comes in at cost zero)
        for position in ledger.positions.values():
            assert position.known_amount + position.unknown_amount == position.amount
            assert min(position.known_amount, position.unknown_amount, position.cost_basis) >= 0
            assert position.invested + position.income + position.cost_bridged_in + position.cost_pooled == (
                position.cost_basis
                + position.cost_sold
                + position.withdrawn_cost
                + position.cost_bridged_out
                + position.cost_paid_as_fees
            )
        # And bridges and pooling move cost from one token to another without creating or losing any
        bridged_in = sum((p.cost_bridged_in for p in ledger.positions.values()), Decimal(0))
        bridged_out = sum((p.cost_bridged_out for p in ledger.positions.values()), Decimal(0))
        pooled = sum((p.cost_pooled for p in ledger.positions.values()), Decimal(0))
    assert bridged_in == bridged_out
    assert pooled == 0
    if scope is CostBasisScope.CHAIN:
        assert all(position.cost_pooled == 0 for position in ledger.positions.values())


@settings(max_examples=100, deadline=None)
@given(data=st.data(), price=st.integers(min_value=1, max_value=10**12).map(lambda units: Decimal(units).scaleb(-8)))
def test_every_method_agrees_when_every_lot_has_one_price(data: st.DataObject, price: Decimal) -> None:
    # Given a history where every acquisition happened at the same price, without fees
    history = data.draw(histories(one_price=price, with_fees=False))

    # When it is replayed with FIFO and with every other method
    fifo = replay(history.transactions, CostBasisMethod.FIFO)
    for method in CostBasisMethod:
        other = replay(history.transactions, method)

        # Then every position has the same cost basis and realized P&L
        assert fifo.positions.keys() == other.positions.keys()
        for token, position in fifo.positions.items():
            assert position.cost_basis == other.positions[token].cost_basis, method
            assert position.realized_pnl == other.positions[token].realized_pnl, method
            assert position.amount == other.positions[token].amount


@settings(max_examples=50, deadline=None)
@given(history=histories(), method=methods, token=st.sampled_from(TOKENS))
def test_moving_one_wei_more_than_held_is_always_an_overdraft(
    history: History, method: CostBasisMethod, token: TokenId
) -> None:
    # Given any valid history and what it leaves of one token
    held = history.received.get(token, Decimal(0)) - history.sent.get(token, Decimal(0))
    last_moment = max((t.timestamp for t in history.transactions), default=T0) + timedelta(minutes=1)
    too_much = Transaction(
        id="one-wei-too-many",
        type="transfer_out",
        chain=token.chain,
        token_address=token.address,
        amount=held + WEI,
        timestamp=last_moment,
    )

    # When one wei more than that is sent away, Then it is refused, naming the amounts
    with pytest.raises(OverdraftError) as raised:
        replay([*history.transactions, too_much], method)
    assert raised.value.available == held
    assert raised.value.requested == held + WEI


@settings(max_examples=200, deadline=None)
@given(history=histories(), method=methods, scope=scopes, data=st.data())
def test_stored_positions_extended_with_later_transactions_equal_a_replay_of_the_whole_history(
    history: History, method: CostBasisMethod, scope: CostBasisScope, data: st.DataObject
) -> None:
    # Given positions stored after any prefix of a valid history
    in_order = sorted(history.transactions, key=lambda transaction: transaction.sort_key)
    cut = data.draw(st.integers(min_value=0, max_value=len(in_order)))
    stored = replay(in_order[:cut], method, scope=scope)

    # When the rest of the history is applied to them alone
    extended = extend(stored, in_order[cut:])

    # Then they are the positions a replay of everything gives, to the last digit
    assert extended == replay(history.transactions, method, scope=scope)


@settings(max_examples=50, deadline=None)
@given(history=histories(), method=methods)
def test_a_transaction_sorting_before_the_stored_positions_asks_for_a_replay(
    history: History, method: CostBasisMethod
) -> None:
    # Given positions stored after a whole history
    assume(history.transactions)
    stored = replay(history.transactions, method)
    earliest = min(history.transactions, key=lambda transaction: transaction.sort_key)
    backdated = earliest.model_copy(update={"id": "backdated"})

    # When a transaction dated no later than the first one is applied to them alone
    # Then the ledger refuses: only a replay of the history places it correctly
    with pytest.raises(ReplayNeeded):
        extend(stored, [backdated])
