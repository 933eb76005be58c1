"""Transactions recorded while a refresh values the same portfolios.

The API handler keeps the current event on a shared resolver, so it cannot be called from several
threads at once; the POSTs run through TransactionRecorder instances (what the handler calls) on
the same table, while the refresh runs the price updater's own code path with its own clients in
another thread, as another Lambda container would.
"""

from __future__ import annotations

import json
import random
import threading
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from portfolio.adapters.coins_api import make_coins_api
from portfolio.adapters.dynamodb.store import PortfolioStore
from portfolio.adapters.dynamodb_client import make_dynamodb_client
from portfolio.adapters.last_known_prices import LastKnownPriceStore
from portfolio.adapters.portfolio_cache import PortfolioCache
from portfolio.adapters.price_history import PriceHistoryStore
from portfolio.adapters.redis_connection import make_redis_client
from portfolio.domain.accounting import replay
from portfolio.domain.errors import VersionConflict
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import Transaction
from portfolio.services.portfolio_reader import PortfolioReader
from portfolio.services.portfolio_refresher import PortfolioRefresher
from portfolio.services.price_service import PriceService
from portfolio.services.transaction_recorder import TransactionRecorder
from portfolio.settings import Settings

from local_stack.coins_api import CoinsApiServer
from local_stack.sqs_poller import SqsPoller
from tests.faults.conftest import FunctionEnv
from tests.faults.handlers import WINDOW, RefreshQueues, random_address, refresh_body
from tests.support.faulty_dynamodb import faulty_dynamodb
from tests.support.stored_state import stored_state

USERS = 20
POSTS = 200
POST_THREADS = 6
PRICES = {index: Decimal(f"{index + 1}.25") for index in range(5)}


@dataclass
class Container:
    """What one Lambda container builds for itself: its own clients and services."""

    store: PortfolioStore
    prices: PriceService
    cache: PortfolioCache
    price_history: PriceHistoryStore

    @classmethod
    def build(cls, settings: Settings) -> Container:
        client = make_dynamodb_client(settings)
        store = PortfolioStore(
            client,
            settings.table_name,
            shards=settings.user_index_shards,
            cursor_signing_key=settings.cursor_signing_key.get_secret_value(),
        )
        prices = PriceService(
            make_coins_api(settings), None, LastKnownPriceStore(client, settings.table_name), settings
        )
        cache = PortfolioCache(make_redis_client(settings), settings)
        return cls(store, prices, cache, PriceHistoryStore(client, settings.table_name))

    def recorder(self) -> TransactionRecorder:
        return TransactionRecorder(self.store, self.prices, self.cache)

    def reader(self) -> PortfolioReader:
        return PortfolioReader(self.store, self.prices, self.cache, self.price_history)

    def close(self) -> None:
        self.prices.close()
        self.cache.close()


@pytest.fixture
def containers(function_env: FunctionEnv, moto_endpoint: str) -> Iterator[tuple[Container, Container]]:
    with faulty_dynamodb(moto_endpoint, one_at_a_time=True) as atomic_requests:
        settings = function_env(AWS_ENDPOINT_URL=atomic_requests.url)
        api, updater = Container.build(settings), Container.build(settings)
        yield api, updater
        api.close()
        updater.close()


def buy(transaction_id: str, token: TokenId, amount: Decimal) -> Transaction:
    return Transaction(
        id=transaction_id,
        type="buy",
        chain=token.chain,
        token_address=token.address,
        amount=amount,
        price_usd="1",
        timestamp=datetime(2024, 6, 1, tzinfo=UTC),
    )


def refresh_rounds(
    updater: Container, sqs_client: Any, queue_url: str, users: list[str], stop: threading.Event
) -> tuple[int, int]:
    """Refresh every user, window after window, until told to stop (at least twice).

    Returns the rounds run and the users valued."""
    from price_updater.app import process_refresh_event

    refresher = PortfolioRefresher(updater.store, updater.prices, updater.cache)
    valued = 0

    def handler(event: Any, context: Any) -> Any:
        nonlocal valued
        answer = process_refresh_event(event, context, refresher=refresher, persistence_store=None)
        valued += refresher.counts.users_valued
        return answer

    poller = SqsPoller(sqs_client, queue_url, handler)
    round_number = 0
    while not (stop.is_set() and round_number >= 2):
        window = WINDOW + timedelta(minutes=5 * round_number)
        for start in range(0, len(users), 10):
            sqs_client.send_message(QueueUrl=queue_url, MessageBody=refresh_body(users[start : start + 10], window))
        poller.drain()
        round_number += 1
    return round_number, valued


