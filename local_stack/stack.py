"""Starts the whole system on loopback, in order, and stops it in the reverse order."""

from __future__ import annotations

import errno
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from redis.exceptions import RedisError

from local_stack.api_routes import api_routes
from local_stack.aws import PORTFOLIO_TABLE, REFRESH_QUEUE, LocalAws, MotoStack
from local_stack.coins_api import CoinsApiServer
from local_stack.config import PUBLIC_PRICES_API_URL, LocalStackSettings
from local_stack.demo import load_demo
from local_stack.embedded_redis import LocalRedis, RedisKind, start_redis
from local_stack.functions import Functions, function_environment, load_functions
from local_stack.gateway import Exchange, Gateway, GatewayServer
from local_stack.http_events import HttpResponse, json_response
from local_stack.jwt_auth import JwtAuthorizer, load_or_create_secret
from local_stack.refresh import RefreshRunner
from local_stack.scheduler import ScheduleThread
from local_stack.sqs_poller import PollerThread, PollResult, QueueTurns, SqsPoller

REFRESH_PATH = "/_local/refresh"
POLL_WAIT_S = 1
# The offline coins API keeps the last requests it answered, not every one of a long session.
PRICE_REQUESTS_KEPT = 1000

Say = Callable[[str], None]


class StartupError(Exception):
    """A setting or the machine keeps the stack from starting; the message says what to change."""


def _say(text: str) -> None:
    print(text, flush=True)


