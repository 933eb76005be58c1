"""The Lambda handlers: found through template.yaml, imported from functions/, invoked one at a time.

`load_handler` is the one way to get a handler, here and in the tests: the template names each
function's folder (CodeUri) and `module.attribute` (Handler); the module is imported as
`<folder>.<module>` (`http_api.app`) with functions/ on the import path, so every caller shares one
module object.

`function_environment` is what a function reads from its environment in AWS, pointed at endpoints
on this machine. Set it before a handler is imported or `portfolio.wiring.reset()` is called:
`export_function_environment` does both.

In AWS a container runs one invocation at a time, and the handlers rely on it: Powertools'
resolver keeps the current event on the app object, and Logger, Metrics and Tracer are shared
module state. The local stack runs every function in one process, so one lock serializes
every invocation of the `LocalFunction`s that `load_functions` returns.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from local_stack.aws import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY
from local_stack.config import REPOSITORY_ROOT
from local_stack.lambda_context import LocalLambdaContext
from local_stack.template_resources import load_template, resources_of_type

FUNCTIONS_DIR = REPOSITORY_ROOT / "functions"
API_FUNCTION = "ApiFunction"
REFRESH_SCHEDULER_FUNCTION = "RefreshSchedulerFunction"
PRICE_UPDATER_FUNCTION = "PriceUpdaterFunction"
CACHE_INVALIDATOR_FUNCTION = "CacheInvalidatorFunction"
WEBSOCKET_AUTHORIZER_FUNCTION = "WebSocketAuthorizerFunction"
WEBSOCKET_CONNECTIONS_FUNCTION = "WebSocketConnectionsFunction"

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class HandlerLocation:
    module: str  # importable with functions/ on the path, e.g. "http_api.app"
    attribute: str  # e.g. "lambda_handler"


def handler_locations(template: dict[str, Any] | None = None) -> dict[str, HandlerLocation]:
    """Each function's handler, from its CodeUri (a folder of functions/) and Handler (`module.attribute`)."""
    if template is None:
        return dict(_template_handler_locations())
    defaults = template.get("Globals", {}).get("Function", {})
    locations = {}
    for name, properties in resources_of_type(template, "AWS::Serverless::Function").items():
        folder = PurePosixPath(str(properties.get("CodeUri", defaults.get("CodeUri")))).name
        module, attribute = str(properties.get("Handler", defaults.get("Handler"))).rsplit(".", 1)
        locations[name] = HandlerLocation(f"{folder}.{module}", attribute)
    return locations


@functools.cache
def _template_handler_locations() -> tuple[tuple[str, HandlerLocation], ...]:
    return tuple(handler_locations(load_template()).items())


def load_handler(function: str, template: dict[str, Any] | None = None) -> Handler:
    """The handler of a function of the template (its logical name, e.g. "ApiFunction"), imported as Lambda would."""
    location = handler_locations(template)[function]
    if str(FUNCTIONS_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTIONS_DIR))
    return getattr(importlib.import_module(location.module), location.attribute)


