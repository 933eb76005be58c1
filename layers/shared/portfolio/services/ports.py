"""What the services need from the outside world, declared once with the value types and errors they
speak; adapters (or test fakes) provide them, and translate their clients' failures into these errors.

Services and the API import this module, never an adapter (an import-linter contract in `make lint`
checks it). The store's conflicts are domain errors (`portfolio.domain.errors`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from portfolio.domain.alerts import AlertRule, FiredAlert
from portfolio.domain.performance import PriceSeries
from portfolio.domain.prices import PriceQuote
from portfolio.domain.stored_portfolio import StoredPortfolio
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import Transaction, TransactionSource, TransactionType
from portfolio.domain.valued_portfolio import SummaryFigures
from portfolio.domain.views import Resolution

# SQS's limit for SendMessageBatch: the planner sizes its runs by it.
MAX_ENTRIES_PER_CALL = 10
# Transactions per page: what a listing asks for unless told, and the most it may ask for.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


# Errors the adapters translate their clients' failures into ----------------------------------------


class StoreBusyError(Exception):
    """The database refused for load (throttled past the client's retries): nothing was written."""


class StoreUnavailableError(StoreBusyError):
    """The database did not answer in time (timeouts, or the request's deadline came first). A write
    may have landed unseen; writes are idempotent, so the caller may simply retry."""


class PriceTierUnavailableError(Exception):
    """A price tier (Redis, the last-known store) did not answer: the caller carries on without it."""


class PricesUnavailableError(Exception):
    """The coins API could not be asked (every request failed): absent prices are not known to be absent."""


class CacheUnavailableError(Exception):
    """Redis did not answer: what had to change in the cache has not changed yet."""


class ActivityUnavailableError(Exception):
    """The activity log did not answer: who is active cannot be told right now."""


# Value types ----------------------------------------------------------------------------------------


class CacheKind(StrEnum):
    PORTFOLIO = "portfolio"
    ASSETS = "assets"
    PERFORMANCE = "performance"
    TRANSACTIONS = "transactions"


# The views computed from holdings and prices: what a refresh renews (never the transaction pages).
PRICED_KINDS: tuple[CacheKind, ...] = (CacheKind.PORTFOLIO, CacheKind.ASSETS, CacheKind.PERFORMANCE)


@dataclass(frozen=True)
class CoinsApiCall:
    """How one call to the coins API went: its attempts, their latencies, and an error text when it failed."""

    requested: tuple[str, ...]
    attempts: int = 0
    latency_ms: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)


@dataclass(frozen=True)
class ChunkResult(CoinsApiCall):
    """What one chunk of coin ids got from the coins API: quotes on success, an error text otherwise."""

    quotes: dict[str, PriceQuote] = field(default_factory=dict)


