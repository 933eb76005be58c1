"""Alert rules a user sets on a portfolio, and their evaluation on each refresh: pure and Decimal-exact.

Two kinds of rule:
- `value_change`: the portfolio's value moved by at least `thresholdPercent` over a `window` (1h, 24h
  or 7d): `up`, `down` or `either` way. The change is the market's: the holdings the user has now,
  valued at the prices of the window's start and at the prices of now, so buying, selling or sending
  coins never trips it, and no value series has to be kept per user (the price history the refresh
  records anyway is enough). A holding without a price at both ends is left out of both sides.
- `price`: an asset of the token registry (ETH, SOL, USDC, ...) `above` a price (at or above it) or
  `below` one (at or below it), priced through its reference token (`reference_token`).

State: a rule is `armed` or `fired`. It fires when its condition holds on a refresh while it is armed,
and it re-arms on the first refresh where its condition no longer holds: one alert per crossing, never
one per refresh while the price stays above. A rule created while its condition already holds fires on
its first evaluation. A refresh that cannot tell (no price for the asset, no price at the window's
start) changes nothing. There is no hysteresis band: refreshes are minutes apart, so a figure
hovering at the threshold re-fires at most once per crossing of that grid; a rule that should not
re-fire soon can be deleted once it fired.

Comparisons are exact: a change is compared as `(now - start) x 100` against `threshold x start`, never
through a rounded percentage; only the figures shown (`observed`) are rounded, to 0.01.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from portfolio.domain.arithmetic import EXACT, cents, percent
from portfolio.domain.errors import DomainError, InvalidInputError
from portfolio.domain.money import HUNDRED, ZERO, DecimalStr, DecimalValue, to_decimal_string
from portfolio.domain.token_registry import asset_symbol, known_tokens
from portfolio.domain.tokens import TokenId
from portfolio.wire_format import CamelModel

DEFAULT_MAX_RULES_PER_USER = 20
MAX_THRESHOLD_PERCENT = Decimal(10_000)
ALERT_ID_PATTERN = r"^[a-z0-9]{1,40}$"
_ASSET_TEXT = re.compile(r"^[A-Za-z0-9.]{1,20}$")


class AlertKind(StrEnum):
    VALUE_CHANGE = "value_change"
    PRICE = "price"


class AlertWindow(StrEnum):
    HOUR = "1h"
    DAY = "24h"
    WEEK = "7d"

    @property
    def length(self) -> timedelta:
        return _WINDOW_LENGTHS[self]


_WINDOW_LENGTHS = {
    AlertWindow.HOUR: timedelta(hours=1),
    AlertWindow.DAY: timedelta(hours=24),
    AlertWindow.WEEK: timedelta(days=7),
}


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    EITHER = "either"


class AlertStatus(StrEnum):
    ARMED = "armed"  # fires when its condition holds
    FIRED = "fired"  # fired; re-arms once its condition no longer holds


class UnknownAssetError(DomainError):
    """A price rule names an asset the token registry does not know."""

    code = "unknown_asset"


class AlertNotFound(Exception):
    """No rule of the user has this id."""

    def __init__(self, alert_id: str) -> None:
        super().__init__(f"no alert rule {alert_id}")
        self.alert_id = alert_id


def _positive(value: Decimal, field: str, ceiling: Decimal | None = None) -> None:
    if value <= ZERO:
        raise InvalidInputError("must be greater than zero", field=field)
    if ceiling is not None and value > ceiling:
        raise InvalidInputError(f"must be at most {to_decimal_string(ceiling)}", field=field)


class ValueChangeCondition(CamelModel):
    """The portfolio's value moved by at least `threshold_percent` over `window`."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["value_change"]
    threshold_percent: DecimalStr = Field(description='Percent, e.g. "5" for 5 %; above 0, at most 10000')
    window: AlertWindow = Field(AlertWindow.DAY, description="Compared with the value this long ago")
    direction: Direction = Field(Direction.EITHER, description="up: a rise; down: a fall; either: both")

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        _positive(self.threshold_percent, "thresholdPercent", MAX_THRESHOLD_PERCENT)
        return self


class PriceCondition(CamelModel):
    """An asset's price at or above `above`, or at or below `below` (exactly one of them)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["price"]
    asset: str = Field(description="An asset of the token registry, by its symbol: ETH, SOL, USDC, WBTC, ...")
    above: DecimalStr | None = Field(None, description="Fires when the price is at or above this (USD)")
    below: DecimalStr | None = Field(None, description="Fires when the price is at or below this (USD)")

    @model_validator(mode="after")
    def _one_bound(self) -> Self:
        if not _ASSET_TEXT.fullmatch(self.asset):
            raise InvalidInputError("an asset symbol such as ETH: letters, digits and dots, at most 20", field="asset")
        if (self.above is None) == (self.below is None):
            raise InvalidInputError("give exactly one of above and below", field="above")
        bound, field = (self.above, "above") if self.above is not None else (self.below, "below")
        assert bound is not None
        _positive(bound, field)
        return self

    @property
    def asset_id(self) -> str:
        """The registry's asset id ("eth" for ETH): what the rule is priced by."""
        return self.asset.lower()


