"""Request and response bodies of the API that are not domain views."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationInfo, WrapValidator
from pydantic_core import PydanticCustomError

from portfolio.domain.errors import DomainError
from portfolio.domain.portfolio_record import CostBasisMethod
from portfolio.domain.transactions import Transaction
from portfolio.wire_format import CamelModel

USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
DOMAIN_ERROR_TYPE = "domain_invalid_input"


def _domain_errors_as_validation_errors(value: Any, handler: Any, _info: ValidationInfo) -> Any:
    """Token normalization raises the domain's own error; turn it into a pydantic error that keeps its field."""
    try:
        return handler(value)
    except DomainError as error:
        context = {"message": error.message, "field": error.field}
        raise PydanticCustomError(DOMAIN_ERROR_TYPE, "{message}", context) from error


TransactionInput = Annotated[Transaction, WrapValidator(_domain_errors_as_validation_errors)]


class TransactionBatch(CamelModel):
    transactions: list[TransactionInput] = Field(min_length=1)


def _submission_shape(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "transactions" in value else "single"


# POST /transactions accepts one transaction or {"transactions": [...]}.
TransactionSubmission = Annotated[
    Annotated[TransactionBatch, Tag("batch")] | Annotated[TransactionInput, Tag("single")],
    Discriminator(_submission_shape),
]
SUBMISSION_TAGS = frozenset({"batch", "single"})


class RecordedTransactions(CamelModel):
    """The stored records, in the order they were sent; a repeated id answers with the record already stored."""

    transactions: list[Transaction]


class SettingsUpdate(CamelModel):
    cost_basis_method: CostBasisMethod


class PortfolioSettings(CamelModel):
    user_id: str
    cost_basis_method: CostBasisMethod


class Health(CamelModel):
    status: Literal["ok"]
