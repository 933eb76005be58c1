"""Starts the whole system on loopback, in order, and stops it in the reverse order."""

from __future__ import annotations

import errno
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
from redis.exceptions import RedisError

from local_stack.api_routes import api_routes
from local_stack.aws import ALERT_EVENT_BUS, PORTFOLIO_TABLE, REFRESH_QUEUE, LocalAws, MotoStack
from local_stack.chain_nodes import (
    ChainNodeError,
    ChainNodes,
    node_url_for_log,
    other_configured_nodes,
    start_chain_nodes,
)
from local_stack.coins_api import CoinsApiServer
from local_stack.config import PUBLIC_PRICES_API_URL, LocalStackSettings
from local_stack.demo import DEMO_ALERTS, load_demo, load_demo_alerts
from local_stack.demo_wallets import DemoWallet, link_wallets, seed_evm_wallet, seed_solana_wallet
from local_stack.embedded_redis import LocalRedis, RedisKind, RedisModeError, start_redis
from local_stack.evm_node import AnvilRpcError
from local_stack.foreground import StartupError
from local_stack.functions import Functions, export_function_environment, function_environment, load_functions
from local_stack.gateway import Exchange, Gateway, GatewayServer
from local_stack.http_events import HttpResponse, IncomingRequest, json_response
from local_stack.jwt_auth import AUDIENCE, ISSUER, JwtAuthorizer, load_or_create_secret
from local_stack.refresh import RefreshRunner, window_run_handler
from local_stack.sam_env import prepare_sam_local
from local_stack.scheduler import ScheduleThread
from local_stack.sqs_poller import PollerThread, PollResult, QueueTurns, SqsPoller
from local_stack.stream_poller import StreamPoller, StreamPollResult
from local_stack.websocket_api import WEBSOCKET_PATH, LocalWebSocketApi, websocket_config

REFRESH_PATH = "/_local/refresh"
FORCE_VALUES = {"true": True, "1": True, "false": False, "0": False}
POLL_WAIT_S = 1
STREAM_POLL_INTERVAL_S = 1.0  # Lambda polls a stream shard about once a second
# The offline coins API keeps the last requests it answered, not every one of a long session.
PRICE_REQUESTS_KEPT = 1000

Say = Callable[[str], None]


def _say(text: str) -> None:
    print(text, flush=True)


def redact_url(url: str) -> str:
    """A URL fit for a log line: any password in it replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def redis_mode(redis: LocalRedis) -> str:
    """Which client the functions use on this Redis, for the startup log."""
    if redis.cluster_mode:
        return "cluster mode (REDIS_CLUSTER_MODE=true): the functions use the cluster client"
    return "single-node mode (REDIS_CLUSTER_MODE=false): the functions use the plain client"


@dataclass(frozen=True)
class PricesSource:
    url: str
    description: str
    offline: CoinsApiServer | None = None  # the offline prices server, when it runs


@dataclass
class DemoWallets:
    linked: list[DemoWallet] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def force_flag(raw_query: str) -> bool | None:
    """`force` of the refresh route's query: True, False (absent too), or None when it is neither."""
    values = parse_qs(raw_query, keep_blank_values=True).get("force")
    if not values:
        return False
    return FORCE_VALUES.get(values[-1].strip().lower())