@dataclass(frozen=True)
class ChartResult(CoinsApiCall):
    """What one `/chart` call got from the coins API: each coin's prices (observed at, price), oldest
    first, and its confidence; a coin the answer leaves out, or gives no price, is absent. An error
    text instead when the call failed."""

    series: dict[str, list[tuple[datetime, Decimal]]] = field(default_factory=dict)
    confidence: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One message: `id` is unique within its SendMessageBatch call (letters, digits, - and _)."""

    id: str
    body: str


@dataclass(frozen=True, slots=True)
class TransactionListing:
    """One page of a user's transactions to list, newest first: its size, where it starts (the
    previous page's cursor) and the filters, already validated and normalized by the caller.

    `chain` and `token` also match a bridge's destination; `source` tells what the user posted from
    what wallet sync recorded; `wallet_id` matches the transactions of one linked wallet; `start` and
    `end` are inclusive and carry a time zone. Reporting bad input is the caller's job; a listing only
    refuses to exist in a shape no store can read (an empty page, a time without a zone, start after
    end), with ValueError.
    """

    limit: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None
    chain: str | None = None
    type: TransactionType | None = None
    token: TokenId | None = None
    start: datetime | None = None
    end: datetime | None = None
    source: TransactionSource | None = None
    wallet_id: str | None = None

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("a page holds at least one transaction")
        if any(moment is not None and moment.tzinfo is None for moment in (self.start, self.end)):
            raise ValueError("start and end must carry a time zone")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError("start must not be after end")

    def filter_key(self) -> str:
        """ "" for the first page with no filters; otherwise a short digest of the canonical listing."""
        parts: dict[str, Any] = {
            "limit": self.limit if self.limit != DEFAULT_PAGE_SIZE else None,
            "cursor": self.cursor,
            "chain": self.chain,
            "type": self.type.value if self.type else None,
            "token": self.token.key if self.token else None,
            "from": self.start.astimezone(UTC).isoformat() if self.start else None,
            "to": self.end.astimezone(UTC).isoformat() if self.end else None,
            "source": self.source.value if self.source else None,
            "walletId": self.wallet_id,
        }
        canonical = "&".join(f"{name}={value}" for name, value in parts.items() if value is not None)
        return hashlib.sha256(canonical.encode()).hexdigest()[:32] if canonical else ""


@dataclass(frozen=True, slots=True)
class SendStats:
    messages: int = 0
    calls: int = 0
    retried_entries: int = 0

    def __add__(self, other: SendStats) -> SendStats:
        return SendStats(
            messages=self.messages + other.messages,
            calls=self.calls + other.calls,
            retried_entries=self.retried_entries + other.retried_entries,
        )


@dataclass(frozen=True)
class SweepResult:
    """What one sweep found, by coin id: fresh quotes, stale fallbacks, and coins with no price at all."""

    fresh: dict[str, PriceQuote]
    stale: dict[str, PriceQuote]
    unpriced: list[str]
    api_calls: int

    @property
    def coins(self) -> int:
        return len(self.fresh) + len(self.stale) + len(self.unpriced)


# Ports ------------------------------------------------------------------------------------------------


class PriceLookup(Protocol):
    def get_prices(
        self, tokens: Iterable[TokenId | str], *, deadline: float | None = None
    ) -> dict[str, PriceQuote]: ...


class ViewReplacement(NamedTuple):
    """One user's fresh views, valued at `version` of the portfolio."""

    user_id: str
    version: int
    bodies: Mapping[tuple[CacheKind, str], bytes]


class WarmableCache(Protocol):
    def replace_views(
        self,
        user_id: str,
        version: int,
        bodies: Mapping[tuple[CacheKind, str], bytes],
        kinds: Iterable[CacheKind] = ...,
    ) -> Any: ...

    def replace_views_of_many(
        self, replacements: Sequence[ViewReplacement], kinds: Iterable[CacheKind] = ...
    ) -> list[bool]: ...


class ReadCache(Protocol):
    def get_or_load(
        self, kind: CacheKind, user_id: str, loader: Callable[[], bytes], filter_key: str = ""
    ) -> bytes: ...


class ActivityLog(Protocol):
    """Who read their portfolio lately: the refresh warms only their views, and the asset list only
    of those who read it."""

    def touch(self, user_id: str, *, asset_list: bool = False) -> None: ...

    def active_since(self, since: datetime) -> Iterable[list[str]]:
        """Pages of user ids; raises ActivityUnavailableError."""
        ...

    def asset_readers_since(self, since: datetime) -> set[str]:
        """Who read their asset list; raises ActivityUnavailableError."""
        ...


class RequestKind(StrEnum):
    """What a request to a portfolio costs: reads and writes have per-user limits of their own."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether a caller's request may go ahead; when not, how long until it may (seconds).

    `checked` is False when the limit could not be asked (Redis down): the request is let through."""

    allowed: bool
    retry_after_s: float = 0.0
    remaining: int | None = None
    checked: bool = True


class RateLimiter(Protocol):
    """Per-caller limits: one token a request from the caller's bucket of that kind."""

    def take(self, subject: str, kind: RequestKind) -> RateDecision:
        """Never raises: a limit that cannot be checked allows the request (fail open)."""
        ...


