"""The body of a refresh message, shared by the scheduler that sends it and the updater that reads it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from portfolio.wire_format import CamelModel

MAX_USERS_PER_MESSAGE = 100


class RefreshMessage(CamelModel):
    """The body of one refresh message. Same window, tier and users = same message, so consumers can dedupe.

    `tier` says what the users get: "active" users are valued and their views warmed; "idle" users
    are only checked (their wallets, once synced by the refresh, are read on this pass).
    """

    window: datetime
    user_ids: list[str] = Field(min_length=1, max_length=MAX_USERS_PER_MESSAGE)
    tier: Literal["active", "idle"] = "active"
