"""A coins API for demos without internet: DeFiLlama's /prices/current/{coins}, from a recorded set.

Prices come from local_stack/recorded_prices.json; every answer stamps them with the current time,
so they stay "fresh" for the price service. Ids the set does not hold are left out of the answer,
as DeFiLlama leaves out coins it cannot price.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

RECORDED_PRICES_PATH = Path(__file__).resolve().parent / "recorded_prices.json"
PRICES_PATH_PREFIX = "/prices/current/"


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


def _number(value: Decimal | int) -> str:
    # A JSON number written digit for digit: the Decimal never passes through a float.
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def prices_body(requested: Iterable[str], prices: Mapping[str, RecordedPrice], now: int) -> bytes:
    """DeFiLlama's answer for the requested ids: {"coins": {"<id as sent>": {...}}}, unknown ids absent."""
    entries = []
    for coin_id in dict.fromkeys(requested):
        recorded = prices.get(coin_id)
        if recorded is None:
            continue
        fields = [f'"price":{_number(recorded.price)}', f'"symbol":{json.dumps(recorded.symbol)}', f'"timestamp":{now}']
        if recorded.decimals is not None:
            fields.append(f'"decimals":{recorded.decimals}')
        if recorded.confidence is not None:
            fields.append(f'"confidence":{_number(recorded.confidence)}')
        entries.append(f"{json.dumps(coin_id)}:{{{','.join(fields)}}}")
    return ('{"coins":{' + ",".join(entries) + "}}").encode()


def requested_coin_ids(path: str) -> list[str] | None:
    """The ids in `/prices/current/{a,b,...}`, or None for any other path."""
    path = path.split("?", 1)[0]
    if not path.startswith(PRICES_PATH_PREFIX):
        return None
    listed = unquote(path[len(PRICES_PATH_PREFIX) :])
    return [coin_id.strip() for coin_id in listed.split(",") if coin_id.strip()]


class _PricesRequestHandler(BaseHTTPRequestHandler):
    server: OfflinePricesServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        requested = requested_coin_ids(self.path)
        if requested is None:
            self._answer(404, b'{"message":"Not Found"}')
            return
        self.server.requests_served += 1
        self._answer(200, prices_body(requested, self.server.prices, int(self.server.clock())))

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the price service logs what it asked and got."""


class OfflinePricesServer(ThreadingHTTPServer):
    """Serves the recorded set on 127.0.0.1; port 0 picks a free one."""

    daemon_threads = True

    def __init__(
        self,
        prices: Mapping[str, RecordedPrice] | None = None,
        *,
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(("127.0.0.1", port), _PricesRequestHandler)
        self.prices = dict(prices if prices is not None else load_recorded_prices())
        self.clock = clock
        self.requests_served = 0
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> OfflinePricesServer:
        self._thread = threading.Thread(target=self.serve_forever, args=(0.1,), name="offline-prices", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server_close()
