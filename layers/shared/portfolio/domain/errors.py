"""Errors the domain raises; the API maps each to a 4xx answer."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal


class DomainError(Exception):
    """Base for errors caused by the caller's input or the state it asks to change."""

    code = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInputError(DomainError):
    """A value is malformed: a chain, an address, an amount, a date."""

    code = "invalid_input"


class OverdraftError(DomainError):
    """A sell, transfer out or bridge moves more than the holding has at that moment."""

    code = "insufficient_holding"

    def __init__(
        self, *, holding: str, available: Decimal, requested: Decimal, transaction_id: str, field: str = "amount"
    ) -> None:
        super().__init__(
            f"transaction {transaction_id} moves {requested} of {holding} but only {available} is held",
            field=field,
        )
        self.holding = holding
        self.available = available
        self.requested = requested
        self.transaction_id = transaction_id


class PortfolioLimitError(DomainError):
    """The change would take the portfolio past a per-user limit (transactions, tokens, stored size)."""

    code = "portfolio_limit"


# Conflicts a conditional write reports: the store raises them, the use cases and the API handle them.
class StoreConflict(Exception):
    """A conditional write was refused; nothing of it was written."""


class VersionConflict(StoreConflict):
    """Someone else wrote the portfolio since it was read: re-read, re-apply, retry."""

    def __init__(self, user_id: str, expected_version: int) -> None:
        super().__init__(f"portfolio of {user_id} is no longer at version {expected_version}")
        self.user_id = user_id
        self.expected_version = expected_version


class TransactionsExist(StoreConflict):
    """Transactions with these ids are already stored; they were left as they are."""

    def __init__(self, ids: Sequence[str]) -> None:
        super().__init__(f"transactions already recorded: {', '.join(ids[:20])}")
        self.ids = tuple(ids)


class TransactionNotFound(StoreConflict):
    """A transaction to delete is not stored."""

    def __init__(self, transaction_id: str) -> None:
        super().__init__(f"transaction {transaction_id} is not recorded")
        self.transaction_id = transaction_id


class TransactionIdConflict(DomainError):
    """An id already recorded was sent again with other content; the stored transaction stays as it is."""

    code = "transaction_id_conflict"

    def __init__(self, transaction_id: str, *, fields: Sequence[str], field: str = "id") -> None:
        super().__init__(
            f"transaction {transaction_id!r} is already recorded with other content ({', '.join(fields)}); "
            "send it as stored, or under a new id (or delete the stored one first)",
            field=field,
        )
        self.transaction_id = transaction_id
        self.fields = tuple(fields)


class RecordedBySyncError(DomainError):
    """A transaction wallet sync recorded cannot be changed by hand; unlinking its wallet removes it."""

    code = "recorded_by_wallet_sync"


class WalletNotFound(Exception):
    """No linked wallet has this id."""

    def __init__(self, wallet_id: str) -> None:
        super().__init__(f"no linked wallet {wallet_id}")
        self.wallet_id = wallet_id
