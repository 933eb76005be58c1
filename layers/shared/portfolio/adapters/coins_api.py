"""DeFiLlama Coins API client: current or historical prices for a chunk of coin ids, with bounded retries.

`GET {base}/prices/current/{id,id,...}?searchWidth=4h` answers `{"coins": {"<id as sent>": {...}}}`;
`GET {base}/prices/historical/{unix time}/{id,id,...}` answers the same shape for that moment.
`GET {base}/chart/{id,id,...}?start=&span=&period=` answers `{"coins": {"<id>": {"symbol", "confidence",
"decimals"?, "prices": [{"timestamp", "price"}]}}}`: each coin's prices at regular moments.
A coin it cannot price freshly is absent from the answer; absent never means zero.
With a Pro key the key is a path segment (`https://pro-api.llama.fi/<key>/coins/prices/current/...`),
so every URL is a secret: no URL, and no text that could hold one, reaches a log line or an error.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from pydantic import ValidationError

from portfolio.adapters.retry import RetryPolicy
from portfolio.domain.prices import PriceQuote, PriceSource
from portfolio.observability import logger
from portfolio.services.ports import ChartResult, ChunkResult
from portfolio.settings import Settings

PUBLIC_API_URL = "https://coins.llama.fi"
PRO_API_URL = "https://pro-api.llama.fi"
USER_AGENT = "cross-chain-portfolio/0.1 (+prices)"
REDACTED = "***"

_RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in its seconds form; the HTTP-date form and garbage count as absent."""
    if value is None:
        return None
    try:
        seconds = Decimal(value.strip())
    except InvalidOperation:
        return None
    if not seconds.is_finite() or seconds < 0:
        return None
    return float(seconds)


def parse_prices_body(content: bytes, requested: Sequence[str]) -> dict[str, PriceQuote]:
    """Quotes for the requested ids found in a body; raises ValueError when the body is not the API's shape.

    Entries that are unusable on their own (no price, a zero or negative price, no timestamp) are
    dropped: that coin simply has no fresh price, the rest of the chunk still counts.
    """
    try:
        body = json.loads(content, parse_float=Decimal)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"body is not JSON ({type(error).__name__})") from None
    if not isinstance(body, dict) or not isinstance(body.get("coins"), dict):
        raise ValueError('body has no "coins" object')
    coins: dict[str, Any] = body["coins"]
    quotes: dict[str, PriceQuote] = {}
    for coin_id in requested:
        entry = coins.get(coin_id)
        if not isinstance(entry, dict):
            continue
        quote = _quote_from_entry(coin_id, entry)
        if quote is not None:
            quotes[coin_id] = quote
    return quotes


def parse_batch_historical_body(
    content: bytes, moments: Mapping[str, Sequence[int]], *, within_s: float = 4 * 3600
) -> dict[str, PriceQuote]:
    """`/batchHistorical`'s answer: `{"coins": {"<coin>": {"symbol", "prices": [{"timestamp", "price",
    "confidence"}]}}}`, as quotes keyed `<coin>@<unix time asked>`, each the price observed nearest that
    moment and no further from it than `within_s` (the search width): a moment with none has no price."""
    try:
        body = json.loads(content, parse_float=Decimal)
    except ValueError as error:
        raise ValueError(f"body is not JSON ({type(error).__name__})") from None
    if not isinstance(body, dict) or not isinstance(body.get("coins"), dict):
        raise ValueError('body has no "coins" object')
    quotes: dict[str, PriceQuote] = {}
    for coin_id, times in moments.items():
        entry = body["coins"].get(coin_id)
        if not isinstance(entry, dict) or not isinstance(entry.get("prices"), list):
            continue
        observed = [point for point in entry["prices"] if isinstance(point, dict)]
        for at in times:
            nearest = min(observed, key=lambda point: abs(_seconds(point.get("timestamp")) - at), default=None)
            if nearest is None or abs(_seconds(nearest.get("timestamp")) - at) > within_s:
                continue
            quote = _quote_from_entry(coin_id, {"symbol": entry.get("symbol"), **nearest})
            if quote is not None:
                quotes[f"{coin_id}@{at}"] = quote
    return quotes


ChartSeries = dict[str, list[tuple[datetime, Decimal]]]


