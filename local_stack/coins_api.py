"""DeFiLlama's coins API on loopback: `GET /prices/current/{coins}`, answered in DeFiLlama's own format.

    {"coins": {"<id as sent>": {"decimals": 18, "symbol": "WETH", "price": 3349.87,
                                "timestamp": 1736944205, "confidence": 0.99}}}

Coins it cannot price are left out of the answer, as DeFiLlama leaves them out; prices are JSON
numbers written digit for digit from `Decimal`. Both the public path (`/prices/current/...`) and the
Pro form (`/<key>/coins/prices/current/...`) are served; `required_api_key` answers 401 to any other key.
Historical prices (`/prices/historical/{unix time}/{coins}`, and `/batchHistorical?coins={"<coin>": [unix
times]}` in its own shape) answer the book's price observed at the times asked.

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

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
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
        if not path.startswith((PRICES_PATH, HISTORICAL_PATH, BATCH_PATH)):
            api_key, _, rest = path.partition("/")
            path = rest.removeprefix("coins/") if rest.startswith((PRO_PATH, f"coins/{BATCH_PATH}")) else ""
        query = parse_qs(parts.query)
        search_width = query.get("searchWidth", [None])[0]
        if path == BATCH_PATH:
            moments = _moments(query.get("coins", [""])[0])
            with self._lock:
                answer = self._choose_batch_answer(moments, api_key)
                self._record_request(parts.path, tuple(moments or ()), search_width, api_key, answer, headers)
            return answer
        at: int | None = None
        if path.startswith(HISTORICAL_PATH):
            moment, _, listed = path.removeprefix(HISTORICAL_PATH).partition("/")
            at = int(moment) if moment.isdigit() else None
            path = PRICES_PATH + listed if at is not None else ""
        coins = tuple(coin for coin in path.removeprefix(PRICES_PATH).split(",") if coin)
        with self._lock:
            answer = self._choose_answer(path, api_key, coins, at)
            self._record_request(parts.path, coins, search_width, api_key, answer, headers)
        return answer

    def _record_request(
        self,
        path: str,
        coins: tuple[str, ...],
        search_width: str | None,
        api_key: str | None,
        answer: Answer,
        headers: dict[str, str],
    ) -> None:
        status = None if answer.drop_connection else answer.status
        self._record(ReceivedRequest(path, coins, search_width, api_key, status, headers))

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
                {"timestamp": int(at), "price": entry["price"], "confidence": entry.get("confidence", Decimal("0.99"))}
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
            answered = {coin: entry | {"timestamp": at} for coin, entry in answered.items()}
        return Answer(200, decimal_json({"coins": answered}).encode())


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