class CoinsApi(Protocol):
    def fetch_current(self, coin_ids: Sequence[str], *, deadline: float | None = None) -> ChunkResult: ...

    def fetch_historical(
        self, coin_ids: Sequence[str], at: datetime, *, deadline: float | None = None
    ) -> ChunkResult: ...

    def fetch_batch_historical(
        self, moments: Mapping[str, Sequence[int]], *, deadline: float | None = None
    ) -> ChunkResult:
        """Quotes keyed `<coin>@<unix time>`."""
        ...


class HistoricalPriceLookup(Protocol):
    def prices_at(
        self, tokens: Iterable[TokenId], at: datetime, *, deadline: float | None = None
    ) -> dict[TokenId, Decimal]:
        """Market prices at `at` of the tokens that have one (confident enough); the rest are left out.
        Raises PricesUnavailableError when the coins API could not be asked at all."""
        ...

    def prices_at_many(
        self, moments: Iterable[tuple[TokenId, datetime]], *, deadline: float | None = None
    ) -> dict[tuple[TokenId, datetime], Decimal]:
        """Market prices of tokens at moments each their own (an import's transactions), in as few
        calls as the coins API allows; those it has none for are left out. Raises
        PricesUnavailableError when the coins API could not be asked at all."""
        ...


class PriceTier(Protocol):
    """A durable tier (last-known prices); raises PriceTierUnavailableError."""

    def get_many(self, coin_ids: Sequence[str]) -> dict[str, PriceQuote]: ...

    def put_many(self, quotes: Iterable[PriceQuote]) -> None: ...


class SharedPriceTier(Protocol):
    """The shared cache tier (Redis): None for a coin known to have no price this interval;
    raises PriceTierUnavailableError."""

    def get_many(self, coin_ids: Sequence[str]) -> dict[str, PriceQuote | None]: ...

    def put_many(self, quotes: Iterable[PriceQuote]) -> None: ...

    def put_no_fresh(self, fallbacks: dict[str, PriceQuote | None]) -> None: ...


class PriceSweeper(Protocol):
    def sweep(self, tokens: Iterable[TokenId | str], *, deadline: float | None = None) -> SweepResult: ...


class PriceHistory(Protocol):
    def series(
        self, coin_ids: Iterable[str], resolution: Resolution, start: datetime, end: datetime
    ) -> dict[str, PriceSeries]: ...


class PriceHistoryWriter(Protocol):
    def record(self, prices: Mapping[str, Decimal], window: datetime) -> int: ...


class PriceChartSource(Protocol):
    def fetch_chart(
        self,
        coin_ids: Sequence[str],
        *,
        start: datetime,
        step: timedelta,
        points: int,
        deadline: float | None = None,
    ) -> ChartResult:
        """Each coin's prices at `start`, `start + step`, ... (at most `points` moments, none in the
        future), each the price observed nearest its moment."""
        ...


class PriceHistoryBackfillWriter(Protocol):
    def record_backfill(
        self,
        series: Mapping[str, PriceSeries],
        resolution: Resolution,
        *,
        empty_from: datetime,
        empty_until: datetime,
    ) -> int:
        """Stores each coin's prices in the buckets of `resolution` they fall in. Buckets starting
        within [empty_from, empty_until) are known to be empty and written as they are; any other
        only where still empty, so no price a sweep recorded is replaced. Returns the items written;
        raises PriceTierUnavailableError."""
        ...


class PriceHistoryBackfill(Protocol):
    def complete(
        self,
        series: Mapping[str, PriceSeries],
        coin_ids: Iterable[str],
        resolution: Resolution,
        since: datetime,
        until: datetime,
    ) -> dict[str, PriceSeries]:
        """`series` (the stored prices of the coins, by coin id), with prices from before the first
        stored one filled in back to `since` where they can be had in time; never raises."""
        ...


