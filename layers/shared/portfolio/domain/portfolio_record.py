"""What is stored per user besides the transactions and the positions: settings and version."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from portfolio.wire_format import CamelModel


class CostBasisMethod(StrEnum):
    FIFO = "fifo"  # the earliest acquired lots leave first
    LIFO = "lifo"  # the latest acquired first
    HIFO = "hifo"  # the highest unit cost first
    AVERAGE = "average"  # one pool at its average cost


class CostBasisScope(StrEnum):
    """Which lots a removal may take."""

    CHAIN = "chain"  # the lots of the same token on the same chain
    ASSET = "asset"  # the lots of the same asset on every chain (the token registry's asset ids)


class MissingAcquisitions(StrEnum):
    """What a sale or transfer out of more than is held does."""

    REFUSE = "refuse"  # 422 insufficient_holding: most often a typo
    ACCEPT = "accept"  # the part not held was acquired at cost zero (a history imported in part)


class PortfolioRecord(CamelModel):
    """The user's portfolio item. `version` guards every write that can race (optimistic locking)."""

    user_id: str
    version: int = Field(0, description="0 until the first write")
    cost_basis_method: CostBasisMethod = CostBasisMethod.FIFO
    cost_basis_scope: CostBasisScope = CostBasisScope.CHAIN
    missing_acquisitions: MissingAcquisitions = MissingAcquisitions.REFUSE
    updated_at: datetime | None = Field(None, description="When the transactions or settings last changed")

    @property
    def accepts_missing(self) -> bool:
        return self.missing_acquisitions is MissingAcquisitions.ACCEPT
