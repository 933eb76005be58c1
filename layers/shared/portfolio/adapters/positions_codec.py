"""The stored form of a user's positions: a Ledger as compact JSON, zlib-compressed, in one binary attribute.

Layout (version 1): `{"v": 1, "m": method, "n": transaction count, "last": [µs, id] | null,
"first": µs | null, "p": [position, ...]}`, a position being `[chain, address, lots, the running
totals in accounting.RUNNING_TOTALS order, category | null]` and a lot `[amount, cost | null, µs]`.
Decimals are strings, written and read digit for digit; times are UTC microseconds since the
epoch. Amounts held, cost basis and realized P&L are not stored: restore_position derives them
from the lots and totals.
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from portfolio.domain.accounting import RUNNING_TOTALS, Ledger, Lot, Position, restore_position
from portfolio.domain.portfolio_record import CostBasisMethod
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import Category

FORMAT_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class UnreadablePositionsError(Exception):
    """The stored positions are not in a format this code reads: rebuild them from the history."""


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _position_row(position: Position) -> list[Any]:
    lots = [
        [str(lot.amount), None if lot.cost is None else str(lot.cost), _micros(lot.acquired_at)]
        for lot in position.lots
    ]
    totals = [str(getattr(position, name)) for name in RUNNING_TOTALS]
    category = None if position.category_override is None else position.category_override.value
    return [position.token.chain, position.token.address, lots, *totals, category]


def _position_from_row(row: list[Any]) -> Position:
    chain, address, lots, *totals, category = row
    if len(totals) != len(RUNNING_TOTALS):
        raise ValueError(f"a position row has {len(totals)} totals")
    return restore_position(
        TokenId(chain, address),
        tuple(
            Lot(Decimal(amount), None if cost is None else Decimal(cost), _moment(acquired))
            for amount, cost, acquired in lots
        ),
        **dict(zip(RUNNING_TOTALS, map(Decimal, totals), strict=True)),
        category_override=None if category is None else Category(category),
    )


def encode_positions(ledger: Ledger) -> bytes:
    last = None if ledger.last_applied is None else [_micros(ledger.last_applied[0]), ledger.last_applied[1]]
    document = {
        "v": FORMAT_VERSION,
        "m": ledger.method.value,
        "n": ledger.transaction_count,
        "last": last,
        "first": None if ledger.first_applied_at is None else _micros(ledger.first_applied_at),
        "p": [_position_row(position) for position in ledger.positions.values()],
    }
    return zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 6)


def decode_positions(blob: bytes) -> Ledger:
    try:
        document = json.loads(zlib.decompress(blob))
        if document.get("v") != FORMAT_VERSION:
            raise UnreadablePositionsError(f"positions format {document.get('v')!r}")
        last = document["last"]
        positions = (_position_from_row(row) for row in document["p"])
        return Ledger(
            method=CostBasisMethod(document["m"]),
            positions={position.token: position for position in positions},
            transaction_count=document["n"],
            last_applied=None if last is None else (_moment(last[0]), last[1]),
            first_applied_at=None if document["first"] is None else _moment(document["first"]),
        )
    except UnreadablePositionsError:
        raise
    except (zlib.error, ValueError, KeyError, TypeError, ArithmeticError) as error:
        raise UnreadablePositionsError(f"positions do not decode: {type(error).__name__}") from error
