"""A real HTTP server on loopback that speaks DeFiLlama's `GET /prices/current/{coins}`.

It prices coins from its own book (filled from real response bodies or by hand, or invented for any
coin asked when `price_every_coin` is on), leaves unknown coins out of the answer as DeFiLlama does,
and can be told to misbehave: answer 429 with Retry-After, 5xx, slowly, with malformed JSON, drop
the connection, hide coins or lower their confidence. It counts requests and coins per request.

    with FakeCoinsApi(price_every_coin=True) as api:
        settings = Settings(PRICES_API_URL=api.url, ...)
        ...
        assert api.request_count == 3

Both the public path (`/prices/current/...`) and the Pro form (`/<key>/coins/prices/current/...`) are
served; `required_api_key` makes the server answer 401 to any other key.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PRICES_PATH = "prices/current/"
PRO_PATH = "coins/prices/current/"


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    coins: tuple[str, ...]
    search_width: str | None
    api_key: str | None
    status: int | None  # None when the connection was dropped
    headers: dict[str, str]


@dataclass
class _Scripted:
    status: int = 500
    body: bytes = b'{"message":"internal error"}'
    headers: dict[str, str] = field(default_factory=dict)
    drop_connection: bool = False


class FakeCoinsApi:
    """Start with `start()` (port 0: the OS picks a free one) or as a context manager; `url` is its base URL."""

    def __init__(self, *, price_every_coin: bool = False, required_api_key: str | None = None) -> None:
        self.price_every_coin = price_every_coin
        self.required_api_key = required_api_key
        self.delay_s = 0.0
        self.default_timestamp = int(time.time())
        self._book: dict[str, dict[str, Any]] = {}
        self._hidden: set[str] = set()
        self._confidence_overrides: dict[str, Decimal] = {}
        self._malformed_when_asked: set[str] = set()
        self._scripted: deque[_Scripted] = deque()
        self._always: _Scripted | None = None
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeCoinsApi:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-coins-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeCoinsApi:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake coins API is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- the price book --------------------------------------------------------------------------

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
        entry: dict[str, Any] = {"price": Decimal(price), "timestamp": timestamp or self.default_timestamp}
        if symbol is not None:
            entry["symbol"] = symbol
        if decimals is not None:
            entry["decimals"] = decimals
        if confidence is not None:
            entry["confidence"] = Decimal(confidence)
        with self._lock:
            self._book[coin_id] = entry

    def load_fixture(self, path: Path) -> list[str]:
        """Adds the coins of a real `/prices/current` body to the book; returns their ids."""
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

    def fail_next(self, count: int = 1, *, status: int = 500, retry_after: str | None = None,
                  body: bytes | None = None) -> None:
        """The next `count` requests get this status (and Retry-After header when given)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        scripted = _Scripted(status=status, headers=headers)
        if body is not None:
            scripted.body = body
        with self._lock:
            self._scripted.extend(_Scripted(scripted.status, scripted.body, dict(headers)) for _ in range(count))

    def respond_next(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        """The next request gets exactly this answer (for example a real fixture body, verbatim)."""
        with self._lock:
            self._scripted.append(_Scripted(status, body, dict(headers or {})))

    def drop_next(self, count: int = 1) -> None:
        """Close the next `count` connections without answering."""
        with self._lock:
            self._scripted.extend(_Scripted(drop_connection=True) for _ in range(count))

    def fail_always(self, status: int = 500, *, retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            self._always = _Scripted(status=status, headers=headers)

    def malformed_when_asked_for(self, *coin_ids: str) -> None:
        """Any request that includes one of these coins gets a 200 with a broken JSON body."""
        with self._lock:
            self._malformed_when_asked.update(coin_ids)

    def heal(self) -> None:
        """Back to answering every request correctly and promptly."""
        with self._lock:
            self._scripted.clear()
            self._always = None
            self._malformed_when_asked.clear()
            self._hidden.clear()
            self._confidence_overrides.clear()
            self.delay_s = 0.0

    # -- counters --------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def coins_per_request(self) -> list[int]:
        return [len(request.coins) for request in self.requests]

    @property
    def coins_requested(self) -> int:
        return sum(self.coins_per_request)

    def reset_counters(self) -> None:
        with self._lock:
            self._requests.clear()

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
        if coin_id in self._confidence_overrides:
            entry["confidence"] = self._confidence_overrides[coin_id]
        return entry

    def _invented_entry(self, coin_id: str) -> dict[str, Any]:
        digest = hashlib.sha256(coin_id.encode()).hexdigest()
        cents = int(digest[:8], 16) % 1_000_000 + 1
        return {
            "decimals": 18,
            "symbol": f"T{digest[:4].upper()}",
            "price": Decimal(cents) / 100,
            "timestamp": self.default_timestamp,
            "confidence": Decimal("0.99"),
        }

    def _answer(self, raw_path: str, headers: dict[str, str]) -> tuple[_Scripted, RecordedRequest]:
        parts = urlsplit(raw_path)
        path = unquote(parts.path).lstrip("/")
        api_key: str | None = None
        if not path.startswith(PRICES_PATH):
            api_key, _, rest = path.partition("/")
            path = rest.removeprefix("coins/") if rest.startswith(PRO_PATH) else ""
        search_width = parse_qs(parts.query).get("searchWidth", [None])[0]
        coins = tuple(coin for coin in path.removeprefix(PRICES_PATH).split(",") if coin)
        with self._lock:
            answer = self._choose_answer(path, api_key, coins)
            recorded = RecordedRequest(
                path=parts.path, coins=coins, search_width=search_width, api_key=api_key,
                status=None if answer.drop_connection else answer.status, headers=headers,
            )
            self._requests.append(recorded)
        return answer, recorded

    def _choose_answer(self, path: str, api_key: str | None, coins: tuple[str, ...]) -> _Scripted:
        if not path.startswith(PRICES_PATH) or not coins:
            return _Scripted(404, b'{"message":"not found"}')
        if self.required_api_key is not None and api_key != self.required_api_key:
            return _Scripted(401, b'{"message":"invalid api key"}')
        if self._scripted:
            return self._scripted.popleft()
        if self._always is not None:
            return self._always
        if self._malformed_when_asked.intersection(coins):
            return _Scripted(200, b'{"coins": {"' + coins[0].encode() + b'": {"price": 1.0,')
        answered = {coin: entry for coin in coins if (entry := self._entry_for(coin)) is not None}
        return _Scripted(200, _to_json({"coins": answered}).encode())


def _to_json(value: Any) -> str:
    """JSON with Decimals written as number literals, digit for digit, as DeFiLlama writes them."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(key)}:{_to_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value)


def _handler_for(api: FakeCoinsApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in one segment, not two held back by Nagle and delayed ACKs.
        disable_nagle_algorithm = True
        wbufsize = 64 * 1024

        def do_GET(self) -> None:
            answer, _ = api._answer(self.path, {key.lower(): value for key, value in self.headers.items()})
            if api.delay_s:
                time.sleep(api.delay_s)
            if answer.drop_connection:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
