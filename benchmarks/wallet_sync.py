"""Wallet sync figures: the node's HTTP requests for one refresh message, and users synced per CPU-second.

    .venv/bin/python -m benchmarks.wallet_sync

Runs on this machine only: the project's pinned anvil (chain id 1, read as "ethereum"), moto's server
(DynamoDB) in a process of its own, a redis-server and the local coins API. The node's requests are
counted at its door, by a forwarding proxy in front of anvil that keeps every request's body; they
are exact. CPU time (time.process_time) is this process's own: anvil, moto and Redis run elsewhere,
and the proxy only stands in front of the node while requests are counted, never while CPU is.

1. Deploys TOKENS DemoTokens; gives USERS fresh wallet addresses some ETH and a balance of one or
   two of the tokens (minted, so the first sync's Transfer-log scan discovers them), links each
   wallet to its user on ethereum (WalletLinks.link), and runs a first sync of the 10 users as one
   refresh message does: it discovers the tokens and records the initial chain transactions.
2. warm: BLOCKS_BETWEEN_SYNCS blocks later (about 5 minutes of Ethereum; none of them touches
   these wallets), one more sync of the 10 users' portfolios (loaded with
   PortfolioStore.load_portfolios, as the refresher's prefetch loads them). Headline: the node's
   HTTP requests, target at most 2; also its calls by method, DynamoDB requests and write units,
   and Redis commands.
3. moved: the same, after a DemoToken transfer between two of the linked wallets (a token both
   already hold), then after a token no wallet held arrives in a third one (its Transfer log must
   be discovered: one request more, by design). full_message_warm: the warm sync of a whole
   refresh message (Settings.users_per_message users, the 10 and new ones first synced in a
   message of their own), whose calls the reader splits every WALLET_RPC_BATCH_SIZE calls.
4. steady state: ROUNDS rounds, each running, in an order that alternates round by round,
   SYNCS_PER_ROUND steady syncs of the 10 users (STEADY_BLOCKS_BETWEEN_SYNCS mined before each,
   outside the measure, so each sync scans the new block's Transfer logs: the same calls as after
   a longer interval, and anvil mines slower as its chain grows), as many bare JSON-RPC
   round trips (the warm sync's own requests: the calls encoded, posted with httpx to the node and
   the answer decoded, nothing else), and as many valuation-only refreshes of the same users (the
   price updater's work without wallets: PortfolioRefresher.prefetch, which loads the portfolios
   and reads the quotes from Redis, then refresh_user of each: value and warm the views). Headline:
   users synced per CPU-second of WalletSync.sync (portfolios loaded beforehand), median over the
   rounds, and its ratio to the bare round trips' CPU (median of the rounds' ratios).

Any sync that reports a wallet error or a user it could not record, a ledger that does not hold
what the chain holds after a sync that recorded, or a steady sync that records anything stops the
benchmark with a non-zero exit status.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx

from benchmarks.dynamodb_meter import DynamoDbMeter
from local_stack.aws import MotoProcess, local_client
from local_stack.coins_api import CoinsApiServer
from local_stack.embedded_redis import RedisServer
from local_stack.evm_node import AnvilNode
from local_stack.functions import function_environment
from local_stack.rpc_proxy import RpcProxy
from local_stack.template_resources import create_tables

CHAIN = "ethereum"
CHAIN_ID = 1
USERS = 10
TOKENS = 3
TOKEN_DECIMALS = 18
BLOCKS_BETWEEN_SYNCS = 25  # about 5 minutes of Ethereum (12 s blocks): one refresh interval
# Before each steady sync: enough for a Transfer-log scan; anvil mines slower the longer its chain.
STEADY_BLOCKS_BETWEEN_SYNCS = 1
ROUNDS = 7
SYNCS_PER_ROUND = 25
TARGET_REQUESTS_PER_MESSAGE = 2
SEED = 20240611
# The board's and the recorder's Redis commands a sync may send.
REDIS_COMMANDS = ("hgetall", "hset", "expire", "get", "mget", "set", "del", "zadd", "eval", "evalsha")


def progress(message: str) -> None:
    print(f"wallet_sync: {message}", file=sys.stderr, flush=True)


# The stack ---------------------------------------------------------------------------------------


@dataclass
class Stack:
    node: AnvilNode
    proxy: RpcProxy
    coins_api: CoinsApiServer
    redis_url: str


@contextlib.contextmanager
def local_stack() -> Iterator[Stack]:
    """anvil and the proxy in front of it, Redis, moto's server with the template's table, the coins API;
    the functions' environment pointed at them, with the node reached through the proxy."""
    saved = dict(os.environ)
    os.environ.update(
        POWERTOOLS_METRICS_NAMESPACE="CrossChainPortfolio",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",  # keeps stdout to the one JSON line
    )
    redis_server = RedisServer().start()
    coins_api = CoinsApiServer(prices={}, price_every_coin=True).start()
    try:
        with AnvilNode(chain_id=CHAIN_ID) as node, MotoProcess() as moto:
            proxy = RpcProxy(node.url).start()
            try:
                tables = {"PortfolioTable": "bench-wallets"}
                create_tables(local_client("dynamodb", moto.endpoint), tables)
                environment = function_environment(
                    aws_endpoint=moto.endpoint,
                    region="us-east-1",
                    table_name=tables["PortfolioTable"],
                    redis_url=redis_server.url,
                    prices_api_url=coins_api.url,
                ) | {
                    f"RPC_URL_{CHAIN.upper()}": proxy.url,
                    # moto answers slower than DynamoDB does; a retried request would muddle the counts.
                    "DYNAMODB_READ_TIMEOUT_S": "30",
                }
                os.environ.update(environment)
                from portfolio import wiring

                wiring.reset()
                yield Stack(node, proxy, coins_api, redis_server.url)
            finally:
                proxy.stop()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        coins_api.stop()
        redis_server.stop()