class HeldTokenSource(Protocol):
    def held_tokens(self) -> list[str]: ...


class UserDirectory(Protocol):
    def iter_user_ids(self, page_size: int = 1000, *, shards: Iterable[int] | None = None) -> Iterator[list[str]]: ...

    @property
    def shard_count(self) -> int: ...


class RefreshQueue(Protocol):
    def send_all(self, entries: Iterable[QueueEntry]) -> SendStats: ...


class RunLock(Protocol):
    def acquire(self, window: datetime, owner: str) -> bool: ...

    def release(self, window: datetime, owner: str) -> None: ...


class HistorySource(Protocol):
    def load_history(self, user_id: str, *, consistent_read: bool = False) -> tuple[Transaction, ...]: ...


class PortfolioSource(HistorySource, Protocol):
    def load_portfolio(self, user_id: str, *, consistent_read: bool = False, lots: bool = True) -> StoredPortfolio:
        """`lots=False`: positions for valuation only (a ledger that cannot be extended)."""
        ...


class PortfolioBatchSource(HistorySource, Protocol):
    def load_portfolios(self, user_ids: Iterable[str]) -> Mapping[str, StoredPortfolio | Exception]:
        """Portfolios by user; absent users are left out, an unreadable one stands as its error."""


class PortfolioWriter(PortfolioSource, Protocol):
    def get_transactions(self, user_id: str, transaction_ids: Iterable[str]) -> dict[str, Transaction]: ...

    def commit(
        self,
        portfolio: StoredPortfolio,
        *,
        expected_version: int,
        put_transactions: Sequence[Transaction] = (),
        delete_transaction_ids: Sequence[str] = (),
        holder_changes: Mapping[str, int] | None = None,
    ) -> StoredPortfolio: ...


class TransactionPages(PortfolioSource, Protocol):
    def list_transactions(self, user_id: str, listing: TransactionListing) -> tuple[list[Transaction], str | None]:
        """One page and the cursor of the next page (None on the last page); a cursor that was not
        issued for this user and these filters raises InvalidInputError (field "cursor")."""
        ...


# Chains: what wallet sync reads ----------------------------------------------------------------------


class ChainUnavailableError(Exception):
    """A chain's node could not be read at all (down, timed out, rate limited, wrong chain, a reorg
    under the pinned block): nothing of it is recorded this time. `reason` is safe to show a user.
    `node_failing`: the node itself failed (not the caller's time running out, not a reorg), so
    asking it again at once would likely fail too."""

    def __init__(self, chain: str, reason: str, *, node_failing: bool = True) -> None:
        super().__init__(f"{chain}: {reason}")
        self.chain = chain
        self.reason = reason
        self.node_failing = node_failing


@dataclass(frozen=True, slots=True)
class PinnedBlock:
    """The block every balance of one read is taken at (Solana: the slot)."""

    number: int
    timestamp: datetime
    hash: str | None = None


@dataclass(frozen=True, slots=True)
class BalanceRequest:
    """One wallet on one chain: the tokens to read besides the native coin (normalized addresses),
    and where the Transfer-log scan resumes (None: no scan)."""

    address: str
    tokens: tuple[str, ...] = ()
    scan_from: int | None = None


@dataclass(frozen=True)
class WalletBalances:
    """What the chain says of one wallet at the pinned block, in integer base units.

    `amounts` holds every token read (zero included), the native coin under the chain's native
    address (tokens.native_token); `decimals` and `symbols` what the chain told of tokens whose
    decimals were not given; `discovered` tokens whose Transfer logs to the wallet the scan found;
    `scanned_to` the last block the scan covered without a gap (None: no scan, or its first range
    failed); `scan_error` why a range failed (the balances still stand). `error` set: this wallet's
    read failed (a call of the batch errored) and nothing else here is to be used.
    """

    address: str
    amounts: dict[str, int] = field(default_factory=dict)
    decimals: dict[str, int] = field(default_factory=dict)
    symbols: dict[str, str] = field(default_factory=dict)
    discovered: tuple[str, ...] = ()
    scanned_to: int | None = None
    error: str | None = None
    scan_error: str | None = None


