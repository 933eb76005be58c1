"""A recorded transaction, validated once at the edge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Self

from pydantic import Field, field_validator, model_validator

from portfolio.domain.money import DecimalStr
from portfolio.domain.tokens import TokenId, normalize_chain, normalize_token
from portfolio.wire_format import CamelModel

# Clocks drift; a timestamp this far ahead of ours is still accepted.
FUTURE_TOLERANCE = timedelta(minutes=5)
TRANSACTION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
# Ids of what wallet sync records start with this; a user's ids may not.
CHAIN_ID_PREFIX = "sync:"
WALLET_ID_PATTERN = r"^w[0-9a-f]{16}$"


class TransactionType(StrEnum):
    BUY = "buy"
    SELL = "sell"
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"
    BRIDGE = "bridge"
    INCOME = "income"  # staking rewards, airdrops, interest: income at their value when received


class TransactionSource(StrEnum):
    USER = "user"  # posted by the user
    CHAIN = "chain"  # recorded by wallet sync from what a chain shows


class PriceSource(StrEnum):
    MARKET = "market"  # the market price at the transaction's time, looked up by wallet sync


class Category(StrEnum):
    NATIVE = "native"
    STABLECOIN = "stablecoin"
    DEFI = "defi"
    LST = "lst"
    MEME = "meme"
    OTHER = "other"


class Transaction(CamelModel):
    """One movement of one token. `id` is the client's: sending the same id again is a no-op."""

    id: str = Field(pattern=TRANSACTION_ID_PATTERN, description="Client-supplied id; makes re-submission idempotent")
    type: TransactionType
    chain: str = Field(max_length=40)
    token_address: str = Field(max_length=100)
    amount: DecimalStr
    price_usd: DecimalStr | None = Field(
        None,
        description=(
            "Unit price in USD. Left out of a buy, sell or transfer_in, it is the market price at the "
            "transaction's time (priceSource market); a sale the market has no price for is refused"
        ),
    )
    fee_usd: DecimalStr | None = Field(
        None,
        description=(
            "The fee's value in USD. With feeToken it is the value of the fee coins; left out, their market "
            "value at the transaction's time"
        ),
    )
    fee_token: str | None = Field(
        None,
        max_length=100,
        description=(
            "The token the fee was paid in, on the transaction's chain (e.g. ETH gas on a UNI buy): those "
            "coins leave their own holding at cost, with no P&L; when it is the token that arrives, the fee "
            "is taken out of the coins received. Needs feeAmount"
        ),
    )
    fee_amount: DecimalStr | None = Field(None, description="How much of feeToken the fee took")
    timestamp: datetime
    tx_hash: str | None = Field(None, max_length=128, pattern=r"^[A-Za-z0-9]+$")
    category: Category | None = Field(None, description="Overrides the token registry's category")
    destination_chain: str | None = Field(None, max_length=40, description="bridge only")
    destination_token_address: str | None = Field(None, max_length=100, description="bridge only")
    source: TransactionSource = Field(
        TransactionSource.USER, description="user: posted by the user; chain: recorded by wallet sync"
    )
    wallet_id: str | None = Field(
        None,
        pattern=WALLET_ID_PATTERN,
        description="The linked wallet this happened in; its sync then counts it instead of recording it again",
    )
    sequence: int | None = Field(
        None,
        ge=0,
        json_schema_extra={"readOnly": True},
        description=(
            "Set when stored: transactions of the same timestamp count in the order they were recorded "
            "(in a request, the order sent)"
        ),
    )
    price_source: PriceSource | None = Field(
        None,
        description=(
            "market: priceUsd is the market price at the transaction's time, looked up because it was "
            "sent without one (or by wallet sync)"
        ),
    )

    @field_validator("chain", "destination_chain")
    @classmethod
    def _known_chain(cls, value: str | None) -> str | None:
        return None if value is None else normalize_chain(value)

    @field_validator("timestamp")
    @classmethod
    def _utc_not_future(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2024-05-01T12:00:00Z")
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is outside the supported date range") from None
        if value > datetime.now(UTC) + FUTURE_TOLERANCE:
            raise ValueError("is in the future")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        token = normalize_token(self.chain, self.token_address)
        object.__setattr__(self, "token_address", token.address)
        if self.amount <= 0:
            raise ValueError("amount must be greater than 0")
        if self.price_usd is not None and self.price_usd < 0:
            raise ValueError("priceUsd must not be negative")
        if self.fee_usd is not None and self.fee_usd < 0:
            raise ValueError("feeUsd must not be negative")
        if self.type is TransactionType.BRIDGE:
            if self.destination_chain is None or self.destination_token_address is None:
                raise ValueError("a bridge needs destinationChain and destinationTokenAddress")
            destination = normalize_token(
                self.destination_chain, self.destination_token_address, field="destinationTokenAddress"
            )
            if destination == token:
                raise ValueError("a bridge must move the asset to another chain or token")
            object.__setattr__(self, "destination_token_address", destination.address)
        elif self.destination_chain is not None or self.destination_token_address is not None:
            raise ValueError("destinationChain and destinationTokenAddress are for bridges only")
        if (self.fee_token is None) != (self.fee_amount is None):
            raise ValueError("feeToken and feeAmount go together")
        if self.fee_token is not None and self.fee_amount is not None:
            if self.fee_amount <= 0:
                raise ValueError("feeAmount must be greater than 0")
            fee_token = normalize_token(self.chain, self.fee_token, field="feeToken")
            object.__setattr__(self, "fee_token", fee_token.address)
            arriving = self.type in (TransactionType.BUY, TransactionType.TRANSFER_IN, TransactionType.INCOME)
            if arriving and fee_token == token and self.fee_amount >= self.amount:
                raise ValueError("a fee taken out of the coins that arrive must be less than their amount")
        return self

    @property
    def from_chain(self) -> bool:
        return self.source is TransactionSource.CHAIN

    @property
    def token(self) -> TokenId:
        return TokenId(self.chain, self.token_address)

    @property
    def destination_token(self) -> TokenId | None:
        if self.destination_chain is None or self.destination_token_address is None:
            return None
        return TokenId(self.destination_chain, self.destination_token_address)

    @property
    def fee_token_id(self) -> TokenId | None:
        """The token the fee coins left, when the fee was paid in a token."""
        return None if self.fee_token is None else TokenId(self.chain, self.fee_token)

    @property
    def sort_key(self) -> SortKey:
        """Replay order: by time, then in the order recorded (transactions stored before sequences were
        kept count as 0), then by id, so every replay is the same."""
        return (self.timestamp, self.sequence or 0, self.id)


SortKey = tuple[datetime, int, str]
