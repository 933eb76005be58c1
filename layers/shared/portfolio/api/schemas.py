"""Request and response bodies of the API that are not domain views."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from portfolio.api import openapi_fields
from portfolio.domain.errors import DomainError
from portfolio.domain.portfolio_record import CostBasisMethod, CostBasisScope, MissingAcquisitions
from portfolio.domain.tokens import EVM_ZERO_ADDRESS, SOLANA_NATIVE_MINT
from portfolio.domain.transactions import CHAIN_ID_PREFIX, WALLET_ID_PATTERN, Transaction, TransactionSource
from portfolio.domain.wallets import SyncStatus
from portfolio.wire_format import CamelModel

USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
# pydantic (Rust regex) and JSON Schema read `$` as the end of the text; Python's re also lets it
# match before a final newline, so Python code checks a user id with fullmatch, never match.
_USER_ID = re.compile(USER_ID_PATTERN)
DOMAIN_ERROR_TYPE = "domain_invalid_input"

# A chain slug: checked (and lowercased) by the domain's normalize_chain; declared as the enum of the
# supported slugs (the document's Chain schema).
ChainSlug = Annotated[str, WithJsonSchema(openapi_fields.chain_schema())]


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


def _at_least_one_setting(schema: dict[str, Any]) -> None:
    """The document says what _something checks: one setting at least, not null."""
    schema["anyOf"] = [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in schema["properties"]
    ]


class SettingsUpdate(CamelModel):
    """The settings to change; those left out stay as they are."""

    model_config = ConfigDict(json_schema_extra=_at_least_one_setting)

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


class GatewayError(CamelModel):
    """API Gateway's own answer, given instead of the function's: its JWT authorizer refusing a token
    (401), its throttling (429), a body over its 10 MB limit (413), a function that failed or timed
    out (500). Its shape cannot be changed for an HTTP API."""

    message: str = Field(examples=["Unauthorized", "Too Many Requests", "Internal Server Error"])


class WalletLink(CamelModel):
    """POST /wallets: an EVM address (0x...) or a Solana address (base58)."""

    # The domain checks the address and chains (portfolio.domain.wallets), with messages naming what is
    # wrong; the schema states the same rules for the document.
    model_config = ConfigDict(json_schema_extra=openapi_fields.wallet_link_rules)

    address: str = Field(
        min_length=1,
        max_length=100,
        description=(
            "EVM: 0x and 40 hex digits, all lowercase, all uppercase, or mixed case that is its EIP-55 "
            "checksum. Solana: the base58 form of a 32-byte public key"
        ),
        json_schema_extra={"anyOf": openapi_fields.wallet_address_forms()},
    )
    chains: list[ChainSlug] | None = Field(
        None,
        min_length=1,
        max_length=20,
        description="Chains of the address's family (EVM chains for 0x addresses, solana for the others). "
        "Default: every configured chain of the address's family",
    )
    label: str | None = Field(None, max_length=64)


class WalletChainView(CamelModel):
    chain: ChainSlug
    status: SyncStatus = Field(description="pending: not synced yet; ok: the last sync succeeded; error: see error")
    block_number: int | None = Field(None, description="Block (Solana: slot) of the last successful sync")
    last_synced_at: datetime | None = None
    error: str | None = Field(None, description="Why the last sync of this chain failed")


class WalletView(CamelModel):
    wallet_id: str = Field(pattern=WALLET_ID_PATTERN)
    address: str = Field(
        description="EVM addresses in their EIP-55 checksum form",
        json_schema_extra={"anyOf": openapi_fields.displayed_wallet_address_forms()},
    )
    label: str | None
    chains: list[WalletChainView]
    linked_at: datetime


class WalletList(CamelModel):
    wallets: list[WalletView]


# Request bodies the document shows (and schema-driven clients send first): each one is accepted.
TRANSACTION_EXAMPLES: dict[str, Any] = {
    "buy": {
        "summary": "One buy of ETH on Ethereum",
        "value": {
            "id": "tx-1001",
            "type": "buy",
            "chain": "ethereum",
            "tokenAddress": EVM_ZERO_ADDRESS,
            "amount": "1.5",
            "priceUsd": "3120.50",
            "timestamp": "2024-03-01T12:00:00Z",
        },
    },
    "batch": {
        "summary": "A batch: SOL bought, then part of it sold",
        "value": {
            "transactions": [
                {
                    "id": "tx-1002",
                    "type": "buy",
                    "chain": "solana",
                    "tokenAddress": SOLANA_NATIVE_MINT,
                    "amount": "20",
                    "priceUsd": "125.40",
                    "feeUsd": "0.01",
                    "timestamp": "2024-02-10T09:30:00Z",
                },
                {
                    "id": "tx-1003",
                    "type": "sell",
                    "chain": "solana",
                    "tokenAddress": SOLANA_NATIVE_MINT,
                    "amount": "5",
                    "priceUsd": "180",
                    "timestamp": "2024-04-02T16:45:00+02:00",
                },
            ]
        },
    },
}
SETTINGS_EXAMPLES: dict[str, Any] = {
    "method": {"summary": "Highest cost first", "value": {"costBasisMethod": "hifo"}},
    "pooled": {
        "summary": "Lots pooled across chains, a history imported in part",
        "value": {"costBasisScope": "asset", "missingAcquisitions": "accept"},
    },
}
WALLET_LINK_EXAMPLES: dict[str, Any] = {
    "evm": {
        "summary": "An EVM address (EIP-55 checksum) on Ethereum, labelled",
        "value": {"address": "0x000000000000000000000000000000000000dEaD", "chains": ["ethereum"], "label": "cold"},
    },
    "solana": {
        "summary": "A Solana address",
        "value": {"address": "w1WGnkQAKSLs7oMvhSvPMySAWvGj3n4RUghwNo559AD", "chains": ["solana"]},
    },
}