def reach_node_directly(stack: Stack) -> None:
    """From here on the containers' node URL is anvil's own: no proxy between, none of its CPU counted."""
    from portfolio import wiring

    stack.proxy.stop()
    os.environ[f"RPC_URL_{CHAIN.upper()}"] = stack.node.url
    wiring.reset()


# Seeding -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    user_id: str
    wallet: str
    wallet_id: str
    wei: int
    tokens: dict[str, int]  # token address -> base units minted


def seed_wallets(node: AnvilNode, tokens: list[str], indices: range, rng: random.Random) -> list[Holder]:
    """Fresh addresses with some ETH and one or two of the tokens, minted (Transfer logs to find)."""
    holders = []
    for index in indices:
        wallet = f"0x{rng.getrandbits(160):040x}"
        wei = rng.randint(1, 50) * 10**17
        node.set_native_balance(wallet, wei)
        held = {tokens[index % len(tokens)]: rng.randint(1, 10_000) * 10**TOKEN_DECIMALS}
        if index % 2 == 0:
            held[tokens[(index + 1) % len(tokens)]] = rng.randint(1, 10_000) * 10**TOKEN_DECIMALS
        for token, units in held.items():
            node.mint(token, wallet, units)
        holders.append(Holder(f"bench-wallet-{index:03d}", wallet, "", wei, held))
    return holders


def link_wallets(holders: list[Holder]) -> list[Holder]:
    from portfolio import wiring

    links = wiring.wallet_links()
    linked = []
    for holder in holders:
        outcome = links.link(holder.user_id, holder.wallet, [CHAIN], "bench")
        linked.append(replace(holder, wallet_id=outcome.wallet.wallet_id))
    return linked


def load(user_ids: list[str]) -> dict[str, Any]:
    """The users' portfolios as the refresher's prefetch loads them (one BatchGetItem)."""
    from portfolio import wiring

    loaded = wiring.portfolio_store().load_portfolios(user_ids)
    failed = {user_id: outcome for user_id, outcome in loaded.items() if isinstance(outcome, Exception)}
    if failed or len(loaded) != len(user_ids):
        raise RuntimeError(f"portfolios not loaded: {len(loaded)} of {len(user_ids)}, {failed}")
    return loaded