def parse_chart_body(content: bytes, requested: Sequence[str]) -> tuple[ChartSeries, dict[str, Decimal]]:
    """`/chart`'s answer: each requested coin's prices as (UTC time, price), oldest first, one per
    timestamp, and the coin's confidence. Points without a usable price or timestamp are dropped; a
    coin with none left is absent. Raises ValueError when the body is not the API's shape."""
    try:
        body = json.loads(content, parse_float=Decimal)
    except ValueError as error:
        raise ValueError(f"body is not JSON ({type(error).__name__})") from None
    if not isinstance(body, dict) or not isinstance(body.get("coins"), dict):
        raise ValueError('body has no "coins" object')
    series: ChartSeries = {}
    confidence: dict[str, Decimal] = {}
    for coin_id in requested:
        entry = body["coins"].get(coin_id)
        if not isinstance(entry, dict) or not isinstance(entry.get("prices"), list):
            continue
        by_time = {}
        for point in entry["prices"]:
            observed = _chart_point(point)
            if observed is not None:
                by_time[observed[0]] = observed[1]
        if not by_time:
            continue
        series[coin_id] = sorted(by_time.items())
        score = entry.get("confidence")
        if isinstance(score, (int, Decimal)) and not isinstance(score, bool) and 0 <= score <= 1:
            confidence[coin_id] = Decimal(score)
    return series, confidence


def _chart_point(point: Any) -> tuple[datetime, Decimal] | None:
    if not isinstance(point, dict):
        return None
    price, timestamp = point.get("price"), point.get("timestamp")
    if isinstance(price, bool) or not isinstance(price, (int, Decimal)) or not Decimal(price).is_finite():
        return None
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, Decimal)) or not Decimal(timestamp).is_finite():
        return None
    if price <= 0:
        return None
    try:
        return datetime.fromtimestamp(int(timestamp), tz=UTC), Decimal(price)
    except (ValueError, OverflowError, OSError):
        return None


_PERIOD_UNITS = (("d", timedelta(days=1)), ("h", timedelta(hours=1)), ("m", timedelta(minutes=1)))


def period_text(step: timedelta) -> str:
    """A whole number of minutes as DeFiLlama's period notation, in the largest unit that divides it:
    5 minutes "5m", 3 hours "3h", 2 days "2d"."""
    if step <= timedelta(0) or step % timedelta(minutes=1):
        raise ValueError("a chart period is a positive whole number of minutes")
    for unit, length in _PERIOD_UNITS:
        if not step % length:
            return f"{step // length}{unit}"
    raise AssertionError("unreachable: minutes divide every whole number of minutes")


_WIDTH_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _width_s(width: str) -> float:
    """DeFiLlama's searchWidth ("4h", "600", "2d") in seconds."""
    text = width.strip().lower()
    if text[-1:] in _WIDTH_UNITS and text[:-1].isdigit():
        return int(text[:-1]) * _WIDTH_UNITS[text[-1]]
    return float(text) if text.isdigit() else 4 * 3600


def _seconds(value: Any) -> float:
    return float(value) if isinstance(value, (int, Decimal)) and not isinstance(value, bool) else float("inf")


def _quote_from_entry(coin_id: str, entry: dict[str, Any]) -> PriceQuote | None:
    price = entry.get("price")
    timestamp = entry.get("timestamp")
    if isinstance(price, bool) or not isinstance(price, (int, Decimal)):
        return None
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, Decimal)):
        return None
    decimals = entry.get("decimals")
    symbol = entry.get("symbol")
    try:
        quote = PriceQuote(
            token=coin_id,
            price=price,
            symbol=symbol if isinstance(symbol, str) else None,
            decimals=decimals if isinstance(decimals, int) and not isinstance(decimals, bool) else None,
            timestamp=datetime.fromtimestamp(int(timestamp), tz=UTC),
            confidence=entry.get("confidence"),
            source=PriceSource.FRESH,
        )
    except (ValidationError, ValueError, OverflowError, OSError):
        return None
    return quote if quote.price > 0 else None


@dataclass
class _Answer[Parsed]:
    """How one GET went: the parsed body on success, else why not; attempts and their latencies."""

    parsed: Parsed | None = None
    attempts: int = 0
    latency_ms: list[float] = field(default_factory=list)
    error: str | None = None


