"""Returns of a period that money came into or went out of: time-weighted and money-weighted.

Both read the portfolio's observations (history points), oldest first: at each, its value, and the
value its holdings had at the previous observation's prices (`before`). Between two observations,
`before` less the earlier value is what money brought in or took out (buys, sales, transfers, at
the market's prices), and the value less `before` is what the market did.

- Time-weighted (TWR, what Ghostfolio shows): each interval's return is value / before - 1, and
  the period's is the product of (1 + each) - 1. Money moving does not change it: with none, it
  is the value change.
- Money-weighted (MWR): the rate r of the whole period at which the start value and every flow,
  each grown by (1 + r) to the power of the part of the period it stayed invested (a flow counted
  from the start of its interval), end at the end value: an internal rate of return, not
  annualized. With the start value as the only money in, it equals the TWR.

Decimal throughout; percentages are rounded to 0.01 at the end only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Context, Decimal
from itertools import pairwise

from portfolio.domain.arithmetic import percent
from portfolio.domain.money import ZERO

_ONE = Decimal(1)
_RATE = Context(prec=34)
# The solved growth is exact to this: far below the 0.0001 (0.01 %) the answer is rounded to.
_TOLERANCE = Decimal("1e-12")
_MAX_STEPS = 200
_MAX_GROWTH = Decimal(10) ** 12

Observation = tuple[Decimal | None, Decimal]  # (value before, value)


def time_weighted_percent(points: Sequence[Observation]) -> Decimal | None:
    """TWR in percent from (before, value) observations, oldest first (a `before` of None: as the
    previous value); None when no interval had anything invested."""
    growth = _ONE
    measured = False
    for (_, start_value), (before, value) in pairwise(points):
        invested = start_value if before is None else before
        if invested <= ZERO:
            continue  # nothing was invested through this interval: it has no return
        growth = _RATE.multiply(growth, _RATE.divide(value, invested))
        measured = True
    return percent(_RATE.subtract(growth, _ONE), _ONE) if measured else None


def money_weighted_percent(points: Sequence[tuple[datetime, Decimal | None, Decimal]]) -> Decimal | None:
    """MWR in percent from (moment, before, value) observations, oldest first; None when the period
    has no length, nothing was ever invested, or no rate balances its flows."""
    if len(points) < 2:
        return None
    start, end = points[0][0], points[-1][0]
    length = Decimal((end - start).total_seconds())
    if length <= ZERO:
        return None
    # Each flow with the share of the period it stayed invested; the start value is the first.
    flows = [(points[0][2], _ONE)]
    for (moment, _, previous), (_, before, _) in pairwise(points):
        flow = ZERO if before is None else _RATE.subtract(before, previous)
        if flow:
            flows.append((flow, _RATE.divide(Decimal((end - moment).total_seconds()), length)))
    flows = [(amount, share) for amount, share in flows if amount]
    if not flows or all(amount <= ZERO for amount, _ in flows):
        return None
    end_value = points[-1][2]
    if len(flows) == 1 and flows[0][1] == _ONE:
        growth: Decimal | None = _RATE.divide(end_value, flows[0][0])  # one deposit at the start
    else:
        growth = _solve(flows, end_value)
    return None if growth is None else percent(_RATE.subtract(growth, _ONE), _ONE)


def _gap(flows: Sequence[tuple[Decimal, Decimal]], growth: Decimal, end_value: Decimal) -> Decimal:
    """What the flows end at when money grows by `growth` (1 + r) over the period, less the end value."""
    if growth == ZERO:
        ending = sum((amount for amount, share in flows if share == ZERO), ZERO)
    else:
        logarithm = growth.ln(_RATE)
        ending = sum(
            (
                amount if share == ZERO else _RATE.multiply(amount, _RATE.exp(_RATE.multiply(share, logarithm)))
                for amount, share in flows
            ),
            ZERO,
        )
    return _RATE.subtract(ending, end_value)


def _solve(flows: Sequence[tuple[Decimal, Decimal]], end_value: Decimal) -> Decimal | None:
    """The growth 1 + r at which the flows end at `end_value`, between a total loss and a gain of
    10^12 times; None when none does. Regula falsi (Illinois): a few dozen steps at most."""
    low, high = ZERO, _ONE
    low_gap, high_gap = _gap(flows, low, end_value), _gap(flows, high, end_value)
    while (low_gap > ZERO) == (high_gap > ZERO) and high < _MAX_GROWTH:
        low, low_gap = high, high_gap
        high = high * 10
        high_gap = _gap(flows, high, end_value)
    if low_gap == ZERO:
        return low
    if (low_gap > ZERO) == (high_gap > ZERO):
        return None
    side = 0
    middle = previous = low
    for _ in range(_MAX_STEPS):
        middle = _RATE.divide(
            _RATE.subtract(_RATE.multiply(low, high_gap), _RATE.multiply(high, low_gap)),
            _RATE.subtract(high_gap, low_gap),
        )
        gap = _gap(flows, middle, end_value)
        if gap == ZERO or high - low < _TOLERANCE or abs(middle - previous) < _TOLERANCE:
            break
        previous = middle
        if (gap > ZERO) == (high_gap > ZERO):
            high, high_gap = middle, gap
            if side == -1:
                low_gap /= 2
            side = -1
        else:
            low, low_gap = middle, gap
            if side == 1:
                high_gap /= 2
            side = 1
    return middle