AlertCondition = Annotated[ValueChangeCondition | PriceCondition, Field(discriminator="kind")]


class AlertState(CamelModel):
    """Where a rule stands: written only when it fires or re-arms, never on a refresh that changes nothing."""

    status: AlertStatus = AlertStatus.ARMED
    changed_at: datetime | None = Field(None, description="When it last fired or re-armed")
    last_fired_at: datetime | None = None
    observed: DecimalValue | None = Field(
        None, description="The figure at that moment: the price (USD) or the change (percent)"
    )


def alert_id_for(condition: ValueChangeCondition | PriceCondition) -> str:
    """Derived from the condition, as stored: the same rule set twice is one rule, under one id."""
    canonical = json.dumps(condition.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class AlertRule(CamelModel):
    alert_id: str
    created_at: datetime
    condition: AlertCondition
    state: AlertState = Field(default_factory=AlertState)


# Assets -------------------------------------------------------------------------------------------


@cache
def _assets_by_name() -> dict[str, str]:
    """Asset id by lowercase symbol and by id: "eth" and "ETH" both name the asset "eth"."""
    names: dict[str, str] = {}
    for info in known_tokens():
        names[info.asset] = info.asset
        symbol = asset_symbol(info.asset)
        if symbol:
            names.setdefault(symbol.lower(), info.asset)
    return names


def resolve_asset(text: str) -> str:
    """The display symbol of the registry asset `text` names ("eth" -> "ETH"); UnknownAssetError otherwise."""
    asset = _assets_by_name().get(text.strip().lower())
    if asset is None:
        raise UnknownAssetError(
            f"{text[:20]!r} is not an asset this service prices; use a symbol such as ETH, SOL, USDC or WBTC",
            field="asset",
        )
    return asset_symbol(asset) or asset.upper()


@cache
def reference_token(asset: str) -> TokenId | None:
    """The token an asset's price is read from: its native coin where it is one, else the first the
    registry lists (mainnet first), so ETH is priced as coingecko:ethereum wherever it is held."""
    candidates = [info.token for info in known_tokens() if info.asset == asset]
    natives = [token for token in candidates if token.is_native]
    chosen = natives or candidates
    return chosen[0] if chosen else None


def resolved(condition: ValueChangeCondition | PriceCondition) -> ValueChangeCondition | PriceCondition:
    """The condition as stored: a price rule's asset under the registry's own symbol (raises UnknownAssetError)."""
    if isinstance(condition, PriceCondition):
        return condition.model_copy(update={"asset": resolve_asset(condition.asset)})
    return condition


# Evaluation ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValueChange:
    """The same holdings valued at a window's start and now (USD, exact)."""

    start_value: Decimal
    end_value: Decimal

    @property
    def percent(self) -> Decimal:
        """Rounded to 0.01, for display; a rule compares exactly (`reaches`)."""
        change = percent(EXACT.subtract(self.end_value, self.start_value), self.start_value)
        return ZERO if change is None else change

    def reaches(self, threshold_percent: Decimal, direction: Direction) -> bool:
        moved = EXACT.multiply(EXACT.subtract(self.end_value, self.start_value), HUNDRED)
        bound = EXACT.multiply(threshold_percent, self.start_value)
        rose, fell = moved >= bound, EXACT.minus(moved) >= bound
        if direction is Direction.UP:
            return rose
        if direction is Direction.DOWN:
            return fell
        return rose or fell


def holdings_change(holdings: Iterable[tuple[Decimal, Decimal | None, Decimal | None]]) -> ValueChange | None:
    """The value change of holdings given as (amount, price now, price at the start): only those
    priced at both ends count, on both sides. None when nothing was worth anything at the start."""
    start, end = ZERO, ZERO
    for amount, now, then in holdings:
        if now is None or then is None:
            continue
        start = EXACT.add(start, EXACT.multiply(amount, then))
        end = EXACT.add(end, EXACT.multiply(amount, now))
    if start <= ZERO:
        return None
    return ValueChange(start_value=start, end_value=end)


@dataclass(frozen=True, slots=True)
class Observation:
    """What one refresh knows: asset prices (by registry asset id) and the portfolio's value change per window."""

    at: datetime
    asset_prices: Mapping[str, Decimal]
    value_changes: Mapping[AlertWindow, ValueChange]


class FiredAlert(CamelModel):
    """One rule's condition became true: what reaches EventBridge and the user's WebSocket."""

    user_id: str
    alert_id: str
    rule: AlertCondition
    observed: DecimalValue = Field(description="The price (USD) or the change (percent) that crossed the threshold")
    start_value_usd: DecimalValue | None = Field(None, description="value_change: the value at the window's start")
    end_value_usd: DecimalValue | None = Field(None, description="value_change: the value now")
    fired_at: datetime
    message: str

    @property
    def event_id(self) -> str:
        """Stable for one firing: lets a consumer drop a repeat."""
        return f"{self.alert_id}:{self.fired_at.isoformat()}"

    def payload(self) -> dict[str, Any]:
        """The JSON form every channel carries (the WebSocket message adds its `type`)."""
        return {"eventId": self.event_id, **self.model_dump(mode="json", by_alias=True, exclude_none=True)}


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Every rule with its state after this refresh, the alerts that fired and the ids that re-armed."""

    rules: tuple[AlertRule, ...]
    fired: tuple[FiredAlert, ...]
    rearmed: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """True when some state must be written: only a firing or a re-arming is."""
        return bool(self.fired or self.rearmed)


@dataclass(frozen=True, slots=True)
class _Reading:
    holds: bool
    observed: Decimal
    change: ValueChange | None = None


def evaluate(user_id: str, rules: Sequence[AlertRule], observation: Observation) -> Evaluation:
    """Each rule against what this refresh observed: fire the armed ones whose condition holds,
    re-arm the fired ones whose condition no longer does, leave the rest (and the unknowable) alone."""
    updated: list[AlertRule] = []
    fired: list[FiredAlert] = []
    rearmed: list[str] = []
    for rule in rules:
        reading = _read(rule.condition, observation)
        state = rule.state
        if reading is None or reading.holds == (state.status is AlertStatus.FIRED):
            updated.append(rule)
            continue
        if reading.holds:
            state = AlertState(
                status=AlertStatus.FIRED,
                changed_at=observation.at,
                last_fired_at=observation.at,
                observed=reading.observed,
            )
            fired.append(_fired(user_id, rule, reading, observation.at))
        else:
            state = state.model_copy(
                update={"status": AlertStatus.ARMED, "changed_at": observation.at, "observed": reading.observed}
            )
            rearmed.append(rule.alert_id)
        updated.append(rule.model_copy(update={"state": state}))
    return Evaluation(rules=tuple(updated), fired=tuple(fired), rearmed=tuple(rearmed))


def _read(condition: ValueChangeCondition | PriceCondition, observation: Observation) -> _Reading | None:
    if isinstance(condition, PriceCondition):
        price = observation.asset_prices.get(condition.asset_id)
        if price is None:
            return None
        if condition.above is not None:
            return _Reading(holds=price >= condition.above, observed=price)
        assert condition.below is not None
        return _Reading(holds=price <= condition.below, observed=price)
    change = observation.value_changes.get(condition.window)
    if change is None:
        return None
    return _Reading(
        holds=change.reaches(condition.threshold_percent, condition.direction), observed=change.percent, change=change
    )


def _fired(user_id: str, rule: AlertRule, reading: _Reading, at: datetime) -> FiredAlert:
    change = reading.change
    return FiredAlert(
        user_id=user_id,
        alert_id=rule.alert_id,
        rule=rule.condition,
        observed=reading.observed,
        start_value_usd=None if change is None else cents(change.start_value),
        end_value_usd=None if change is None else cents(change.end_value),
        fired_at=at,
        message=_message(rule.condition, reading),
    )


def _message(condition: AlertCondition, reading: _Reading) -> str:
    if isinstance(condition, PriceCondition):
        side, bound = (
            ("at or above", condition.above) if condition.above is not None else ("at or below", condition.below)
        )
        assert bound is not None
        return f"{condition.asset} is at {to_decimal_string(reading.observed)} USD, {side} {to_decimal_string(bound)}"
    change = reading.change
    assert change is not None
    verb = "rose" if change.end_value >= change.start_value else "fell"
    return (
        f"Portfolio value {verb} {to_decimal_string(abs(reading.observed))} % over {condition.window.value} "
        f"({to_decimal_string(cents(change.start_value))} -> {to_decimal_string(cents(change.end_value))} USD)"
    )


def windows_of(rules: Iterable[AlertRule]) -> set[AlertWindow]:
    """The windows some value_change rule looks back over."""
    return {rule.condition.window for rule in rules if isinstance(rule.condition, ValueChangeCondition)}


def assets_of(rules: Iterable[AlertRule]) -> set[str]:
    """The registry asset ids some price rule watches."""
    return {rule.condition.asset_id for rule in rules if isinstance(rule.condition, PriceCondition)}