class CoinsApi:
    """Fetches current prices chunk by chunk over one reused httpx.Client (safe to share across threads)."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        base_url: str,
        api_key: str | None = None,
        search_width: str = "4h",
        max_attempts: int = 4,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self._api_key = api_key or None
        base = base_url.rstrip("/")
        if self._api_key and base == PUBLIC_API_URL:
            base = PRO_API_URL
        self._coins_root = f"{base}/{self._api_key}/coins/" if self._api_key else f"{base}/"
        self._prices_root = self._coins_root + "prices/"
        self._search_width = search_width
        # A Retry-After beyond the cap gives the chunk up (its coins fall back to last-known prices)
        # rather than stall the whole refresh or retry before the server allows.
        self._retry = RetryPolicy(max_attempts, backoff_base_s, backoff_cap_s, sleep=sleep, rng=rng, clock=clock)
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._clock = clock

    def __repr__(self) -> str:
        return f"CoinsApi(key={'set' if self._api_key else 'none'})"

    def close(self) -> None:
        self._client.close()

    def fetch_current(self, coin_ids: Sequence[str], *, deadline: float | None = None) -> ChunkResult:
        """Current prices of one chunk; retries 429, 5xx and transport errors, never past `deadline`."""
        requested = tuple(coin_ids)
        url = self._prices_root + "current/" + ",".join(requested)
        return self._fetch(url, {}, requested, lambda body: parse_prices_body(body, requested), deadline)

    def fetch_historical(self, coin_ids: Sequence[str], at: datetime, *, deadline: float | None = None) -> ChunkResult:
        """Prices of one chunk at a past moment (`/prices/historical/{unix time}/...`, same answer shape)."""
        requested = tuple(coin_ids)
        url = self._prices_root + f"historical/{int(at.timestamp())}/" + ",".join(requested)
        return self._fetch(url, {}, requested, lambda body: parse_prices_body(body, requested), deadline)

    def fetch_batch_historical(
        self, moments: Mapping[str, Sequence[int]], *, deadline: float | None = None
    ) -> ChunkResult:
        """Prices of many coins at many moments in one call (`/batchHistorical?coins={"<coin>": [unix
        times]}`); the quotes are keyed `<coin>@<unix time>` as asked, each the answer's price nearest
        that moment."""
        requested = tuple(f"{coin}@{at}" for coin, times in moments.items() for at in times)
        coins = json.dumps({coin: list(times) for coin, times in moments.items()}, separators=(",", ":"))
        return self._fetch(
            self._coins_root + "batchHistorical",
            {"coins": coins},
            requested,
            lambda body: parse_batch_historical_body(body, moments, within_s=_width_s(self._search_width)),
            deadline,
        )

    def fetch_chart(
        self,
        coin_ids: Sequence[str],
        *,
        start: datetime,
        step: timedelta,
        points: int,
        deadline: float | None = None,
    ) -> ChartResult:
        """Each coin's prices at `start`, `start + step`, ... (`points` moments at most) from `/chart`,
        oldest first. Each moment gets the price observed nearest it, no further than one step away."""
        requested = tuple(coin_ids)
        period = period_text(step)
        params = {"start": str(int(start.timestamp())), "span": str(points), "period": period, "searchWidth": period}
        answer = self._get(
            self._coins_root + "chart/" + ",".join(requested),
            params,
            len(requested),
            lambda body: parse_chart_body(body, requested),
            deadline,
        )
        series, confidence = answer.parsed or ({}, {})
        return ChartResult(
            requested,
            series=series,
            confidence=confidence,
            attempts=answer.attempts,
            latency_ms=answer.latency_ms,
            error=answer.error,
        )

    def _fetch(
        self,
        url: str,
        params: Mapping[str, str],
        requested: tuple[str, ...],
        parse: Callable[[bytes], dict[str, PriceQuote]],
        deadline: float | None,
    ) -> ChunkResult:
        answer = self._get(url, params, len(requested), parse, deadline)
        return ChunkResult(
            requested,
            quotes=answer.parsed or {},
            attempts=answer.attempts,
            latency_ms=answer.latency_ms,
            error=answer.error,
        )

    def _get[Parsed](
        self,
        url: str,
        params: Mapping[str, str],
        coins: int,
        parse: Callable[[bytes], Parsed],
        deadline: float | None,
    ) -> _Answer[Parsed]:
        """One GET, retried on 429, 5xx and transport errors within the policy and the deadline; the
        search width goes along unless `params` name their own."""
        query = {**params}
        query.setdefault("searchWidth", self._search_width)
        answer: _Answer[Parsed] = _Answer()
        while (timeout := self._timeout_before(deadline)) is not None:
            answer.attempts += 1
            started = time.perf_counter()
            retry_after: float | None = None
            try:
                response = self._client.get(url, params=query, timeout=timeout)
            except httpx.TransportError as error:
                answer.latency_ms.append((time.perf_counter() - started) * 1000)
                problem = f"transport error {type(error).__name__}: {self._redact(str(error))}"
            else:
                answer.latency_ms.append((time.perf_counter() - started) * 1000)
                if response.status_code == 200:
                    try:
                        answer.parsed = parse(response.content)
                    except ValueError as error:
                        answer.error = f"malformed answer: {error}"
                    return answer
                problem = f"HTTP {response.status_code}"
                if response.status_code not in _RETRYABLE_STATUSES:
                    answer.error = problem
                    return answer
                retry_after = parse_retry_after(response.headers.get("Retry-After"))

            delay = self._retry.delay(answer.attempts, retry_after=retry_after, deadline=deadline)
            if delay is None:
                answer.error = f"{problem} (gave up after {answer.attempts} attempt(s))"
                return answer
            logger.warning(
                "coins API attempt failed; retrying",
                extra={"problem": problem, "attempt": answer.attempts, "delay_s": round(delay, 3), "coins": coins},
            )
            self._retry.sleep(delay)
        answer.error = "deadline reached before a request could be made"
        return answer

    def _timeout_before(self, deadline: float | None) -> httpx.Timeout | None:
        """Per-request timeouts, shortened so a request cannot outlive the deadline; None if no time is left."""
        if deadline is None:
            return httpx.Timeout(
                connect=self._connect_timeout_s,
                read=self._read_timeout_s,
                write=self._connect_timeout_s,
                pool=self._connect_timeout_s,
            )
        remaining = deadline - self._clock()
        if remaining <= 0:
            return None
        connect = min(self._connect_timeout_s, remaining)
        return httpx.Timeout(connect=connect, read=min(self._read_timeout_s, remaining), write=connect, pool=connect)

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, REDACTED) if self._api_key else text


class _RedactSecret(logging.Filter):
    """httpx logs every request URL at INFO; a Pro key sits in that URL."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._secret in message:
            record.msg = message.replace(self._secret, REDACTED)
            record.args = None
        return True