def redact_url(url: str) -> str:
    """A URL fit for a log line: any password in it replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class PricesSource:
    url: str
    description: str


class LocalStack:
    def __init__(self, settings: LocalStackSettings, *, say: Say = _say) -> None:
        self.settings = settings
        self._say = say
        self._stoppers: list[tuple[str, Callable[[], None]]] = []
        self.url = ""
        self.authorizer: JwtAuthorizer | None = None

    def start(self) -> None:
        settings = self.settings
        self.authorizer = JwtAuthorizer(load_or_create_secret(settings.resolved_data_dir, settings.jwt_secret_value))

        try:
            redis = start_redis(settings.redis_url)
        except RedisError as error:
            raise StartupError(
                f"REDIS_URL {redact_url(settings.redis_url or '')} does not answer ({type(error).__name__}); "
                "unset it to run an embedded Redis"
            ) from error
        self._on_stop("redis", redis.stop)

        moto = MotoStack(settings.aws_region, settings.stage)
        aws = moto.start()
        self._on_stop("moto", moto.stop)

        prices = self._start_prices()
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
        )
        gateway = Gateway(
            functions.api,
            api_routes(),
            self.authorizer,
            functions.api.context,
            local_routes={("POST", REFRESH_PATH): lambda _request: self._refresh(runner)},
            on_error=lambda text: self._say(f"[api] the function raised:\n{text}"),
        )
        try:
            server = GatewayServer(("127.0.0.1", settings.port), gateway, on_exchange=self._log_exchange)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise StartupError(f"port {settings.port} is in use on 127.0.0.1: set PORT to another one") from error
            raise
        server_thread = threading.Thread(target=server.serve_forever, name="http-api", daemon=True)
        server_thread.start()
        self.url = f"http://127.0.0.1:{server.port}"

        def stop_server() -> None:
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

        schedule = ScheduleThread(
            settings.refresh_interval_s,
            lambda: self._scheduled_run(runner),
            on_error=lambda error: self._say(f"[schedule] the scheduler raised: {type(error).__name__}: {error}"),
        )
        schedule.start()
        self._on_stop("schedule", schedule.stop)

        if settings.demo:
            self._load_demo(gateway, runner)
        self._banner(aws, redis, prices, functions)

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
                server.url, f"offline: {server.book_size} recorded prices served at {server.url} (timestamps = now)"
            )
        if settings.prices_api_url:
            return PricesSource(settings.prices_api_url, f"custom: {redact_url(settings.prices_api_url)}")
        return PricesSource(
            PUBLIC_PRICES_API_URL, f"online: {PUBLIC_PRICES_API_URL} (OFFLINE_PRICES=1 for no internet)"
        )

    def _export_environment(self, aws: LocalAws, redis: LocalRedis, prices: PricesSource) -> None:
        """What the functions read through portfolio.settings, set before they are imported."""
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        os.environ.update(
            function_environment(
                aws_endpoint=aws.endpoint,
                region=aws.region,
                table_name=aws.table_names[PORTFOLIO_TABLE],
                redis_url=redis.url,
                prices_api_url=prices.url,
                refresh_queue_url=aws.queue_urls[REFRESH_QUEUE],
                refresh_interval_s=self.settings.refresh_interval_s,
                stage=self.settings.stage,
            )
        )
        os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "cross-chain-portfolio")
        os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "CrossChainPortfolio")
        # EMF metric lines after every invocation drown the console; POWERTOOLS_METRICS_DISABLED=false shows them.
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")
        # Three functions, moto and the gateway share one interpreter here: a 50 ms Redis budget
        # (right for ElastiCache next to a Lambda) would turn ordinary pauses into cache misses.
        os.environ.setdefault("REDIS_SOCKET_TIMEOUT_MS", "1000")
        os.environ.setdefault("REDIS_CONNECT_TIMEOUT_MS", "1000")
        from portfolio import wiring

        wiring.reset()

    def _refresh(self, runner: RefreshRunner) -> HttpResponse:
        try:
            report = runner.run_now()
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

    def _load_demo(self, gateway: Gateway, runner: RefreshRunner) -> None:
        assert self.authorizer is not None
        for result in load_demo(gateway.dispatch, self.authorizer):
            if result.problem:
                self._say(f"[demo] {result.user_id}: HTTP {result.status}: {result.problem}")
            else:
                self._say(f"[demo] {result.user_id}: {result.recorded} transactions recorded (HTTP {result.status})")
        self._say(f"[demo] refresh: {json.dumps(runner.run_now().as_json())}")

    def _log_exchange(self, exchange: Exchange) -> None:
        self._say(f"[http] {exchange.method} {exchange.path} -> {exchange.status} ({exchange.duration_ms:.0f} ms)")

    def _log_poll(self, result: PollResult) -> None:
        problem = f", handler raised {type(result.handler_error).__name__}" if result.handler_error else ""
        self._say(
            f"[sqs] price updater: {len(result.received)} message(s), "
            f"{len(result.deleted)} done, {len(result.failed)} failed{problem}"
        )

    def _banner(self, aws: LocalAws, redis: LocalRedis, prices: PricesSource, functions: Functions) -> None:
        settings = self.settings
        redis_how = {
            RedisKind.CONFIGURED: "from REDIS_URL",
            RedisKind.REDIS_SERVER: "embedded: a redis-server started for this run",
            RedisKind.FAKEREDIS: "embedded: fakeredis (no redis-server binary found)",
        }[redis.kind]
        origin = settings.origin
        lines = [
            "",
            f"Local stack ready at {self.url}",
            "",
            f"  HTTP API     {self.url}  -> functions/http_api ({functions.api.name}); JWT authorizer emulated (HS256)",
            f"  AWS (moto)   {aws.endpoint}",
            f"               tables: {', '.join(aws.table_names.values())}",
            f"               queues: {', '.join(url.rsplit('/', 1)[-1] for url in aws.queue_urls.values())}",
            f"  Redis        {redact_url(redis.url)}  ({redis_how})",
            f"  Prices       {prices.description}",
            f"  Refresh      every {settings.refresh_interval_s} s: scheduler -> SQS -> price updater",
            f"               now: curl -X POST {self.url}{REFRESH_PATH}",
            "",
            "Settings (env = from the environment, default = not set):",
            f"  PORT={settings.port} ({origin('port')})",
            f"  REDIS_URL={redact_url(settings.redis_url) if settings.redis_url else '-'} ({origin('redis_url')})",
            f"  OFFLINE_PRICES={int(settings.offline_prices)} ({origin('offline_prices')})",
            f"  PRICES_API_URL={redact_url(settings.prices_api_url) if settings.prices_api_url else '-'} "
            f"({origin('prices_api_url')})",
            f"  REFRESH_INTERVAL_SECONDS={settings.refresh_interval_s} ({origin('refresh_interval_s')})",
            f"  DEMO={int(settings.demo)} ({origin('demo')})",
            f"  LOCAL_DATA_DIR={settings.resolved_data_dir} ({origin('data_dir')})",
            f"  LOCAL_JWT_SECRET={'set' if settings.jwt_secret else 'unset: key kept in LOCAL_DATA_DIR'} "
            f"({origin('jwt_secret')})",
            "",
            "Get a token:  make token USER=alice   (admin: .venv/bin/python -m local_stack.token alice --admin)",
            f'Try:          curl -H "Authorization: Bearer $(make -s token USER=alice)" {self.url}/portfolios/alice',
            "Stop:         Ctrl-C",
            "",
        ]
        self._say("\n".join(lines))
