"""The body of a refresh message, shared by the scheduler that sends it and the updater that reads it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import Field, model_validator

from portfolio.wire_format import CamelModel

MAX_USERS_PER_MESSAGE = 100


class RefreshMessage(CamelModel):
    """The body of one refresh message. Same window, tier and users = same message, so consumers can dedupe.

    `tier` says what the users get: "active" users are valued and their views warmed; "idle" users
    are only checked (their wallets, once synced by the refresh, are read on this pass); "alerts"
    users read nothing lately but have alert rules: valued for their rules only (no view warmed, no
    wallet read). `alert_user_ids`: the users of the message whose alert rules are evaluated;
    `asset_user_ids`: the active users who read their asset list lately, whose asset list is warmed
    with their summary (the others' is valued on their next read of it). Both are left out of the
    body when there are none, so such a message reads as before.
    """

    window: datetime
    user_ids: list[str] = Field(min_length=1, max_length=MAX_USERS_PER_MESSAGE)
    tier: Literal["active", "idle", "alerts"] = "active"
    alert_user_ids: list[str] | None = Field(None, max_length=MAX_USERS_PER_MESSAGE)
    asset_user_ids: list[str] | None = Field(None, max_length=MAX_USERS_PER_MESSAGE)

    @model_validator(mode="after")
    def _named_users_of_the_message(self) -> Self:
        users = set(self.user_ids)
        if self.alert_user_ids and not set(self.alert_user_ids) <= users:
            raise ValueError("alertUserIds must be users of the message")
        if self.asset_user_ids and (self.tier != "active" or not set(self.asset_user_ids) <= users):
            raise ValueError("assetUserIds must be users of an active message")
        return self
