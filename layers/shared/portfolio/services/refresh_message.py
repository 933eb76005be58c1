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
    wallet read). `alert_user_ids`: the users of the message whose alert rules are evaluated (left
    out of the body when there are none, so such a message reads as before).
    """

    window: datetime
    user_ids: list[str] = Field(min_length=1, max_length=MAX_USERS_PER_MESSAGE)
    tier: Literal["active", "idle", "alerts"] = "active"
    alert_user_ids: list[str] | None = Field(None, max_length=MAX_USERS_PER_MESSAGE)

    @model_validator(mode="after")
    def _alert_users_of_the_message(self) -> Self:
        if self.alert_user_ids and not set(self.alert_user_ids) <= set(self.user_ids):
            raise ValueError("alertUserIds must be users of the message")
        return self