def test_given_a_running_refresh_when_200_transactions_are_posted_across_20_users_then_every_one_is_kept_and_counted(
    containers: tuple[Container, Container],
    coins_api: CoinsApiServer,
    sqs_client: Any,
    refresh_queues: RefreshQueues,
    fault_figures: dict,
) -> None:
    api, updater = containers
    tokens = [TokenId("ethereum", random_address()) for _ in PRICES]
    for index, token in enumerate(tokens):
        coins_api.set_price(token.key, PRICES[index])
    users = [f"conc-{index:02d}-{random_address()[-8:]}" for index in range(USERS)]
    rng = random.Random(7)
    posts = [
        (users[n % USERS], buy(f"tx-{n:03d}", tokens[rng.randrange(5)], Decimal(rng.randint(1, 9)) / 4))
        for n in range(POSTS)
    ]
    rng.shuffle(posts)
    # Given: every user exists (the refresh enumerates stored users) with a first buy
    for user_id in users:
        api.recorder().record(user_id, [buy("tx-seed", tokens[0], Decimal(1))])

    resends = 0
    resends_lock = threading.Lock()

    def post(user_id: str, transaction: Transaction) -> None:
        nonlocal resends
        while True:
            try:
                api.recorder().record(user_id, [transaction])
                return
            except VersionConflict:  # the API answers 409 "send it again"; a client does
                with resends_lock:
                    resends += 1

    # When: the POSTs race each other and a refresh that keeps re-pricing the same users
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=POST_THREADS + 1) as pool:
        refreshing = pool.submit(refresh_rounds, updater, sqs_client, refresh_queues.url, users, stop)
        list(pool.map(lambda item: post(*item), posts))
        stop.set()
        rounds, users_valued = refreshing.result(timeout=120)

    # Then: every transaction is stored, the stored positions are exactly a replay of them, and every
    # portfolio shows their value
    expected_ids: dict[str, set[str]] = defaultdict(lambda: {"tx-seed"})
    expected_amounts: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for user_id in users:
        expected_amounts[user_id][tokens[0].key] += 1
    for user_id, transaction in posts:
        expected_ids[user_id].add(transaction.id)
        expected_amounts[user_id][transaction.token.key] += transaction.amount
    reader = api.reader()
    for user_id in users:
        state = stored_state(api.store, user_id)
        assert {transaction.id for transaction in state.transactions} == expected_ids[user_id]
        assert state.portfolio.ledger == replay(state.transactions, state.portfolio.record.cost_basis_method)
        exact_value = sum(
            amount * PRICES[tokens.index(TokenId.parse(key))] for key, amount in expected_amounts[user_id].items()
        )
        expected_value = exact_value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
        assert Decimal(json.loads(reader.summary(user_id))["totalValueUsd"]) == expected_value, user_id
    fault_figures.update(
        posts=POSTS, users=USERS, refresh_rounds=rounds, resends_after_409=resends, refresh_users_valued=users_valued
    )


class RecordsBeforeWarming:
    """The refresher's cache, with a transaction recorded (and its view cached) just before the refresher warms it."""

    def __init__(self, cache: PortfolioCache, record_meanwhile: Any) -> None:
        self._cache = cache
        self._record_meanwhile = record_meanwhile
        self.interleaved = False

    def replace_views_of_many(self, replacements: Any, **options: Any) -> list[bool]:
        if not self.interleaved:
            self.interleaved = True
            self._record_meanwhile()
        return self._cache.replace_views_of_many(replacements, **options)


def test_given_a_transaction_recorded_between_a_refresh_load_and_its_cache_warm_when_read_then_it_shows(
    containers: tuple[Container, Container], coins_api: CoinsApiServer, user_id: str
) -> None:
    # Given: a user holding 1 unit at 1.25, a refresher about to warm the cache with what it loaded
    api, updater = containers
    token = TokenId("ethereum", random_address())
    coins_api.set_price(token.key, PRICES[0])
    api.recorder().record(user_id, [buy("tx-1", token, Decimal(1))])
    cache = RecordsBeforeWarming(
        updater.cache, lambda: api.recorder().record(user_id, [buy("tx-2", token, Decimal(3))])
    )
    refresher = PortfolioRefresher(updater.store, updater.prices, cache)

    # When
    refresher.refresh_user(user_id, refresher.prefetch([user_id]))

    # Then: the read shows both buys (4 units at 1.25): the refresh's older views were refused
    assert cache.interleaved
    summary = json.loads(api.reader().summary(user_id))
    assert Decimal(summary["totalValueUsd"]) == Decimal("5.00")
