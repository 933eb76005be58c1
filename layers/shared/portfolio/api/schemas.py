"""Request and response bodies of the API that are not domain views."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, Discriminator, Field, Tag, ValidationInfo, WrapValidator, model_validator
from pydantic_core import PydanticCustomError

from portfolio.domain.errors import DomainError
from portfolio.domain.portfolio_record import CostBasisMethod, CostBasisScope, MissingAcquisitions
from portfolio.domain.transactions import CHAIN_ID_PREFIX, Transaction, TransactionSource
from portfolio.domain.wallets import SyncStatus
from portfolio.wire_format import CamelModel

USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
# pydantic (Rust regex) and JSON Schema read `$` as the end of the text; Python's re also lets it
# match before a final newline, so Python code checks a user id with fullmatch, never match.
_USER_ID = re.compile(USER_ID_PATTERN)
DOMAIN_ERROR_TYPE = "domain_invalid_input"


def is_user_id(value: str) -> bool:
    """Whether `value` is a user id the routes accept (USER_ID_PATTERN over the whole string)."""
    return _USER_ID.fullmatch(value) is not None


def _domain_errors_as_validation_errors(value: Any, handler: Any, _info: ValidationInfo) -> Any:
    """Token normalization raises the domain's own error; turn it into a pydantic error that keeps its field."""
    try:
        return handler(value)
    except DomainError as error:
        context = {"message": error.message, "field": error.field}
        raise PydanticCustomError(DOMAIN_ERROR_TYPE, "{message}", context) from error


def _submitted_by_user(transaction: Transaction) -> Transaction:
    """What a user posts is theirs: only wallet sync records chain transactions, under its own ids."""
    if transaction.source is not TransactionSource.USER:
        raise PydanticCustomError(
            DOMAIN_ERROR_TYPE,
            "{message}",
            {
                "message": "only wallet sync records transactions of source chain; send source user or leave it out",
                "field": "source",
            },
        )
    if transaction.id.startswith(CHAIN_ID_PREFIX):
        raise PydanticCustomError(
            DOMAIN_ERROR_TYPE,
            "{message}",
            {"message": f"ids starting with {CHAIN_ID_PREFIX!r} are kept for wallet sync", "field": "id"},
        )
    if transaction.price_source is not None and transaction.price_usd is None:
        # A record sent back as it was listed (market-priced) is taken as it is; a bare claim is not.
        raise PydanticCustomError(
            DOMAIN_ERROR_TYPE,
            "{message}",
            {"message": "priceSource market needs the priceUsd it was listed with", "field": "priceSource"},
        )
    return transaction


TransactionInput = Annotated[
    Transaction, WrapValidator(_domain_errors_as_validation_errors), AfterValidator(_submitted_by_user)
]


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
    """The settings to change; those left out stay as they are."""

    cost_basis_method: CostBasisMethod | None = Field(
        None,
        description=(
            "Which lots a sale or transfer out takes: fifo the earliest acquired, lifo the latest, "
            "hifo the highest cost per unit (lots of unknown cost last), average one pool at its average cost"
        ),
    )
    cost_basis_scope: CostBasisScope | None = Field(
        None,
        description=(
            "chain (default): a removal takes lots of the same token on the same chain. asset: lots are "
            "pooled per asset across chains (ETH on Ethereum and on Arbitrum are one pool, as tax tools "
            "count them), so bridging changes no cost"
        ),
    )
    missing_acquisitions: MissingAcquisitions | None = Field(
        None,
        description=(
            "refuse (default): selling or sending more than is held is a 422. accept: the part not held "
            "counts as acquired at cost zero (a history imported in part), reported in missingAcquisitions"
        ),
    )

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.cost_basis_method is None and self.cost_basis_scope is None and self.missing_acquisitions is None:
            raise PydanticCustomError(
                DOMAIN_ERROR_TYPE,
                "{message}",
                {
                    "message": "name a setting to change: costBasisMethod, costBasisScope or missingAcquisitions",
                    "field": None,
                },
            )
        return self


class PortfolioSettings(CamelModel):
    user_id: str
    cost_basis_method: CostBasisMethod
    cost_basis_scope: CostBasisScope
    missing_acquisitions: MissingAcquisitions


class Health(CamelModel):
    status: Literal["ok"]


class WalletLink(CamelModel):
    """POST /wallets: an EVM address (0x...) or a Solana address (base58)."""

    address: str = Field(min_length=1, max_length=100)
    chains: list[str] | None = Field(
        None, min_length=1, max_length=20, description="Default: every configured chain of the address's family"
    )
    label: str | None = Field(None, max_length=64)


class WalletChainView(CamelModel):
    chain: str
    status: SyncStatus = Field(description="pending: not synced yet; ok: the last sync succeeded; error: see error")
    block_number: int | None = Field(None, description="Block (Solana: slot) of the last successful sync")
    last_synced_at: datetime | None = None
    error: str | None = Field(None, description="Why the last sync of this chain failed")


class WalletView(CamelModel):
    wallet_id: str
    address: str = Field(description="EVM addresses in their EIP-55 checksum form")
    label: str | None
    chains: list[WalletChainView]
    linked_at: datetime


class WalletList(CamelModel):
    wallets: list[WalletView]
