"""Configuration: the one place that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_STAGE = "local"
# Anyone can read this key here: it may sign cursors only where STAGE is local.
LOCAL_CURSOR_SIGNING_KEY = "local-cursor-key"


class UnsafeSettingsError(ValueError):
    """A setting that is fine on one machine would be unsafe in a deployed stage."""


class Settings(BaseSettings):
    """Every setting the functions read, with the defaults used when a variable is unset."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    stage: str = Field(LOCAL_STAGE, alias="STAGE")
    aws_region: str = Field("us-east-1", alias="AWS_REGION")
    # Set only for local runs and tests (moto's server); in AWS the SDK finds the endpoints itself.
    aws_endpoint_url: str | None = Field(None, alias="AWS_ENDPOINT_URL")

    # DynamoDB
    table_name: str = Field("portfolio", alias="TABLE_NAME")
    dynamodb_connect_timeout_s: float = Field(1.0, alias="DYNAMODB_CONNECT_TIMEOUT_S", gt=0)
    dynamodb_read_timeout_s: float = Field(2.0, alias="DYNAMODB_READ_TIMEOUT_S", gt=0)
    dynamodb_max_attempts: int = Field(4, alias="DYNAMODB_MAX_ATTEMPTS", ge=1, le=10)
    user_index_shards: int = Field(16, alias="USER_INDEX_SHARDS", ge=1, le=256)
    # Signs transaction page cursors so a client cannot forge one. In AWS the key stays in Secrets
    # Manager (its name or ARN here, the value read on first use and cached SECRETS_MAX_AGE_SECONDS); the
    # variable below is for runs outside AWS.
    cursor_signing_key_secret_id: str | None = Field(None, alias="CURSOR_SIGNING_KEY_SECRET_ID")
    cursor_signing_key: SecretStr = Field(SecretStr(LOCAL_CURSOR_SIGNING_KEY), alias="CURSOR_SIGNING_KEY")
    # How long a secret read from Secrets Manager is kept in memory: a rotation reaches every container within it.
    secrets_max_age_s: int = Field(300, alias="SECRETS_MAX_AGE_SECONDS", ge=0, le=3600)

    # Redis / ElastiCache
    redis_url: str | None = Field("redis://127.0.0.1:6379/0", alias="REDIS_URL")
    redis_cluster_mode: bool = Field(False, alias="REDIS_CLUSTER_MODE")
    redis_username: str | None = Field(None, alias="REDIS_USERNAME")
    redis_password: SecretStr | None = Field(None, alias="REDIS_PASSWORD")
    # Where the password lives in AWS (ElastiCache user group): read on each new connection, never
    # kept in the environment, so rotating the secret needs no deploy.
    redis_password_secret_arn: str | None = Field(None, alias="REDIS_PASSWORD_SECRET_ARN")
    redis_socket_timeout_ms: int = Field(50, alias="REDIS_SOCKET_TIMEOUT_MS", gt=0)
    redis_connect_timeout_ms: int = Field(100, alias="REDIS_CONNECT_TIMEOUT_MS", gt=0)
    portfolio_cache_ttl_s: int = Field(300, alias="PORTFOLIO_CACHE_TTL_SECONDS", gt=0)
    transactions_cache_ttl_s: int = Field(600, alias="TRANSACTIONS_CACHE_TTL_SECONDS", gt=0)
    cache_ttl_jitter_ratio: float = Field(0.1, alias="CACHE_TTL_JITTER_RATIO", ge=0, le=0.5)

    # DeFiLlama Coins API
    prices_api_url: str = Field("https://coins.llama.fi", alias="PRICES_API_URL")
    prices_api_key: SecretStr | None = Field(None, alias="PRICES_API_KEY")
    price_batch_size: int = Field(50, alias="PRICE_BATCH_SIZE", ge=1, le=200)
    price_max_concurrency: int = Field(4, alias="PRICE_MAX_CONCURRENCY", ge=1, le=32)
    # Well under the refresh interval: a warm container must read the next sweep's quotes from Redis.
    price_memory_ttl_s: int = Field(60, alias="PRICE_MEMORY_TTL_SECONDS", ge=0)
    # Outlives a late sweep: reads between two sweeps find every held token's quote here.
    price_redis_ttl_s: int = Field(900, alias="PRICE_REDIS_TTL_SECONDS", gt=0)
    price_min_confidence: Decimal = Field(Decimal("0.5"), alias="PRICE_MIN_CONFIDENCE", ge=0, le=1)
    price_search_width: str = Field("4h", alias="PRICE_SEARCH_WIDTH")
    price_connect_timeout_s: float = Field(2.0, alias="PRICE_CONNECT_TIMEOUT_S", gt=0)
    price_read_timeout_s: float = Field(5.0, alias="PRICE_READ_TIMEOUT_S", gt=0)
    price_max_attempts: int = Field(4, alias="PRICE_MAX_ATTEMPTS", ge=1, le=10)
    price_backoff_base_s: float = Field(0.2, alias="PRICE_BACKOFF_BASE_S", ge=0)
    price_backoff_cap_s: float = Field(5.0, alias="PRICE_BACKOFF_CAP_S", ge=0)
    # What a performance read may wait for the chart of prices from before a token's first sweep; 0: never asked.
    history_backfill_budget_s: float = Field(2.0, alias="HISTORY_BACKFILL_BUDGET_S", ge=0, le=20)
    # A coin the chart has no earlier prices for is not asked for again by a container for this long.
    history_backfill_no_data_ttl_s: int = Field(3600, alias="HISTORY_BACKFILL_NO_DATA_TTL_SECONDS", ge=0)

    # Refresh pipeline
    refresh_queue_url: str | None = Field(None, alias="REFRESH_QUEUE_URL")
    refresh_interval_s: int = Field(300, alias="REFRESH_INTERVAL_SECONDS", ge=60)
    users_per_message: int = Field(100, alias="USERS_PER_MESSAGE", ge=1, le=100)
    # Users who read within this many hours are "active": valued and warmed after every sweep.
    active_user_hours: int = Field(24, alias="ACTIVE_USER_HOURS", ge=1, le=24 * 30)
    # Idle users get a pass (where their wallets will be synced) once every this many cycles; 0 = never.
    # Passes go by user index shard: with the 16 default shards, 16 gives one shard a cycle (80 minutes).
    idle_refresh_every_cycles: int = Field(16, alias="IDLE_REFRESH_EVERY_CYCLES", ge=0, le=24 * 12 * 7)
    # A user is started only while this much of the invocation is left; the rest are retried later.
    refresh_user_budget_ms: int = Field(500, alias="REFRESH_USER_BUDGET_MS", gt=0)

    # Per-user bounds (what one stored portfolio item can hold, with room to spare)
    max_transactions_per_user: int = Field(10_000, alias="MAX_TRANSACTIONS_PER_USER", ge=1, le=50_000)
    max_tokens_per_user: int = Field(1_000, alias="MAX_TOKENS_PER_USER", ge=1, le=5_000)
    max_alert_rules_per_user: int = Field(20, alias="MAX_ALERT_RULES_PER_USER", ge=1, le=100)

    # Alerts: the EventBridge bus fired alerts are put on (the template's AlertEventBus); unset, they
    # reach the users' WebSocket connections only.
    alert_event_bus_name: str | None = Field(None, alias="ALERT_EVENT_BUS_NAME")

    # Wallet sync (node URLs: chain_nodes below)
    # A Secrets Manager secret holding {"<chain>": "<node URL>", ...}: URLs that carry provider keys.
    rpc_urls_secret_arn: str | None = Field(None, alias="RPC_URLS_SECRET_ARN")
    wallet_rpc_batch_size: int = Field(500, alias="WALLET_RPC_BATCH_SIZE", ge=1, le=5000)
    wallet_log_block_range: int = Field(2000, alias="WALLET_LOG_BLOCK_RANGE", ge=1, le=1_000_000)
    wallet_log_ranges_per_sync: int = Field(5, alias="WALLET_LOG_RANGES_PER_SYNC", ge=1, le=100)
    wallet_rpc_connect_timeout_s: float = Field(2.0, alias="WALLET_RPC_CONNECT_TIMEOUT_S", gt=0)
    wallet_rpc_read_timeout_s: float = Field(8.0, alias="WALLET_RPC_READ_TIMEOUT_S", gt=0)
    wallet_rpc_max_attempts: int = Field(3, alias="WALLET_RPC_MAX_ATTEMPTS", ge=1, le=10)
    # What one refresh message may spend on its wallets; the rest of the invocation values its users.
    wallet_sync_budget_s: float = Field(10.0, alias="WALLET_SYNC_BUDGET_S", gt=0)
    # A wallet whose amounts did not change still stores its sync state this often (else Redis holds it).
    wallet_checkpoint_minutes: int = Field(60, alias="WALLET_CHECKPOINT_MINUTES", ge=1)
    wallet_sync_on_demand_every_s: int = Field(60, alias="WALLET_SYNC_ON_DEMAND_EVERY_SECONDS", ge=1)
    max_wallets_per_user: int = Field(20, alias="MAX_WALLETS_PER_USER", ge=1, le=100)
    # Where a new wallet's Transfer-log scan starts, per chain: "ethereum=21000000,base=24000000".
    wallet_start_blocks: str = Field("", alias="WALLET_START_BLOCKS", max_length=2000)

    # API
    max_transactions_per_request: int = Field(500, alias="MAX_TRANSACTIONS_PER_REQUEST", ge=1, le=5000)
    max_body_bytes: int = Field(1_048_576, alias="MAX_BODY_BYTES", gt=0)
    admin_scope: str = Field("portfolio/admin", alias="ADMIN_SCOPE")
    # Per-caller token buckets in Redis (by the token's sub), inside the route throttles of API Gateway:
    # requests a second and the most at once; a rate of 0 lifts that limit.
    user_write_rate_per_s: float = Field(2.0, alias="USER_WRITE_RATE_PER_S", ge=0, le=10_000)
    user_write_burst: int = Field(10, alias="USER_WRITE_BURST", ge=1, le=100_000)
    # Reads are off by default: a cached read is one Redis round trip, and the check would be a second.
    user_read_rate_per_s: float = Field(0.0, alias="USER_READ_RATE_PER_S", ge=0, le=10_000)
    user_read_burst: int = Field(40, alias="USER_READ_BURST", ge=1, le=100_000)

    # Live updates (WebSocket API): where the functions push (the stage's callback URL,
    # https://<api id>.execute-api.<region>.amazonaws.com/<stage>); unset, nothing is pushed.
    websocket_callback_url: str | None = Field(None, alias="WEBSOCKET_CALLBACK_URL")
    # The most an invocation waits for its pushes (each call to the management API is bounded by it too).
    live_update_budget_ms: int = Field(1000, alias="LIVE_UPDATE_BUDGET_MS", gt=0, le=10_000)
    live_update_concurrency: int = Field(16, alias="LIVE_UPDATE_CONCURRENCY", ge=1, le=128)
    # Open connections one user may hold: $connect refuses one more (429), and one push addresses no more.
    max_connections_per_user: int = Field(10, alias="MAX_CONNECTIONS_PER_USER", ge=1, le=100)
    # The WebSocket authorizer: the identity provider's tokens (RS256 or ES256, keys from the jwks_uri of
    # <issuer>/.well-known/openid-configuration, else <issuer>/.well-known/jwks.json).
    jwt_issuer: str | None = Field(None, alias="JWT_ISSUER")
    jwt_audience: str | None = Field(None, alias="JWT_AUDIENCE")
    # The local stack's HS256 key: accepted only where STAGE is local (check_local_jwt_secret).
    local_jwt_secret: SecretStr | None = Field(None, alias="LOCAL_JWT_SECRET")

    def check_cursor_signing_key(self) -> None:
        """Refuse the local default cursor key outside STAGE=local: with it anyone could sign a cursor.

        Checked when the API starts: it alone signs and reads cursors, and it alone is given the key
        (the other functions keep the default, unused)."""
        if self.stage == LOCAL_STAGE or self.cursor_signing_key_secret_id:
            return
        if self.cursor_signing_key.get_secret_value() == LOCAL_CURSOR_SIGNING_KEY:
            raise UnsafeSettingsError(
                f"STAGE is {self.stage!r} but CURSOR_SIGNING_KEY is unset or the local default key, which "
                "anyone can read in the source: set CURSOR_SIGNING_KEY_SECRET_ID to a secret of its own (the "
                f"template passes a generated one), or run with STAGE={LOCAL_STAGE}"
            )

    def check_local_jwt_secret(self) -> None:
        """Refuse the local HS256 key outside STAGE=local: a shared secret anyone holding it could sign
        tokens with. Checked when the WebSocket authorizer starts."""
        if self.stage != LOCAL_STAGE and self.local_jwt_secret is not None:
            raise UnsafeSettingsError(
                f"STAGE is {self.stage!r} but LOCAL_JWT_SECRET is set: outside {LOCAL_STAGE} tokens are verified "
                "against the issuer's JWKS only; unset LOCAL_JWT_SECRET"
            )


