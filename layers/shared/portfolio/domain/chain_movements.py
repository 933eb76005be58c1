"""Where the chain and the ledger meet: the chain is the truth for amounts, the transactions for cost.

After a wallet is read at a block, each token whose on-chain amount differs from what the ledger's
transactions account for in that wallet (Ledger.wallet_amount: what wallet sync recorded before
plus what the user entered tagged with the wallet) gets one transaction of source "chain" for the
difference:

- more on chain: a transfer_in, priced at the market price of the block's time when there is one
  (priceSource "market", so it counts as invested like a buy), else of unknown cost;
- less on chain: a transfer_out, which takes lots at cost and books no P&L.

Its id is derived from (wallet, chain, block, token), so reading the same block again, or a message
delivered twice, records nothing new. Its time is the block's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from portfolio.domain.accounting import ARRIVING, Ledger
from portfolio.domain.arithmetic import EXACT
from portfolio.domain.money import MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS, ZERO
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import (
    CHAIN_ID_PREFIX,
    PriceSource,
    Transaction,
    TransactionSource,
    TransactionType,
)


def amount_from_base_units(units: int, decimals: int) -> Decimal | None:
    """`units` / 10^decimals, exactly; None when it falls outside what an amount may be (a spam
    token's absurd supply, or more decimals than amounts carry)."""
    if units < 0 or not 0 <= decimals <= MAX_FRACTION_DIGITS:
        return None
    amount = Decimal(units).scaleb(-decimals, context=EXACT)
    if units and amount.adjusted() + 1 > MAX_INTEGER_DIGITS:
        return None
    return amount


def chain_movements(ledger: Ledger, wallet_id: str, on_chain: Mapping[TokenId, Decimal]) -> dict[TokenId, Decimal]:
    """Per token read from the chain, on-chain amount minus what the ledger accounts for in this
    wallet; only the tokens that differ. A token not read is not compared (never taken as zero)."""
    movements = {}
    for token, amount in on_chain.items():
        difference = EXACT.subtract(amount, ledger.wallet_amount(wallet_id, token))
        if difference != ZERO:
            movements[token] = difference
    return movements


def chain_transaction_id(wallet_id: str, token: TokenId, block_number: int) -> str:
    return f"{CHAIN_ID_PREFIX}{wallet_id}:{token.chain}:{block_number}:{token.address}"


def chain_transactions(
    wallet_id: str,
    movements: Mapping[TokenId, Decimal],
    *,
    block_number: int,
    block_time: datetime,
    prices: Mapping[TokenId, Decimal],
) -> list[Transaction]:
    """One transaction per movement; `prices` are market prices at `block_time` (a token without one
    arrives at unknown cost; coins that leave go at cost, their price telling the gain they left with)."""
    recorded = []
    for token, difference in sorted(movements.items()):
        arriving = difference > ZERO
        price = prices.get(token)
        recorded.append(
            Transaction(
                id=chain_transaction_id(wallet_id, token, block_number),
                type=TransactionType.TRANSFER_IN if arriving else TransactionType.TRANSFER_OUT,
                chain=token.chain,
                token_address=token.address,
                amount=abs(difference),
                price_usd=price,
                price_source=PriceSource.MARKET if price is not None else None,
                timestamp=block_time,
                source=TransactionSource.CHAIN,
                wallet_id=wallet_id,
            )
        )
    return recorded


def match_chain_arrivals(
    history: Sequence[Transaction], new: Sequence[Transaction]
) -> tuple[list[str], list[Transaction]]:
    """The arrivals wallet sync recorded that the user's new transactions explain: the same coins,
    seen by the sync after the user says they came.

    Only what the new transactions tagged with a wallet add to it, net, per token (acquisitions less
    disposals: a round trip explains nothing) is matched. Each acquisition takes the wallet's recorded
    arrivals of its token dated at or after it, the earliest first, up to its amount, within that net.
    Returns the ids of the arrivals taken and, for one taken in part, its replacement for the rest
    (same time, price and wallet; an id of its own).
    """
    net: dict[tuple[str, TokenId], Decimal] = {}
    for transaction in new:
        if transaction.wallet_id is None or transaction.destination_token is not None:
            continue
        arriving = transaction.type in ARRIVING
        key = (transaction.wallet_id, transaction.token)
        net[key] = EXACT.add(net.get(key, ZERO), transaction.amount if arriving else -transaction.amount)
    acquisitions = [t for t in new if t.wallet_id is not None and t.type in ARRIVING]
    arrivals = sorted(
        (t for t in history if t.from_chain and t.type is TransactionType.TRANSFER_IN),
        key=lambda transaction: transaction.sort_key,
    )
    left = {arrival.id: arrival.amount for arrival in arrivals}
    for acquisition in sorted(acquisitions, key=lambda transaction: transaction.sort_key):
        key = (acquisition.wallet_id or "", acquisition.token)
        needed = min(acquisition.amount, max(net.get(key, ZERO), ZERO))
        net[key] = EXACT.subtract(net.get(key, ZERO), needed)
        for arrival in arrivals:
            if needed <= ZERO:
                break
            explained = (
                arrival.wallet_id == acquisition.wallet_id
                and arrival.token == acquisition.token
                and arrival.timestamp >= acquisition.timestamp
            )
            if explained and left[arrival.id] > ZERO:
                used = min(left[arrival.id], needed)
                left[arrival.id] = EXACT.subtract(left[arrival.id], used)
                needed = EXACT.subtract(needed, used)
    taken = [arrival for arrival in arrivals if left[arrival.id] != arrival.amount]
    rests = [
        arrival.model_copy(update={"id": _rest_id(arrival.id, left[arrival.id]), "amount": left[arrival.id]})
        for arrival in taken
        if left[arrival.id] > ZERO
    ]
    return [arrival.id for arrival in taken], rests


def _rest_id(arrival_id: str, amount: Decimal) -> str:
    """`sync:<wallet>:<chain>:<block>:<token>:<digest of the amount left>`: an arrival taken in part
    again gets an id of its own once more."""
    base = ":".join(arrival_id.split(":")[:5])
    return f"{base}:{hashlib.sha256(str(amount).encode()).hexdigest()[:8]}"