class LocalStack:
    def __init__(self, settings: LocalStackSettings, *, say: Say = _say) -> None:
        self.settings = settings
        self._say = say
        self._stoppers: list[tuple[str, Callable[[], None]]] = []
        self.url = ""
        self.websocket_url = ""
        self.authorizer: JwtAuthorizer | None = None
        self._jwt_secret = ""
        self.chains = ChainNodes()
        self.demo_wallets = DemoWallets()

    def start(self) -> None:
        settings = self.settings
        self._jwt_secret = load_or_create_secret(settings.resolved_data_dir, settings.jwt_secret_value)
        self.authorizer = JwtAuthorizer(self._jwt_secret)

        try:
            redis = start_redis(settings.redis_url, cluster_mode=settings.redis_cluster_mode)
        except RedisError as error:
            raise StartupError(
                f"REDIS_URL {redact_url(settings.redis_url or '')} does not answer ({type(error).__name__}); "
                "unset it to run an embedded Redis"
            ) from error
        except RedisModeError as error:
            where = f"REDIS_URL {redact_url(settings.redis_url)}: " if settings.redis_url else ""
            raise StartupError(f"{where}{error}") from error
        self._on_stop("redis", redis.stop)

        moto = MotoStack(settings.aws_region, settings.stage)
        aws = moto.start()
        self._on_stop("moto", moto.stop)

        prices = self._start_prices()
        try:
            self.chains = start_chain_nodes(settings, self._on_stop)
        except ChainNodeError as error:
            raise StartupError(str(error)) from error
        self._export_environment(aws, redis, prices)
        functions = load_functions(settings.aws_region)

        queue_turns = QueueTurns()
        poller = SqsPoller(
            aws.client("sqs"),
            aws.queue_urls[REFRESH_QUEUE],
            functions.price_updater,
            context_factory=functions.price_updater.context,
            region=settings.aws_region,
        )
        runner = RefreshRunner(
            functions.refresh_scheduler,
            poller,
            queue_turns,
            context_factory=functions.refresh_scheduler.context,
            interval_s=settings.refresh_interval_s,
            region=settings.aws_region,
            window_handler=functions.local("refresh-window", window_run_handler(), region=settings.aws_region),
        )
        websocket = LocalWebSocketApi(
            websocket_config(),
            functions.by_logical_name,
            stage=settings.stage,
            region=settings.aws_region,
            say=self._say,
        )
        gateway = Gateway(
            functions.api,
            api_routes(),
            self.authorizer,
            functions.api.context,
            local_routes={("POST", REFRESH_PATH): lambda request: self._refresh(runner, request)},
            on_error=lambda text: self._say(f"[api] the function raised:\n{text}"),
            websocket=websocket,
        )
        try:
            server = GatewayServer(("127.0.0.1", settings.port), gateway, on_exchange=self._log_exchange)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise StartupError(f"port {settings.port} is in use on 127.0.0.1: set PORT to another one") from error
            raise
        self.url = f"http://127.0.0.1:{server.port}"
        self.websocket_url = f"ws://127.0.0.1:{server.port}{WEBSOCKET_PATH}"
        # The functions push to the management API of this very port (its callback URL), known once bound.
        self._export_callback_url(f"{self.url}{WEBSOCKET_PATH}")
        server_thread = threading.Thread(target=server.serve_forever, name="http-api", daemon=True)
        server_thread.start()

        def stop_server() -> None:
            websocket.close_all()
            server.shutdown()
            server.server_close()
            server_thread.join(timeout=10)

        self._on_stop("http api", stop_server)

        poller_thread = PollerThread(
            poller,
            queue_turns,
            wait_time_s=POLL_WAIT_S,
            on_result=self._log_poll,
            on_error=lambda error: self._say(f"[sqs] polling failed: {type(error).__name__}: {error}"),
        )
        poller_thread.start()
        self._on_stop("sqs poller", poller_thread.stop)

        table = aws.client("dynamodb").describe_table(TableName=aws.table_names[PORTFOLIO_TABLE])["Table"]
        stream = StreamPoller(
            aws.client("dynamodbstreams"),
            table["LatestStreamArn"],
            functions.cache_invalidator,
            region=settings.aws_region,
            context_factory=functions.cache_invalidator.context,
        )
        stream_thread = ScheduleThread(
            STREAM_POLL_INTERVAL_S,
            lambda: self._log_stream(stream.poll_once()),
            on_error=lambda error: self._say(f"[stream] polling failed: {type(error).__name__}: {error}"),
            name="stream-poller",
        )
        stream_thread.start()
        self._on_stop("stream poller", stream_thread.stop)

        schedule = ScheduleThread(
            settings.refresh_interval_s,
            lambda: self._scheduled_run(runner),
            on_error=lambda error: self._say(f"[schedule] the scheduler raised: {type(error).__name__}: {error}"),
        )
        schedule.start()
        self._on_stop("schedule", schedule.stop)

        if settings.demo:
            self._load_demo(gateway, runner, prices)
        sam_local = prepare_sam_local(settings, aws, redis, prices.url, self.chains, self._on_stop)
        self._banner(aws, redis, prices, functions)
        self._say(sam_local.announcement())

    def stop(self) -> None:
        """Stop whatever started, newest first; one part failing to stop does not keep the rest running."""
        while self._stoppers:
            name, stop = self._stoppers.pop()
            try:
                stop()
            except Exception as error:
                self._say(f"[stop] {name}: {type(error).__name__}: {error}")

    def _on_stop(self, name: str, stop: Callable[[], None]) -> None:
        self._stoppers.append((name, stop))

    def _start_prices(self) -> PricesSource:
        settings = self.settings
        if settings.offline_prices:
            server = CoinsApiServer(request_log_size=PRICE_REQUESTS_KEPT).start()
            self._on_stop("offline prices", server.stop)
            return PricesSource(
                server.url,
                f"offline: {server.book_size} recorded prices served at {server.url} (timestamps = now)",
                offline=server,
            )
        if settings.prices_api_url:
            return PricesSource(settings.prices_api_url, f"custom: {redact_url(settings.prices_api_url)}")
        return PricesSource(
            PUBLIC_PRICES_API_URL, f"online: {PUBLIC_PRICES_API_URL} (OFFLINE_PRICES=1 for no internet)"
        )

    def _export_environment(self, aws: LocalAws, redis: LocalRedis, prices: PricesSource) -> None:
        """What the functions read through portfolio.settings, set before they are imported."""
        export_function_environment(
            {
                **function_environment(
                    aws_endpoint=aws.endpoint,
                    region=aws.region,
                    table_name=aws.table_names[PORTFOLIO_TABLE],
                    redis_url=redis.url,
                    prices_api_url=prices.url,
                    refresh_queue_url=aws.queue_urls[REFRESH_QUEUE],
                    refresh_interval_s=self.settings.refresh_interval_s,
                    stage=self.settings.stage,
                    jwt_issuer=ISSUER,
                    jwt_audience=AUDIENCE,
                    local_jwt_secret=self._jwt_secret,
                    alert_event_bus_name=aws.event_bus_names.get(ALERT_EVENT_BUS),
                ),
                # Wallet sync's nodes started here; a node given in the environment reaches the functions as it is.
                **self.chains.environment(),
                # The client the functions build is the one the Redis there needs (checked by start_redis).
                "REDIS_CLUSTER_MODE": "true" if redis.cluster_mode else "false",
            }
        )

    @staticmethod
    def _export_callback_url(url: str) -> None:
        from portfolio import wiring

        os.environ["WEBSOCKET_CALLBACK_URL"] = url
        wiring.reset()

    def _refresh(self, runner: RefreshRunner, request: IncomingRequest) -> HttpResponse:
        force = force_flag(request.raw_query)
        if force is None:
            return json_response(400, {"message": "force is true or false"})
        try:
            report = runner.run_now(force=force)
        except Exception as error:
            self._say(f"[refresh] failed: {type(error).__name__}: {error}")
            return json_response(500, {"message": f"refresh failed: {type(error).__name__}"})
        self._say(f"[refresh] {json.dumps(report.as_json())}")
        return json_response(200, report.as_json())

    def _scheduled_run(self, runner: RefreshRunner) -> None:
        result = runner.invoke_scheduler() or {}
        self._say(
            f"[schedule] window {result.get('window')}: started={result.get('started')}, "
            f"users queued={result.get('usersQueued', 0)}"
        )

    def _load_demo(self, gateway: Gateway, runner: RefreshRunner, prices: PricesSource) -> None:
        assert self.authorizer is not None
        for result in load_demo(gateway.dispatch, self.authorizer):
            if result.problem:
                self._say(f"[demo] {result.user_id}: HTTP {result.status}: {result.problem}")
            else:
                self._say(f"[demo] {result.user_id}: {result.recorded} transactions recorded (HTTP {result.status})")
        for alert in load_demo_alerts(gateway.dispatch, self.authorizer):
            rule = json.dumps(DEMO_ALERTS[alert.user_id])
            outcome = f"alert {alert.alert_id}" if alert.problem is None else f"HTTP {alert.status}: {alert.problem}"
            self._say(f"[demo] {alert.user_id}: {outcome}: {rule}")
        self._link_demo_wallets(gateway, prices)
        # A window of its own: the demo's wallets are read now, whatever ran before (a Redis kept from an
        # earlier run remembers the refresh messages it saw, window by window).
        self._say(f"[demo] refresh: {json.dumps(runner.run_now(force=True).as_json())}")
        for wallet in self.demo_wallets.linked:
            self._say(f"[demo] {wallet.user_id}'s {wallet.chain} wallet: {self._wallet_status(gateway, wallet)}")

    def _link_demo_wallets(self, gateway: Gateway, prices: PricesSource) -> None:
        assert self.authorizer is not None
        demo = self.demo_wallets
        seeded: list[DemoWallet] = []
        anvil, solana = self.chains.anvil, self.chains.solana
        if anvil is not None:
            if (
                self._seed(seeded, "Ethereum", lambda: seed_evm_wallet(anvil, prices.offline))
                and prices.offline is None
            ):
                demo.notes.append(
                    "the DEMO token has no price: prices are not the offline ones (OFFLINE_PRICES=1 prices it)"
                )
        else:
            demo.notes.append("no Ethereum demo wallet: RPC_URL_ETHEREUM names a node the demo does not change")
        if solana is not None:
            self._seed(seeded, "Solana", lambda: seed_solana_wallet(solana))
        else:
            demo.notes.append("no Solana demo wallet: RPC_URL_SOLANA names a node the demo does not change")
        for result in link_wallets(gateway.dispatch, self.authorizer, seeded):
            wallet = result.wallet
            if result.problem:
                self._say(
                    f"[demo] {wallet.user_id}: linking {wallet.describe()}: HTTP {result.status}: {result.problem}"
                )
                continue
            demo.linked.append(wallet)
            self._say(
                f"[demo] {wallet.user_id}: wallet {result.wallet_id} linked (HTTP {result.status}): {wallet.describe()}"
            )
        for note in demo.notes:
            self._say(f"[demo] {note}")

    def _seed(self, seeded: list[DemoWallet], chain: str, seed: Callable[[], DemoWallet]) -> bool:
        """Put one demo wallet's holdings on its node; a node that refuses costs the demo that wallet only."""
        try:
            seeded.append(seed())
        except (AnvilRpcError, httpx.HTTPError, TimeoutError, OSError, ValueError) as error:
            self.demo_wallets.notes.append(
                f"no {chain} demo wallet: its node refused ({type(error).__name__}: {error})"
            )
            return False
        return True

    def _wallet_status(self, gateway: Gateway, wallet: DemoWallet) -> str:
        """How the wallet's chain synced, as GET /portfolios/{userId}/wallets tells it."""
        assert self.authorizer is not None
        response = gateway.dispatch(
            IncomingRequest(
                method="GET",
                raw_path=f"/portfolios/{wallet.user_id}/wallets",
                headers=[("Authorization", f"Bearer {self.authorizer.issue(wallet.user_id, ttl_s=60)}")],
            )
        )
        if response.status != 200:
            return f"HTTP {response.status}"
        for listed in json.loads(response.body).get("wallets", []):
            if listed.get("address", "").lower() != wallet.address.lower():
                continue
            for chain in listed.get("chains", []):
                if chain.get("chain") == wallet.chain:
                    error = f" ({chain['error']})" if chain.get("error") else ""
                    return f"{chain.get('status')} at block {chain.get('blockNumber')}{error}"
        return "not listed"

    def _node_lines(self) -> list[str]:
        names = {"ethereum": "Ethereum", "solana": "Solana"}
        lines = []
        for chain, node in self.chains.nodes.items():
            how = f"{node.kind}; {node.variable} for another node" if node.local else node.kind
            lines.append(f"  {names.get(chain, chain):<12} {node_url_for_log(node.url)}  ({how})")
        others = other_configured_nodes()
        if others:
            listed = ", ".join(f"{chain} {node_url_for_log(url)}" for chain, url in others.items())
            lines.append(f"  Other nodes  {listed} (from RPC_URL_<CHAIN>)")
        return lines

    def _demo_wallet_lines(self) -> list[str]:
        demo = self.demo_wallets
        if not self.settings.demo:
            return []
        entries = [f"demo: {wallet.user_id}, {wallet.describe()}" for wallet in demo.linked] + demo.notes
        lines = [f"  {'Wallets' if index == 0 else '':<12} {entry}" for index, entry in enumerate(entries)]
        if demo.linked:
            user_id = demo.linked[0].user_id
            lines.append(
                f'               see: curl -H "Authorization: Bearer $(make -s token USER={user_id})" '
                f"{self.url}/portfolios/{user_id}/wallets"
            )
        return lines

    def _log_exchange(self, exchange: Exchange) -> None:
        self._say(f"[http] {exchange.method} {exchange.path} -> {exchange.status} ({exchange.duration_ms:.0f} ms)")

    def _log_poll(self, result: PollResult) -> None:
        problem = f", handler raised {type(result.handler_error).__name__}" if result.handler_error else ""
        self._say(
            f"[sqs] price updater: {len(result.received)} message(s), "
            f"{len(result.deleted)} done, {len(result.failed)} failed{problem}"
        )

    def _log_stream(self, result: StreamPollResult) -> None:
        if not result.delivered:
            return
        self._say(
            f"[stream] cache invalidator: {result.delivered} change(s), {result.failed} to retry"
            + (f", {result.given_up} given up" if result.given_up else "")
        )

    def _banner(self, aws: LocalAws, redis: LocalRedis, prices: PricesSource, functions: Functions) -> None:
        settings = self.settings
        redis_how = {
            RedisKind.CONFIGURED: "from REDIS_URL",
            RedisKind.REDIS_SERVER: "embedded: a redis-server started for this run",
            RedisKind.REDIS_CLUSTER: "embedded: a three-master Redis Cluster started for this run",
            RedisKind.FAKEREDIS: "embedded: fakeredis (no redis-server binary found)",
        }[redis.kind]
        origin = settings.origin
        lines = [
            "",
            f"Local stack ready at {self.url}",
            "",
            f"  HTTP API     {self.url}  -> functions/http_api ({functions.api.name}); JWT authorizer emulated (HS256)",
            f"  WebSocket    {self.websocket_url}?token=<JWT>  -> functions/websocket_connections; the REQUEST "
            "authorizer functions/websocket_authorizer (HS256 here);",
            f"               pushes through the management API at {self.url}{WEBSOCKET_PATH}/@connections/<id>",
            f"  AWS (moto)   {aws.endpoint}",
            f"               tables: {', '.join(aws.table_names.values())}",
            f"               queues: {', '.join(url.rsplit('/', 1)[-1] for url in aws.queue_urls.values())}",
            f"               event buses: {', '.join(aws.event_bus_names.values()) or '-'} (fired alerts)",
            f"  Redis        {redact_url(redis.url)}  ({redis_how})",
            f"               {redis_mode(redis)}",
            f"  Prices       {prices.description}",
            *self._node_lines(),
            f"  Refresh      every {settings.refresh_interval_s} s: scheduler -> SQS -> price updater "
            "(wallet sync, then valuation)",
            f"               now: curl -X POST {self.url}{REFRESH_PATH}",
            f"               even if this window already ran: curl -X POST '{self.url}{REFRESH_PATH}?force=true'",
            *self._demo_wallet_lines(),
            "",
            "Settings (env = from the environment, default = not set):",
            f"  PORT={settings.port} ({origin('port')})",
            f"  REDIS_URL={redact_url(settings.redis_url) if settings.redis_url else '-'} ({origin('redis_url')})",
            f"  REDIS_CLUSTER_MODE={str(settings.redis_cluster_mode).lower()} ({origin('redis_cluster_mode')})",
            f"  OFFLINE_PRICES={int(settings.offline_prices)} ({origin('offline_prices')})",
            f"  PRICES_API_URL={redact_url(settings.prices_api_url) if settings.prices_api_url else '-'} "
            f"({origin('prices_api_url')})",
            f"  REFRESH_INTERVAL_SECONDS={settings.refresh_interval_s} ({origin('refresh_interval_s')})",
            f"  DEMO={int(settings.demo)} ({origin('demo')})",
            *(
                f"  {variable}={node_url_for_log(value) if value else '-'} ({origin(name)})"
                for variable, name, value in (
                    ("RPC_URL_ETHEREUM", "rpc_url_ethereum", settings.rpc_url("ethereum")),
                    ("RPC_URL_SOLANA", "rpc_url_solana", settings.rpc_url("solana")),
                )
            ),
            f"  LOCAL_DATA_DIR={settings.resolved_data_dir} ({origin('data_dir')})",
            f"  LOCAL_JWT_SECRET={'set' if settings.jwt_secret else 'unset: key kept in LOCAL_DATA_DIR'} "
            f"({origin('jwt_secret')})",
            "",
            "Get a token:  make token USER=alice   (admin: .venv/bin/python -m local_stack.token alice --admin)",
            f'Try:          curl -H "Authorization: Bearer $(make -s token USER=alice)" {self.url}/portfolios/alice',
            f'Listen:       python -m websockets "{self.websocket_url}?token=$(make -s token USER=alice)"',
            "Stop:         Ctrl-C",
            "",
        ]
        self._say("\n".join(lines))