RPC_URL_PREFIX = "RPC_URL_"


@dataclass(frozen=True, slots=True)
class ChainNode:
    """Where a chain is read: its node's URL (a secret: it often carries a provider key) and the
    block a new wallet's Transfer-log scan starts at."""

    chain: str
    url: SecretStr
    start_block: int = 0


def chain_nodes(
    environ: Mapping[str, str] | None = None,
    secret: Mapping[str, str] | None = None,
    start_blocks: str = "",
) -> dict[str, ChainNode]:
    """The chains with a node: `RPC_URL_<CHAIN>` variables (chain slug in upper case), then the
    entries of the RPC URL secret for chains not set that way. `start_blocks` (WALLET_START_BLOCKS,
    `ethereum=21000000,base=24000000`) sets where a new wallet's scan begins on a chain (default 0,
    its first block)."""
    from portfolio.domain.tokens import CHAINS

    environ = os.environ if environ is None else environ
    urls = {chain.lower(): url for chain, url in (secret or {}).items() if url}
    urls |= {
        name.removeprefix(RPC_URL_PREFIX).lower(): value
        for name, value in environ.items()
        if name.startswith(RPC_URL_PREFIX) and value
    }
    unknown = sorted(set(urls) - set(CHAINS))
    if unknown:
        raise ValueError(f"node URLs given for chains this product does not support: {unknown}")
    starts = _start_blocks(start_blocks, CHAINS)
    return {
        chain: ChainNode(chain=chain, url=SecretStr(url), start_block=starts.get(chain, 0))
        for chain, url in sorted(urls.items())
    }


def _start_blocks(text: str, chains: Mapping[str, object]) -> dict[str, int]:
    starts = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        chain, separator, block = entry.partition("=")
        chain = chain.strip().lower()
        if not separator or chain not in chains or not block.strip().isdigit():
            raise ValueError(f"WALLET_START_BLOCKS: {entry!r} is not <chain>=<block number>")
        starts[chain] = int(block)
    return starts
