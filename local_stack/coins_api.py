"""DeFiLlama's coins API on loopback: `GET /prices/current/{coins}`, answered in DeFiLlama's own format.

    {"coins": {"<id as sent>": {"decimals": 18, "symbol": "WETH", "price": 3349.87,
                                "timestamp": 1736944205, "confidence": 0.99}}}

Coins it cannot price are left out of the answer, as DeFiLlama leaves them out; prices are JSON
numbers written digit for digit from `Decimal`. Both the public path (`/prices/current/...`) and the
Pro form (`/<key>/coins/prices/current/...`) are served; `required_api_key` answers 401 to any other key.
Historical prices (`/prices/historical/{unix time}/{coins}`, `/batchHistorical?coins={"<coin>": [unix
times]}` and `/chart/{coins}?start=&end=&span=&period=`, each in its own shape) answer the book's price
at the times asked: the price set for the coin, or, once `set_price_history` gave it a past, the price
it had then.

    {"coins": {"<id as sent>": {"symbol": "WETH", "confidence": 0.99, "decimals": 18,
                                "prices": [{"timestamp": 1736857805, "price": 3301.5}, ...]}}}

By default it serves the recorded set (local_stack/recorded_prices.json) stamped with the current
time, so the prices stay fresh: the offline mode of `make dev`. `prices={}` starts with an empty
book instead, to be filled with `set_price` or `load_fixture`; `price_every_coin` invents a stable
price for any coin the book does not hold.

It can be told to misbehave: answer 429 with Retry-After or 5xx (`fail_next`, `fail_always`), answer
slowly (`delay_s`), with malformed JSON (`malformed_when_asked_for`), drop the connection
(`drop_next`), hide coins or lower their confidence. It counts requests and the coins of each.

    with CoinsApiServer(prices={}, price_every_coin=True) as api:
        settings = Settings(PRICES_API_URL=api.url, ...)
        ...
        assert api.request_count == 3
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from local_stack.loopback_server import Answer, QuietHandler, ScriptedServer, decimal_json, send_answer

RECORDED_PRICES_PATH = Path(__file__).resolve().parent / "recorded_prices.json"
PRICES_PATH = "prices/current/"
HISTORICAL_PATH = "prices/historical/"
PRO_PATH = "coins/prices/"
BATCH_PATH = "batchHistorical"
CHART_PATH = "chart/"
# DeFiLlama's default distance between chart points, and the most points this stand-in answers per coin.
DEFAULT_CHART_PERIOD = "24h"
MAX_CHART_POINTS = 10_000
_PERIOD = re.compile(r"^(\d+)([mhdw])$", re.IGNORECASE)
_PERIOD_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# DeFiLlama's order of the fields of one coin.
ENTRY_FIELDS = ("decimals", "symbol", "price", "timestamp", "confidence")


@dataclass(frozen=True)
class RecordedPrice:
    symbol: str
    price: Decimal
    decimals: int | None
    confidence: Decimal | None


def load_recorded_prices(path: Path = RECORDED_PRICES_PATH) -> dict[str, RecordedPrice]:
    """The recorded set, keyed by coin id (`coingecko:<id>` or `chain:address`); prices stay Decimal."""
    document = json.loads(path.read_text(), parse_float=Decimal)
    prices = {}
    for coin_id, entry in document["coins"].items():
        price = Decimal(entry["price"])
        if price <= 0:
            raise ValueError(f"recorded price of {coin_id} must be positive")
        prices[coin_id] = RecordedPrice(
            symbol=entry["symbol"],
            price=price,
            decimals=entry.get("decimals"),
            confidence=Decimal(entry["confidence"]) if "confidence" in entry else None,
        )
    return prices


def _entry(
    price: Decimal, *, symbol: str | None, decimals: int | None, confidence: Decimal | None, timestamp: int | None
) -> dict[str, Any]:
    """One coin as DeFiLlama writes it; a field given as None is left out (no timestamp: stamped when asked)."""
    values = {"decimals": decimals, "symbol": symbol, "price": price, "timestamp": timestamp, "confidence": confidence}
    return {name: values[name] for name in ENTRY_FIELDS if values[name] is not None}


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    coins: tuple[str, ...]
    search_width: str | None
    api_key: str | None
    status: int | None  # None when the connection was dropped
    headers: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)  # the query string, first value of each name


INTERNAL_ERROR = b'{"message":"internal error"}'


class CoinsApiServer(ScriptedServer[ReceivedRequest]):
    """Start with `start()` (port 0: the OS picks a free one) or as a context manager; `url` is its base URL.

    `request_log_size` bounds the requests kept for `requests` (None: all); `request_count` counts every one.
    """

    thread_name = "coins-api"

    def __init__(
        self,
        prices: Mapping[str, RecordedPrice] | None = None,
        *,
        price_every_coin: bool = False,
        required_api_key: str | None = None,
        port: int = 0,
        clock: Callable[[], float] = time.time,
        request_log_size: int | None = None,
    ) -> None:
        self.price_every_coin = price_every_coin
        self.required_api_key = required_api_key
        self.clock = clock
        # The timestamp of prices set without one, and of invented ones: fixed, so repeated answers are equal.
        self.default_timestamp = int(clock())
        super().__init__(port=port, request_log_size=request_log_size)
        recorded = load_recorded_prices() if prices is None else prices
        self._book: dict[str, dict[str, Any]] = {
            coin_id: _entry(
                price.price, symbol=price.symbol, decimals=price.decimals, confidence=price.confidence, timestamp=None
            )
            for coin_id, price in recorded.items()
        }
        self._hidden: set[str] = set()
        self._confidence_overrides: dict[str, Decimal] = {}
        # coin -> (unix times, prices) of its past, oldest first (set_price_history)
        self._history: dict[str, tuple[list[int], list[Decimal]]] = {}
        self._malformed_when_asked: set[str] = set()

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    # -- the price book --------------------------------------------------------------------------

    @property
    def book_size(self) -> int:
        """How many coins the book prices (invented prices not counted)."""
        with self._lock:
            return len(self._book)

    def set_price(
        self,
        coin_id: str,
        price: str | Decimal | int,
        *,
        symbol: str | None = "TKN",
        decimals: int | None = 18,
        confidence: str | Decimal | None = "0.99",
        timestamp: int | None = None,
    ) -> None:
        entry = _entry(
            Decimal(price),
            symbol=symbol,
            decimals=decimals,
            confidence=Decimal(confidence) if confidence is not None else None,
            timestamp=timestamp or self.default_timestamp,
        )
        with self._lock:
            self._book[coin_id] = entry

    def set_price_history(self, coin_id: str, changes: Mapping[int | datetime, str | Decimal | int]) -> None:
        """The coin's past for the historical answers: from each moment given (unix time or aware
        datetime) the coin was at that price, until the next; before the first, at the first. Its
        current price stays the one `set_price` (or the book) gives."""
        moments = sorted(
            (int(moment.timestamp()) if isinstance(moment, datetime) else int(moment), Decimal(price))
            for moment, price in changes.items()
        )
        with self._lock:
            self._history[coin_id] = ([at for at, _ in moments], [price for _, price in moments])

    def load_fixture(self, path: Path) -> list[str]:
        """Adds the coins of a real `/prices/current` body to the book, as they are; returns their ids."""
        body = json.loads(path.read_bytes(), parse_float=Decimal)
        with self._lock:
            self._book.update(body["coins"])
        return list(body["coins"])

    def quote_of(self, coin_id: str) -> dict[str, Any] | None:
        """The entry this server answers for a coin right now (None when it would leave it out)."""
        with self._lock:
            return self._entry_for(coin_id)

    def hide(self, *coin_ids: str) -> None:
        """Leave these coins out of every answer, as DeFiLlama does for a coin it cannot price freshly."""
        with self._lock:
            self._hidden.update(coin_ids)

    def unhide(self, *coin_ids: str) -> None:
        with self._lock:
            self._hidden.difference_update(coin_ids)

    def set_confidence(self, coin_id: str, confidence: str | Decimal) -> None:
        with self._lock:
            self._confidence_overrides[coin_id] = Decimal(confidence)

    # -- misbehaviour ----------------------------------------------------------------------------

    def fail_next(
        self, count: int = 1, *, status: int = 500, retry_after: str | None = None, body: bytes | None = None
    ) -> None:
        """The next `count` requests get this status (and Retry-After header when given)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._script(Answer(status, INTERNAL_ERROR if body is None else body, headers), count)

    def respond_next(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        """The next request gets exactly this answer (for example a real fixture body, verbatim)."""
        self._script(Answer(status, body, dict(headers or {})))

    def fail_always(self, status: int = 500, *, retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._answer_always(Answer(status, INTERNAL_ERROR, headers))

    def malformed_when_asked_for(self, *coin_ids: str) -> None:
        """Any request that includes one of these coins gets a 200 with a broken JSON body."""
        with self._lock:
            self._malformed_when_asked.update(coin_ids)

    def heal(self) -> None:
        """Back to answering every request correctly and promptly."""
        super().heal()
        with self._lock:
            self._malformed_when_asked.clear()
            self._hidden.clear()
            self._confidence_overrides.clear()

    # -- counters --------------------------------------------------------------------------------

    @property
    def coins_per_request(self) -> list[int]:
        return [len(request.coins) for request in self.requests]

    @property
    def coins_requested(self) -> int:
        return sum(self.coins_per_request)

    # -- answering -------------------------------------------------------------------------------

    def _entry_for(self, coin_id: str) -> dict[str, Any] | None:
        if coin_id in self._hidden:
            return None
        entry = self._book.get(coin_id)
        if entry is None and self.price_every_coin:
            entry = self._invented_entry(coin_id)
        if entry is None:
            return None
        entry = dict(entry)
        if "timestamp" not in entry:
            entry["timestamp"] = int(self.clock())
        if coin_id in self._confidence_overrides:
            entry["confidence"] = self._confidence_overrides[coin_id]
        return entry

    def _invented_entry(self, coin_id: str) -> dict[str, Any]:
        digest = hashlib.sha256(coin_id.encode()).hexdigest()
        cents = int(digest[:8], 16) % 1_000_000 + 1
        return _entry(
            Decimal(cents) / 100,
            symbol=f"T{digest[:4].upper()}",
            decimals=18,
            confidence=Decimal("0.99"),
            timestamp=self.default_timestamp,
        )

    def _answer(self, raw_path: str, headers: dict[str, str]) -> Answer:
        parts = urlsplit(raw_path)
        path = unquote(parts.path).lstrip("/")
        api_key: str | None = None
        if not path.startswith((PRICES_PATH, HISTORICAL_PATH, BATCH_PATH, CHART_PATH)):
            api_key, _, rest = path.partition("/")
            pro_paths = (PRO_PATH, f"coins/{BATCH_PATH}", f"coins/{CHART_PATH}")
            path = rest.removeprefix("coins/") if rest.startswith(pro_paths) else ""
        query = parse_qs(parts.query)
        params = {name: values[0] for name, values in query.items()}
        search_width = params.get("searchWidth")
        if path == BATCH_PATH:
            moments = _moments(params.get("coins", ""))
            with self._lock:
                answer = self._choose_batch_answer(moments, api_key)
                self._record_request(parts.path, tuple(moments or ()), search_width, api_key, answer, headers, params)
            return answer
        if path.startswith(CHART_PATH):
            coins = tuple(coin for coin in path.removeprefix(CHART_PATH).split(",") if coin)
            with self._lock:
                answer = self._choose_chart_answer(coins, params, api_key)
                self._record_request(parts.path, coins, search_width, api_key, answer, headers, params)
            return answer
        at: int | None = None
        if path.startswith(HISTORICAL_PATH):
            moment, _, listed = path.removeprefix(HISTORICAL_PATH).partition("/")
            at = int(moment) if moment.isdigit() else None
            path = PRICES_PATH + listed if at is not None else ""
        coins = tuple(coin for coin in path.removeprefix(PRICES_PATH).split(",") if coin)
        with self._lock:
            answer = self._choose_answer(path, api_key, coins, at)
            self._record_request(parts.path, coins, search_width, api_key, answer, headers, params)
        return answer

    def _record_request(
        self,
        path: str,
        coins: tuple[str, ...],
        search_width: str | None,
        api_key: str | None,
        answer: Answer,
        headers: dict[str, str],
        params: dict[str, str],
    ) -> None:
        status = None if answer.drop_connection else answer.status
        self._record(ReceivedRequest(path, coins, search_width, api_key, status, headers, params))

    def _choose_batch_answer(self, moments: dict[str, list[int]] | None, api_key: str | None) -> Answer:
        """`/batchHistorical?coins={"<coin>": [unix times]}`: each coin's book price at each moment."""
        if not moments:
            return Answer(400, b'{"message":"coins must be an object of coin -> [timestamps]"}')
        if self.required_api_key is not None and api_key != self.required_api_key:
            return Answer(401, b'{"message":"invalid api key"}')
        return self._scripted_answer() or self._batch_body(moments)

    def _batch_body(self, moments: dict[str, list[int]]) -> Answer:
        answered = {}
        for coin, times in moments.items():
            entry = self._entry_for(coin)
            if entry is None:
                continue
            points = [
                {
                    "timestamp": int(at),
                    "price": self._price_at(coin, int(at), entry),
                    "confidence": entry.get("confidence", Decimal("0.99")),
                }
                for at in times
            ]
            answered[coin] = {"symbol": entry.get("symbol", ""), "prices": points}
        return Answer(200, decimal_json({"coins": answered}).encode())

    def _choose_answer(self, path: str, api_key: str | None, coins: tuple[str, ...], at: int | None) -> Answer:
        if not path.startswith(PRICES_PATH) or not coins:
            return Answer(404, b'{"message":"not found"}')
        if self.required_api_key is not None and api_key != self.required_api_key:
            return Answer(401, b'{"message":"invalid api key"}')
        scripted = self._scripted_answer()
        if scripted is not None:
            return scripted
        if self._malformed_when_asked.intersection(coins):
            return Answer(200, b'{"coins": {"' + coins[0].encode() + b'": {"price": 1.0,')
        answered = {coin: entry for coin in coins if (entry := self._entry_for(coin)) is not None}
        if at is not None:
            # A historical price: the book's price, observed at the moment asked for.
            answered = {
                coin: entry | {"price": self._price_at(coin, at, entry), "timestamp": at}
                for coin, entry in answered.items()
            }
        return Answer(200, decimal_json({"coins": answered}).encode())

    def _choose_chart_answer(self, coins: tuple[str, ...], params: dict[str, str], api_key: str | None) -> Answer:
        """`/chart/{coins}`: each coin's book price at the moments `start`, `end`, `span` and `period`
        name, as DeFiLlama lays them out; moments still to come have no price."""
        if not coins:
            return Answer(404, b'{"message":"not found"}')
        if self.required_api_key is not None and api_key != self.required_api_key:
            return Answer(401, b'{"message":"invalid api key"}')
        scripted = self._scripted_answer()
        if scripted is not None:
            return scripted
        if self._malformed_when_asked.intersection(coins):
            return Answer(200, b'{"coins": {"' + coins[0].encode() + b'": {"prices": [')
        try:
            moments = chart_moments(params, now=int(self.clock()))
        except ValueError as error:
            return Answer(400, json.dumps({"message": str(error)}).encode())
        answered = {}
        for coin in coins:
            entry = self._entry_for(coin)
            if entry is None or not moments:
                continue
            chart: dict[str, Any] = {"symbol": entry.get("symbol", ""), "confidence": entry.get("confidence")}
            if "decimals" in entry:
                chart["decimals"] = entry["decimals"]
            chart["prices"] = [{"timestamp": at, "price": self._price_at(coin, at, entry)} for at in moments]
            answered[coin] = {name: value for name, value in chart.items() if value is not None}
        return Answer(200, decimal_json({"coins": answered}).encode())

    def _price_at(self, coin_id: str, at: int, entry: dict[str, Any]) -> Decimal:
        """The coin's price at a past moment: its history's (set_price_history), else the book's."""
        history = self._history.get(coin_id)
        if history is None:
            return Decimal(entry["price"])
        times, prices = history
        return prices[max(bisect.bisect_right(times, at) - 1, 0)]


def chart_moments(params: Mapping[str, str], *, now: int) -> list[int]:
    """The unix times a `/chart` request asks for: `span` points `period` apart from `start`, or up to
    `end` (`end` alone: the `span` points ending there; neither: ending now). Without `span`, from
    `start` up to `end` (or now); otherwise one point. Times after `now` are left out.
    Raises ValueError for a parameter DeFiLlama would refuse."""
    period_text = params.get("period") or DEFAULT_CHART_PERIOD
    matched = _PERIOD.match(period_text.strip())
    if matched is None or int(matched.group(1)) == 0:
        raise ValueError(f"period {period_text!r} is not <number><m|h|d|w>")
    period = int(matched.group(1)) * _PERIOD_SECONDS[matched.group(2).lower()]
    start, end, span = (_whole(params, name) for name in ("start", "end", "span"))
    if span is not None and span < 0:
        raise ValueError("span must not be negative")
    if start is not None:
        last = end if end is not None else now
        count = span if span else (last - start) // period + 1
        moments = [start + index * period for index in range(min(count, MAX_CHART_POINTS))]
        if end is not None:
            moments = [at for at in moments if at <= end]
    else:
        last = end if end is not None else now
        count = min(span or 1, MAX_CHART_POINTS)
        moments = [last - index * period for index in reversed(range(count))]
    return [at for at in moments if 0 <= at <= now]


def _whole(params: Mapping[str, str], name: str) -> int | None:
    """A numeric query parameter as a whole number (DeFiLlama accepts unix times with decimals)."""
    text = params.get(name)
    if text is None or not text.strip():
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{name} must be a number") from None
    if not value.is_finite():
        raise ValueError(f"{name} must be a number")
    return int(value)


def _moments(asked: str) -> dict[str, list[int]] | None:
    """The `coins` parameter of /batchHistorical, or None when it is not an object of coin -> [times]."""
    try:
        moments = json.loads(asked)
    except ValueError:
        return None
    if not isinstance(moments, dict) or not all(isinstance(times, list) for times in moments.values()):
        return None
    return moments


def _handler_for(api: CoinsApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            answer = api._answer(self.path, {key.lower(): value for key, value in self.headers.items()})
            send_answer(self, answer, delay_s=api.delay_s)

    return Handler