def check_holdings(holders: list[Holder], portfolios: Mapping[str, Any], moved: Mapping[tuple[str, str], int]) -> None:
    """Every user's ledger holds, for its wallet, what the chain holds: ETH and each token."""
    from decimal import Decimal

    from portfolio.domain.tokens import TokenId, native_token

    for holder in holders:
        ledger = portfolios[holder.user_id].ledger
        expected = {native_token(CHAIN): Decimal(holder.wei) / 10**18}
        for token, units in holder.tokens.items():
            expected[TokenId(CHAIN, token)] = (
                Decimal(units + moved.get((holder.user_id, token), 0)) / 10**TOKEN_DECIMALS
            )
        held = {token: ledger.wallet_amount(holder.wallet_id, token) for token in expected} if ledger else {}
        if held != expected:
            raise RuntimeError(f"{holder.user_id}'s ledger holds {held}, the chain {expected}")


# Syncing -----------------------------------------------------------------------------------------


def checked_sync(portfolios: Mapping[str, Any]) -> Any:
    """One sync of these users; a wallet error or a user not recorded stops the benchmark."""
    from portfolio import wiring

    result = wiring.wallet_sync().sync(portfolios)
    if result.wallet_errors or result.failed or result.users_synced != len(portfolios):
        failed = {user_id: repr(error)[:200] for user_id, error in result.failed.items()}
        raise RuntimeError(
            f"the sync failed: {result.wallet_errors} wallet error(s), users not recorded {failed}, "
            f"{result.users_synced} of {len(portfolios)} users synced"
        )
    return result


def _redis_calls(client: Any) -> Counter[str]:
    stats = client.info("commandstats")
    return Counter({name: stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in REDIS_COMMANDS})


def counted_sync(stack: Stack, portfolios: Mapping[str, Any]) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    """One sync, its node requests counted at the proxy, its DynamoDB and Redis requests: the figures,
    and the node's requests as sent (each a list of calls)."""
    import redis
    from portfolio import wiring

    redis_client = redis.Redis.from_url(stack.redis_url)
    meter = DynamoDbMeter(wiring.dynamodb_client())
    stack.proxy.take()
    coins_calls = stack.coins_api.request_count
    redis_before = _redis_calls(redis_client)
    started = time.perf_counter()
    try:
        result = checked_sync(portfolios)
    finally:
        meter.detach()
    seconds = time.perf_counter() - started
    redis_used = _redis_calls(redis_client) - redis_before
    redis_client.close()
    requests = stack.proxy.take()
    methods = Counter(call["method"] for calls in requests for call in calls)
    figures = {
        "users": len(portfolios),
        "node_requests": len(requests),
        "node_requests_reported": result.node_requests,
        "calls_per_request": [len(calls) for calls in requests],
        "calls_by_method": dict(sorted(methods.items())),
        "users_changed": result.users_changed,
        "transactions_recorded": result.transactions_recorded,
        "coins_api_calls": stack.coins_api.request_count - coins_calls,
        "dynamodb_requests": meter.total_requests,
        "write_units": meter.total_write_units,
        **meter.snapshot(),
        "redis_commands": dict(sorted((+redis_used).items())),
        "seconds_through_proxy": round(seconds, 3),
    }
    return figures, requests


# Steady state ------------------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    run: Callable[[], float]  # one operation over the USERS users; the CPU seconds it took


def sync_side(node: AnvilNode, portfolios: Mapping[str, Any]) -> Side:
    from portfolio import wiring

    sync = wiring.wallet_sync()

    def run() -> float:
        node.mine(STEADY_BLOCKS_BETWEEN_SYNCS)
        cpu_started = time.process_time()
        result = sync.sync(portfolios)
        cpu_seconds = time.process_time() - cpu_started
        if result.wallet_errors or result.failed or result.users_synced != len(portfolios):
            raise RuntimeError(f"a steady sync failed: {result.wallet_errors} wallet error(s), {result.failed}")
        if result.committed or result.transactions_recorded:
            raise RuntimeError(f"a steady sync recorded something: {result.transactions_recorded} transaction(s)")
        return cpu_seconds

    return Side("wallet_sync", run)