@dataclass(frozen=True)
class ChainSnapshot:
    chain: str
    block: PinnedBlock
    wallets: dict[str, WalletBalances]  # by address as requested
    requests: int  # HTTP requests sent to the node for this read


class ChainReader(Protocol):
    """Reads many wallets of one chain at one pinned block, in as few requests as the node allows."""

    @property
    def chain(self) -> str: ...

    def read(
        self,
        requests: Sequence[BalanceRequest],
        *,
        known_decimals: Mapping[str, int],
        deadline: float | None = None,
    ) -> ChainSnapshot:
        """Raises ChainUnavailableError when the chain cannot be read at all."""
        ...


@dataclass(frozen=True, slots=True)
class LiveSync:
    """The latest successful sync of one wallet on one chain, kept where writing it costs nothing
    (Redis): the stored wallet is written only when something it keeps changes."""

    block_number: int
    synced_at: datetime
    scanned_to: int | None = None


class WalletSyncBoard(Protocol):
    """Latest syncs by (walletId, chain); losing them costs a re-scan from the stored checkpoint only."""

    def record(self, user_id: str, syncs: Mapping[tuple[str, str], LiveSync]) -> None:
        """Never raises: a sync that cannot be posted is posted by the next one."""
        ...

    def read_many(self, user_ids: Iterable[str]) -> dict[str, dict[tuple[str, str], LiveSync]]:
        """By user; users with nothing posted (or Redis out) are left out."""
        ...

    def forget(self, user_id: str, wallet_id: str) -> None:
        """Drops what was posted for an unlinked wallet; never raises."""
        ...

    def claim_on_demand_sync(self, user_id: str, every_s: int) -> bool:
        """True at most once per `every_s` per user (True too when the board cannot tell)."""
        ...


class ViewRetirement(Protocol):
    """The read cache, as stale-view invalidation uses it."""

    def retire_views_before(self, user_id: str, version: int) -> bool: ...

    def invalidate(self, user_id: str, kinds: Iterable[CacheKind]) -> bool: ...

    def invalidate_user(self, user_id: str) -> bool: ...


# Live updates: messages to a user's open WebSocket connections ---------------------------------------


class InvalidTokenError(Exception):
    """A token that does not prove who its bearer is (signature, expiry, issuer, audience, subject)."""


class TokenVerifier(Protocol):
    def subject(self, token: str) -> str:
        """The verified token's `sub`; raises InvalidTokenError."""
        ...


class ConnectionGoneError(Exception):
    """The connection is closed (the management API answered 410): it will never take a message again."""


@dataclass(frozen=True, slots=True)
class PushedFigures:
    """What a user's connections were last told of the portfolio: a refresh that changes none of it
    pushes nothing, and the next update's changeUsd is measured from it."""

    total_value_usd: Decimal
    total_pnl_usd: Decimal
    stale_price_count: int


@dataclass(frozen=True, slots=True)
class PushClaim:
    """Whether an update of a portfolio version may go out (no later version was announced), and the
    figures last delivered to the user (None: none lately, or they cannot be told)."""

    current: bool
    delivered: PushedFigures | None = None


class PushedFiguresStore(Protocol):
    """Per user: the latest portfolio version an update was started for, and the figures last delivered."""

    def claim(self, user_id: str, version: int) -> PushClaim:
        """Records `version` as announced unless a later one already was (then not current). When it
        cannot be told: current, with no figures. Never raises."""
        ...

    def remember(self, user_id: str, version: int, figures: PushedFigures) -> None:
        """The figures of `version` reached a connection; kept unless a later version's were. Never raises."""
        ...

    def forget(self, user_id: str) -> None:
        """The delivered figures are dropped (the next update's changeUsd is null); the version
        announced is kept, so an older update still cannot follow a newer one. Never raises."""
        ...


