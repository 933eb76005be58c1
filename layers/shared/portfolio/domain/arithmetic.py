"""The Decimal rules every computation here follows.

Accounting runs in `EXACT`, a context wide enough (150 significant digits) that adding,
subtracting and multiplying inputs within money.py's bounds (30 integer and 36 fraction digits)
never rounds. Only division can produce an endless expansion; `divide` rounds its result to
`QUANTUM` (1e-36, the finest input an amount or price may carry), so amounts stay on one grid
and sums of them stay exact. Figures are rounded for display only, at the edge (`cents`,
`percent`), never in the accounting itself.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import Final

from portfolio.domain.money import HUNDRED, ZERO

EXACT: Final = Context(prec=150, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])
QUANTUM: Final = Decimal("1e-36")
CENT: Final = Decimal("0.01")
PERCENT_QUANTUM: Final = Decimal("0.01")


def exact() -> AbstractContextManager[Context]:
    """`with exact():` runs the block in the accounting context."""
    return localcontext(EXACT)


def divide(numerator: Decimal, denominator: Decimal) -> Decimal:
    """numerator / denominator rounded half-even to QUANTUM, without trailing zeros."""
    quotient = EXACT.divide(numerator, denominator).quantize(QUANTUM, rounding=ROUND_HALF_EVEN, context=EXACT)
    return quotient.normalize(EXACT)


def prorate(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """The share of `total` that `part` of `whole` carries, never more than `total`.

    Used to split a lot's cost or a sale's proceeds; taking all of `whole` returns `total` exactly.
    """
    if part == whole:
        return total
    if part == ZERO or total == ZERO:
        return ZERO
    share = divide(EXACT.multiply(total, part), whole)
    return min(share, total) if total > ZERO else max(share, total)


def cents(value: Decimal) -> Decimal:
    """A USD figure for display: rounded half-even to the cent."""
    return EXACT.quantize(value, CENT)  # the context's own rounding: half-even


def percent(part: Decimal, whole: Decimal) -> Decimal | None:
    """part / whole * 100 rounded to 0.01, or None when whole is zero."""
    if whole == ZERO:
        return None
    return EXACT.quantize(EXACT.divide(EXACT.multiply(part, HUNDRED), whole), PERCENT_QUANTUM)