def bare_rpc_side(url: str, requests: list[list[dict[str, Any]]], client: httpx.Client) -> Side:
    """The warm sync's own requests, as bare JSON-RPC round trips: encode, post, decode."""

    def run() -> float:
        cpu_started = time.process_time()
        for calls in requests:
            body = json.dumps(calls, separators=(",", ":")).encode()
            answer = client.post(url, content=body, headers={"Content-Type": "application/json"})
            answered = json.loads(answer.content)
            if answer.status_code != 200 or len(answered) != len(calls):
                raise RuntimeError(f"the node answered {answer.status_code} to a bare request")
        return time.process_time() - cpu_started

    return Side("bare_json_rpc", run)


def valuation_side(user_ids: list[str]) -> Side:
    """The price updater's work for these users without wallets: prefetch, value, warm."""
    from portfolio import wiring
    from portfolio.services.portfolio_refresher import PortfolioRefresher

    prices = wiring.price_service()
    refresher = PortfolioRefresher(wiring.portfolio_store(), prices, wiring.portfolio_cache())

    def run() -> float:
        prices.clear_cache()  # a new cycle: the quotes come from Redis, as the sweep left them
        cpu_started = time.process_time()
        batch = refresher.prefetch(user_ids)
        valued = sum(1 for user_id in user_ids if refresher.refresh_user(user_id, batch))
        cpu_seconds = time.process_time() - cpu_started
        if valued != len(user_ids):
            raise RuntimeError(f"the valuation-only refresh valued {valued} of {len(user_ids)} users")
        return cpu_seconds

    return Side("valuation_only", run)


def bench_steady_state(stack: Stack, user_ids: list[str], requests: list[list[dict[str, Any]]]) -> dict[str, Any]:
    from portfolio import wiring

    reach_node_directly(stack)
    portfolios = load(user_ids)
    # Quotes of the held tokens in Redis, as the sweep leaves them for the updater.
    held = {token.key: token for p in portfolios.values() if p.ledger for token in p.ledger.held_tokens()}
    wiring.price_service().get_prices(held.values())
    coins_calls = stack.coins_api.request_count
    with httpx.Client(timeout=30) as client:
        sides = [
            sync_side(stack.node, portfolios),
            bare_rpc_side(stack.node.url, requests, client),
            valuation_side(user_ids),
        ]
        for side in sides:  # the first of each pays one-off costs (clients, connections), unmeasured
            side.run()
        rounds: list[dict[str, Any]] = []
        for round_number in range(ROUNDS):
            order = sides if round_number % 2 == 0 else sides[::-1]
            spent = {side.name: sum(side.run() for _ in range(SYNCS_PER_ROUND)) for side in order}
            cpu = {side.name: spent[side.name] for side in sides}
            users = USERS * SYNCS_PER_ROUND
            rounds.append(
                {
                    **{f"{name}_cpu_ms_per_user": round(seconds / users * 1000, 3) for name, seconds in cpu.items()},
                    **{f"{name}_users_per_cpu_second": round(users / seconds, 1) for name, seconds in cpu.items()},
                    "ratio_to_bare_json_rpc": round(cpu["wallet_sync"] / cpu["bare_json_rpc"], 2),
                    "ratio_to_valuation_only": round(cpu["wallet_sync"] / cpu["valuation_only"], 2),
                }
            )
            progress(f"round {round_number + 1}/{ROUNDS}: {rounds[-1]['wallet_sync_users_per_cpu_second']} users/s")

    def median(key: str) -> float:
        return round(statistics.median(entry[key] for entry in rounds), 2)

    return {
        "syncs_per_round": SYNCS_PER_ROUND,
        "blocks_between_syncs": STEADY_BLOCKS_BETWEEN_SYNCS,
        "rounds": rounds,
        "users_per_cpu_second": median("wallet_sync_users_per_cpu_second"),
        "cpu_ms_per_user": median("wallet_sync_cpu_ms_per_user"),
        "bare_json_rpc_users_per_cpu_second": median("bare_json_rpc_users_per_cpu_second"),
        "ratio_to_bare_json_rpc": median("ratio_to_bare_json_rpc"),
        "valuation_only_users_per_cpu_second": median("valuation_only_users_per_cpu_second"),
        "ratio_to_valuation_only": median("ratio_to_valuation_only"),
        "coins_api_calls": stack.coins_api.request_count - coins_calls,
    }


