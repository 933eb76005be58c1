"""Wallet-sync fixtures: the project's pinned anvil (a real EVM node) for the session, EVM chain
readers over real HTTP against it, and the functions' handlers wired to a test's nodes."""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import redis
from portfolio.adapters.evm_chain_reader import EvmChainReader
from portfolio.adapters.json_rpc import JsonRpcClient
from portfolio.adapters.retry import RetryPolicy
from portfolio.settings import Settings

from local_stack.coins_api import CoinsApiServer
from local_stack.evm_node import AnvilNode
from local_stack.functions import load_handler
from local_stack.http_events import http_event
from local_stack.lambda_context import LocalLambdaContext

# Few attempts and short waits: a node that fails, fails a test in well under a second.
EVM_MAX_ATTEMPTS = 3

EvmReaderFactory = Callable[..., EvmChainReader]


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilNode]:
    """One anvil on chain id 1 for the session; tests use fresh wallet addresses so they never meet."""
    with AnvilNode(chain_id=1) as node:
        yield node


@pytest.fixture
def evm_http_client() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


@pytest.fixture
def make_evm_reader(anvil: AnvilNode, evm_http_client: httpx.Client) -> EvmReaderFactory:
    """make_evm_reader(url=anvil's, chain_id=1, sleep=time.sleep, **reader options) -> EvmChainReader."""

    def make(
        url: str | None = None, *, chain_id: int = 1, sleep: Callable[[float], None] = time.sleep, **options: Any
    ) -> EvmChainReader:
        retry = RetryPolicy(max_attempts=EVM_MAX_ATTEMPTS, base_s=0.01, cap_s=0.2, sleep=sleep)
        rpc = JsonRpcClient(evm_http_client, url or anvil.url, retry=retry, connect_timeout_s=0.5, read_timeout_s=5.0)
        return EvmChainReader("ethereum", chain_id, rpc, **options)

    return make


@pytest.fixture
def evm_reader(make_evm_reader: EvmReaderFactory) -> EvmChainReader:
    """A reader of the session's anvil as the "ethereum" chain (chain id 1)."""
    return make_evm_reader()


# Prices live under global keys (a coin's quote, or its "no fresh price" mark) that other suites'
# tests write in the shared Redis too: the wallet tests value in a database of their own.
WALLET_TESTS_REDIS_DB = 12


@pytest.fixture
def wallet_redis_url(redis_url: str) -> str:
    """The test Redis, in a database only these tests use, emptied for each test."""
    url = urlunsplit(urlsplit(redis_url)._replace(path=f"/{WALLET_TESTS_REDIS_DB}"))
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


EVENTS = Path(__file__).resolve().parents[3] / "events"


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


class Functions:
    """The API and price updater handlers as Lambda runs them, for one test's environment."""

    def __init__(self) -> None:
        self._api = load_handler("ApiFunction")
        self._updater = load_handler("PriceUpdaterFunction")
        self._record = json.loads((EVENTS / "sqs-refresh-batch.json").read_text())["Records"][0]
        # Windows of their own: a message the idempotency store has seen would be skipped.
        first = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(days=uuid.uuid4().int % 10_000)
        self._windows = (first + timedelta(minutes=5 * number) for number in count())

    def api(self, method: str, path: str, *, sub: str, body: Any = None, query: dict[str, str] | None = None) -> Answer:
        answer = self._api(http_event(method, path, sub=sub, body=body, query=query), LocalLambdaContext("api"))
        raw = answer.get("body") or ""
        if answer.get("isBase64Encoded"):
            raw = base64.b64decode(raw).decode()
        headers = {name.lower(): value for name, value in (answer.get("headers") or {}).items()}
        return Answer(answer["statusCode"], json.loads(raw) if raw else None, headers)

    def refresh(self, *user_ids: str, tier: str = "active") -> dict[str, Any]:
        """The price updater on one refresh message (the shape of events/sqs-refresh-batch.json)."""
        return self.refresh_messages(list(user_ids), tier=tier)

    def refresh_messages(self, *messages: list[str], tier: str = "active") -> dict[str, Any]:
        """The price updater on one SQS batch of refresh messages, one per list of users."""
        window = next(self._windows).isoformat()
        records = []
        for user_ids in messages:
            record = copy.deepcopy(self._record)
            record["messageId"] = str(uuid.uuid4())
            record["body"] = json.dumps({"window": window, "userIds": user_ids, "tier": tier})
            records.append(record)
        return self._updater({"Records": records}, LocalLambdaContext("updater", timeout_s=30))


@pytest.fixture
def wallet_functions(
    function_environment: Callable[..., Settings], coins_api: CoinsApiServer, wallet_redis_url: str
) -> Callable[..., Functions]:
    """wallet_functions(RPC_URL_ETHEREUM=..., ...) -> the handlers with the test's nodes, its coins API
    (the `coins_api` fixture of the module) and a Redis database of their own."""

    def configure(**variables: str) -> Functions:
        function_environment(
            REDIS_URL=wallet_redis_url,
            PRICES_API_URL=coins_api.url,
            PRICE_MAX_ATTEMPTS="1",
            WALLET_RPC_MAX_ATTEMPTS="1",
            WALLET_RPC_CONNECT_TIMEOUT_S="0.5",
            REDIS_SOCKET_TIMEOUT_MS="2000",
            **variables,
        )
        return Functions()

    return configure