def function_environment(
    *,
    aws_endpoint: str,
    region: str,
    table_name: str,
    redis_url: str,
    prices_api_url: str | None = None,
    refresh_queue_url: str | None = None,
    refresh_interval_s: int | None = None,
    stage: str | None = None,
    websocket_callback_url: str | None = None,
    jwt_issuer: str | None = None,
    jwt_audience: str | None = None,
    local_jwt_secret: str | None = None,
    alert_event_bus_name: str | None = None,
) -> dict[str, str]:
    """The variables template.yaml sets on the functions, and the region and credentials Lambda provides,
    for the endpoints given. What is not given here keeps its default from portfolio.settings."""
    environment = {
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "TABLE_NAME": table_name,
        "REDIS_URL": redis_url,
        # A single Redis here; ElastiCache Serverless (cluster mode) in AWS.
        "REDIS_CLUSTER_MODE": "false",
        # No X-Ray daemon here.
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    optional = {
        "STAGE": stage,
        "PRICES_API_URL": prices_api_url,
        "REFRESH_QUEUE_URL": refresh_queue_url,
        "REFRESH_INTERVAL_SECONDS": None if refresh_interval_s is None else str(refresh_interval_s),
        "WEBSOCKET_CALLBACK_URL": websocket_callback_url,
        "JWT_ISSUER": jwt_issuer,
        "JWT_AUDIENCE": jwt_audience,
        # The WebSocket authorizer takes the local stack's HS256 key only where STAGE is local.
        "LOCAL_JWT_SECRET": local_jwt_secret,
        "ALERT_EVENT_BUS_NAME": alert_event_bus_name,
    }
    environment.update({name: value for name, value in optional.items() if value is not None})
    return environment


# What a local run sets unless the developer's environment does.
_LOCAL_DEFAULTS = {
    "POWERTOOLS_SERVICE_NAME": "cross-chain-portfolio",
    "POWERTOOLS_METRICS_NAMESPACE": "CrossChainPortfolio",
    # EMF metric lines after every invocation drown the console; POWERTOOLS_METRICS_DISABLED=false shows them.
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    # The functions share a few cores with moto and the gateway here: a 50 ms Redis budget (right for
    # ElastiCache next to a Lambda) would turn ordinary pauses into cache misses.
    "REDIS_SOCKET_TIMEOUT_MS": "1000",
    "REDIS_CONNECT_TIMEOUT_MS": "1000",
}


def export_function_environment(variables: Mapping[str, str]) -> None:
    """`variables` (function_environment's, and more) into this process's environment, without the
    developer's AWS profile or session token, with the local defaults where nothing else is set; then
    `portfolio.wiring.reset()`, so that the functions read it."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(variables)
    for name, value in _LOCAL_DEFAULTS.items():
        os.environ.setdefault(name, value)
    from portfolio import wiring

    wiring.reset()


@dataclass(frozen=True)
class FunctionLimits:
    timeout_s: int
    memory_mb: int


class LocalFunction:
    """One handler, callable as Lambda calls it; a fresh context per invocation."""

    def __init__(
        self, name: str, handler: Handler, invocation_lock: threading.Lock, limits: FunctionLimits, *, region: str
    ) -> None:
        self.name = name
        self._handler = handler
        self._invocation_lock = invocation_lock
        self._limits = limits
        self._region = region

    def context(self) -> LocalLambdaContext:
        return LocalLambdaContext(
            function_name=self.name,
            timeout_s=self._limits.timeout_s,
            memory_limit_in_mb=self._limits.memory_mb,
            region=self._region,
        )

    def __call__(self, event: dict[str, Any], context: Any | None = None) -> Any:
        with self._invocation_lock:
            return self._handler(event, context or self.context())


@dataclass(frozen=True)
class Functions:
    api: LocalFunction
    refresh_scheduler: LocalFunction
    price_updater: LocalFunction
    cache_invalidator: LocalFunction
    invocation_lock: threading.Lock
    limits: dict[str, FunctionLimits]
    by_logical_name: dict[str, LocalFunction]

    def local(
        self, name: str, handler: Handler, *, like: str = REFRESH_SCHEDULER_FUNCTION, region: str
    ) -> LocalFunction:
        """A handler of the local stack's own (not in the template), run as one more function: one
        invocation at a time with the others, with the limits of the template function `like`."""
        return LocalFunction(name, handler, self.invocation_lock, self.limits[like], region=region)


def function_limits(template: dict[str, Any] | None = None) -> dict[str, FunctionLimits]:
    """Each function's Timeout and MemorySize, from its own properties or the template's Globals."""
    template = template or load_template()
    defaults = template.get("Globals", {}).get("Function", {})
    return {
        name: FunctionLimits(
            timeout_s=int(properties.get("Timeout", defaults.get("Timeout", 3))),
            memory_mb=int(properties.get("MemorySize", defaults.get("MemorySize", 128))),
        )
        for name, properties in resources_of_type(template, "AWS::Serverless::Function").items()
    }


def load_functions(region: str, template: dict[str, Any] | None = None) -> Functions:
    """Import the handlers, with the limits the template gives them (their contexts report them)."""
    limits = function_limits(template)
    lock = threading.Lock()

    names = {
        API_FUNCTION: "api",
        REFRESH_SCHEDULER_FUNCTION: "refresh-scheduler",
        PRICE_UPDATER_FUNCTION: "price-updater",
        CACHE_INVALIDATOR_FUNCTION: "cache-invalidator",
        WEBSOCKET_AUTHORIZER_FUNCTION: "websocket-authorizer",
        WEBSOCKET_CONNECTIONS_FUNCTION: "websocket-connections",
    }
    loaded = {
        logical_name: LocalFunction(
            name, load_handler(logical_name, template), lock, limits[logical_name], region=region
        )
        for logical_name, name in names.items()
    }
    return Functions(
        api=loaded[API_FUNCTION],
        refresh_scheduler=loaded[REFRESH_SCHEDULER_FUNCTION],
        price_updater=loaded[PRICE_UPDATER_FUNCTION],
        cache_invalidator=loaded[CACHE_INVALIDATOR_FUNCTION],
        invocation_lock=lock,
        limits=limits,
        by_logical_name=loaded,
    )