def bench_full_message(stack: Stack, tokens: list[str], rng: random.Random, synced: list[str]) -> dict[str, Any]:
    """A warm sync of a whole refresh message (Settings.users_per_message users, one wallet each):
    the users synced so far and new ones, linked and first synced in a message of their own."""
    from portfolio import wiring

    settings = wiring.settings()
    size = settings.users_per_message
    holders = link_wallets(seed_wallets(stack.node, tokens, range(len(synced), size), rng))
    new_ids = [holder.user_id for holder in holders]
    checked_sync(load(new_ids))
    check_holdings(holders, load(new_ids), {})
    user_ids = [*synced, *new_ids]
    stack.node.mine(BLOCKS_BETWEEN_SYNCS)
    warm, _ = counted_sync(stack, load(user_ids))
    if warm["transactions_recorded"] or warm["write_units"]:
        raise RuntimeError(f"the warm sync of a full message wrote: {warm}")
    return {"wallet_rpc_batch_size": settings.wallet_rpc_batch_size, **warm}


def run() -> dict[str, Any]:
    rng = random.Random(SEED)
    with local_stack() as stack:
        node = stack.node
        progress(f"seeding {USERS} wallets, {TOKENS} tokens")
        tokens = [node.deploy_token(f"Bench Token {n}", f"BT{n}", TOKEN_DECIMALS) for n in range(TOKENS)]
        holders = link_wallets(seed_wallets(node, tokens, range(USERS), rng))
        user_ids = [holder.user_id for holder in holders]

        progress("first sync")
        first, _ = counted_sync(stack, load(user_ids))
        if first["transactions_recorded"] != sum(1 + len(holder.tokens) for holder in holders):
            raise RuntimeError(f"the first sync recorded {first['transactions_recorded']} transactions")
        check_holdings(holders, load(user_ids), {})

        progress("warm sync")
        node.mine(BLOCKS_BETWEEN_SYNCS)
        warm, requests = counted_sync(stack, load(user_ids))
        if warm["transactions_recorded"] or warm["write_units"]:
            raise RuntimeError(f"the warm sync wrote: {warm}")

        progress("syncs after something moved")
        sender, receiver, newcomer = holders[0], holders[3], holders[4]
        shared = next(token for token in sender.tokens if token in receiver.tokens)
        amount = sender.tokens[shared] // 4
        node.transfer(shared, sender.wallet, receiver.wallet, amount)
        transfer, _ = counted_sync(stack, load(user_ids))
        moved = {(sender.user_id, shared): -amount, (receiver.user_id, shared): amount}
        check_holdings(holders, load(user_ids), moved)
        late = node.deploy_token("Late Token", "LATE", TOKEN_DECIMALS)
        node.mint(late, newcomer.wallet, 7 * 10**TOKEN_DECIMALS)
        arrival, _ = counted_sync(stack, load(user_ids))
        if transfer["transactions_recorded"] != 2 or arrival["transactions_recorded"] != 1:
            recorded = (transfer["transactions_recorded"], arrival["transactions_recorded"])
            raise RuntimeError(f"moves not recorded as expected (2 and 1 transactions): {recorded}")
        check_holdings(
            [replace(newcomer, tokens={**newcomer.tokens, late: 7 * 10**TOKEN_DECIMALS})], load(user_ids), {}
        )

        progress("a full message's warm sync")
        full_message = bench_full_message(stack, tokens, rng, user_ids)

        progress(f"steady state: {ROUNDS} rounds of {SYNCS_PER_ROUND} syncs of {USERS} users")
        steady = bench_steady_state(stack, user_ids, requests)
    return {
        "chain": CHAIN,
        "users": USERS,
        "tokens": TOKENS,
        "registry_tokens_read_per_wallet": _registry_token_count(),
        "target_requests_per_message": TARGET_REQUESTS_PER_MESSAGE,
        "first_sync": first,
        "warm": warm,
        "moved": {"transfer_between_linked_wallets": transfer, "new_token_arrives": arrival},
        "full_message_warm": full_message,
        "steady_state": steady,
    }


def _registry_token_count() -> int:
    from portfolio.domain.token_registry import known_tokens

    return sum(1 for info in known_tokens() if info.token.chain == CHAIN and not info.token.is_native)


if __name__ == "__main__":
    print(json.dumps(run()))