def keep_out_of_http_logs(secret: str) -> None:
    """httpx and httpcore log request URLs; this secret never appears in what they log."""
    for name in ("httpx", "httpcore"):
        library_logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactSecret) and f._secret == secret for f in library_logger.filters):
            library_logger.addFilter(_RedactSecret(secret))


def make_coins_api(settings: Settings, **overrides: Any) -> CoinsApi:
    """The coins API client of this container: call once at module scope and reuse it.

    `overrides` reach CoinsApi (clock, sleep, rng) for tests and benchmarks.
    """
    api_key = settings.prices_api_key.get_secret_value() if settings.prices_api_key else None
    if api_key:
        keep_out_of_http_logs(api_key)
    client = httpx.Client(
        timeout=httpx.Timeout(
            connect=settings.price_connect_timeout_s,
            read=settings.price_read_timeout_s,
            write=settings.price_connect_timeout_s,
            pool=settings.price_connect_timeout_s,
        ),
        limits=httpx.Limits(
            max_connections=settings.price_max_concurrency,
            max_keepalive_connections=settings.price_max_concurrency,
            keepalive_expiry=30,
        ),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=False,
    )
    options: dict[str, Any] = {
        "base_url": settings.prices_api_url,
        "api_key": api_key,
        "search_width": settings.price_search_width,
        "max_attempts": settings.price_max_attempts,
        "backoff_base_s": settings.price_backoff_base_s,
        "backoff_cap_s": settings.price_backoff_cap_s,
        "connect_timeout_s": settings.price_connect_timeout_s,
        "read_timeout_s": settings.price_read_timeout_s,
    }
    options.update(overrides)
    return CoinsApi(client, **options)
