"""Bodies of the /alerts routes: the rule a client sends, and a rule as answered (with its id and state)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, RootModel, ValidationError, ValidationInfo, WrapValidator
from pydantic_core import PydanticCustomError

from portfolio.api.schemas import DOMAIN_ERROR_TYPE
from portfolio.domain.alerts import (
    AlertCondition,
    AlertKind,
    AlertRule,
    AlertStatus,
    PriceCondition,
    ValueChangeCondition,
)
from portfolio.domain.errors import DomainError
from portfolio.domain.money import DecimalValue
from portfolio.wire_format import CamelModel

_KINDS = frozenset(kind.value for kind in AlertKind)
_KIND_MESSAGE = f"must be one of: {', '.join(sorted(_KINDS))}"


def _one_named_field(value: Any, handler: Any, _info: ValidationInfo) -> Any:
    """The first problem of a rule, naming its field as the client wrote it: pydantic files a field of
    one kind of rule under the kind ("price.above"), which the client never wrote."""
    try:
        return handler(value)
    except DomainError as error:
        raise PydanticCustomError(
            DOMAIN_ERROR_TYPE, "{message}", {"message": error.message, "field": error.field}
        ) from error
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            raise PydanticCustomError(
                DOMAIN_ERROR_TYPE, "{message}", {"message": _KIND_MESSAGE, "field": "kind"}
            ) from None
        path = ".".join(str(part) for part in first["loc"] if part not in _KINDS) or None
        message = str(first["msg"]).removeprefix("Value error, ")
        raise PydanticCustomError(DOMAIN_ERROR_TYPE, "{message}", {"message": message, "field": path}) from None


# What POST /alerts takes: {"kind": "value_change", "thresholdPercent": "5", "window": "24h"} or
# {"kind": "price", "asset": "ETH", "above": "4000"}.
AlertInput = Annotated[AlertCondition, WrapValidator(_one_named_field)]


class _RuleFields(CamelModel):
    alert_id: str = Field(description="Given by the server, derived from the rule: the same rule has the same id")
    created_at: datetime
    status: AlertStatus = Field(
        description="armed: fires when its condition holds; fired: re-arms once it no longer does"
    )
    status_changed_at: datetime | None = Field(None, description="When it last fired or re-armed")
    last_fired_at: datetime | None = None
    last_observed: DecimalValue | None = Field(
        None, description="The figure when it last fired or re-armed: the price (USD) or the change (percent)"
    )


class ValueChangeAlert(ValueChangeCondition, _RuleFields):
    pass


class PriceAlert(PriceCondition, _RuleFields):
    pass


class AlertView(RootModel[Annotated[ValueChangeAlert | PriceAlert, Field(discriminator="kind")]]):
    """A rule as answered: its condition, id and state."""


class AlertList(CamelModel):
    alerts: list[AlertView]


def alert_view(rule: AlertRule) -> AlertView:
    fields = {
        "alert_id": rule.alert_id,
        "created_at": rule.created_at,
        "status": rule.state.status,
        "status_changed_at": rule.state.changed_at,
        "last_fired_at": rule.state.last_fired_at,
        "last_observed": rule.state.observed,
        **dict(rule.condition),
    }
    view = PriceAlert(**fields) if isinstance(rule.condition, PriceCondition) else ValueChangeAlert(**fields)
    return AlertView(view)
