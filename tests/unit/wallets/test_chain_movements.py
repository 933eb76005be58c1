"""Where the chain and the ledger meet: only differences are recorded, exactly, under ids that repeat."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from portfolio.domain.accounting import replay
from portfolio.domain.chain_movements import (
    amount_from_base_units,
    chain_movements,
    chain_transactions,
    match_chain_arrivals,
)
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import TransactionSource, TransactionType

from tests.unit.domain.builders import EVM_NATIVE, UNLISTED_TOKEN, tx

WALLET = "w00000000000000aa"
ETH = TokenId("ethereum", EVM_NATIVE)
TOKEN = TokenId("ethereum", UNLISTED_TOKEN)
BLOCK_TIME = datetime(2024, 6, 1, 12, tzinfo=UTC)


def tagged(type: str, amount: str, **options: object):
    transaction = tx(type, amount, **options)  # type: ignore[arg-type]
    return transaction.model_copy(update={"wallet_id": WALLET})


def test_given_base_units_when_converted_then_the_amount_is_exact() -> None:
    assert amount_from_base_units(1, 18) == Decimal("1E-18")
    assert amount_from_base_units(123_456_789_000_000_000_000, 18) == Decimal("123.456789")
    assert amount_from_base_units(5, 0) == Decimal(5)


def test_given_an_absurd_supply_or_too_many_decimals_when_converted_then_it_is_not_an_amount() -> None:
    assert amount_from_base_units(2**256 - 1, 0) is None
    assert amount_from_base_units(1, 77) is None
    assert amount_from_base_units(0, 18) == Decimal(0)


def test_given_what_the_wallets_transactions_account_for_when_the_chain_differs_then_only_the_difference_moves() -> (
    None
):
    # Given 2 ETH tagged with the wallet and 5 of a token it holds
    ledger = replay([tagged("buy", "2", price="1000"), tagged("transfer_in", "5", token=UNLISTED_TOKEN, hour=1)])

    # When the chain shows 2.5 ETH and 5 of the token, and a token never seen at 0
    movements = chain_movements(ledger, WALLET, {ETH: Decimal("2.5"), TOKEN: Decimal(5)})

    # Then only the ETH difference moves
    assert movements == {ETH: Decimal("0.5")}


def test_given_holdings_not_tagged_with_the_wallet_when_compared_then_they_are_not_the_wallets() -> None:
    ledger = replay([tx("buy", "2", price="1000")])

    assert chain_movements(ledger, WALLET, {ETH: Decimal(2)}) == {ETH: Decimal(2)}


def test_given_movements_when_recorded_then_both_carry_the_market_price_and_departures_go_at_cost() -> None:
    recorded = chain_transactions(
        WALLET,
        {ETH: Decimal("0.5"), TOKEN: Decimal(-3)},
        block_number=19_000_000,
        block_time=BLOCK_TIME,
        prices={ETH: Decimal(3100), TOKEN: Decimal(9)},
    )

    arrival, departure = sorted(recorded, key=lambda transaction: transaction.type)
    assert (arrival.type, arrival.amount, arrival.price_usd, arrival.price_source) == (
        TransactionType.TRANSFER_IN,
        Decimal("0.5"),
        Decimal(3100),
        "market",
    )
    assert (departure.type, departure.amount, departure.price_usd) == (TransactionType.TRANSFER_OUT, Decimal(3), 9)
    # And the departure's price only tells the gain that left: it realizes nothing
    history = [tagged("transfer_in", "3", price="4", token=UNLISTED_TOKEN), departure]
    token = replay(history).positions[TOKEN]
    assert (token.realized_pnl, token.withdrawn_cost, token.withdrawn_gain) == (0, 12, 15)
    assert {transaction.source for transaction in recorded} == {TransactionSource.CHAIN}
    assert {transaction.timestamp for transaction in recorded} == {BLOCK_TIME}
    assert arrival.id == f"sync:{WALLET}:ethereum:19000000:{EVM_NATIVE}"


def test_given_a_token_without_a_market_price_when_it_arrives_then_its_cost_is_unknown() -> None:
    (arrival,) = chain_transactions(WALLET, {TOKEN: Decimal(7)}, block_number=1, block_time=BLOCK_TIME, prices={})

    assert arrival.price_usd is None and arrival.price_source is None
    assert replay([arrival]).positions[TOKEN].unknown_amount == 7


def test_given_the_same_block_read_twice_when_recorded_then_the_ids_are_the_same() -> None:
    def record():
        return chain_transactions(WALLET, {ETH: Decimal(1)}, block_number=7, block_time=BLOCK_TIME, prices={})

    assert [t.id for t in record()] == [t.id for t in record()]


def test_given_coins_left_the_chain_that_the_ledger_no_longer_holds_when_replayed_then_it_takes_what_is_held() -> None:
    # Given 1 ETH the wallet brought, sold by hand without naming the wallet
    arrived = chain_transactions(WALLET, {ETH: Decimal(1)}, block_number=1, block_time=BLOCK_TIME, prices={})
    sold = tx("sell", "0.75", price="3000", hour=24 * 200)
    # When the chain then shows the coins gone
    left = chain_transactions(
        WALLET,
        {ETH: Decimal(-1)},
        block_number=2,
        block_time=BLOCK_TIME.replace(month=12),
        prices={},
    )

    # Then the departure takes the 0.25 still held, never fails, and the wallet accounts for nothing
    ledger = replay([*arrived, sold, *left])
    assert ledger.positions[ETH].amount == 0
    assert ledger.wallet_amount(WALLET, ETH) == 0


def test_given_a_balance_of_more_digits_than_decimal_keeps_by_default_when_converted_then_every_digit_stays() -> None:
    assert amount_from_base_units(12345678901123456789012345678, 18) == Decimal("12345678901.123456789012345678")


def test_given_a_tagged_sale_before_the_chain_saw_the_coins_leave_when_replayed_then_none_reappear() -> None:
    # Given 1 ETH the sync recorded arriving, then leaving, and the user's own sale of it tagged with the wallet
    arrived = chain_transactions(WALLET, {ETH: Decimal(1)}, block_number=1, block_time=BLOCK_TIME, prices={})
    left = chain_transactions(
        WALLET, {ETH: Decimal(-1)}, block_number=2, block_time=BLOCK_TIME.replace(month=12), prices={}
    )
    sold = tagged("sell", "1", price="3000", hour=24 * 200)

    # When replayed, the sale and the departure are one event seen twice
    ledger = replay([*arrived, sold, *left])

    # Then the wallet accounts for nothing, as the chain shows: the next sync records nothing
    assert ledger.positions[ETH].amount == 0
    assert ledger.wallet_amount(WALLET, ETH) == 0
    assert chain_movements(ledger, WALLET, {ETH: Decimal(0)}) == {}


def test_given_recorded_arrivals_when_earlier_acquisitions_are_tagged_then_they_explain_the_first_after_them() -> None:
    # Given the sync's arrivals of 1 ETH in June and 2 ETH in December, and one before either
    early = chain_transactions(
        WALLET, {ETH: Decimal(4)}, block_number=1, block_time=BLOCK_TIME.replace(month=2), prices={}
    )
    june = chain_transactions(WALLET, {ETH: Decimal(1)}, block_number=5, block_time=BLOCK_TIME, prices={})
    december = chain_transactions(
        WALLET, {ETH: Decimal(2)}, block_number=9, block_time=BLOCK_TIME.replace(month=12), prices={}
    )
    # When the user tags a buy of 2 ETH made in March, and one of a token the wallet never saw arrive
    march_buy = tagged("buy", "2", price="3000", hour=24 * 70)
    other = tagged("buy", "1", price="1", token=UNLISTED_TOKEN, hour=24 * 70)

    taken, rests = match_chain_arrivals([*early, *june, *december], [march_buy, other])

    # Then June's arrival and 1 of December's are explained; the February one came before the buy
    assert taken == [june[0].id, december[0].id]
    (rest,) = rests
    assert (rest.amount, rest.timestamp, rest.source) == (Decimal(1), december[0].timestamp, december[0].source)
    assert rest.id.startswith(december[0].id + ":") and rest.id != december[0].id
    # And the history holds as much as before at every moment after the buy
    before = replay([*early, *june, *december])
    after = replay([*early, rest, march_buy])
    assert after.positions[ETH].amount == before.positions[ETH].amount
    assert after.wallet_amount(WALLET, ETH) == before.wallet_amount(WALLET, ETH)


def test_given_two_wallets_when_one_wallets_sale_is_seen_twice_then_the_other_keeps_its_coins() -> None:
    # Given 1 ETH in each of two wallets, recorded by their syncs
    other = "w00000000000000bb"
    arrived = chain_transactions(WALLET, {ETH: Decimal(1)}, block_number=1, block_time=BLOCK_TIME, prices={})
    arrived_other = chain_transactions(other, {ETH: Decimal(1)}, block_number=1, block_time=BLOCK_TIME, prices={})
    # When the first wallet's coin leaves on chain, and the user tags a sale of it dated before
    left = chain_transactions(
        WALLET, {ETH: Decimal(-1)}, block_number=2, block_time=BLOCK_TIME.replace(month=12), prices={}
    )
    sold = tagged("sell", "1", price="3000", hour=24 * 200)

    ledger = replay([*arrived, *arrived_other, sold, *left])

    # Then the other wallet's coin is still held: the departure took nothing the sale had not
    assert ledger.positions[ETH].amount == 1
    assert ledger.wallet_amount(other, ETH) == 1 and ledger.wallet_amount(WALLET, ETH) == 0


def test_given_a_tagged_sale_of_coins_never_held_when_accepted_then_the_wallet_is_not_left_short() -> None:
    # Given a sale of 7 ETH tagged with the wallet, more than was held (accepted as missing acquisitions),
    # and the sync's later record of 5 ETH arriving
    sold = tagged("sell", "7", price="3000", hour=0)
    arrived = chain_transactions(WALLET, {ETH: Decimal(5)}, block_number=9, block_time=BLOCK_TIME, prices={})

    ledger = replay([sold, *arrived], accept_missing=True)

    # Then the wallet accounts for the 5 the chain shows: the next sync invents nothing
    assert ledger.wallet_amount(WALLET, ETH) == 5
    assert chain_movements(ledger, WALLET, {ETH: Decimal(5)}) == {}
