"""The stored form of a user's positions, in two zlib-compressed JSON documents:

- holdings (`positions`): `{"v": 3, "m": method, "n": transaction count, "last": [µs, sequence, id] |
  null, "first": µs | null, "p": [position, ...], "w": [[walletId, chain, address, amount], ...],
  "a": 1, "s": "asset"}` ("w", what each linked wallet's transactions account for, only when there is
  any; "a", present when missing acquisitions are accepted; "s", the cost basis scope when not
  "chain"; a "last" of two items, [µs, id], was stored before sequences were kept), a position being
  `[chain, address, amount, known amount, cost basis, the running totals in
  accounting.RUNNING_TOTALS order, category | null]`;
- lots (`lots`): one list per position, in the same order, of `[amount, cost | null, µs]`, and the
  sequence of the transaction that acquired the lot as a fourth item when it has one.

Valuing a portfolio (a read, a refresh) needs the holdings only, so it never parses the lots: a
user with 10,000 open lots reads as fast as one with 10. A write needs the lots (they decide what
a sale takes), so it reads both. Decimals are strings, written and read digit for digit; times are
UTC microseconds since the epoch.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, cast

from portfolio.domain.accounting import RUNNING_TOTALS, Ledger, Lot, Position, realized_pnl_of, restore_position
from portfolio.domain.arithmetic import EXACT
from portfolio.domain.money import ZERO
from portfolio.domain.portfolio_record import CostBasisMethod, CostBasisScope
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import Category, SortKey

# 3: lots carry the sequence of the transaction that acquired them, and positions the withdrawn gain
# (which a stored 2 cannot know): a stored 2 is rebuilt from the history.
FORMAT_VERSION = 3
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_AGGREGATES = 3  # amount, known amount, cost basis
# The last running totals, added in this order after the first stored form: older rows lack them.
_ADDED_TOTALS = ("missing_amount", "missing_pnl", "income", "withdrawn_gain", "cost_paid_as_fees", "cost_pooled")


class UnreadablePositionsError(Exception):
    """The stored positions are not in a format this code reads: rebuild them from the history."""


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _compress(document: Any) -> bytes:
    return zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 6)


def _holding_row(position: Position) -> list[Any]:
    aggregates = [str(position.amount), str(position.known_amount), str(position.cost_basis)]
    totals = [str(getattr(position, name)) for name in RUNNING_TOTALS]
    category = None if position.category_override is None else position.category_override.value
    return [position.token.chain, position.token.address, *aggregates, *totals, category]


def _lot_rows(position: Position) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for lot in position.lots:
        row: list[Any] = [str(lot.amount), None if lot.cost is None else str(lot.cost), _micros(lot.acquired_at)]
        if lot.sequence:
            row.append(lot.sequence)
        rows.append(row)
    return rows


def encode_positions(ledger: Ledger) -> tuple[bytes, bytes]:
    """(holdings, lots) of a ledger read whole (a ledger read without its lots cannot be stored)."""
    if ledger.lots_omitted:
        raise ValueError("positions read without their lots cannot be stored")
    last = None
    if ledger.last_applied is not None:
        moment, sequence, transaction_id = ledger.last_applied
        last = [_micros(moment), sequence, transaction_id]
    holdings: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "m": ledger.method.value,
        "n": ledger.transaction_count,
        "last": last,
        "first": None if ledger.first_applied_at is None else _micros(ledger.first_applied_at),
        "p": [_holding_row(position) for position in ledger.positions.values()],
    }
    if ledger.accept_missing:
        holdings["a"] = 1
    if ledger.scope is not CostBasisScope.CHAIN:
        holdings["s"] = ledger.scope.value
    if ledger.wallet_amounts:
        holdings["w"] = [
            [wallet_id, token.chain, token.address, str(amount)]
            for (wallet_id, token), amount in ledger.wallet_amounts.items()
        ]
    return _compress(holdings), _compress([_lot_rows(position) for position in ledger.positions.values()])


def _decimal(text: str) -> Decimal:
    # Most running totals of most positions are zero: one shared Decimal serves them all.
    return ZERO if text == "0" else Decimal(text)


@lru_cache(maxsize=65_536)
def _token(chain: str, address: str) -> TokenId:
    # Users hold the same few thousand tokens: one TokenId each, shared.
    return TokenId(chain, address)


# Positional, with the running totals spread: checked here against Position's fields rather than by mypy.
_new_position = cast(Callable[..., Position], Position)
_POSITION_FIELDS = tuple(field.name for field in fields(Position))
if _POSITION_FIELDS[6:-2] != RUNNING_TOTALS or _POSITION_FIELDS[-2:] != ("realized_pnl", "category_override"):
    raise ImportError("Position's fields moved: _position builds it positionally")

_ROW_LENGTH = 2 + _AGGREGATES + len(RUNNING_TOTALS) + 1


def _complete_row(row: list[Any]) -> list[Any]:
    """A row of today's length; one stored before the last totals were kept has none of them yet."""
    stored_totals = len(row) - 2 - _AGGREGATES - 1
    if not len(RUNNING_TOTALS) - len(_ADDED_TOTALS) <= stored_totals < len(RUNNING_TOTALS):
        raise ValueError(f"a position row has {stored_totals} totals")
    return [*row[:-1], *["0"] * (len(RUNNING_TOTALS) - stored_totals), row[-1]]


