"""The latest wallet syncs in Redis: one hash per user (`wallet-sync:{<userId>}`), a field per
wallet and chain holding `block|synced at (epoch ms)|scanned to`.

A sync that changes nothing durable (the same amounts, no new token) posts here and writes nothing
to DynamoDB, so a steady wallet costs no write per refresh. Redis being out loses these posts only:
the API then shows the last stored sync, and the next Transfer-log scan resumes from the stored
checkpoint (a longer scan, nothing missed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from portfolio.observability import logger
from portfolio.services.ports import LiveSync

KEY_PREFIX = "wallet-sync:"
ON_DEMAND_PREFIX = "wallet-sync-asked:"
# Kept well past the idle pass interval: idle users' wallets are synced about every 80 minutes.
TTL_S = 7 * 24 * 3600


def board_key(user_id: str) -> str:
    return f"{KEY_PREFIX}{{{user_id}}}"


def _field(wallet_id: str, chain: str) -> str:
    return f"{wallet_id}:{chain}"


def _wallet_of(name: bytes | str) -> str:
    return (name.decode() if isinstance(name, bytes) else name).partition(":")[0]


def _encode(sync: LiveSync) -> str:
    scanned = "" if sync.scanned_to is None else str(sync.scanned_to)
    return f"{sync.block_number}|{round(sync.synced_at.timestamp() * 1000)}|{scanned}"


def _decode(value: bytes | str) -> LiveSync | None:
    text = value.decode() if isinstance(value, bytes) else value
    try:
        block, synced_at, scanned = text.split("|")
        return LiveSync(
            block_number=int(block),
            synced_at=datetime.fromtimestamp(int(synced_at) / 1000, tz=UTC),
            scanned_to=int(scanned) if scanned else None,
        )
    except ValueError:
        return None


class RedisWalletSyncBoard:
    def __init__(self, client: Any) -> None:
        self._client = client

    def record(self, user_id: str, syncs: Mapping[tuple[str, str], LiveSync]) -> None:
        if self._client is None or not syncs:
            return
        from portfolio.adapters.redis_connection import REDIS_FAILURES

        key = board_key(user_id)
        try:
            pipeline = self._client.pipeline(transaction=False)
            pipeline.hset(key, mapping={_field(*where): _encode(sync) for where, sync in syncs.items()})
            pipeline.expire(key, TTL_S)
            pipeline.execute()
        except REDIS_FAILURES as error:
            logger.info("wallet sync not posted", extra={"error": type(error).__name__})

    def read_many(self, user_ids: Iterable[str]) -> dict[str, dict[tuple[str, str], LiveSync]]:
        users = list(dict.fromkeys(user_ids))
        if self._client is None or not users:
            return {}
        from portfolio.adapters.redis_connection import REDIS_FAILURES

        try:
            pipeline = self._client.pipeline(transaction=False)
            for user_id in users:
                pipeline.hgetall(board_key(user_id))
            answers = pipeline.execute()
        except REDIS_FAILURES as error:
            logger.info("wallet syncs not read", extra={"error": type(error).__name__})
            return {}
        found: dict[str, dict[tuple[str, str], LiveSync]] = {}
        for user_id, fields in zip(users, answers, strict=True):
            syncs = {}
            for name, value in (fields or {}).items():
                wallet_id, _, chain = (name.decode() if isinstance(name, bytes) else name).partition(":")
                sync = _decode(value)
                if sync is not None:
                    syncs[(wallet_id, chain)] = sync
            if syncs:
                found[user_id] = syncs
        return found

    def forget(self, user_id: str, wallet_id: str) -> None:
        if self._client is None:
            return
        from portfolio.adapters.redis_connection import REDIS_FAILURES

        key = board_key(user_id)
        try:
            fields = [name for name in self._client.hkeys(key) if _wallet_of(name) == wallet_id]
            if fields:
                self._client.hdel(key, *fields)
        except REDIS_FAILURES as error:
            # A wallet linked again starts its scan afresh whatever the board says (WalletSync).
            logger.info("wallet sync not forgotten", extra={"error": type(error).__name__})

    def claim_on_demand_sync(self, user_id: str, every_s: int) -> bool:
        if self._client is None:
            return True
        from portfolio.adapters.redis_connection import REDIS_FAILURES

        try:
            return bool(self._client.set(f"{ON_DEMAND_PREFIX}{{{user_id}}}", b"1", nx=True, ex=every_s))
        except REDIS_FAILURES as error:
            # Fails open: the node's own rate limits still apply, and a user is not locked out by an outage.
            logger.info("on-demand sync limit not checked", extra={"error": type(error).__name__})
            return True