class ConnectionRegistry(Protocol):
    """The open WebSocket connections of each user."""

    def add(self, user_id: str, connection_id: str) -> None: ...

    def remove(self, user_id: str, connection_id: str) -> None: ...

    def keep_alive(self, user_id: str, connection_id: str) -> None:
        """The connection is still there (a ping): never raises."""
        ...

    def connections_of(self, user_id: str) -> list[str]:
        """The user's open connection ids, at most the per-user cap of them; a user with none costs one
        cheap lookup."""
        ...

    def open_count(self, user_id: str) -> int:
        """How many open connections the user holds, counted up to the per-user cap (from the record)."""
        ...


class ConnectionPusher(Protocol):
    """API Gateway's management API: posts one message to one connection."""

    def post(self, connection_id: str, data: bytes) -> None:
        """Raises ConnectionGoneError for a closed connection, any other error for a failure."""
        ...


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What became of messages to connections: reached, found gone (and forgotten), failed or not
    answered in time (kept: a later message may reach them)."""

    delivered: int = 0
    gone: int = 0
    failed: int = 0


class LiveUpdates(Protocol):
    """Messages to every open connection of one user. No user is ever sent another user's message."""

    def send(self, user_id: str, message: Mapping[str, Any]) -> PushOutcome:
        """One JSON message to each of the user's connections, concurrently; waits at most the push
        budget and never raises. A user with no connection costs one cheap lookup."""
        ...

    def publish(self, user_id: str, message: Mapping[str, Any]) -> None:
        """Starts one JSON message to each of the user's connections and returns at once (drain waits
        for it). Never raises."""
        ...

    def portfolio_updated(self, user_id: str, summary: SummaryFigures, *, version: int) -> None:
        """Starts a `portfolio.updated` message to the user's connections when their figures changed
        since the last one delivered and no update of a later portfolio `version` was started; returns
        at once (drain waits for it). Never raises."""
        ...

    def drain(self, timeout_s: float | None = None) -> PushOutcome:
        """Waits for the messages started so far: at most the push budget, or `timeout_s` when shorter."""
        ...


# Alerts: the rules users set, who has any, the prices of a window's start, and where firings go ------


@dataclass(frozen=True, slots=True)
class StoredAlerts:
    """A user's alert rules as stored, and the version a write must still find (0: nothing stored yet)."""

    user_id: str
    rules: tuple[AlertRule, ...] = ()
    version: int = 0


class AlertRuleStore(Protocol):
    def load_rules(self, user_id: str) -> StoredAlerts:
        """The user's rules, strongly consistent (none stored: no rules at version 0)."""
        ...

    def load_many(self, user_ids: Iterable[str]) -> dict[str, StoredAlerts]:
        """Many users' rules in as few reads as the store allows, eventually consistent; users with
        nothing stored are left out."""
        ...

    def save(self, stored: StoredAlerts, rules: Sequence[AlertRule]) -> StoredAlerts:
        """Replace the user's rules (and their states) if still at `stored.version`, else raise
        VersionConflict; the user is listed among the alerting users exactly while it has rules."""
        ...


class AlertingUsers(Protocol):
    def iter_alerting_users(self, page_size: int = 1000) -> Iterator[list[str]]:
        """Every user with at least one alert rule, a page at a time."""
        ...


class PastPrices(Protocol):
    def prices_at(self, coin_ids: Iterable[str], at: datetime, resolutions: Sequence[Resolution]) -> dict[str, Decimal]:
        """Each coin's recorded price of the bucket `at` falls in, at the first of `resolutions` that
        has one; coins with none are left out. Raises PriceTierUnavailableError."""
        ...


class AlertPublisher(Protocol):
    def publish(self, alerts: Sequence[FiredAlert], *, deadline: float | None = None) -> int:
        """Sends every alert where users route them from, giving up at `deadline` (time.monotonic());
        returns how many could not be sent. Never raises."""
        ...