def _position(row: list[Any], lots: tuple[Lot, ...]) -> Position:
    if len(row) != _ROW_LENGTH:
        row = _complete_row(row)
    totals = [_decimal(text) for text in row[_TOTALS]]
    category = row[-1]
    return restore_position(
        _token(row[0], row[1]),
        lots,
        **dict(zip(RUNNING_TOTALS, totals, strict=True)),
        category_override=None if category is None else Category(category),
    )


_TOTALS = slice(2 + _AGGREGATES, -1)
_COST_SOLD, _NET_PROCEEDS_KNOWN, _FEES_EXPENSED, _INCOME = (
    RUNNING_TOTALS.index(name) for name in ("cost_sold", "net_proceeds_known", "fees_expensed", "income")
)


def _valued_positions(rows: list[list[Any]]) -> dict[TokenId, Position]:
    """Positions without their lots, for valuation: the loop every refresh runs for every holding, so
    written flat (one Decimal per stored figure that is not zero, and the Position built positionally)."""
    positions: dict[TokenId, Position] = {}
    for row in rows:
        if len(row) != _ROW_LENGTH:
            row = _complete_row(row)
        totals = [ZERO if text == "0" else Decimal(text) for text in row[_TOTALS]]  # _decimal, inlined
        amount_text, known_text, cost_text, category = row[2], row[3], row[4], row[-1]
        amount = _decimal(amount_text)
        # Mostly all of a holding has a known cost: then one Decimal serves both, and nothing is unknown.
        known_amount = amount if known_text == amount_text else Decimal(known_text)
        unknown_amount = ZERO if known_amount is amount else EXACT.subtract(amount, known_amount)
        realized = realized_pnl_of(
            totals[_NET_PROCEEDS_KNOWN], totals[_COST_SOLD], totals[_FEES_EXPENSED], totals[_INCOME]
        )
        token = _token(row[0], row[1])
        positions[token] = _new_position(
            token,
            (),
            amount,
            known_amount,
            unknown_amount,
            _decimal(cost_text),
            *totals,
            realized,
            None if category is None else Category(category),
        )
    return positions


def _lots(rows: list[list[Any]]) -> tuple[Lot, ...]:
    return tuple(
        Lot(
            Decimal(amount),
            None if cost is None else Decimal(cost),
            _moment(acquired),
            int(sequence[0]) if sequence else 0,
        )
        for amount, cost, acquired, *sequence in rows
    )


def _last_applied(stored: list[Any] | None) -> SortKey | None:
    if stored is None:
        return None
    if len(stored) == 2:  # stored before sequences were kept: the transactions it applied have none
        return (_moment(stored[0]), 0, stored[1])
    return (_moment(stored[0]), int(stored[1]), stored[2])


def decode_positions(holdings: bytes, lots: bytes | None = None) -> Ledger:
    """The ledger; without `lots`, a valuation-only ledger (`lots_omitted`): every figure a view
    shows, but it cannot be extended or stored."""
    try:
        document = json.loads(zlib.decompress(holdings))
        if document.get("v") != FORMAT_VERSION:
            raise UnreadablePositionsError(f"positions format {document.get('v')!r}")
        rows = document["p"]
        if lots is None:
            positions = _valued_positions(rows)
        else:
            lot_rows = json.loads(zlib.decompress(lots))
            if len(lot_rows) != len(rows):
                raise ValueError("holdings and lots do not match")
            restored = (_position(row, _lots(these)) for row, these in zip(rows, lot_rows, strict=True))
            positions = {position.token: position for position in restored}
        last = document["last"]
        return Ledger(
            method=CostBasisMethod(document["m"]),
            positions=positions,
            transaction_count=document["n"],
            last_applied=_last_applied(last),
            first_applied_at=None if document["first"] is None else _moment(document["first"]),
            lots_omitted=lots is None,
            accept_missing=bool(document.get("a")),
            scope=CostBasisScope(document.get("s", CostBasisScope.CHAIN.value)),
            wallet_amounts={
                (wallet_id, TokenId(chain, address)): Decimal(amount)
                for wallet_id, chain, address, amount in document.get("w", ())
            },
        )
    except UnreadablePositionsError:
        raise
    except (zlib.error, ValueError, KeyError, TypeError, ArithmeticError) as error:
        raise UnreadablePositionsError(f"positions do not decode: {type(error).__name__}") from error
