"""One more region of a global table: its own HTTP API, its own Redis and its own cache invalidator on
its replica's stream, against tables that already exist in that region of a shared moto server.

    AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_REGION=eu-west-1 TABLE_NAME=local-PortfolioTable \\
        PORT=3001 python -m local_stack.two_regions_region

The functions of a region read their region and endpoints from the environment (portfolio.settings),
so a region is a process of its own. It runs what reads and invalidates there, as the template deploys
it in every region; the refresh runs in the home region only (`python -m local_stack.two_regions` runs
the home region as `python -m local_stack`, and this module for each other region).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from local_stack.api_routes import api_routes
from local_stack.aws import local_client
from local_stack.coins_api import CoinsApiServer
from local_stack.config import PUBLIC_PRICES_API_URL, REPOSITORY_ROOT
from local_stack.embedded_redis import start_redis
from local_stack.foreground import run_until_stopped
from local_stack.functions import export_function_environment, function_environment, load_functions
from local_stack.gateway import Exchange, Gateway, GatewayServer
from local_stack.jwt_auth import JwtAuthorizer, load_or_create_secret
from local_stack.scheduler import ScheduleThread
from local_stack.stream_poller import StreamPoller, StreamPollResult

Say = Callable[[str], None]


class RegionSettings(BaseSettings):
    """Read from the environment once, at startup."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    aws_endpoint_url: str = Field(alias="AWS_ENDPOINT_URL")
    aws_region: str = Field(alias="AWS_REGION")
    table_name: str = Field(alias="TABLE_NAME")
    port: int = Field(0, alias="PORT", ge=0, le=65535)
    # Unset: an embedded Redis of this region's own (redis-server if installed, else fakeredis).
    redis_url: str | None = Field(None, alias="REDIS_URL")
    offline_prices: bool = Field(False, alias="OFFLINE_PRICES")
    prices_api_url: str | None = Field(None, alias="PRICES_API_URL")
    stage: str = Field("local", alias="STAGE")
    data_dir: Path = Field(REPOSITORY_ROOT / ".local", alias="LOCAL_DATA_DIR")
    jwt_secret: SecretStr | None = Field(None, alias="LOCAL_JWT_SECRET")
    # Lambda reads a stream shard about once a second.
    stream_poll_interval_s: float = Field(1.0, alias="STREAM_POLL_INTERVAL_SECONDS", gt=0)


class Region:
    """Start with start(), stop with stop(); `url` is the region's API once started."""

    def __init__(self, settings: RegionSettings, *, say: Say) -> None:
        self.settings = settings
        self._say = say
        self._stoppers: list[Callable[[], None]] = []
        self.url = ""

    def start(self) -> None:
        settings = self.settings
        redis = start_redis(settings.redis_url)
        self._stoppers.append(redis.stop)
        prices_url = self._prices_url()
        self._export_environment(redis.url, prices_url)
        functions = load_functions(settings.aws_region)

        secret = load_or_create_secret(
            settings.data_dir if settings.data_dir.is_absolute() else REPOSITORY_ROOT / settings.data_dir,
            settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
        )
        gateway = Gateway(
            functions.api,
            api_routes(),
            JwtAuthorizer(secret),
            functions.api.context,
            on_error=lambda text: self._say(f"[api] the function raised:\n{text}"),
        )
        server = GatewayServer(("127.0.0.1", settings.port), gateway, on_exchange=self._log_exchange)
        thread = threading.Thread(target=server.serve_forever, name="http-api", daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.port}"

        def stop_server() -> None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)

        self._stoppers.append(stop_server)

        dynamodb = local_client("dynamodb", settings.aws_endpoint_url, settings.aws_region)
        table = dynamodb.describe_table(TableName=settings.table_name)["Table"]
        stream = StreamPoller(
            local_client("dynamodbstreams", settings.aws_endpoint_url, settings.aws_region),
            table["LatestStreamArn"],
            functions.cache_invalidator,
            region=settings.aws_region,
            context_factory=functions.cache_invalidator.context,
        )
        stream_thread = ScheduleThread(
            settings.stream_poll_interval_s,
            lambda: self._log_stream(stream.poll_once()),
            on_error=lambda error: self._say(f"[stream] polling failed: {type(error).__name__}: {error}"),
            name="stream-poller",
        )
        stream_thread.start()
        self._stoppers.append(stream_thread.stop)
        self._say(
            f"Region {settings.aws_region} ready at {self.url}: table {settings.table_name} at "
            f"{settings.aws_endpoint_url}, Redis {redis.url}, prices {prices_url}"
        )

    def stop(self) -> None:
        while self._stoppers:
            stop = self._stoppers.pop()
            try:
                stop()
            except Exception as error:
                self._say(f"[stop] {type(error).__name__}: {error}")

    def _prices_url(self) -> str:
        if self.settings.offline_prices:
            server = CoinsApiServer().start()
            self._stoppers.append(server.stop)
            return server.url
        return self.settings.prices_api_url or PUBLIC_PRICES_API_URL

    def _export_environment(self, redis_url: str, prices_url: str) -> None:
        """What the functions of this region read through portfolio.settings, set before they are imported."""
        settings = self.settings
        export_function_environment(
            function_environment(
                aws_endpoint=settings.aws_endpoint_url,
                region=settings.aws_region,
                table_name=settings.table_name,
                redis_url=redis_url,
                prices_api_url=prices_url,
                stage=settings.stage,
            )
        )

    def _log_exchange(self, exchange: Exchange) -> None:
        self._say(f"[http] {exchange.method} {exchange.path} -> {exchange.status} ({exchange.duration_ms:.0f} ms)")

    def _log_stream(self, result: StreamPollResult) -> None:
        if result.delivered:
            self._say(f"[stream] cache invalidator: {result.delivered} change(s), {result.failed} to retry")


def main() -> int:
    try:
        settings = RegionSettings()  # type: ignore[call-arg]
    except ValidationError as error:
        print(f"region: invalid setting:\n{error}", file=sys.stderr)
        return 2
    region = Region(settings, say=lambda text: print(text, flush=True))
    return run_until_stopped(region, name=f"region {settings.aws_region}", announce_stop=False)


if __name__ == "__main__":
    sys.exit(main())
